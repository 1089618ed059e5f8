"""Cheap instruments for bench/load.py: CPU per process and per thread group, memory, event-loop
lag, and CPU timers around the NLU and the VAD.

* ``Processes``: psutil CPU time (user + system) of labelled process groups between
  ``start()`` and ``stop()``, and their peak RSS sampled once a second.
* ``thread_groups()``: this process's CPU per thread group: ``loop`` (the main thread: the
  event loop, call sessions, webrtcvad, worker IPC), ``asr`` (the Whisper pool's ``asr_*``
  threads), ``executor`` (asyncio's default pool: NLU, Silero, database writes), ``native``
  (threads Python did not start: CTranslate2 workers, OpenBLAS/OpenMP, onnxruntime).
* ``LoopLag``: a 20 ms heartbeat; how late it wakes (p99, max).
* ``TimedNlu`` / ``timed_endpointers``: thread CPU time (``time.thread_time``) spent in
  ``classify`` and in the VAD's ``push``, wherever they run.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psutil


def _cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


@dataclass
class Processes:
    """CPU seconds and peak RSS of process groups, e.g. {"media_robot": [pid, ...]}."""

    groups: dict[str, list[int]]
    _procs: dict[str, list[psutil.Process]] = field(default_factory=dict)
    _cpu0: dict[int, float] = field(default_factory=dict)
    _cpu1: dict[int, float] = field(default_factory=dict)
    rss_mb: dict[str, float] = field(default_factory=dict)
    _t0: float = 0.0
    wall_s: float = 0.0

    def start(self) -> None:
        self._t0 = time.monotonic()
        for label, pids in self.groups.items():
            self._procs[label] = [psutil.Process(p) for p in pids]
            for proc in self._procs[label]:
                self._cpu0[proc.pid] = _cpu(proc)
        self.sample()

    def sample(self) -> None:
        """Remember each group's RSS (MB) if it is the highest seen, and each CPU time."""
        for label, procs in self._procs.items():
            rss = 0
            for proc in procs:
                try:
                    rss += proc.memory_info().rss
                    self._cpu1[proc.pid] = _cpu(proc)
                except psutil.Error:
                    continue  # it ended: its last sample stands
            self.rss_mb[label] = max(self.rss_mb.get(label, 0.0), rss / 2**20)

    def stop(self) -> dict[str, float]:
        """CPU seconds per group since start()."""
        self.sample()
        self.wall_s = time.monotonic() - self._t0
        return {
            label: sum(self._cpu1.get(p.pid, 0.0) - self._cpu0[p.pid] for p in procs)
            for label, procs in self._procs.items()
        }


def thread_groups() -> dict[str, float]:
    """CPU seconds so far of this process's threads, grouped (see the module docstring)."""
    names = {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}
    main = threading.main_thread().native_id
    out = {"loop": 0.0, "asr": 0.0, "executor": 0.0, "native": 0.0, "other": 0.0}
    for th in psutil.Process().threads():
        cpu = float(th.user_time + th.system_time)
        name = names.get(th.id)
        if th.id == main:
            out["loop"] += cpu
        elif name is None:
            out["native"] += cpu
        elif name.startswith("asr"):
            out["asr"] += cpu
        elif name.startswith("asyncio"):
            out["executor"] += cpu
        else:
            out["other"] += cpu
    return out


def diff(after: Mapping[str, float], before: Mapping[str, float]) -> dict[str, float]:
    return {k: round(after[k] - before.get(k, 0.0), 3) for k in after}


class LoopLag:
    """How late a 20 ms sleep wakes on this event loop (a busy loop delays every call)."""

    PERIOD = 0.02

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._beat(), name="load.looplag")

    async def _beat(self) -> None:
        while True:
            t = time.perf_counter()
            await asyncio.sleep(self.PERIOD)
            self.lags.append(max(0.0, time.perf_counter() - t - self.PERIOD))

    async def stop(self) -> dict[str, float | None]:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        lags = sorted(self.lags)
        if not lags:
            return {"p99_ms": None, "max_ms": None}
        return {
            "p99_ms": round(lags[int(0.99 * (len(lags) - 1))] * 1000, 1),
            "max_ms": round(lags[-1] * 1000, 1),
        }


class CpuTimer:
    """Thread CPU seconds spent inside wrapped calls (thread-safe)."""

    def __init__(self) -> None:
        self.cpu_s = 0.0
        self.calls = 0
        self._lock = threading.Lock()

    def add(self, cpu_s: float) -> None:
        with self._lock:
            self.cpu_s += cpu_s
            self.calls += 1


class TimedNlu:
    """An IntentClassifier that counts the CPU of each ``classify``; the rest passes through."""

    def __init__(self, inner: Any, timer: CpuTimer) -> None:
        self._inner, self._timer = inner, timer
        self.name = inner.name

    def classify(self, text: str, context: Mapping[str, Any] | None = None) -> Any:
        t = time.thread_time()
        try:
            return self._inner.classify(text, context)
        finally:
            self._timer.add(time.thread_time() - t)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _TimedEndpointer:
    def __init__(self, inner: Any, timer: CpuTimer) -> None:
        self._inner, self._timer = inner, timer

    def push(self, frame: bytes) -> Any:
        t = time.thread_time()
        try:
            return self._inner.push(frame)
        finally:
            self._timer.add(time.thread_time() - t)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def timed_endpointers(make: Callable[[], Any], timer: CpuTimer) -> Callable[[], Any]:
    """An endpointer factory whose endpointers count the CPU of ``push``."""
    return lambda: _TimedEndpointer(make(), timer)
