"""DecodeScheduler: one shared utterance engine, many calls, and a queue that knows what matters.

The engine (Whisper) runs ``capacity`` decodes at once. When more are asked for, they wait
here, not in the engine's thread pool, so the order is ours to choose:

* ``FINAL``: a turn has ended and a caller waits for its transcript: first.
* ``SPECULATIVE``: decoded during a pause in case the turn ends there; promoted to ``FINAL``
  when it does, and dropped from the queue (never decoded) when the callee speaks again.
* ``DRAFT``: partial transcripts; the adapter only asks for them when the engine is idle and
  was less than half busy over the last 2 s (``utilization``): a draft, once running, cannot
  be preempted, and a final arriving behind it waits.

Under load a FIFO queue makes a waiting callee's final sit behind other calls' speculations and
partials; this order does not (``bench/asr_load.py`` measures both). ``prioritize=False`` gives
the FIFO order, for that comparison.

Batching (``batch_ms`` > 0, an engine with ``transcribe_batch``): finals and speculations of
many calls go to the engine together, up to ``batch_max`` at a time, as one slot of its
capacity. A job that finds a slot free waits ``batch_ms`` for others to join it; jobs queued
behind a busy engine leave together when a slot frees. Drafts are never batched. On a GPU one
batched decode costs little more than one; on one CPU core it costs about the sum
(docs/capacity.md).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import deque
from dataclasses import dataclass, field
from enum import IntEnum
from functools import partial
from typing import Any

from core.audio import SAMPLE_RATE
from speech.asr.base import AsrEngine, Transcript


class Priority(IntEnum):
    FINAL = 0
    SPECULATIVE = 1
    DRAFT = 2


@dataclass(eq=False, slots=True)
class DecodeJob:
    """One queued or running decode; await ``future`` (through ``asyncio.shield``)."""

    future: asyncio.Future[Transcript]
    priority: Priority
    kwargs: dict[str, Any] = field(repr=False)
    pcm: bytes = field(repr=False)
    enqueued: float = 0.0
    started: bool = False

    def done(self) -> bool:
        return self.future.done()


@dataclass(slots=True)
class ScheduleStats:
    submitted: int = 0
    cancelled_in_queue: int = 0  # speculations dropped before they cost anything
    promoted: int = 0
    max_queued: int = 0
    batches: int = 0  # engine calls that carried 2 or more utterances
    # queue wait (ms) of the most recent finals (fresh or promoted), for p50/p95
    final_wait_ms: deque[float] = field(default_factory=lambda: deque(maxlen=2000))


class DecodeScheduler:
    def __init__(
        self,
        engine: AsrEngine,
        capacity: int,
        *,
        prioritize: bool = True,
        batch_ms: int = 0,
        batch_max: int = 8,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        if batch_ms < 0 or batch_max < 1:
            raise ValueError("batch_ms >= 0 and batch_max >= 1")
        self.engine = engine
        batched = getattr(engine, "transcribe_batch", None)
        self._batch_fn: Any = batched if batch_ms and batch_max > 1 else None
        self.batch_s = batch_ms / 1000
        self.batch_max = batch_max
        self._gather: asyncio.TimerHandle | None = None  # a free slot waiting for company
        self.capacity = capacity
        self.prioritize = prioritize
        self.inflight = 0
        self.stats = ScheduleStats()
        self._heap: list[tuple[int, int, DecodeJob]] = []
        self._seq = itertools.count()
        self._queued = 0  # live jobs in the heap (stale entries excluded)
        self._running: set[asyncio.Task[Any]] = set()
        self._started_at: dict[asyncio.Task[Any], float] = {}
        self._spans: deque[tuple[float, float]] = deque(maxlen=512)  # finished (start, end)

    @property
    def queued(self) -> int:
        return self._queued

    @property
    def idle(self) -> bool:
        return self.inflight < self.capacity and self._queued == 0

    def utilization(self, window_s: float = 2.0) -> float:
        """Busy share of the engine's capacity over the last `window_s` (0..1)."""
        now = time.perf_counter()
        since = now - window_s
        busy = sum(now - max(t, since) for t in self._started_at.values())
        for start, end in reversed(self._spans):
            if end <= since:
                break
            busy += end - max(start, since)
        return min(1.0, busy / (window_s * self.capacity))

    def submit(self, pcm: bytes, priority: Priority, **kwargs: Any) -> DecodeJob:
        """Queue one decode of 8 kHz PCM16 (``kwargs`` go to ``engine.transcribe``)."""
        loop = asyncio.get_running_loop()
        job = DecodeJob(loop.create_future(), priority, kwargs, pcm, time.perf_counter())
        self.stats.submitted += 1
        self._push(job, priority)
        self._queued += 1
        self.stats.max_queued = max(self.stats.max_queued, self._queued)
        if self._batch_fn is None or priority is Priority.DRAFT or self._queued >= self.batch_max:
            self._pump()
        elif self._gather is None:  # let the finals of other calls arriving now join it
            self._gather = loop.call_later(self.batch_s, self._gathered)
        return job

    def _gathered(self) -> None:
        self._gather = None
        self._pump()

    def promote(self, job: DecodeJob, priority: Priority = Priority.FINAL) -> None:
        """Someone now waits for `job`: move it up the queue (no-op once it runs)."""
        if job.started or job.done() or priority >= job.priority:
            job.priority = min(job.priority, priority)
            return
        job.priority = priority
        job.enqueued = time.perf_counter()  # its wait as a final starts now
        self.stats.promoted += 1
        self._push(job, priority)  # the old entry goes stale and is skipped when popped

    def cancel(self, job: DecodeJob) -> bool:
        """Drop a job that has not started; a running decode finishes (its result unused)."""
        if job.started or job.done():
            return False
        job.future.cancel()
        self._queued -= 1
        self.stats.cancelled_in_queue += 1
        return True

    def _push(self, job: DecodeJob, priority: Priority) -> None:
        rank = int(priority) if self.prioritize else 0
        heapq.heappush(self._heap, (rank, next(self._seq), job))

    def _pop(self) -> DecodeJob | None:
        """The next live job off the heap, marked started (None: the heap is empty)."""
        while self._heap:
            _, _, job = heapq.heappop(self._heap)
            if job.started or job.done():
                continue  # a stale entry (promoted) or a cancelled job
            self._queued -= 1
            job.started = True
            if job.priority is Priority.FINAL:
                self.stats.final_wait_ms.append((time.perf_counter() - job.enqueued) * 1000)
            return job
        return None

    def _companions(self) -> list[DecodeJob]:
        """Queued non-draft jobs to decode with the one just popped (at most batch_max - 1)."""
        out: list[DecodeJob] = []
        while len(out) < self.batch_max - 1 and self._heap:
            top = self._heap[0][2]
            if not (top.started or top.done()) and top.priority is Priority.DRAFT:
                break
            job = self._pop()
            if job is not None:
                out.append(job)
        return out

    def _pump(self) -> None:
        while self.inflight < self.capacity:
            job = self._pop()
            if job is None:
                return
            jobs = [job]
            if self._batch_fn is not None and job.priority is not Priority.DRAFT:
                jobs += self._companions()
            self._start(jobs)

    def _start(self, jobs: list[DecodeJob]) -> None:
        if len(jobs) == 1:
            job = jobs[0]
            coro: Any = self.engine.transcribe(job.pcm, SAMPLE_RATE, **job.kwargs)
        else:
            self.stats.batches += 1
            coro = self._batch_fn([(j.pcm, j.kwargs) for j in jobs])
        task = asyncio.ensure_future(coro)
        task.set_name(f"asr.decode.{jobs[0].priority.name.lower()}")
        self.inflight += 1
        self._running.add(task)
        self._started_at[task] = time.perf_counter()
        task.add_done_callback(partial(self._finished, jobs))

    def _finished(self, jobs: list[DecodeJob], task: asyncio.Task[Any]) -> None:
        self.inflight -= 1
        self._running.discard(task)
        started = self._started_at.pop(task, None)
        if started is not None:
            self._spans.append((started, time.perf_counter()))
        error = None if task.cancelled() else task.exception()
        results = None if task.cancelled() or error else task.result()
        if len(jobs) == 1 and results is not None:
            results = [results]
        for i, job in enumerate(jobs):
            if job.future.done():
                continue  # nobody waits for this result
            if results is not None:
                job.future.set_result(results[i])
            elif error is not None:
                job.future.set_exception(error)
            else:
                job.future.cancel()
        self._pump()

    async def drain(self) -> None:
        """Wait for every queued and running decode (used before closing the engine)."""
        if self._gather is not None:  # a batch waiting for company leaves now
            self._gather.cancel()
            self._gather = None
            self._pump()
        while self._running:  # queued jobs start as running ones finish
            await asyncio.gather(*self._running, return_exceptions=True)
