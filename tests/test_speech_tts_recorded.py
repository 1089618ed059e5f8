"""RecordedTts: fixed lines, spliced slots with matched loudness, fallback, streaming."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from core.audio import SAMPLE_RATE, pcm_seconds
from speech import audio
from speech.tts.fake import FakeTts
from speech.tts.recorded import ManifestError, RecordedTts, load_manifest, speech_rms

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")

GREETING = "您好，我是云启科技的智能助理小安。"
HELLO_TAIL = "您好，我是云启科技的小安。"
PRICE_HEAD, PRICE_TAIL = "标准版每月", "元，现在签约还有八折优惠。"
TALENT_RATE = 16000
TALENT_DBFS = -26.0


def _talk(seconds: float, freq: float, rate: int = TALENT_RATE) -> bytes:
    """A 'recording': a vowel-like tone with 0.1 s of silence each side, at -26 dBFS RMS."""
    t = np.arange(int(seconds * rate)) / rate
    tone = np.sin(2 * math.pi * freq * t) * (1 + 0.3 * np.sin(2 * math.pi * 3 * t))
    pcm = audio.float_to_pcm16(0.5 * tone)
    pcm = audio.scale_to_rms(pcm, TALENT_DBFS)
    pad = audio.silence(0.1, rate)
    return pad + pcm + pad


def _folder(tmp_path: Path, *, manifest: str = "yaml") -> Path:
    folder = tmp_path / "talent"
    folder.mkdir()
    audio.write_wav(folder / "greeting.wav", _talk(2.0, 220), TALENT_RATE)
    audio.write_wav(folder / "hello_tail.wav", _talk(1.5, 260), TALENT_RATE)
    audio.write_wav(folder / "price_head.wav", _talk(0.8, 240), TALENT_RATE)
    audio.write_wav(folder / "price_tail.wav", _talk(1.2, 250), TALENT_RATE)
    lines = {
        GREETING: "greeting.wav",
        "{name}" + HELLO_TAIL: ["hello_tail.wav"],
        PRICE_HEAD + "{price}" + PRICE_TAIL: ["price_head.wav", "price_tail.wav"],
        "这一句的录音丢了。": "lost.wav",
    }
    data = {"voice": "talent-li", "lines": lines}
    if manifest == "json":
        (folder / "manifest.json").write_text(json.dumps(data, ensure_ascii=False), "utf-8")
    else:
        import yaml

        (folder / "manifest.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    return folder


def _dbfs(level: float) -> float:
    return 20 * math.log10(level)


@pytest.mark.asyncio
async def test_fixed_line_plays_the_recording_at_8khz(tmp_path: Path) -> None:
    backup = FakeTts()
    tts = RecordedTts(_folder(tmp_path), backup=backup)
    pcm = await tts.synthesize(GREETING)
    assert pcm_seconds(pcm) == pytest.approx(2.2, abs=0.01)
    assert _dbfs(speech_rms(pcm)) == pytest.approx(TALENT_DBFS, abs=1.0)
    assert backup.calls == []
    assert tts.voice == "talent-li" and tts.has_recording(" " + GREETING)


@pytest.mark.asyncio
async def test_template_splices_recording_and_loudness_matched_slot(tmp_path: Path) -> None:
    backup = FakeTts()  # renders at ~-13 dBFS: 13 dB louder than the talent
    assert _dbfs(speech_rms(backup.render("张先生"))) > TALENT_DBFS + 10
    tts = RecordedTts(_folder(tmp_path), backup=backup)
    pcm = await tts.synthesize("张先生" + HELLO_TAIL)
    assert backup.calls == ["张先生"]
    slot = pcm[: int(0.6 * SAMPLE_RATE) * 2]  # three fake characters, 0.2 s each
    tail = pcm[len(slot) :]
    assert _dbfs(speech_rms(slot)) == pytest.approx(TALENT_DBFS, abs=1.0)
    assert _dbfs(speech_rms(tail)) == pytest.approx(TALENT_DBFS, abs=1.0)
    # the tail's leading 0.1 s silence is trimmed to 40 ms at the joint, its end kept
    assert pcm_seconds(tail) == pytest.approx(1.5 + 0.04 + 0.1, abs=0.03)
    # no click at the joint: 5 ms fades
    assert abs(np.frombuffer(pcm, "<i2")[len(slot) // 2 - 1]) < 200


@pytest.mark.asyncio
async def test_slot_values_are_read_aloud_before_tts(tmp_path: Path) -> None:
    backup = FakeTts()
    tts = RecordedTts(_folder(tmp_path), backup=backup)
    pcm = await tts.synthesize(PRICE_HEAD + "300" + PRICE_TAIL)
    assert backup.calls == ["三百"]
    expected = 0.8 + 1.2 + 0.4 + 2 * 0.04 + 0.1 + 0.1  # head/tail keep their outer silence
    assert pcm_seconds(pcm) == pytest.approx(expected, abs=0.05)


@pytest.mark.asyncio
async def test_missing_recordings_fall_back_to_tts_without_pii_in_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backup = FakeTts()
    tts = RecordedTts(_folder(tmp_path), backup=backup)
    caplog.set_level(logging.WARNING, logger="speech.tts.recorded")
    unknown = "王先生，您的电话13800138000已登记。"
    lost = await tts.synthesize("这一句的录音丢了。")
    other = await tts.synthesize(unknown)
    await tts.synthesize(unknown)  # warned once per line
    spoken = "王先生，您的电话幺三八，零零幺三，八零零零已登记。"
    assert backup.calls == ["这一句的录音丢了。", spoken, spoken]
    assert [p.name for p in tts.missing()] == ["lost.wav"]
    for pcm in (lost, other):  # fallback at the talent's level, not the backup's
        assert _dbfs(speech_rms(pcm)) == pytest.approx(TALENT_DBFS, abs=1.0)
    fallbacks = [r for r in caplog.records if "backup TTS" in r.getMessage()]
    assert len(fallbacks) == 2  # the lost.wav line, and the unknown line once
    text_blob = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "王先生" not in text_blob and "13800138000" not in text_blob
    assert await tts.uncovered([GREETING, unknown]) == [fallbacks[1].__dict__["line_id"]]


@pytest.mark.asyncio
async def test_stream_gives_the_same_audio_in_20ms_frames(tmp_path: Path) -> None:
    tts = RecordedTts(_folder(tmp_path, manifest="json"), backup=FakeTts())
    for text in (GREETING, "李女士" + HELLO_TAIL):
        whole = await tts.synthesize(text)
        frames = [f async for f in tts.synthesize_stream(text)]
        assert {len(f) for f in frames} == {320}
        joined = b"".join(frames)
        assert joined[: len(whole)] == whole and not joined[len(whole) :].strip(b"\x00")


@pytest.mark.asyncio
async def test_closing_the_stream_cancels_slot_rendering(tmp_path: Path) -> None:
    backup = FakeTts(delay_s=5.0)
    tts = RecordedTts(_folder(tmp_path), backup=backup)
    stream = tts.synthesize_stream(PRICE_HEAD + "300" + PRICE_TAIL)
    first = await asyncio.wait_for(anext(stream), 1.0)  # the recorded head plays at once
    assert len(first) == 320
    await asyncio.wait_for(stream.aclose(), 1.0)  # barge-in: no wait for the slot


def test_version_follows_the_recordings(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    before = RecordedTts(folder, backup=FakeTts()).version
    audio.write_wav(folder / "greeting.wav", _talk(2.5, 220), TALENT_RATE)
    after = RecordedTts(folder, backup=FakeTts()).version
    assert before != after and "backup=fake" in after
    assert RecordedTts(folder, backup=FakeTts(voice="x")).version != after


@pytest.mark.parametrize(
    "lines",
    [
        {"{a}你好{b}": ["x.wav", "y.wav"]},  # one fixed part, two files
        {"你好": ["x.wav", "y.wav"]},
        {"{a}你好{a}": ["x.wav"]},
        {"你好": 3},
    ],
)
def test_manifest_errors(tmp_path: Path, lines: dict[str, object]) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"lines": lines}), "utf-8")
    with pytest.raises(ManifestError):
        load_manifest(tmp_path)
    with pytest.raises(ManifestError):
        load_manifest(tmp_path / "nowhere")


@needs_espeak
@pytest.mark.asyncio
async def test_espeak_rendered_talent_and_espeak_backup(tmp_path: Path) -> None:
    """The realistic shape: recordings at 22.05 kHz (espeak, slow and quiet), espeak backup."""
    from speech.tts.espeak import EspeakTts

    talent = EspeakTts(speed=120)
    folder = tmp_path / "espeak-talent"
    folder.mkdir()
    native = await talent.synthesize_native(HELLO_TAIL)
    quiet = audio.scale_to_rms(native.pcm, -28.0)
    audio.write_wav(folder / "tail.wav", quiet, native.sample_rate)
    (folder / "manifest.yaml").write_text(f'"{{name}}{HELLO_TAIL}": [tail.wav]\n', "utf-8")
    with pytest.raises(ManifestError):
        load_manifest(folder)  # no 'lines' mapping
    (folder / "manifest.yaml").write_text(
        f'lines:\n  "{{name}}{HELLO_TAIL}": [tail.wav]\n', "utf-8"
    )
    tts = RecordedTts(folder, backup=EspeakTts(speed=170))
    pcm = await tts.synthesize("张先生" + HELLO_TAIL)
    tail_8k = audio.resample_pcm16(quiet, native.sample_rate, SAMPLE_RATE)
    assert pcm_seconds(pcm) > pcm_seconds(tail_8k) + 0.3
    assert _dbfs(speech_rms(pcm)) == pytest.approx(_dbfs(speech_rms(tail_8k)), abs=1.5)
