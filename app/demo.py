"""The demo: a 3-lead campaign dialed over real SIP to the local simulated callee."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import delete

from bus import make_bus
from callflow.script import load_script
from campaigns.compliance import CallingWindow
from campaigns.dialer import AttemptSummary, Dialer, TrunkConfig
from app.config import Config
from app.engines import (
    make_asr,
    make_endpointer_factory,
    make_nlu,
    make_prompts,
    make_session_factory,
    make_telephony,
    make_tts,
)
from models import Campaign, DncEntry, Lead, init_db
from nlu.base import INTENTS
from simcallee.callee import SimulatedCallee, load_personas

DEMO_DB = "sqlite:///var/demo.db"
# number -> (persona, expected outcome)
DEMO_LEADS = {
    "13800000001": ("interested", "qualified"),
    "13800000002": ("busy", "callback"),
    "13800000003": ("stop_calling", "dnc"),
}
# The callee's voice: a slower female espeak variant is the one Whisper hears best
# (bench/espeak_roundtrip.py); it also sounds different from the robot.
CALLEE_SPEED = 110
CALLEE_VARIANT = "f2"
CALLEE_END_SILENCE_MS = 1200  # the callee waits this long after the robot stops talking


def _demo_db_url(cfg: Config, keep: bool) -> str:
    if cfg.database.url != "sqlite:///var/callbot.db":  # DATABASE_URL or a configured URL
        return cfg.database.url
    if not keep:
        Path("var/demo.db").unlink(missing_ok=True)
    return DEMO_DB


def make_callee(cfg: Config, telephony: Any) -> SimulatedCallee:
    personas, default = load_personas(cfg.callee.personas)
    voice = make_prompts(cfg, make_tts(cfg, speed=CALLEE_SPEED, variant=CALLEE_VARIANT), "callee")
    return SimulatedCallee(
        telephony=telephony,
        personas=personas,
        default=default,
        voice=voice,
        # the robot's lines can be long: the callee must not take a cap for the end of one
        make_endpointer=make_endpointer_factory(
            cfg, end_silence_ms=CALLEE_END_SILENCE_MS, max_utterance_s=120
        ),
        recordings_dir=cfg.callee.recordings_dir,
    )


async def run_callee_forever(cfg: Config) -> None:
    tel = make_telephony(cfg, listen=True, sip_port=cfg.callee.sip_port, processes=1)
    callee = make_callee(cfg, tel)
    await callee.prepare()
    await tel.start()
    print(f"simulated callee listening on {cfg.callee.sip_host}:{cfg.callee.sip_port}", flush=True)
    try:
        await callee.serve()
    finally:
        await tel.close()


def _seed(db: Any, script_path: str, tz: str) -> int:
    with db.begin() as s:
        # the demo's numbers are simulated; forget opt-outs from earlier demo runs
        s.execute(delete(DncEntry).where(DncEntry.phone.in_(list(DEMO_LEADS))))
        camp = Campaign(name=f"demo-{int(time.time())}", script=script_path, timezone=tz)
        s.add(camp)
        s.flush()
        for phone, (persona, _) in DEMO_LEADS.items():
            s.add(Lead(campaign_id=camp.id, phone=phone, name=persona, extra={"demo": True}))
        return camp.id


async def run_demo(cfg: Config, *, keep_db: bool = False) -> int:
    t_start = time.monotonic()
    db = init_db(_demo_db_url(cfg, keep_db))
    script = load_script(cfg.callflow.script, known_intents=INTENTS)
    nlu = make_nlu(cfg)
    asr = make_asr(cfg)
    prompts = make_prompts(cfg, make_tts(cfg))
    bus = make_bus(cfg.bus.mqtt_url, prefix=cfg.bus.topic_prefix)
    callee_tel = make_telephony(cfg, listen=True, sip_port=cfg.callee.sip_port, processes=1)
    robot_tel = make_telephony(cfg)
    callee = make_callee(cfg, callee_tel)

    t0 = time.monotonic()
    await prompts.prefetch(script.lines())
    await callee.prepare()
    print(f"rendered {len(script.lines())} script lines in {time.monotonic() - t0:.1f}s")

    campaign_id = await asyncio.to_thread(_seed, db, cfg.callflow.script, cfg.campaign.timezone)
    leads_by_id = _lead_ids(db, campaign_id)
    dialer = Dialer(
        db=db,
        telephony=robot_tel,
        make_session=make_session_factory(cfg, script, asr, nlu, prompts),
        bus=bus,
        trunk=TrunkConfig(
            cfg.telephony.trunk_uri,
            cfg.telephony.username,
            cfg.telephony.password,
            cfg.telephony.ring_timeout_s,
        ),
        # simulated numbers: the demo may run at any hour; real campaigns use calling_hours
        window=CallingWindow.parse("00:00-24:00"),
        max_concurrent=cfg.campaign.max_concurrent_calls,
        max_attempts=1,
        node="demo",
    )
    await bus.start()
    await callee_tel.start()
    await robot_tel.start()
    serve = asyncio.create_task(callee.serve(), name="callee.serve")
    try:
        t1 = time.monotonic()
        results = await dialer.run_until_idle(campaign_id)
        calls_s = time.monotonic() - t1
    finally:
        serve.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serve
        await robot_tel.close()
        await callee_tel.close()
        await bus.close()
        close = getattr(asr, "aclose", None)
        if close:
            await close()
    return _report(results, leads_by_id, callee, calls_s, time.monotonic() - t_start)


def _lead_ids(db: Any, campaign_id: int) -> dict[int, str]:
    with db() as s:
        return {lead.id: lead.phone for lead in s.query(Lead).filter_by(campaign_id=campaign_id)}


def _report(
    results: list[AttemptSummary],
    leads: dict[int, str],
    callee: SimulatedCallee,
    calls_s: float,
    total_s: float,
) -> int:
    failures = 0
    latencies: list[float] = []
    recordings = {r.number: r.recording for r in callee.reports}
    for res in sorted(results, key=lambda r: leads[r.lead_id]):
        phone = leads[res.lead_id]
        persona, expected = DEMO_LEADS[phone]
        ok = res.outcome == expected
        failures += not ok
        print(
            f"\n=== lead {res.lead_id} ({persona}) attempt {res.attempt_id}: "
            f"line={res.disposition} sip={res.sip_code} outcome={res.outcome} "
            f"grade={res.grade or '-'}  expected={expected}  {'OK' if ok else 'MISMATCH'}"
        )
        for t in res.turns:
            if t.speaker == "robot":
                cut = " [interrupted]" if t.interrupted else ""
                print(f"  robot : {t.text}{cut}")
            else:
                if t.latency_ms is not None:
                    latencies.append(t.latency_ms)
                d = t.detail
                print(
                    f"  callee: {t.text!r:<28} intent={t.intent} conf={t.confidence:.2f} "
                    f"decode={d.get('decode_ms')}ms (after endpoint {d.get('asr_ms')}ms) "
                    f"nlu={d.get('nlu_ms')}ms partials={len(d.get('partials') or [])} "
                    f"turn_latency={t.latency_ms}ms"
                )
        if recordings.get(phone):
            print(f"  callee recording: {recordings[phone]}")
    latencies.sort()
    summary = {
        "calls": len(results),
        "outcomes_ok": len(results) - failures,
        "turn_latency_ms_p50": latencies[len(latencies) // 2] if latencies else None,
        "turn_latency_ms_max": latencies[-1] if latencies else None,
        "calls_wall_s": round(calls_s, 1),
        "total_wall_s": round(total_s, 1),
    }
    print("\n" + json.dumps(summary, ensure_ascii=False))
    missing = set(DEMO_LEADS) - {leads[r.lead_id] for r in results}
    if failures or missing:
        print(
            f"demo FAILED: {failures} unexpected outcome(s), {len(missing)} lead(s) not dialed",
            file=sys.stderr,
        )
        return 1
    print("demo OK: all 3 outcomes as expected")
    return 0
