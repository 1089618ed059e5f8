"""`main.py demo`: a 3-lead campaign dialed over real SIP to the local simulated callee.

The robot side is a ``Runtime`` like a production node's, with the demo's own database and a
dial plan that may call at any hour and tries each lead once. The simulated callee has its own
media worker (listening on ``callee.sip_port``) and a different voice; it runs beside the
runtime for as long as the campaign takes. `main.py callee` runs the callee alone.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from app.config import Config
from app.engines import make_endpointer_factory, make_prompts, make_telephony, make_tts
from app.runtime import DialPlan, Runtime, dial_plan
from campaigns.compliance import CallingWindow
from campaigns.dialer import AttemptSummary
from models import Campaign, DncEntry, Lead
from simcallee.callee import SimulatedCallee, load_personas
from telephony.base import Telephony

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


def demo_plan(cfg: Config) -> DialPlan:
    """The node's dial plan, except: simulated numbers may be called at any hour and any
    number of times a day (real campaigns use ``campaign.calling_hours`` and the frequency
    caps), and each lead is tried once."""
    return replace(
        dial_plan(cfg),
        window=CallingWindow.parse("00:00-24:00"),
        max_attempts=1,
        node="demo",
        caps=None,
    )


def make_callee_telephony(cfg: Config) -> Telephony:
    """One listening media worker on ``callee.sip_port``, where the demo trunk points."""
    return make_telephony(cfg, listen=True, sip_port=cfg.callee.sip_port, processes=1)


def make_callee(cfg: Config, telephony: Telephony) -> SimulatedCallee:
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
    tel = make_callee_telephony(cfg)
    callee = make_callee(cfg, tel)
    await callee.prepare()
    await tel.start()
    print(f"simulated callee listening on {cfg.callee.sip_host}:{cfg.callee.sip_port}", flush=True)
    try:
        await callee.serve()
    finally:
        await tel.close()


@asynccontextmanager
async def serving(callee: SimulatedCallee, telephony: Telephony) -> AsyncIterator[None]:
    """The callee's media worker started and the callee answering, until the block ends."""
    await telephony.start()
    try:
        serve = asyncio.create_task(callee.serve(), name="callee.serve")
        try:
            yield
        finally:
            serve.cancel()
            await asyncio.gather(serve, return_exceptions=True)
    finally:
        await telephony.close()


def _seed(db: sessionmaker[Session], script_path: str, tz: str) -> int:
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
    """Dial the three demo leads; print every turn and outcome. 0 when all are as expected."""
    t_start = time.monotonic()
    script_path = cfg.callflow.script
    async with Runtime(cfg, db_url=_demo_db_url(cfg, keep_db), plan=demo_plan(cfg)) as rt:
        callee_tel = make_callee_telephony(cfg)
        callee = make_callee(cfg, callee_tel)
        t0 = time.monotonic()
        dialer = await rt.dialer_for(script_path)  # renders the robot's lines
        await callee.prepare()
        lines = len(rt.script(script_path).lines())
        print(f"rendered {lines} script lines in {time.monotonic() - t0:.1f}s")

        campaign_id = await asyncio.to_thread(_seed, rt.db, script_path, cfg.campaign.timezone)
        leads_by_id = _lead_ids(rt.db, campaign_id)
        async with serving(callee, callee_tel):
            t1 = time.monotonic()
            results = await dialer.run_until_idle(campaign_id)
            calls_s = time.monotonic() - t1
    return _report(results, leads_by_id, callee, calls_s, time.monotonic() - t_start)


def _lead_ids(db: sessionmaker[Session], campaign_id: int) -> dict[int, str]:
    with db() as s:
        return {lead.id: lead.phone for lead in s.query(Lead).filter_by(campaign_id=campaign_id)}


def _percentile(values: list[float], pct: int) -> float | None:
    """The nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, max(0, -(-pct * len(ranked) // 100) - 1))]


def _report(
    results: list[AttemptSummary],
    leads: dict[int, str],
    callee: SimulatedCallee,
    calls_s: float,
    total_s: float,
) -> int:
    failures = 0
    latencies: list[float] = []
    heard: list[float] = []  # end of callee speech -> the reply's first frame on RTP
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
                if d.get("heard_latency_ms") is not None:
                    heard.append(d["heard_latency_ms"])
                print(
                    f"  callee: {t.text!r:<28} intent={t.intent} conf={t.confidence:.2f} "
                    f"decode={d.get('decode_ms')}ms (after endpoint {d.get('asr_ms')}ms) "
                    f"nlu={d.get('nlu_ms')}ms partials={len(d.get('partials') or [])} "
                    f"turn_latency={t.latency_ms}ms heard_at_rtp={d.get('heard_latency_ms')}ms"
                )
        if recordings.get(phone):
            print(f"  callee recording: {recordings[phone]}")
    latencies.sort()
    summary = {
        "calls": len(results),
        "outcomes_ok": len(results) - failures,
        "turn_latency_ms_p50": latencies[len(latencies) // 2] if latencies else None,
        "turn_latency_ms_max": latencies[-1] if latencies else None,
        "rtp_latency_ms_p50": _percentile(heard, 50),
        "rtp_latency_ms_p95": _percentile(heard, 95),
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
