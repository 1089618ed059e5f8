"""Call churn through real media workers: many short calls, every frame path busy. JSON out.

    .venv/bin/python bench/churn.py [--calls 400] [--concurrency 8] [--hold-s 0.4]
                                    [--processes 2] [--seed 1]

A dialing ``WorkerPool`` (the robot) calls a listening one (the callee) straight over
loopback, ``--concurrency`` calls at a time: the callee answers, both sides stream audio
for about ``--hold-s`` seconds, and one side (chosen at random) hangs up. Call set-up and
tear-down is where a media worker's per-call objects are made and dropped while the
conference bridge's clock thread keeps running, so this is the bench that shows whether a
worker survives them (issue 15: a rare segfault on that thread under load).

Reports ``calls``, ``completed``, ``worker_lost`` (calls ended because a worker died),
``worker_deaths`` (worker processes that went away while the bench ran, both sides),
``other`` (ends that were neither; ``busy``: the callee's worker still held a call that
just ended, the only one that does not fail the run) and ``calls_per_s``. Bounded: ``--calls``
calls, each under 15 s. Exit 0 when no worker died and every call completed, 1 otherwise, 2 when the
workers could not start.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.report import emit_json
from telephony import (
    CallState,
    DialRequest,
    Disposition,
    PoolBusyError,
    Progress,
    WorkerPool,
    WorkerStartError,
)

CALL_LIMIT_S = 15.0
FRAME = b"\x10\x00" * 160  # 20 ms of a quiet, non-zero signal


async def _ended(handle: Any) -> Progress | None:
    async for ev in handle.events():
        if isinstance(ev, Progress) and ev.state is CallState.ENDED:
            return ev
    return handle.ended if isinstance(handle.ended, Progress) else None


async def _answer_all(callee: WorkerPool, rng: random.Random, hold_s: float) -> None:
    """The callee: answer every call, talk, and sometimes hang up first."""

    async def one(inbound: Any) -> None:
        await inbound.answer()
        inbound.send_audio(FRAME * int(hold_s * 50 + 10))
        if rng.random() < 0.5:
            await asyncio.sleep(hold_s * rng.uniform(0.5, 1.0))
            await inbound.hangup()
        await _ended(inbound)

    tasks: set[asyncio.Task[None]] = set()
    while True:
        inbound = await callee.incoming()
        task = asyncio.create_task(one(inbound))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


async def _one_call(robot: WorkerPool, uri: str, hold_s: float, rng: random.Random) -> str:
    async with asyncio.timeout(CALL_LIMIT_S):
        for _ in range(int(CALL_LIMIT_S / 0.05)):  # a slot frees once its worker says so
            try:
                handle = await robot.dial(DialRequest(uri=uri))
                break
            except PoolBusyError:
                await asyncio.sleep(0.05)
        else:
            return "no_slot"
        handle.send_audio(FRAME * int(hold_s * 50 + 10))
        await asyncio.sleep(hold_s * rng.uniform(0.7, 1.3))
        if handle.ended is None:
            await handle.hangup()
        end = await _ended(handle)
    if end is None:
        return "unknown"
    if end.end_reason is Disposition.WORKER_LOST:
        return "worker_lost"
    return "completed" if end.end_reason is Disposition.COMPLETED else str(end.end_reason)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    robot = WorkerPool(processes=args.processes)
    callee = WorkerPool(processes=2 * args.processes, listen=True)  # room for calls ending
    try:
        await robot.start()
        await callee.start()
    except WorkerStartError as err:
        await robot.close()
        await callee.close()
        raise SystemExit(f"churn: workers did not start: {err}") from None
    pids_seen: set[int] = set()

    def note_pids() -> None:
        pids_seen.update(p for p in [*robot.worker_pids, *callee.worker_pids] if p)

    note_pids()
    answering = asyncio.create_task(_answer_all(callee, rng, args.hold_s))
    sem = asyncio.Semaphore(args.concurrency)
    results: Counter[str] = Counter()
    t0 = time.monotonic()

    async def guarded(i: int) -> None:
        async with sem:
            ports = callee.sip_ports
            uri = f"sip:138{i:08d}@127.0.0.1:{ports[i % len(ports)] or 1}"
            try:
                results[await _one_call(robot, uri, args.hold_s, rng)] += 1
            except TimeoutError:
                results["timeout"] += 1
            except Exception as err:  # a dial refused while a worker restarts, and the like
                results[type(err).__name__] += 1
            note_pids()

    try:
        await asyncio.gather(*(guarded(i) for i in range(args.calls)))
    finally:
        wall = time.monotonic() - t0
        note_pids()
        answering.cancel()
        await robot.close()
        await callee.close()
    deaths = len(pids_seen) - 3 * args.processes
    completed = results.pop("completed", 0)
    lost = results.pop("worker_lost", 0)
    return {
        "calls": args.calls,
        "concurrency": args.concurrency,
        "processes": args.processes,
        "hold_s": args.hold_s,
        "completed": completed,
        "worker_lost": lost,
        "worker_deaths": deaths,
        "other": dict(results),
        "wall_s": round(wall, 1),
        "calls_per_s": round(args.calls / wall, 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=400)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--hold-s", type=float, default=0.4)
    ap.add_argument("--processes", type=int, default=2, help="worker processes per side")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=None, help="also write the JSON here")
    args = ap.parse_args(argv)
    if args.calls < 1 or args.concurrency < 1 or args.processes < 1 or args.hold_s <= 0:
        print("churn: --calls, --concurrency, --processes and --hold-s must be positive")
        return 2
    try:
        report = asyncio.run(run(args))
    except SystemExit as err:
        print(err)
        return 2
    emit_json(report, args.out)
    busy = report["other"].get("busy", 0)  # the callee's worker still full: not the robot's fault
    ok = report["worker_deaths"] == 0 and report["completed"] + busy == report["calls"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
