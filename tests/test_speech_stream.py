"""Recognizer streams without a model: EventStream mechanics, StreamAdapter over FakeAsr on the
stream clock, FakeStreamAsr, FallbackAdapter, LanguageRouter. Times are stream seconds."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import pytest

from speech import audio
from speech.asr.adapter import StreamAdapter
from speech.asr.base import (
    AsrEvent,
    AsrStreamError,
    Final,
    Partial,
    RecognizeStream,
    SpeechEnded,
    SpeechStarted,
    Transcript,
)
from speech.asr.fake import FakeAsr, FakeStreamAsr, utterance
from speech.asr.fallback import FallbackAdapter
from speech.asr.routing import LanguageRouter
from speech.audio import frame_bytes_for
from speech.stream import StreamResampler
from speech.vad import Endpointer

FRAME = 320
VOICED = b"\x01" * FRAME  # the scripted classifier calls a frame voiced when byte 0 is non-zero
QUIET = b"\x00" * FRAME


def scripted_endpointer(**kwargs: Any) -> Endpointer:
    kwargs.setdefault("min_speech_ms", 100)
    kwargs.setdefault("end_silence_ms", 600)
    return Endpointer(classifier=lambda f: f[0] != 0, energy_floor_dbfs=None, **kwargs)


def push_all(stream: RecognizeStream, pcm: bytes) -> None:
    size = stream.frame_bytes
    for i in range(0, len(pcm) - len(pcm) % size, size):
        stream.push(pcm[i : i + size])


async def collect(stream: RecognizeStream, within_s: float = 5.0) -> list[AsrEvent]:
    async with asyncio.timeout(within_s):
        return [ev async for ev in stream]


def kinds(events: list[AsrEvent]) -> list[str]:
    return [type(e).__name__ for e in events]


# --- frames, rates, resampling ---------------------------------------------------------------


async def test_wrong_frame_size_and_rate_are_clear_errors() -> None:
    stream = StreamAdapter(FakeAsr()).stream()
    with pytest.raises(ValueError, match=r"320 bytes .* 8000 Hz\), got 640 .*16000 Hz audio"):
        stream.push(b"\x00" * 640)  # 16 kHz frames pushed into an 8 kHz stream
    with pytest.raises(ValueError, match="320 bytes"):
        stream.push(b"\x00" * 100)
    with pytest.raises(ValueError, match="11025 Hz has no whole-sample"):
        StreamAdapter(FakeAsr()).stream(sample_rate=11025)
    with pytest.raises(ValueError):
        frame_bytes_for(0)
    stream.end_input()
    with pytest.raises(RuntimeError, match="after end_input"):
        stream.push(QUIET)
    assert await collect(stream) == []


def test_stream_resampler_matches_batch_resampling() -> None:
    rate = 16000
    t = np.arange(rate) / rate
    x = (0.4 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    batch = audio.resample_float(x, rate, 8000)
    rs = StreamResampler(rate, 8000)
    chunks = [rs.process(x[i : i + 320]) for i in range(0, x.size, 320)]
    streamed = np.concatenate(chunks)
    n = streamed.size
    assert batch.size - n < 40  # ~2 ms of filter delay still inside the resampler
    assert np.max(np.abs(streamed[: n - 1] - batch[: n - 1])) < 1e-4


async def test_16k_input_is_resampled_inside() -> None:
    asr = FakeAsr(["多少钱"])
    by_level = lambda: Endpointer(classifier=lambda f: audio.rms(f) > 0.05)  # noqa: E731
    stream = StreamAdapter(asr, by_level).stream(sample_rate=16000)
    assert stream.frame_bytes == 640
    tone = audio.float_to_pcm16(0.3 * np.sin(2 * np.pi * 300 * np.arange(16000) / 16000))
    push_all(stream, audio.silence(0.4, 16000) + tone + audio.silence(1.0, 16000))
    stream.end_input()
    events = await collect(stream)
    assert kinds(events)[0] == "SpeechStarted" and isinstance(events[-1], Final)
    assert events[-1].text == "多少钱"
    assert stream.pushed_s == pytest.approx(2.4, abs=0.03)


# --- StreamAdapter on the stream clock -------------------------------------------------------


async def test_adapter_events_times_and_prompt() -> None:
    asr = FakeAsr(["我现在很忙"])
    adapter = StreamAdapter(asr, scripted_endpointer, partial_interval_s=None)
    stream = adapter.stream(prompt="销售", language="zh")
    push_all(stream, QUIET * 50 + VOICED * 100 + QUIET * 40)  # speech 1.0 s .. 3.0 s
    stream.end_input()
    events = await collect(stream)
    assert kinds(events) == ["SpeechStarted", "SpeechEnded", "Final"]
    start, end, final = events
    assert isinstance(start, SpeechStarted) and start.t == pytest.approx(1.0)
    assert isinstance(end, SpeechEnded) and end.t == pytest.approx(3.0)
    assert isinstance(final, Final)
    assert (final.text, final.start_t, final.end_t, final.capped) == ("我现在很忙", 1.0, 3.0, False)
    assert asr.calls == [(pytest.approx(2.4), "销售")] and asr.languages == ["zh"]


async def test_silence_gives_no_events() -> None:
    stream = StreamAdapter(FakeAsr(default="幻觉"), scripted_endpointer).stream()
    push_all(stream, QUIET * 500)
    stream.end_input()
    assert await collect(stream) == []


async def test_partials_while_talking_then_final() -> None:
    asr = FakeAsr(["可以，介绍一下"])
    adapter = StreamAdapter(asr, scripted_endpointer, partial_interval_s=0.5)
    stream = adapter.stream()
    got: list[AsrEvent] = []

    async def read() -> None:
        async for ev in stream:
            got.append(ev)

    reader = asyncio.create_task(read())
    for _ in range(150):  # 3 s of speech, pushed at an accelerated "real time"
        stream.push(VOICED)
        await asyncio.sleep(0)
    push_all(stream, QUIET * 40)
    stream.end_input()
    await asyncio.wait_for(reader, 5)
    partials = [e for e in got if isinstance(e, Partial)]
    assert len(partials) == 1  # identical drafts are not repeated
    assert partials[0].text == "可以，介绍一下" and 0.3 < partials[0].t < 3.0
    assert kinds(got)[0] == "SpeechStarted" and kinds(got)[-2:] == ["SpeechEnded", "Final"]
    assert asr.drafts >= 5 and len(asr.calls) == 1  # drafts never consume the script


class SlowAsr(FakeAsr):
    """Decodes take `delay_s` of wall time in a worker thread; records what ran when."""

    def __init__(self, delay_s: float) -> None:
        super().__init__(default="好的")
        self.delay = delay_s
        self.log: list[tuple[str, float, float]] = []

    async def transcribe(self, pcm: bytes, sample_rate: int = 8000, **kw: Any) -> Transcript:
        t0 = time.perf_counter()
        await asyncio.to_thread(time.sleep, self.delay)
        self.log.append(("draft" if kw.get("draft") else "final", t0, time.perf_counter()))
        return await super().transcribe(pcm, sample_rate, **kw)


async def test_partials_are_skipped_while_the_engine_is_busy() -> None:
    asr = SlowAsr(0.3)
    adapter = StreamAdapter(asr, scripted_endpointer, partial_interval_s=0.1, speculate_ms=None)
    other, stream = adapter.stream(), adapter.stream()
    push_all(other, VOICED * 20 + QUIET * 30)  # another call's final now holds the engine
    other.end_input()
    t0 = time.perf_counter()
    for _ in range(50):  # this call talks meanwhile: no partial may queue before that final
        stream.push(VOICED)
        await asyncio.sleep(0.002)
    assert time.perf_counter() - t0 < 0.25, "push blocked"
    assert adapter.stats.partials_skipped_busy > 0
    push_all(stream, QUIET * 30)
    stream.end_input()
    await collect(other)
    events = await collect(stream)
    for kind, start, _ in asr.log:  # no draft ever started while another decode was running
        if kind == "draft":
            assert not any(s < start < e for _, s, e in asr.log), asr.log
    final = next(e for e in events if isinstance(e, Final))
    assert final.text == "好的"
    assert adapter.inflight == 0


async def test_speculative_decode_makes_the_final_ready_at_the_endpoint() -> None:
    asr = SlowAsr(0.15)
    adapter = StreamAdapter(
        asr,
        lambda: scripted_endpointer(end_silence_ms=700),
        partial_interval_s=None,
        speculate_ms=300,
    )
    stream = adapter.stream()
    push_all(stream, VOICED * 50 + QUIET * 15)  # 300 ms of silence: speculation starts
    await asyncio.sleep(0.3)  # real time passes while the callee stays silent
    t_endpoint = time.perf_counter()
    push_all(stream, QUIET * 20)  # 700 ms reached: endpoint
    stream.end_input()
    events = await collect(stream)
    t_final = time.perf_counter()
    assert kinds(events) == ["SpeechStarted", "SpeechEnded", "Final"]
    assert adapter.stats.speculative_used == 1
    assert len(asr.log) == 1  # the speculative decode was the final
    assert t_final - t_endpoint < 0.1


async def test_speech_resuming_discards_the_speculation() -> None:
    asr = FakeAsr(["第一次", "完整的话"])
    adapter = StreamAdapter(asr, scripted_endpointer, partial_interval_s=None, speculate_ms=300)
    stream = adapter.stream()
    push_all(stream, VOICED * 30 + QUIET * 20)  # a 400 ms pause: speculation at 300 ms
    await asyncio.sleep(0.01)
    push_all(stream, VOICED * 30 + QUIET * 40)
    stream.end_input()
    events = await collect(stream)
    finals = [e for e in events if isinstance(e, Final)]
    assert [f.text for f in finals] == ["完整的话"]
    assert adapter.stats.speculative == 2 and adapter.stats.speculative_used == 1


def _early(asr: FakeAsr, **kw: Any) -> StreamAdapter:
    return StreamAdapter(
        asr,
        lambda: scripted_endpointer(end_silence_ms=700),
        partial_interval_s=None,
        speculate_ms=120,
        early_end_ms=300,
        **kw,
    )


class Reader:
    """Reads a stream in the background, so a test can look at the events emitted so far."""

    def __init__(self, stream: RecognizeStream) -> None:
        self.events: list[AsrEvent] = []
        self._task = asyncio.create_task(self._read(stream))

    async def _read(self, stream: RecognizeStream) -> None:
        async for ev in stream:
            self.events.append(ev)

    async def after(self, wait_s: float = 0.05) -> list[str]:
        await asyncio.sleep(wait_s)
        return kinds(self.events)

    async def done(self) -> list[AsrEvent]:
        async with asyncio.timeout(5):
            await self._task
        return self.events


async def test_a_complete_turn_ends_at_the_early_endpoint() -> None:
    asr = FakeAsr(["多少钱？"])
    adapter = _early(asr)
    stream = adapter.stream()
    reader = Reader(stream)
    push_all(stream, VOICED * 50 + QUIET * 7)  # 140 ms of silence: the speculation starts
    await asyncio.sleep(0.02)  # ...and finishes
    push_all(stream, QUIET * 8)  # 300 ms: the transcript reads complete, so the turn ends
    # no end_input, no 700 ms of silence needed
    assert await reader.after() == ["SpeechStarted", "SpeechEnded", "Final"]
    events = reader.events
    end, final = events[1], events[2]
    assert isinstance(end, SpeechEnded) and end.t == pytest.approx(1.0)
    assert isinstance(final, Final) and final.text == "多少钱？"
    assert final.end_t == pytest.approx(1.0)
    assert adapter.stats.early_endpoints == 1 and adapter.stats.speculative_used == 1
    assert len(asr.calls) == 1  # the speculative decode was the final


async def test_an_unfinished_sentence_waits_for_the_full_endpoint() -> None:
    asr = FakeAsr(["我想问一下那个", "我想问一下那个价格是多少"])
    adapter = _early(asr)
    stream = adapter.stream()
    reader = Reader(stream)
    push_all(stream, VOICED * 50 + QUIET * 7)
    await asyncio.sleep(0.02)
    push_all(stream, QUIET * 13)  # 400 ms of silence: still listening (the text trails off)
    assert await reader.after() == ["SpeechStarted"]
    push_all(stream, VOICED * 40 + QUIET * 36)  # goes on, then 720 ms of silence
    stream.end_input()
    events = await reader.done()
    finals = [e for e in events if isinstance(e, Final)]
    assert [f.text for f in finals] == ["我想问一下那个价格是多少"]  # one turn, not two
    assert finals[0].end_t == pytest.approx(2.2)
    assert adapter.stats.early_endpoints == 0 and adapter.stats.speculative == 2


async def test_a_late_speculation_ends_the_turn_when_it_lands() -> None:
    asr = SlowAsr(0.15)  # "好的": complete, but not decoded by 300 ms of silence
    adapter = _early(asr)
    stream = adapter.stream()
    reader = Reader(stream)
    push_all(stream, VOICED * 50 + QUIET * 16)  # 320 ms: decode still running
    assert await reader.after(0.01) == ["SpeechStarted"]
    await asyncio.sleep(0.2)
    push_all(stream, QUIET * 2)  # the next frame after the decode landed ends the turn
    assert await reader.after() == ["SpeechStarted", "SpeechEnded", "Final"]
    assert adapter.stats.early_endpoints == 1


def test_early_end_needs_an_earlier_speculation() -> None:
    with pytest.raises(ValueError, match="speculate_ms <= early_end_ms"):
        StreamAdapter(FakeAsr(), speculate_ms=400, early_end_ms=300)
    with pytest.raises(ValueError, match="needs speculation"):
        StreamAdapter(FakeAsr(), speculate_ms=None, early_end_ms=300)


async def test_a_60_second_monologue_gives_capped_finals() -> None:
    asr = FakeAsr(default="说个不停")
    adapter = StreamAdapter(
        asr,
        lambda: scripted_endpointer(max_utterance_s=15.0, pre_roll_ms=0),
        partial_interval_s=None,
    )
    stream = adapter.stream()
    push_all(stream, VOICED * 3100 + QUIET * 40)  # 62 s
    stream.end_input()
    events = await collect(stream)
    finals = [e for e in events if isinstance(e, Final)]
    assert [f.capped for f in finals] == [True, True, True, True, False]  # in order
    assert finals[0].end_t == pytest.approx(15.0)
    assert all(f.end_t - f.start_t <= 15.0 + 1e-6 for f in finals)
    assert kinds(events).count("SpeechStarted") == 5


async def test_flush_ends_the_utterance_now() -> None:
    stream = StreamAdapter(FakeAsr(["喂"]), scripted_endpointer).stream()
    push_all(stream, VOICED * 20)
    stream.flush()
    push_all(stream, QUIET * 5)
    stream.end_input()
    events = await collect(stream)
    assert kinds(events) == ["SpeechStarted", "SpeechEnded", "Final"]


async def test_aclose_stops_iteration_and_drops_pending_work() -> None:
    asr = SlowAsr(0.3)
    adapter = StreamAdapter(asr, scripted_endpointer, partial_interval_s=None, speculate_ms=None)
    stream = adapter.stream()
    push_all(stream, VOICED * 20 + QUIET * 40)
    await stream.aclose()
    events = await collect(stream)
    assert kinds(events) == ["SpeechStarted", "SpeechEnded"]  # the final was dropped
    await adapter.aclose()  # waits for the decode still running in its thread
    assert adapter.inflight == 0


class BrokenAsr(FakeAsr):
    async def transcribe(self, pcm: bytes, sample_rate: int = 8000, **kw: Any) -> Transcript:
        raise RuntimeError("model crashed")


async def test_engine_failure_surfaces_as_stream_error() -> None:
    stream = StreamAdapter(BrokenAsr(), scripted_endpointer, partial_interval_s=None).stream()
    push_all(stream, VOICED * 20 + QUIET * 40)
    stream.end_input()
    with pytest.raises(AsrStreamError):
        await collect(stream)


class Silero:
    """A confirm VAD double: says 'speech' only for clips that contain a 0x02 frame."""

    def __init__(self) -> None:
        self.calls = 0

    async def confirm(self, pcm: bytes, sample_rate: int = 8000) -> bool:
        self.calls += 1
        await asyncio.sleep(0)
        return b"\x02" * FRAME in pcm


async def test_confirm_vad_rejects_noise_and_delays_only_the_onset() -> None:
    confirm = Silero()
    asr = FakeAsr(default="幻觉")
    adapter = StreamAdapter(asr, scripted_endpointer, confirm=confirm, partial_interval_s=None)
    stream = adapter.stream()
    push_all(stream, VOICED * 40 + QUIET * 40)  # webrtcvad says speech, the confirm VAD says no
    speech = b"\x02" * FRAME
    push_all(stream, speech * 40 + QUIET * 40)
    stream.end_input()
    events = await collect(stream)
    assert kinds(events) == ["SpeechStarted", "SpeechEnded", "Final"]
    assert events[0].t == pytest.approx(1.6)  # type: ignore[union-attr]
    assert adapter.stats.rejected_noise == 1
    assert len(asr.calls) == 1  # the noise was never decoded


async def test_a_doubted_onset_is_confirmed_while_the_callee_talks() -> None:
    confirm = Silero()
    adapter = StreamAdapter(FakeAsr(["你是谁"]), scripted_endpointer, confirm=confirm)
    stream = adapter.stream()
    events = aiter(stream)
    speech = b"\x02" * FRAME
    for frame in [VOICED] * 15 + [speech] * 30:  # a soft start the confirm VAD doubts
        stream.push(frame)
        await asyncio.sleep(0)
    started = await asyncio.wait_for(anext(events), 1)  # barge-in comes while still talking
    assert isinstance(started, SpeechStarted) and started.t == pytest.approx(0.0)
    assert confirm.calls >= 2
    push_all(stream, QUIET * 40)
    stream.end_input()
    rest = await collect(stream)
    assert kinds(rest)[-2:] == ["SpeechEnded", "Final"]
    assert rest[-1].text == "你是谁"  # type: ignore[union-attr]


# --- FakeStreamAsr ------------------------------------------------------------------------------


async def test_fake_stream_replays_on_the_stream_clock() -> None:
    line = utterance("多少钱", 0.5, 1.5, partials=[(1.0, "多少")], endpoint_s=0.6, decode_s=0.2)
    engine = FakeStreamAsr([line])
    stream = engine.stream(prompt="p")
    push_all(stream, QUIET * 100)  # 2.0 s: SpeechEnded at 2.1 not yet
    events = aiter(stream)
    seen = [await anext(events), await anext(events)]
    assert kinds(seen) == ["SpeechStarted", "Partial"]
    with pytest.raises(TimeoutError):  # nothing more until 2.1 s of audio
        await asyncio.wait_for(anext(events), 0.05)
    push_all(stream, QUIET * 20)
    stream.end_input()
    rest = await collect(stream)
    assert kinds(rest) == ["SpeechEnded", "Final"]
    final = rest[-1]
    assert isinstance(final, Final) and final.end_t == 1.5 and final.decode_ms == pytest.approx(200)
    assert engine.streams[0].prompt == "p"


# --- FallbackAdapter ----------------------------------------------------------------------------


async def test_fallback_replays_audio_to_the_backup_on_error() -> None:
    primary = FakeStreamAsr([utterance("first", 0.2, 0.6, endpoint_s=0.2)], fail_at_s=1.5)
    backup = FakeStreamAsr([utterance("second", 0.2, 0.8, endpoint_s=0.2)])
    fb = FallbackAdapter([primary, backup])
    stream = fb.stream()
    push_all(stream, QUIET * 60)  # 0 .. 1.2 s on the primary
    await asyncio.sleep(0)
    push_all(stream, QUIET * 40)  # the primary fails at 1.5 s
    await asyncio.sleep(0)
    stream.end_input()
    events = await collect(stream)
    finals = [e for e in events if isinstance(e, Final)]
    assert [f.text for f in finals] == ["first", "second"]
    # the backup heard the audio since the last final (from 0.6 s), on this stream's clock
    assert finals[1].start_t == pytest.approx(0.8) and finals[1].end_t == pytest.approx(1.4)
    assert stream.engine_index == 1 and fb.failovers == 1
    assert fb.stream().engine_index == 1  # the primary cools down


async def test_fallback_times_out_a_stuck_primary() -> None:
    primary = FakeStreamAsr([utterance("never", 0.2, 0.6)], hang=True)
    backup = FakeStreamAsr([utterance("好的", 0.2, 0.6, endpoint_s=0.1)])
    fb = FallbackAdapter([primary, backup], final_timeout_s=0.05)
    stream = fb.stream()
    push_all(stream, QUIET * 50)
    events: list[AsrEvent] = []
    async with asyncio.timeout(2):
        async for ev in stream:
            events.append(ev)
            if isinstance(ev, Final):
                break
    assert kinds(events) == ["SpeechStarted", "SpeechEnded", "Final"]  # no duplicates
    assert events[-1].text == "好的"  # type: ignore[union-attr]
    await stream.aclose()


async def test_fallback_with_every_engine_failing_raises() -> None:
    fb = FallbackAdapter([FakeStreamAsr(fail_at_s=0.1), FakeStreamAsr(fail_at_s=0.1)])
    stream = fb.stream()
    push_all(stream, QUIET * 20)
    await asyncio.sleep(0)
    push_all(stream, QUIET * 20)
    with pytest.raises(AsrStreamError):
        await collect(stream)


# --- language routing ---------------------------------------------------------------------------


async def test_language_router_picks_the_engine_per_lead() -> None:
    mandarin, cantonese = FakeStreamAsr(), FakeStreamAsr()
    router = LanguageRouter(mandarin, {"yue": cantonese})
    router.stream(language="yue-HK")
    router.stream(language="zh")
    router.stream()
    assert len(cantonese.streams) == 1 and len(mandarin.streams) == 2
    assert cantonese.streams[0].language == "yue-HK"
    await router.aclose()
    assert mandarin.closed and cantonese.closed
