"""DecodeScheduler: finals before speculations before drafts, promotion, cancellation of queued
speculations, errors, drain. The engine is a fake that records the order decodes start in."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from speech.asr.base import Transcript
from speech.asr.schedule import DecodeScheduler, Priority


class OrderAsr:
    """Each decode takes `delay_s`; `pcm` is the job's name; b"boom" fails."""

    name = "order"
    max_workers = 1

    def __init__(self, delay_s: float = 0.01) -> None:
        self.delay_s = delay_s
        self.started: list[str] = []
        self.kwargs: list[dict[str, Any]] = []

    async def transcribe(self, pcm: bytes, sample_rate: int = 8000, **kw: Any) -> Transcript:
        self.started.append(pcm.decode())
        self.kwargs.append(kw)
        await asyncio.sleep(self.delay_s)
        if pcm == b"boom":
            raise RuntimeError("decoder failed")
        return Transcript(pcm.decode(), 0.9, "zh", 0.1, self.delay_s)

    async def aclose(self) -> None:
        pass


async def _run_order(prioritize: bool) -> list[str]:
    asr = OrderAsr()
    sched = DecodeScheduler(asr, 1, prioritize=prioritize)
    jobs = [sched.submit(b"draft", Priority.DRAFT)]  # starts at once: the engine was idle
    jobs += [sched.submit(name.encode(), Priority.SPECULATIVE) for name in ("spec1", "spec2")]
    jobs.append(sched.submit(b"final", Priority.FINAL, prompt="p"))
    assert (sched.inflight, sched.queued, sched.idle) == (1, 3, False)
    results = await asyncio.gather(*(j.future for j in jobs))
    assert [r.text for r in results] == ["draft", "spec1", "spec2", "final"]
    assert asr.kwargs[asr.started.index("final")] == {"prompt": "p"}
    assert sched.idle and sched.stats.max_queued == 3
    return asr.started


async def test_a_final_goes_before_queued_speculations() -> None:
    assert await _run_order(prioritize=True) == ["draft", "final", "spec1", "spec2"]


async def test_fifo_order_when_not_prioritizing() -> None:
    assert await _run_order(prioritize=False) == ["draft", "spec1", "spec2", "final"]


async def test_promoting_a_queued_speculation_runs_it_next() -> None:
    asr = OrderAsr()
    sched = DecodeScheduler(asr, 1)
    running = sched.submit(b"running", Priority.FINAL)
    spec1 = sched.submit(b"spec1", Priority.SPECULATIVE)
    spec2 = sched.submit(b"spec2", Priority.SPECULATIVE)
    sched.promote(spec2)  # its turn ended: a callee waits for it now
    sched.promote(running)  # already running: nothing to do
    await asyncio.gather(running.future, spec1.future, spec2.future)
    assert asr.started == ["running", "spec2", "spec1"]
    assert sched.stats.promoted == 1 and len(sched.stats.final_wait_ms) == 2


async def test_a_queued_speculation_can_be_dropped_but_not_a_running_one() -> None:
    asr = OrderAsr()
    sched = DecodeScheduler(asr, 1)
    running = sched.submit(b"running", Priority.SPECULATIVE)
    queued = sched.submit(b"queued", Priority.SPECULATIVE)
    assert sched.cancel(queued) is True and queued.future.cancelled()
    assert sched.cancel(running) is False
    assert (await running.future).text == "running"
    await sched.drain()
    assert asr.started == ["running"]  # the dropped one never cost a decode
    assert sched.stats.cancelled_in_queue == 1 and sched.queued == 0 and sched.idle


async def test_a_failed_decode_fails_its_job_only() -> None:
    asr = OrderAsr()
    sched = DecodeScheduler(asr, 1)
    bad = sched.submit(b"boom", Priority.FINAL)
    good = sched.submit(b"next", Priority.FINAL)
    with pytest.raises(RuntimeError, match="decoder failed"):
        await bad.future
    assert (await good.future).text == "next"


async def test_capacity_bounds_concurrent_decodes_and_drain_waits() -> None:
    asr = OrderAsr(delay_s=0.02)
    sched = DecodeScheduler(asr, 2)
    jobs = [sched.submit(f"j{i}".encode(), Priority.FINAL) for i in range(5)]
    assert sched.inflight == 2 and sched.queued == 3
    await sched.drain()
    assert all(j.done() for j in jobs) and sched.inflight == 0
    with pytest.raises(ValueError, match="capacity"):
        DecodeScheduler(asr, 0)


async def test_utilization_counts_running_and_recent_decodes() -> None:
    asr = OrderAsr(delay_s=0.1)
    sched = DecodeScheduler(asr, 1)
    assert sched.utilization() == 0.0
    job = sched.submit(b"a", Priority.FINAL)
    await asyncio.sleep(0.05)
    assert 0.15 < sched.utilization(0.1) <= 1.0  # running for ~50 ms of the last 100 ms
    await job.future
    assert sched.utilization(0.3) == pytest.approx(1 / 3, abs=0.12)  # ~100 ms of 300 ms
    await asyncio.sleep(0.3)
    assert sched.utilization(0.2) == 0.0
