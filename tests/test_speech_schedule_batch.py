"""DecodeScheduler batching: finals of many calls arriving together go to the engine as one
batch, queued ones leave together when the engine frees, drafts never batch, batch_ms=0 is
the one-at-a-time path. And the real Whisper's batch path: a batch of one is the single decode,
and same-length utterances batched decode exactly as alone."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

from speech.asr.base import Transcript
from speech.asr.schedule import DecodeScheduler, Priority


class BatchAsr:
    """Each engine call takes `delay_s` and records what it carried; b"boom" fails."""

    name = "batch"
    max_workers = 1

    def __init__(self, delay_s: float = 0.02) -> None:
        self.delay_s = delay_s
        self.calls: list[list[str]] = []

    async def transcribe(self, pcm: bytes, sample_rate: int = 8000, **kw: Any) -> Transcript:
        return (await self.transcribe_batch([(pcm, kw)]))[0]

    async def transcribe_batch(self, items: list[tuple[bytes, dict[str, Any]]]) -> list[Transcript]:
        self.calls.append([pcm.decode() for pcm, _ in items])
        await asyncio.sleep(self.delay_s)
        if any(pcm == b"boom" for pcm, _ in items):
            raise RuntimeError("decoder failed")
        return [Transcript(pcm.decode() + kw.get("prompt", ""), 0.9, "zh", 0.1, 0.0)
                for pcm, kw in items]  # fmt: skip

    async def aclose(self) -> None:
        pass


async def test_finals_arriving_together_decode_as_one_batch() -> None:
    asr = BatchAsr()
    sched = DecodeScheduler(asr, 1, batch_ms=20, batch_max=8)
    jobs = [sched.submit(f"c{i}".encode(), Priority.FINAL, prompt=f"/{i}") for i in range(3)]
    results = await asyncio.gather(*(j.future for j in jobs))
    assert asr.calls == [["c0", "c1", "c2"]]
    assert [r.text for r in results] == ["c0/0", "c1/1", "c2/2"]  # each its own result
    assert sched.stats.batches == 1 and sched.idle


async def test_queued_finals_leave_together_and_drafts_never_batch() -> None:
    asr = BatchAsr()
    sched = DecodeScheduler(asr, 1, batch_ms=5, batch_max=3)
    first = sched.submit(b"a", Priority.FINAL)
    await asyncio.sleep(0.01)  # `a` runs alone: nothing joined it within 5 ms
    jobs = [sched.submit(name.encode(), Priority.SPECULATIVE) for name in ("s1", "s2")]
    jobs += [sched.submit(b"d", Priority.DRAFT), sched.submit(b"f", Priority.FINAL)]
    await asyncio.gather(first.future, *(j.future for j in jobs))
    # the final first with the speculations (batch_max 3), then the draft alone
    assert asr.calls == [["a"], ["f", "s1", "s2"], ["d"]]


async def test_batch_ms_zero_decodes_one_at_a_time() -> None:
    asr = BatchAsr()
    sched = DecodeScheduler(asr, 1)
    jobs = [sched.submit(f"c{i}".encode(), Priority.FINAL) for i in range(3)]
    await asyncio.gather(*(j.future for j in jobs))
    assert asr.calls == [["c0"], ["c1"], ["c2"]] and sched.stats.batches == 0


async def test_a_failed_batch_fails_each_of_its_jobs() -> None:
    sched = DecodeScheduler(BatchAsr(), 1, batch_ms=10)
    jobs = [sched.submit(name, Priority.FINAL) for name in (b"ok", b"boom")]
    for job in jobs:
        with pytest.raises(RuntimeError, match="decoder failed"):
            await job.future
    assert sched.idle


async def test_drain_starts_a_batch_still_gathering() -> None:
    asr = BatchAsr()
    sched = DecodeScheduler(asr, 1, batch_ms=10_000)
    job = sched.submit(b"x", Priority.FINAL)
    await asyncio.wait_for(sched.drain(), 1)
    assert job.future.done() and asr.calls == [["x"]]


def test_bad_batch_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="batch"):
        DecodeScheduler(BatchAsr(), 1, batch_ms=-1)


# ---- the real Whisper ---------------------------------------------------------------------

MODEL = Path("build/models/whisper-base")


async def _phone_line(text: str) -> bytes:
    """`text` in the demo callee's espeak voice over a mu-law leg."""
    from speech import audio
    from speech.tts.espeak import EspeakTts

    return audio.ulaw_roundtrip(await EspeakTts(speed=110, variant="f2").synthesize(text))


@pytest.mark.asr
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")
async def test_whisper_batch_of_one_is_the_single_decode_and_equal_lengths_batch_exactly() -> None:
    if not (MODEL / "model.bin").exists():
        pytest.skip("the Whisper model is not built")
    from speech.asr.whisper import WhisperAsr

    asr = WhisperAsr(MODEL)
    pcm = await _phone_line("多少钱")
    alone = asr.transcribe_sync(pcm, prompt="价格")
    [one] = asr.transcribe_batch_sync([(pcm, {"prompt": "价格"})])
    assert (one.text, one.alternatives) == (alone.text, alone.alternatives)
    pair = asr.transcribe_batch_sync([(pcm, {"prompt": "价格"}), (pcm, {"prompt": "价格"})])
    assert [t.text for t in pair] == [alone.text, alone.text] and alone.text
    assert asr.stats.batches == 1 and asr.stats.batched == 2
