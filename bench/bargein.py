"""Barge-in over real SIP: how fast the robot goes quiet, and whether 嗯 stops it. JSON out.

    .venv/bin/python bench/bargein.py [--backchannels 10] [--interruptions 5] [--direct]
                                      [--data bench/data/bargein.yaml] [--seed 1]

The robot node's own parts (a pjsua2 ``WorkerPool``, the configured streaming recognizer with
its VAD, the intent model, espeak prompts, ``CallSession`` with the configured barge-in policy)
call a simulated callee, a listening ``WorkerPool``, through Kamailio on loopback acting as the
carrier (digest auth, record-route; ``--direct`` skips it). In each call the callee waits for
the robot's greeting, lets it play 0.6-1.2 s, then says one phrase of the data file over it,
and records every frame it receives with its arrival time.

* ``p50_stop_ms`` / ``p95_stop_ms`` (interruptions): the callee's speech onset (its first
  loud frame, stamped by its media worker as it went out on RTP) to the last robot frame with
  audio the callee received before the robot went quiet (a gap of 240 ms or more). Target
  <= 250 ms. ``missed_barge_in``: interruptions after which the robot's line was not cut.
* ``backchannel_false_barge_in``: the share of backchannel calls in which the robot's line was
  cut or the backchannel was taken as a turn. Target < 5 %.
* ``worker_stop_p95_ms``: the same stop as the robot's media worker stamps it (the turn
  records' ``stop_ms``: onset as the robot received it -> its last frame sent).

Bounded: at most ``--backchannels + --interruptions`` calls, one at a time, each under 30 s.
Exit 0 when every call ran (targets are reported, not enforced), 1 when a call failed, 2 on a
setup problem (no Kamailio, a bad data file).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from app.config import Config, load_config  # noqa: E402
from app.engines import (  # noqa: E402
    barge_in_policy,
    make_asr,
    make_nlu,
    make_prompts,
    make_telephony,
    make_tts,
)
from callflow.results import SessionResult  # noqa: E402
from callflow.script import Script  # noqa: E402
from callflow.script_parse import parse_script  # noqa: E402
from callflow.session import CallSession  # noqa: E402
from core.audio import FRAME_BYTES, FRAME_S, pcm_seconds  # noqa: E402
from core.yamlload import YamlLoadError, load_yaml  # noqa: E402
from nlu.base import INTENTS  # noqa: E402
from simcallee.carrier import CarrierError, kamailio  # noqa: E402
from telephony.base import CallState, DialRequest, InboundCall, PlayoutStarted  # noqa: E402
from telephony.pool import WorkerPool  # noqa: E402

USER, PASSWORD, LEAD = "robot", "bench-pw", "13800000001"
LOUD = 400  # peak sample of a frame with audio (espeak speech peaks in the thousands)
GAP_FRAMES = 12  # 240 ms of quiet: the robot stopped (espeak's pauses between words are shorter)
GREETING = (
    "您好，我是云启科技的AI语音助手小安，今天打扰您一分钟，想给您详细介绍一下我们新推出的"
    "智能客服系统，它可以自动接听和拨打电话，二十四小时在线，听得懂客户的各种问题，"
    "还能把重要的客户自动转给您的销售同事跟进，成本只有人工客服的三分之一左右，"
    "很多和您一样的企业用了以后都说效果很好，您现在方便听我简单说几句吗？"
)


class SetupError(Exception):
    """The bench cannot run here (the message says why, in one line)."""


@dataclass
class Trial:
    kind: str  # "backchannel" | "interruption"
    text: str
    delay_s: float  # the robot's greeting plays this long before the callee speaks


@dataclass
class Heard:
    """What the callee received: (arrival time, loud) per frame; when its own speech began."""

    frames: list[tuple[float, bool]] = field(default_factory=list)
    onset: float | None = None


def loud(frame: bytes) -> bool:
    return int(np.abs(np.frombuffer(frame, "<i2")).max(initial=0)) >= LOUD


def speech_offset_s(pcm: bytes) -> float:
    """Where the first loud frame of `pcm` starts (TTS audio may open with silence)."""
    for i in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES):
        if loud(pcm[i : i + FRAME_BYTES]):
            return i / FRAME_BYTES * FRAME_S
    return 0.0


def stop_ms(heard: Heard) -> float | None:
    """Callee speech onset -> the last loud robot frame before a quiet gap (None: no gap)."""
    if heard.onset is None:
        return None
    last, quiet = heard.onset, 0
    for t, is_loud in heard.frames:  # a quiet run that began before the onset counts too
        if is_loud:
            last, quiet = t, 0
        else:
            quiet += 1
            if quiet >= GAP_FRAMES and t >= heard.onset:
                return max(0.0, (last - heard.onset) * 1000)
    return None


# ---- one call ------------------------------------------------------------------------------


async def callee_side(inbound: InboundCall, pcm: bytes, delay_s: float) -> Heard:
    """Answer, wait for the robot to speak, let it go on `delay_s`, speak over it, listen."""
    heard = Heard()
    robot_spoke = asyncio.Event()
    started: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    async def listen() -> None:
        async for frame in inbound.audio():
            is_loud = loud(frame)
            heard.frames.append((time.monotonic(), is_loud))
            if is_loud:
                robot_spoke.set()

    async def events() -> None:
        async for ev in inbound.events():
            if isinstance(ev, PlayoutStarted) and ev.name == "speech" and not started.done():
                started.set_result(ev.t)

    await inbound.answer()
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(listen()), tg.create_task(events())]
        await asyncio.wait_for(robot_spoke.wait(), 15)
        await asyncio.sleep(delay_s)
        inbound.cue("speech")
        inbound.send_audio(pcm)
        heard.onset = await asyncio.wait_for(started, 5) + speech_offset_s(pcm)
        await asyncio.sleep(pcm_seconds(pcm) + 3.0)  # the decision, and the robot's reply
        await inbound.hangup()
        for task in tasks:
            task.cancel()
    return heard


@dataclass
class Rig:
    cfg: Config
    script: Script
    robot: WorkerPool
    callee: WorkerPool
    uri: str
    engines: dict[str, Any]
    voice: Any


async def one_call(rig: Rig, trial: Trial) -> tuple[SessionResult, Heard]:
    pcm = await rig.voice.get(trial.text)
    call = await rig.robot.dial(DialRequest(uri=rig.uri, ring_timeout_s=10))
    inbound = await asyncio.wait_for(rig.callee.incoming(), 10)
    session = CallSession(
        call=call,
        script=rig.script,
        asr=rig.engines["asr"],
        nlu=rig.engines["nlu"],
        prompts=rig.engines["prompts"],
        no_input_timeout_s=20,
        max_call_s=30,
        barge_in=barge_in_policy(rig.cfg),
    )
    async with asyncio.timeout(40):
        result, heard = await asyncio.gather(
            session.run(), callee_side(inbound, pcm, trial.delay_s)
        )
    return result, heard


# ---- the whole bench -----------------------------------------------------------------------


def trials(data: Path, backchannels: int, interruptions: int, seed: int) -> list[Trial]:
    try:
        raw = load_yaml(data, what="bench data file")
    except YamlLoadError as exc:
        raise SetupError(str(exc)) from None
    if not isinstance(raw, dict):
        raise SetupError(f"{data}: expected backchannels: and interruptions: lists")
    rng = random.Random(seed)
    out = []
    for kind, key, count in (
        ("backchannel", "backchannels", backchannels),
        ("interruption", "interruptions", interruptions),
    ):
        phrases = raw.get(key)
        if (
            not isinstance(phrases, list)
            or not phrases
            or not all(isinstance(p, str) and p for p in phrases)
        ):
            raise SetupError(f"{data}: {key} must be a non-empty list of phrases")
        out += [Trial(kind, phrases[i % len(phrases)], rng.uniform(0.6, 1.2)) for i in range(count)]
    rng.shuffle(out)
    return out


def bench_config(workdir: Path) -> Config:
    cfg = load_config(REPO / "config.yaml", env={})
    cfg.speech.prompt_cache_dir = str(workdir / "prompts")
    cfg.telephony.username, cfg.telephony.password = USER, PASSWORD
    cfg.telephony.ring_timeout_s = 10
    return cfg


def bench_script() -> Script:
    data = {
        "name": "bargein_bench",
        "start": "greeting",
        "states": {
            "greeting": {"say": GREETING, "default": {"say": "好的，我明白了。"}},
            "end_no_response": {"say": "再见。", "end": "no_response"},
        },
    }
    return parse_script(data, source="bench", known_intents=INTENTS, require_disclosure=True)


def summarise(runs: list[tuple[Trial, SessionResult, Heard]], elapsed: float) -> dict[str, Any]:
    stops, worker_stops, missed, false_stops = [], [], 0, 0
    for trial, result, heard in runs:
        greeting = next(t for t in result.turns if t.speaker == "robot")
        turns = [t for t in result.turns if t.speaker == "callee"]
        if trial.kind == "backchannel":
            false_stops += bool(greeting.interrupted) or bool(turns)
            continue
        measured = stop_ms(heard)
        if not greeting.interrupted or measured is None:
            missed += 1
            continue
        stops.append(measured)
        worker_stops += greeting.detail.get("stop_ms", [])[:1]
    n_back = sum(t.kind == "backchannel" for t, _, _ in runs)
    return {
        "calls": len(runs),
        "interruptions": len(runs) - n_back,
        "p50_stop_ms": _pct(stops, 50),
        "p95_stop_ms": _pct(stops, 95),
        "max_stop_ms": round(max(stops), 1) if stops else None,
        "missed_barge_in": missed,
        "worker_stop_p95_ms": _pct(worker_stops, 95),
        "backchannels": n_back,
        "backchannel_false_barge_in": round(false_stops / n_back, 3) if n_back else None,
        "elapsed_s": round(elapsed, 1),
    }


def details(trial: Trial, result: SessionResult, heard: Heard) -> dict[str, Any]:
    """One call, for --details: the phrase (the bench's own), how the robot took it."""
    greeting = next(t for t in result.turns if t.speaker == "robot")
    return {
        "kind": trial.kind,
        "said": trial.text,
        "stop_ms": stop_ms(heard),
        "cut": greeting.detail.get("barge_in"),
        "backchannels": greeting.detail.get("backchannels"),
        "turns": [
            (t.text, t.detail.get("asr_confidence"), t.detail.get("audio_s"))
            for t in result.turns
            if t.speaker == "callee"
        ],
    }


def _pct(values: list[float], pct: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[pct - 1], 1)


async def run(args: argparse.Namespace, workdir: Path) -> tuple[dict[str, Any], int]:
    plan = trials(args.data, args.backchannels, args.interruptions, args.seed)
    cfg = bench_config(workdir)
    tts = make_tts(cfg)
    prompts = make_prompts(cfg, tts)
    engines = {"asr": make_asr(cfg), "nlu": make_nlu(cfg), "prompts": prompts}
    script = bench_script()
    await prompts.prefetch(script.lines())
    callee = make_telephony(cfg, listen=True, sip_port=0, processes=1)
    robot = make_telephony(cfg, processes=1)
    assert isinstance(callee, WorkerPool) and isinstance(robot, WorkerPool)
    await callee.start()
    await robot.start()
    failed, runs = 0, []
    t0 = time.monotonic()
    try:
        with contextlib.ExitStack() as stack:
            port = callee.sip_ports[0]
            if not args.direct:
                carrier = kamailio(workdir, user=USER, password=PASSWORD, callee_port=port)
                port = stack.enter_context(carrier).port
            voice = make_prompts(cfg, tts, "callee")
            rig = Rig(cfg, script, robot, callee, f"sip:{LEAD}@127.0.0.1:{port}", engines, voice)
            for trial in plan:
                try:
                    result, heard = await one_call(rig, trial)
                except (TimeoutError, OSError, RuntimeError) as exc:
                    failed += 1
                    print(
                        f"bargein: a {trial.kind} call failed: {type(exc).__name__}",
                        file=sys.stderr,
                    )
                    continue
                if result.end is None or result.end.state is not CallState.ENDED:
                    failed += 1
                    continue
                runs.append((trial, result, heard))
    finally:
        await robot.close()
        await callee.close()
    report = summarise(runs, time.monotonic() - t0)
    if args.details:
        report["details"] = [details(trial, result, heard) for trial, result, heard in runs]
    report["failed_calls"] = failed
    report["carrier"] = "direct" if args.direct else "kamailio"
    return report, 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backchannels", type=int, default=10, help="backchannel calls")
    ap.add_argument("--interruptions", type=int, default=5, help="interruption calls")
    ap.add_argument("--data", type=Path, default=REPO / "bench" / "data" / "bargein.yaml")
    ap.add_argument("--direct", action="store_true", help="dial the callee without Kamailio")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--details", action="store_true", help="add each call's outcome")
    args = ap.parse_args(argv)
    if not 0 <= args.backchannels <= 100 or not 0 <= args.interruptions <= 100:
        print("bargein: --backchannels and --interruptions must be 0..100", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bargein-") as tmp:
        try:
            report, code = asyncio.run(run(args, Path(tmp)))
        except SetupError as exc:
            print(f"bargein: {exc}", file=sys.stderr)
            return 2
        except CarrierError as exc:
            print(f"bargein: {exc}, or pass --direct", file=sys.stderr)
            return 2
    print(json.dumps(report, ensure_ascii=False))
    return code


if __name__ == "__main__":
    sys.exit(main())
