"""ASR under load: N calls share one Whisper worker; finals-first queue vs FIFO. Prints JSON.

    .venv/bin/python bench/asr_load.py                      # streams 4,12,24; 30 s each (~4 min)
    .venv/bin/python bench/asr_load.py --streams 8 --seconds 20

Every simulated callee talks like one on a sales call: a pause while the robot speaks (1.5-3.5 s),
then one reply from the bench's test set (espeak, 8 kHz, G.711; utterances up to 5 s), so about
a third of each stream is speech. All N streams push 20 ms frames in real time into one shared
``StreamAdapter`` (the configured endpointing: speculation at 80 ms, early end at 300 ms, full
endpoint 700 ms, Silero confirmation) over one ``WhisperAsr`` with one worker on one thread.
The same seeded schedule runs twice: with the ``DecodeScheduler``'s finals-first order and with
plain FIFO. Reported per run: final latency from the true end of speech (p50/p95/max), how long
finals waited in the queue, speculations dropped before they cost a decode, partials, and
finals missing at the end. 2 shared cores: compare the two orders side by side, not across
machines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import asr as asr_bench  # bench/asr.py: the test set

from app.config import SpeechConfig
from core.audio import FRAME_BYTES, SAMPLE_RATE, SAMPLE_WIDTH
from speech import audio
from speech.asr.adapter import StreamAdapter
from speech.asr.base import Final
from speech.asr.whisper import WhisperAsr
from speech.vad import Endpointer

FRAME_S = 0.02


def schedule(items: list[Any], seconds: float, rng: random.Random) -> list[tuple[float, Any]]:
    """(start offset s, item) for one callee: a pause, a reply, a pause, a reply ..."""
    out: list[tuple[float, Any]] = []
    t = rng.uniform(0.0, 2.0)
    while True:
        t += rng.uniform(1.5, 3.5)
        item = rng.choice(items)
        if t + item.seconds > seconds:
            return out
        out.append((t, item))
        t += item.seconds


def render(plan: list[tuple[float, Any]], seconds: float) -> tuple[bytes, list[float]]:
    """The stream's audio and the true end (s) of each reply."""
    pcm = bytearray(audio.silence(seconds + 1.5))
    ends = []
    for start, item in plan:
        at = int(start * SAMPLE_RATE) * SAMPLE_WIDTH
        pcm[at : at + len(item.pcm)] = item.pcm
        ends.append(start + item.seconds)
    return bytes(pcm), ends


async def one_stream(
    adapter: StreamAdapter, pcm: bytes, ends: list[float], t0: float
) -> dict[str, Any]:
    stream = adapter.stream()
    finals: list[tuple[float, Final]] = []

    async def read() -> None:
        async for ev in stream:
            if isinstance(ev, Final) and ev.text:
                finals.append((time.perf_counter(), ev))

    reader = asyncio.create_task(read())
    for i in range(len(pcm) // FRAME_BYTES):
        stream.push(pcm[i * FRAME_BYTES : (i + 1) * FRAME_BYTES])
        await asyncio.sleep(max(0.0, t0 + (i + 1) * FRAME_S - time.perf_counter()))
    stream.end_input()
    await reader
    latencies, matched = [], 0
    for end in ends:  # the first final whose speech ends near this reply's true end
        hits = [(w, f) for w, f in finals if abs(f.end_t - end) < 0.5]
        if hits:
            matched += 1
            latencies.append((hits[0][0] - (t0 + end)) * 1000)
    return {"replies": len(ends), "matched": matched, "latencies": latencies}


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))], 1)


async def run(
    asr: WhisperAsr,
    confirm: Any,
    streams: list[tuple[bytes, list[float]]],
    prioritize: bool,
    partial_max_load: float,
) -> dict[str, Any]:
    sc = SpeechConfig()
    adapter = StreamAdapter(
        asr,
        lambda: Endpointer(end_silence_ms=sc.end_silence_ms),
        partial_interval_s=sc.asr_partial_interval_s,
        speculate_ms=sc.asr_speculate_ms,
        early_end_ms=sc.asr_early_end_ms,
        confirm=confirm,
        prioritize=prioritize,
        partial_max_load=partial_max_load,
    )
    cpu0 = time.process_time()
    t0 = time.perf_counter() + 0.2
    rows = await asyncio.gather(*(one_stream(adapter, pcm, ends, t0) for pcm, ends in streams))
    wall = time.perf_counter() - t0
    lat = [ms for r in rows for ms in r["latencies"]]
    sched = adapter.scheduler.stats
    waits = list(sched.final_wait_ms)
    return {
        "order": "finals first" if prioritize else "fifo",
        "partial_max_load": partial_max_load,
        "replies": sum(r["replies"] for r in rows),
        "finals_matched": sum(r["matched"] for r in rows),
        "final_latency_from_true_end_ms": {
            "p50": pct(lat, 0.5),
            "p95": pct(lat, 0.95),
            "max": pct(lat, 1.0),
        },
        "finals_that_queued": len(waits),  # the others were decoded before their endpoint
        "final_queue_wait_ms": {"p50": pct(waits, 0.5), "p95": pct(waits, 0.95)},
        "decodes_submitted": sched.submitted,
        "speculations_dropped_in_queue": sched.cancelled_in_queue,
        "max_queued": sched.max_queued,
        "early_endpoints": adapter.stats.early_endpoints,
        "partials": adapter.stats.partials,
        "process_cpu_per_wall": round((time.process_time() - cpu0) / wall, 2),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=str(asr_bench.MODEL_DIR))
    p.add_argument("--streams", default="4,12,24", help="concurrent calls per run, comma list")
    p.add_argument("--seconds", type=float, default=30.0, help="length of each stream")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--orders", default="first,fifo", help="queue orders to run: first, fifo")
    p.add_argument(
        "--partial-max-load", default="0.5", help="comma list; 1.0 = partials whenever idle"
    )
    p.add_argument("--repeat", type=int, default=1, help="run each variant this many times")
    args = p.parse_args(argv)

    started = time.perf_counter()
    sets = ["zh-f2-110", "zh-m3-150", "zh-f2-110-noise"]
    items = [i for i in asr_bench.build_set(sets, asr_bench.SENTENCES) if i.seconds <= 5.0]
    asr = WhisperAsr(args.model, cpu_threads=1, max_workers=1)
    asr.transcribe_sync(items[0].pcm, SAMPLE_RATE)  # warm-up
    from speech.silero import SileroVad

    confirm = SileroVad()
    runs = []
    for n in (int(x) for x in args.streams.split(",")):
        rng = random.Random(args.seed * 1000 + n)
        streams = [render(schedule(items, args.seconds, rng), args.seconds) for _ in range(n)]
        variants = [
            (order == "first", float(load))
            for order in args.orders.split(",")
            for load in args.partial_max_load.split(",")
        ]
        for _ in range(args.repeat):  # interleaved, so drift on a shared machine hits all
            for prioritize, load in variants:
                result = asyncio.run(run(asr, confirm, streams, prioritize, load))
                runs.append({"streams": n, **result})
                print(f"{n} streams, {result['order']}, partial load <= {load}: "
                      f"{result['final_latency_from_true_end_ms']}", file=sys.stderr)  # fmt: skip
    asyncio.run(asr.aclose())
    print(
        json.dumps(
            {
                "engine": "whisper-base int8, 1 worker x 1 thread, StreamAdapter (configured)",
                "test_set": {"sets": sets, "utterances": len(items), "max_s": 5.0},
                "stream_seconds": args.seconds,
                "runs": runs,
                "wall_s": round(time.perf_counter() - started, 1),
            },
            ensure_ascii=False,
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
