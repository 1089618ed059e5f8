"""CoquiTts: model folder discovery and the extra's error message, and loading + synthesis of a
tiny randomly initialized VITS model that the tests build.

coqui-tts cannot be imported in .venv (requirements-coqui.txt says why), so the tests marked
``@coqui_test`` run wherever it can be: in this interpreter when it has coqui-tts, otherwise in
one child pytest under the coqui venv's interpreter (``.venv-coqui/bin/python``, built by
``scripts/setup.sh --with-coqui``; ``CALLBOT_COQUI_PYTHON`` names another one), and each test
here reports its own outcome there: a failure in the child fails here, with the child's output.
They skip only when neither exists.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, ParamSpec

import pytest

from core.audio import SAMPLE_RATE, pcm_seconds
from speech import audio
from speech.tts.coqui import EXTRA_HINT, CoquiModelError, CoquiTts, find_model_files

ROOT: Final = Path(__file__).resolve().parents[1]
PYTHON_ENV: Final = "CALLBOT_COQUI_PYTHON"  # an interpreter that has coqui-tts
CHILD_ENV: Final = "CALLBOT_COQUI_CHILD"  # set in the child run: never delegate again
CHILD_TIMEOUT_S: Final = 600
P = ParamSpec("P")


def _coqui_import_error() -> str | None:
    try:
        import TTS  # noqa: F401
        from TTS.tts.models.vits import Vits  # noqa: F401
    except Exception as exc:  # ImportError, or OSError from a torchaudio built for another torch
        first = str(exc).strip().splitlines()
        return f"{type(exc).__name__}: {first[0] if first else ''}"
    return None


_IMPORT_ERROR = _coqui_import_error()
_COQUI_TESTS: list[str] = []


def _coqui_python() -> Path | None:
    """The interpreter to delegate to: $CALLBOT_COQUI_PYTHON, else the coqui venv's (VENV_COQUI
    as in scripts/setup.sh, default .venv-coqui) when it exists."""
    if named := os.environ.get(PYTHON_ENV):
        return Path(named).absolute()  # named explicitly: a wrong path fails, not skips
    venv = Path(os.environ.get("VENV_COQUI", ".venv-coqui"))
    python = (venv if venv.is_absolute() else ROOT / venv) / "bin" / "python"
    return python if python.exists() else None


@dataclass(frozen=True)
class ChildRun:
    command: list[str]
    returncode: int
    output: str
    outcomes: dict[str, tuple[str, str]]  # test name -> (passed|failure|error|skipped, details)


def _junit_outcomes(report: Path) -> dict[str, tuple[str, str]]:
    outcomes: dict[str, tuple[str, str]] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = case.get("name", "")
        results = [c for c in case if c.tag in ("failure", "error", "skipped")]
        if results:
            first = results[0]
            details = f"{first.get('message', '')}\n{first.text or ''}".strip()
            outcomes[name] = (first.tag, details)
        else:
            outcomes.setdefault(name, ("passed", ""))
    return outcomes


@functools.cache
def _child_run(python: Path) -> ChildRun:
    """Runs every @coqui_test of this file once, in a child pytest under `python`."""
    this_file = Path(__file__).resolve().relative_to(ROOT).as_posix()
    with tempfile.TemporaryDirectory(prefix="callbot-coqui-") as tmp:
        report = Path(tmp) / "junit.xml"
        command = [
            str(python), "-m", "pytest", *(f"{this_file}::{name}" for name in _COQUI_TESTS),
            "-q", "-p", "no:cacheprovider", f"--junitxml={report}",
        ]  # fmt: skip
        try:
            proc = subprocess.run(
                command,
                cwd=ROOT,
                env={**os.environ, CHILD_ENV: "1"},
                capture_output=True,
                text=True,
                timeout=CHILD_TIMEOUT_S,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return ChildRun(command, -1, f"{type(exc).__name__}: {exc}", {})
        try:
            outcomes = _junit_outcomes(report)
        except (OSError, ET.ParseError):  # the child died before writing its report
            outcomes = {}
    return ChildRun(command, proc.returncode, proc.stdout + proc.stderr, outcomes)


async def _expect_passed_in_child(name: str, python: Path) -> None:
    run = await asyncio.to_thread(_child_run, python)
    outcome, details = run.outcomes.get(name, ("not run", "no result for this test"))
    if outcome != "passed":
        pytest.fail(
            f"{name}: {outcome} under {python} (exit {run.returncode})\n{details}\n"
            f"--- {' '.join(run.command)}\n{run.output[-6000:]}",
            pytrace=False,
        )


def coqui_test(
    test: Callable[P, Awaitable[None]],
) -> Callable[P, Coroutine[Any, Any, None]]:
    """Runs `test` in-process when coqui-tts imports here, else reports its outcome in the
    coqui venv (see the module docstring)."""
    _COQUI_TESTS.append(test.__name__)

    @functools.wraps(test)
    async def run(*args: P.args, **kwargs: P.kwargs) -> None:
        if _IMPORT_ERROR is None:
            await test(*args, **kwargs)
        elif os.environ.get(CHILD_ENV):
            pytest.fail(f"coqui-tts is not importable in {sys.executable}: {_IMPORT_ERROR}")
        elif (python := _coqui_python()) is not None:
            await _expect_passed_in_child(test.__name__, python)
        else:
            pytest.skip(
                f"coqui-tts is not importable here ({_IMPORT_ERROR}) and there is no "
                f".venv-coqui: run scripts/setup.sh --with-coqui (./dev.sh test does), or set "
                f"{PYTHON_ENV} to an interpreter that has coqui-tts"
            )

    return run


# --- in-process, always ------------------------------------------------------------------------


def test_model_folder_discovery(tmp_path: Path) -> None:
    with pytest.raises(CoquiModelError, match="config.json"):
        find_model_files(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CoquiModelError, match="checkpoint"):
        find_model_files(tmp_path)
    (tmp_path / "checkpoint_100.pth").write_bytes(b"x")
    (tmp_path / "best_model.pth").write_bytes(b"x")
    assert find_model_files(tmp_path)[1].name == "best_model.pth"


def test_missing_extra_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.pth").write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "TTS", None)  # import TTS -> ImportError
    with pytest.raises(ImportError, match=r"pip install \.\[coqui\]") as info:
        CoquiTts(tmp_path)
    assert EXTRA_HINT in str(info.value)


# --- with coqui-tts: here or in the coqui venv -------------------------------------------------


def _tiny_vits(folder: Path, seed: int = 0) -> Path:
    """config.json + model.pth of a randomly initialized VITS (about 260k parameters) that reads
    lowercase tone-numbered pinyin and speaks at 16 kHz."""
    import torch
    from TTS.config.shared_configs import BaseAudioConfig
    from TTS.tts.configs.shared_configs import CharactersConfig
    from TTS.tts.configs.vits_config import VitsArgs, VitsConfig
    from TTS.tts.models.vits import Vits

    chars = CharactersConfig(
        characters_class="TTS.tts.utils.text.characters.Graphemes", pad="_", eos="~", bos="^",
        blank="#", characters="abcdefghijklmnopqrstuvwxyz12345", punctuations=" ,.?!",
        is_unique=True, is_sorted=True,
    )  # fmt: skip
    args = VitsArgs(
        hidden_channels=16, hidden_channels_ffn_text_encoder=32, num_layers_text_encoder=1,
        num_layers_flow=1, num_layers_posterior_encoder=1, resblock_type_decoder="2",
        resblock_kernel_sizes_decoder=[3], resblock_dilation_sizes_decoder=[[1, 3]],
        upsample_rates_decoder=[8, 8, 4], upsample_initial_channel_decoder=32,
        upsample_kernel_sizes_decoder=[16, 16, 8], use_sdp=False, init_discriminator=False,
    )  # fmt: skip
    config = VitsConfig(
        model_args=args, characters=chars, use_phonemes=False, text_cleaner="basic_cleaners",
        add_blank=False,
        # no silence trimming: the random model's output level says nothing about silence
        audio=BaseAudioConfig(sample_rate=16000, hop_length=256, win_length=1024,
                              fft_size=1024, num_mels=80, do_trim_silence=False),
    )  # fmt: skip
    torch.manual_seed(seed)
    model = Vits(config)
    folder.mkdir(parents=True, exist_ok=True)
    config.save_json(str(folder / "config.json"))
    torch.save({"model": model.state_dict()}, folder / "model.pth")
    return folder


@coqui_test
async def test_loads_the_tiny_vits_it_is_given(tmp_path: Path) -> None:
    import torch

    folder = _tiny_vits(tmp_path / "tiny-vits")
    tts = CoquiTts(folder, frontend="pinyin")
    assert (tts.name, tts.voice, tts.model_rate, tts.sample_rate) == (
        "coqui", "tiny-vits", 16000, SAMPLE_RATE,
    )  # fmt: skip
    saved = torch.load(folder / "model.pth")["model"]
    loaded = tts._synth.tts_model.state_dict()
    assert saved.keys() == loaded.keys()
    assert all(torch.equal(saved[key], loaded[key]) for key in saved)  # the weights, not a re-init


@coqui_test
async def test_synthesizes_8khz_20ms_pcm16_frames_with_energy(tmp_path: Path) -> None:
    tts = CoquiTts(_tiny_vits(tmp_path / "tiny-vits"), frontend="pinyin")
    pcm = await tts.synthesize("您好，每月300元")
    assert pcm and len(pcm) % 2 == 0 and pcm_seconds(pcm, tts.sample_rate) > 0.1
    assert audio.rms(pcm) > 1e-3 and audio.pcm16_to_float(pcm).std() > 1e-3  # not a constant
    assert audio.rms(pcm[-int(0.1 * tts.sample_rate) * 2 :]) > 1e-3  # no trailing silence pad

    frames = [f async for f in tts.synthesize_stream("您好，每月300元。现在方便吗？")]
    assert len(frames) >= 10
    assert {len(f) for f in frames} == {tts.sample_rate * 20 // 1000 * 2}  # 20 ms of PCM16
    assert audio.rms(b"".join(frames)) > 1e-3
    assert sum(audio.rms(f) > 1e-3 for f in frames) >= len(frames) - 2  # 2 clause tails
    assert await tts.synthesize("。") == b""  # nothing to say: no audio, no model call


@coqui_test
async def test_duration_grows_with_the_text(tmp_path: Path) -> None:
    tts = CoquiTts(_tiny_vits(tmp_path / "tiny-vits"), frontend="pinyin")
    lines = ["您好", "您好，每月三百元", "您好，我是小王，给您介绍一下我们的课程和价格，现在方便吗"]
    durations = [pcm_seconds(await tts.synthesize(line)) for line in lines]
    assert durations == sorted(set(durations)), durations  # strictly increasing
    assert durations[-1] > 1.5 * durations[0], durations


@coqui_test
async def test_pinyin_frontend_gives_tone_numbered_pinyin(tmp_path: Path) -> None:
    folder = _tiny_vits(tmp_path / "tiny-vits")
    pinyin = CoquiTts(folder, frontend="pinyin")
    assert pinyin.to_model_text("您好，每月300元") == "nin2 hao3, mei3 yue4 san1 bai3 yuan2"
    syllables = re.findall(r"[^\s,]+", pinyin.to_model_text("不要，一起去吧"))
    assert syllables and all(re.fullmatch(r"[a-z]+[1-5]", s) for s in syllables), syllables
    assert "fe-pinyin" in pinyin.version
    text = CoquiTts(folder)  # the default frontend hands the model normalized text
    assert text.to_model_text("您好，每月300元") == "您好，每月三百元"
    assert "fe-text" in text.version


@coqui_test
async def test_version_names_the_model_digest(tmp_path: Path) -> None:
    folder = _tiny_vits(tmp_path / "tiny-vits")
    version = CoquiTts(folder).version
    match = re.fullmatch(r"coqui-[\w.]+;m([0-9a-f]{12});fe-text;spk--;lang--;r8000", version)
    assert match, version
    assert CoquiTts(folder).version == version  # same files, same version

    checkpoint = folder / "model.pth"
    before = checkpoint.stat().st_mtime_ns
    # a retrained checkpoint replaces the file: other weights, the same size (the digest is
    # name + size + mtime, so the replacement's mtime is set a second later, not left to chance)
    shutil.copyfile(_tiny_vits(tmp_path / "retrained", seed=1) / "model.pth", checkpoint)
    os.utime(checkpoint, ns=(before + 10**9, before + 10**9))
    changed = CoquiTts(folder).version
    other = re.fullmatch(r"coqui-[\w.]+;m([0-9a-f]{12});fe-text;spk--;lang--;r8000", changed)
    assert other and other.group(1) != match.group(1), (version, changed)
