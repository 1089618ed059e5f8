"""One point of bench/load.py: N calls on one path, in this process. JSON to OUT.

    python -m bench.load_point old|new N OUT.json [--spread-s 10] [--seed 1] [--cache DIR]

Started by bench/load.py with the path's native-thread environment (``OPENBLAS_NUM_THREADS``
and ``OMP_NUM_THREADS`` must be set before numpy is first imported, so a point is a process).
The traffic model and every figure are described in bench/load.py. Exit 0 when the calls ran,
1 when they did not, 2 on a setup problem (one line on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from app.config import Config, load_config
from app.runtime import Runtime, dial_plan
from bench.load import DEVICES, PATHS, overrides, setting
from bench.load_probe import (
    CpuTimer,
    LoopLag,
    Processes,
    TimedNlu,
    diff,
    thread_groups,
    timed_endpointers,
)
from campaigns.compliance import CallingWindow
from campaigns.dialer import AttemptSummary
from campaigns.pacing import PacingConfig
from models import Campaign, Lead
from simcallee.carrier import CarrierError, kamailio

REPO = Path(__file__).resolve().parent.parent
USER, PASSWORD = "robot", "load-pw"
CALLS_PER_WORKER = 4  # the PyPI pjsua2 wheel's limit
CONVERSATIONS = (  # a talker's lines; the first is said over the robot's greeting
    ("好的，你说吧", "多少钱", "好的，安排演示吧", "是的"),
    ("喂，你好", "我现在在开会，你明天下午再打给我吧", "是的"),
    ("喂，你好", "我不需要，以后别打了"),
    ("你好，哪位", "有点兴趣，怎么收费", "可以，安排演示吧", "是的"),
)
POWERED_OFF = {"name": "machine", "early_media": "您拨打的电话已关机，请稍后再拨",
               "early_media_s": 25.0, "reject": 480}  # fmt: skip
VOICEMAIL = {"name": "machine", "speak_first": True, "beep": True, "linger_s": 20.0,
             "lines": ["您好，我现在不方便接听电话，请在提示音后留言"]}  # fmt: skip
MACHINE_ENDS = {"completed", "powered_off", "voicemail", "unreachable", "rejected", "no_answer"}


class SetupError(Exception):
    """The point cannot run here (one line says why)."""


# ---- the traffic --------------------------------------------------------------------------


@dataclass
class Traffic:
    """Who answers which number, when, and says what."""

    personas: dict[str, dict[str, Any]] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)  # number -> talker|silent|machine


def traffic(n: int, base_port: int, workers: int, spread_s: float, seed: int) -> Traffic:
    """N callees (bench/load.py's traffic model), numbered so that Kamailio can route each
    call to its media worker: "1" + the worker's SIP port (5 digits) + the call's index."""
    rng = random.Random(seed)
    out, t = Traffic(), 0.0
    for i in range(n):
        t += rng.expovariate(n / spread_s)  # Poisson answers: exponential gaps
        number = f"1{base_port + i % workers:05d}{i:05d}"
        ring_ms = int(300 + min(t, 25.0) * 1000)
        kind = {8: "silent", 9: "machine"}.get(i % 10, "talker")
        if kind == "talker":
            lines = CONVERSATIONS[rng.randrange(len(CONVERSATIONS))]
            raw = {"name": "talker", "lines": list(lines), "barge_in_s": rng.uniform(0.8, 2.0)}
        elif kind == "silent":
            raw = {"name": "silent", "linger_s": 40.0}
        else:
            raw = dict(POWERED_OFF if (i // 10) % 2 == 0 else VOICEMAIL)
        out.personas[number] = {**raw, "ring_ms": ring_ms}
        out.kinds[number] = kind
    return out


def free_port_block(count: int) -> int:
    """A base port whose `count` successive UDP and TCP ports are free on loopback."""
    rng = random.Random()
    for _ in range(50):
        base = rng.randrange(20000, 60000 - count)
        if all(_free(base + i) for i in range(count)):
            return base
    raise SetupError(f"no block of {count} free loopback ports")


def _free(port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


# ---- the callees --------------------------------------------------------------------------


class Callees:
    """bench/load_callee.py in a child process: started, then stopped for its reports."""

    def __init__(self, workdir: Path, plan: dict[str, Any]) -> None:
        self.plan_path, self.report_path = workdir / "plan.json", workdir / "callees.json"
        self.plan_path.write_text(json.dumps(plan, ensure_ascii=False))
        self.proc: subprocess.Popen[str] | None = None
        self.pids: list[int] = []

    def start(self) -> None:
        argv = [sys.executable, str(REPO / "bench" / "load_callee.py")]
        argv += [str(self.plan_path), str(self.report_path)]
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # blocks until READY (lines rendered, workers up)
        if not line.startswith("READY"):
            self.stop()
            raise SetupError("the simulated callees did not start")
        self.pids = [self.proc.pid, *(int(p) for p in line.split()[1:])]

    def stop(self) -> list[dict[str, Any]]:
        if self.proc is None:
            return []
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        if not self.report_path.exists():
            return []
        reports: list[dict[str, Any]] = json.loads(self.report_path.read_text())
        return reports


# ---- the robot ----------------------------------------------------------------------------


def point_config(
    path: str, device: str, n: int, kport: int, cache: Path, extra: list[str]
) -> Config:
    cfg = load_config(REPO / "config.yaml", env={})
    for key, value in (overrides(path, device) | dict(map(setting, extra))).items():
        section, name = key.split(".")
        setattr(getattr(cfg, section), name, value)
    cfg.speech.prompt_cache_dir = str(cache)
    t = cfg.telephony
    t.processes = math.ceil(n / CALLS_PER_WORKER)
    t.username, t.password = USER, PASSWORD
    t.trunk_uri = f"sip:{{phone}}@127.0.0.1:{kport}"
    t.ring_timeout_s = 35
    cfg.callflow.max_call_s = 120
    cfg.campaign.max_concurrent_calls = n
    return cfg


def seed_leads(rt: Runtime, script: str, numbers: list[str]) -> int:
    with rt.db.begin() as s:
        camp = Campaign(name=f"load-{int(time.time())}", script=script, timezone="UTC")
        s.add(camp)
        s.flush()
        for number in numbers:
            s.add(Lead(campaign_id=camp.id, phone=number, name="load", extra={}))
        return camp.id


@dataclass
class Probes:
    nlu: CpuTimer = field(default_factory=CpuTimer)
    vad: CpuTimer = field(default_factory=CpuTimer)
    lag: LoopLag = field(default_factory=LoopLag)


def instrument(rt: Runtime, probes: Probes) -> None:
    """Count the NLU's and the VAD's CPU (before the dialer makes its session factory)."""
    rt.nlu = TimedNlu(rt.nlu, probes.nlu)
    adapter = rt.asr
    if hasattr(adapter, "_make_endpointer"):  # a StreamAdapter (the configured Whisper)
        adapter._make_endpointer = timed_endpointers(adapter._make_endpointer, probes.vad)


async def robot(
    cfg: Config, db_url: str, tr: Traffic, callees: Callees, limit_s: float
) -> dict[str, Any]:
    """The node dials every lead of `tr` once, at any hour, unpaced; the calls run while the
    probes count (bounded by `limit_s`, then the rest are hung up)."""
    plan = replace(
        dial_plan(cfg),
        window=CallingWindow.parse("00:00-24:00"),
        max_attempts=1,
        node="load",
        caps=None,
        pacing=PacingConfig(),
    )
    probes = Probes()
    async with Runtime(cfg, db_url=db_url, plan=plan) as rt:
        instrument(rt, probes)
        dialer = await rt.dialer_for(cfg.callflow.script)
        await _slots(rt, len(tr.personas))
        cid = await asyncio.to_thread(seed_leads, rt, cfg.callflow.script, list(tr.personas))
        procs = Processes(
            {
                "brain": [os.getpid()],
                "media_robot": [p for p in rt.telephony.worker_pids if p],  # type: ignore[attr-defined]
                "callee": callees.pids[:1],
                "media_callee": callees.pids[1:],
            }
        )
        procs.start()
        threads0 = thread_groups()
        renders0 = rt.prompts.stats.misses
        probes.lag.start()
        results, timed_out = await _dial(rt, dialer, cid, procs, limit_s)
        lag = await probes.lag.stop()
        cpu = procs.stop()
        threads = diff(thread_groups(), threads0)
        numbers = _numbers(rt, cid)
        asr = asr_stats(rt)
        renders = rt.prompts.stats.misses - renders0  # robot lines not in the prompt cache
    wall = procs.wall_s
    cores = {k: round(v / wall, 3) for k, v in cpu.items()}
    cores |= {k: round(v / wall, 3) for k, v in threads.items()}
    cores |= {"nlu": round(probes.nlu.cpu_s / wall, 3), "vad": round(probes.vad.cpu_s / wall, 3)}
    return {
        "results": {numbers[r.lead_id]: r for r in results},
        "timed_out": timed_out,
        "cpu_cores": cores,
        "rss_mb": {k: round(v, 1) for k, v in procs.rss_mb.items()},
        "loop_lag": lag,
        "asr": asr,
        "tts_renders_during_calls": renders,
        "wall_s": round(wall, 1),
    }


async def _slots(rt: Runtime, n: int) -> None:
    """Wait (30 s at most) until the media workers can take all `n` calls."""
    deadline = time.monotonic() + 30
    while rt.telephony.free_slots < n:
        if time.monotonic() > deadline:
            raise SetupError(f"the robot's media workers offer {rt.telephony.free_slots} slots")
        await asyncio.sleep(0.2)


async def _dial(
    rt: Runtime, dialer: Any, cid: int, procs: Processes, limit_s: float
) -> tuple[list[AttemptSummary], bool]:
    run = asyncio.create_task(dialer.run_until_idle(cid), name="load.dial")
    deadline = time.monotonic() + limit_s
    while not run.done() and time.monotonic() < deadline:
        await asyncio.wait({run}, timeout=1.0)
        procs.sample()
    timed_out = not run.done()
    if timed_out:
        rt.stop_dialing()
        await rt.hang_up_all()
    results: list[AttemptSummary] = await run
    return results, timed_out


def _numbers(rt: Runtime, cid: int) -> dict[int, str]:
    with rt.db() as s:
        return {lead.id: lead.phone for lead in s.query(Lead).filter_by(campaign_id=cid)}


def asr_stats(rt: Runtime) -> dict[str, Any]:
    """The recognizer's own counters: decodes, batches, queue waits, early endpoints."""
    adapter: Any = rt.asr
    out: dict[str, Any] = {}
    engine = getattr(adapter, "engine", None)
    stats = getattr(engine, "stats", None)
    if stats is not None:
        out |= {"utterances": stats.utterances, "decode_s": round(stats.decode_s, 2)}
        out |= {"drafts": stats.drafts, "batches": getattr(stats, "batches", None)}
        out |= {"full_window_retries": stats.full_window_retries}
    sched = getattr(adapter, "scheduler", None)
    if sched is not None:
        waits = sorted(sched.stats.final_wait_ms)
        out["final_wait_p95_ms"] = round(waits[int(0.95 * (len(waits) - 1))]) if waits else None
        out["max_queued"] = sched.stats.max_queued
    a = getattr(adapter, "stats", None)
    if a is not None:
        out |= {"finals": a.finals, "early_endpoints": a.early_endpoints}
        out |= {"speculative_used": a.speculative_used, "partials": a.partials}
    return out


# ---- the figures --------------------------------------------------------------------------


def pct(values: list[float], q: int) -> float | None:
    """The nearest-rank percentile, rounded (None for no values)."""
    if not values:
        return None
    ranked = sorted(values)
    return round(ranked[min(len(ranked) - 1, max(0, math.ceil(q * len(ranked) / 100) - 1))], 1)


def heard_latencies(rep: dict[str, Any]) -> tuple[list[float], int]:
    """Each callee line's end of speech -> the first robot audio received after it, in ms;
    and how many lines got no reply before the callee spoke again or the call ended."""
    speech, runs = rep["speech"], rep["robot_audio"]
    out, unanswered = [], 0
    for j, (_, end) in enumerate(speech):
        until = speech[j + 1][0] if j + 1 < len(speech) else math.inf
        reply = next((s for s, _ in runs if end < s < until), None)
        if reply is None:
            unanswered += 1
        else:
            out.append((reply - end) * 1000)
    return out, unanswered


def barge_stop(rep: dict[str, Any]) -> float | None:
    """The barge-in line's onset -> the end of the robot audio it spoke over (ms)."""
    if not rep["speech"]:
        return None
    onset = rep["speech"][0][0]
    run = next(((s, e) for s, e in rep["robot_audio"] if s <= onset <= e), None)
    return None if run is None else (run[1] - onset) * 1000


ROBOT_TIMES = ("endpoint_ms", "asr_ms", "decode_ms", "nlu_ms", "heard_latency_ms")


def robot_times(results: dict[str, AttemptSummary]) -> dict[str, dict[str, float | None]]:
    """Where a turn's time went, as the robot's session recorded it (p50/p95 of each step:
    end of speech -> endpoint -> final -> intent; ``heard_latency_ms``: its own end of speech
    -> reply-on-RTP stamp, a cross-check of the callee's ``heard_ms``)."""
    values: dict[str, list[float]] = {k: [] for k in ROBOT_TIMES}
    for res in results.values():
        for turn in res.turns:
            if turn.speaker != "callee":
                continue
            for key in ROBOT_TIMES:
                if isinstance(turn.detail.get(key), int | float):
                    values[key].append(float(turn.detail[key]))
    return {k: {"p50": pct(v, 50), "p95": pct(v, 95)} for k, v in values.items()}


def failure(kind: str, res: AttemptSummary | None, rep: dict[str, Any] | None) -> str | None:
    """Why a call failed (None: it did not): the system, never the callee's words."""
    if res is None:
        return "not_dialled"
    disposition = str(res.disposition)
    if rep is not None and rep.get("gave_up"):
        return "callee_gave_up"
    if kind == "machine":
        return None if disposition in MACHINE_ENDS else f"disposition:{disposition}"
    return None if disposition == "completed" else f"disposition:{disposition}"


def summarise(tr: Traffic, robot_out: dict[str, Any], reports: list[dict[str, Any]]) -> dict:
    by_number = {r["number"]: r for r in reports}
    heard: list[float] = []
    stops: list[float] = []
    reasons: dict[str, int] = {}
    unanswered = frames = late = 0
    for number, kind in tr.kinds.items():
        rep = by_number.get(number)
        why = failure(kind, robot_out["results"].get(number), rep)
        if why is None and robot_out["timed_out"] and number not in robot_out["results"]:
            why = "timed_out"
        if why:
            reasons[why] = reasons.get(why, 0) + 1
        if rep is None:
            continue
        frames, late = frames + rep["frames"], late + rep["late_frames"]
        if kind == "talker":
            got, missed = heard_latencies(rep)
            heard += got
            unanswered += missed
            stop = barge_stop(rep)
            if stop is not None:
                stops.append(stop)
    return {
        "failed": sum(reasons.values()),
        "fail_reasons": reasons,
        "heard_ms": {"p50": pct(heard, 50), "p95": pct(heard, 95), "n": len(heard)},
        "unanswered_lines": unanswered,
        "barge_stop_ms": {"p50": pct(stops, 50), "p95": pct(stops, 95), "n": len(stops)},
        "frames": {
            "received": frames,
            "late": late,
            "late_pct": round(100 * late / max(1, frames + late), 3),
        },
        "kinds": {k: list(tr.kinds.values()).count(k) for k in ("talker", "silent", "machine")},
        "robot_turn_ms": robot_times(robot_out["results"]),
    }


# ---- the point ----------------------------------------------------------------------------


async def point(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    n = args.calls
    workers = math.ceil(n / CALLS_PER_WORKER)
    base = free_port_block(workers)
    tr = traffic(n, base, workers, args.spread_s, args.seed)
    cache = Path(args.cache)
    callees = Callees(
        workdir,
        {
            "sip_port": base,
            "processes": workers,
            "cache_dir": str(cache),
            "patience_s": 20.0,
            "personas": tr.personas,
        },
    )
    await asyncio.to_thread(callees.start)
    reports: list[dict[str, Any]] = []
    try:
        with kamailio(workdir, user=USER, password=PASSWORD, shm_mb=64, pkg_mb=8) as trunk:
            cfg = point_config(args.path, args.device, n, trunk.port, cache, args.set)
            out = await robot(cfg, f"sqlite:///{workdir}/load.db", tr, callees, args.spread_s + 150)
    finally:
        reports = await asyncio.to_thread(callees.stop)
    summary = summarise(tr, out, reports)
    return {"path": args.path, "device": args.device, "calls": n, **summary} | {
        k: out[k]
        for k in ("cpu_cores", "rss_mb", "loop_lag", "asr", "tts_renders_during_calls")
        + ("wall_s", "timed_out")
    }


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("path", choices=sorted(PATHS))
    ap.add_argument("calls", type=int)
    ap.add_argument("out", type=Path)
    ap.add_argument("--spread-s", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cache", default=str(REPO / "build" / "bench" / "load" / "prompts"))
    ap.add_argument("--device", choices=sorted(DEVICES), default="cpu")
    ap.add_argument("--set", action="append", default=[], help="section.key=value")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupted)  # stop like ^C: carrier and callees closed
    with tempfile.TemporaryDirectory(prefix="load-") as tmp:
        try:
            result = asyncio.run(point(args, Path(tmp)))
        except (SetupError, CarrierError) as exc:
            print(f"load: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("load: interrupted", file=sys.stderr)
            return 1
    args.out.write_text(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
