"""``asr adapt``: clips -> augmented examples -> fine-tuned Whisper -> CTranslate2 int8 ->
checked in faster-whisper. Writes OUT/ (the CT2 model, usable as ``whisper_model_dir``),
OUT/hf/ (the fine-tuned checkpoint) and OUT/adapt-report.json.

Accuracy on real callers needs real (dialect) recordings with transcripts: the pipeline and its
test prove the mechanics on synthetic data, not an accuracy gain.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from speech.adapt.augment import AugmentConfig, Example, augment
from speech.adapt.data import load_clips
from speech.adapt.train import TrainConfig

log = logging.getLogger(__name__)

TRAIN_EXTRA = "pip install torch==2.13.0 && pip install -r requirements-train.txt"


class MissingTrainingDeps(ImportError):
    """torch / transformers / ctranslate2 / faster-whisper are not installed."""


def require_training_deps() -> None:
    missing = []
    for module in ("torch", "transformers", "ctranslate2", "faster_whisper"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise MissingTrainingDeps(
            f"asr adapt needs {', '.join(missing)}: {TRAIN_EXTRA} (a separate venv is fine)"
        )


@dataclass(frozen=True, slots=True)
class AdaptConfig:
    train: TrainConfig = field(default_factory=TrainConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    quantization: str = "int8"
    tokenizer_file: Path | None = None  # when the base folder has no tokenizer
    eval_dir: Path | None = None  # held-out clips for the CER check (default: training clips)
    verify_clips: int = 8


def build_examples(data: Path, config: AdaptConfig) -> tuple[int, list[Example]]:
    clips = load_clips(data)
    rng = random.Random(config.train.seed)
    samples = [c.samples() for c in clips]
    examples: list[Example] = []
    for i, (clip, x) in enumerate(zip(clips, samples, strict=True)):
        others = samples[:i] + samples[i + 1 :]
        examples += augment(clip, x, others=others, config=config.augment, rng=rng)
    return len(clips), examples


def run_adapt(
    data: Path, base: Path, out: Path, config: AdaptConfig | None = None
) -> dict[str, Any]:
    """Fine-tune `base` (a HF Whisper folder) on the clips in `data`, export to `out`."""
    require_training_deps()
    from speech.adapt.export import export_ct2, verify
    from speech.adapt.train import finetune, load_base, save_checkpoint

    config = config or AdaptConfig()
    started = time.monotonic()
    n_clips, examples = build_examples(data, config)
    model, tokenizer, features = load_base(base, config.tokenizer_file)
    result = finetune(model, tokenizer, features, examples, config.train)
    staging = out.with_name(f"{out.name}.hf-staging")  # the converter empties `out` first
    shutil.rmtree(staging, ignore_errors=True)
    save_checkpoint(model, tokenizer, features, staging)
    export_ct2(staging, out, quantization=config.quantization)
    hf = out / "hf"
    shutil.move(staging, hf)
    check_clips = load_clips(config.eval_dir) if config.eval_dir else load_clips(data)
    check = verify(out, check_clips[: config.verify_clips], language=config.train.language,
                   threads=config.train.threads)  # fmt: skip
    tags: dict[str, int] = {}
    for example in examples:
        for tag in example.tags:
            tags[tag] = tags.get(tag, 0) + 1
    report = {
        "clips": n_clips,
        "examples": len(examples),
        "augmentations": tags,
        "steps": result.steps,
        "loss_first": result.losses[0] if result.losses else None,
        "loss_last": result.losses[-1] if result.losses else None,
        "train_s": round(result.seconds, 2),
        "ct2_dir": str(out),
        "hf_dir": str(hf),
        "quantization": config.quantization,
        "check": {
            "clips": len(check.texts),
            "cer": round(check.cer, 4),
            "rtf": round(check.rtf, 4),
            "load_s": round(check.load_s, 2),
            "held_out": config.eval_dir is not None,
        },
        "total_s": round(time.monotonic() - started, 2),
        "config": _jsonable(asdict(config)),
    }
    (out / "adapt-report.json").write_text(json.dumps(report, ensure_ascii=False, indent=2))
    return report


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value) if isinstance(value, Path) else value
