"""End to end over real SIP: robot WorkerPool -> loopback -> simulated callee WorkerPool.

Real pjsua2 media workers, real espeak-ng voices, real Whisper base ASR, the trained intent
model, the demo script, and a real SQLite database. Each test stores and checks the
attempt's disposition.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import wave
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

pytest.importorskip("pjsua2")
pytest.importorskip("faster_whisper")

from app.config import Config
from app.engines import (
    make_asr,
    make_nlu,
    make_prompts,
    make_session_factory,
    make_tts,
)
from bus.fake import RecordingBus
from callflow.script_parse import load_script
from campaigns.compliance import CallingWindow
from campaigns.dialer import AttemptSummary, Dialer, TrunkConfig
from models import CallAttempt, Lead, init_db
from nlu.base import INTENTS
from simcallee.callee import SimulatedCallee
from telephony.pool import WorkerPool
from tests.siprig import new_campaign, rig_config, sip_pair

pytestmark = [pytest.mark.sip, pytest.mark.asr, pytest.mark.slow]


def syllable_recall(reference: str, heard: str) -> float:
    """Share of the reference's toneless pinyin syllables found, in order, in `heard`.

    The robot's espeak voice is recognized with homophone errors (智能 -> 只能), which say
    nothing about whether the audio arrived; matching on sound does.
    """
    from pypinyin import lazy_pinyin

    ref = [s for s in lazy_pinyin(reference) if s.isalpha()]
    hyp = [s for s in lazy_pinyin(heard) if s.isalpha()]
    prev = [0] * (len(hyp) + 1)
    for r in ref:  # longest common subsequence
        cur = [0]
        for j, h in enumerate(hyp):
            cur.append(prev[j] + 1 if r == h else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1] / max(1, len(ref))


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    base = tmp_path_factory.mktemp("e2e")
    # the interested persona's call is ~55 s of speech and replies on an idle machine; a
    # confirmation question or a loaded CPU adds more, and the cap is not what is tested here
    cfg = rig_config(base, ring_timeout_s=5, max_call_s=120)
    cfg.database.url = f"sqlite:///{base}/e2e.db"
    return cfg


@pytest.fixture(scope="module")
def engines(cfg: Config) -> dict[str, Any]:
    """Heavy, shared, loop-independent parts: one ASR model, one NLU model, one voice."""
    return {"asr": make_asr(cfg), "nlu": make_nlu(cfg), "tts": make_tts(cfg)}


@dataclass
class Rig:
    cfg: Config
    db: Any
    robot: WorkerPool
    callee: SimulatedCallee
    callee_port: int
    campaign_id: int
    dialer: Callable[[str], Dialer]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def rig(cfg: Config, engines: dict[str, Any]) -> AsyncIterator[Rig]:
    db = init_db(cfg.database.url)
    campaign_id = new_campaign(db, "e2e", cfg.callflow.script)
    script = load_script(cfg.callflow.script, known_intents=INTENTS)
    prompts = make_prompts(cfg, engines["tts"])
    await prompts.prefetch(script.lines()[:3])
    # before the workers start: it loads the knowledge index (seconds of blocking imports)
    make_session = make_session_factory(cfg, script, engines["asr"], engines["nlu"], prompts)
    async with sip_pair(cfg) as sip:

        def dialer(uri_template: str) -> Dialer:
            return Dialer(
                db=db,
                telephony=sip.robot,
                make_session=make_session,
                bus=RecordingBus(),
                trunk=TrunkConfig(uri_template, ring_timeout_s=cfg.telephony.ring_timeout_s),
                window=CallingWindow.parse("00:00-24:00"),
                max_concurrent=2,
                max_attempts=3,
                node="e2e",
            )

        yield Rig(cfg, db, sip.robot, sip.callee, sip.callee_port, campaign_id, dialer)


def add_lead(rig: Rig, phone: str) -> int:
    with rig.db.begin() as s:
        lead = Lead(campaign_id=rig.campaign_id, phone=phone)
        s.add(lead)
        s.flush()
        return int(lead.id)


def stored_attempt(rig: Rig, res: AttemptSummary) -> CallAttempt:
    with rig.db() as s:
        att = s.get(CallAttempt, res.attempt_id)
        assert att is not None
        return att


def read_wav(path: str) -> bytes:
    with wave.open(path, "rb") as w:
        assert w.getframerate() == 8000
        return w.readframes(w.getnframes())


async def test_real_call_both_directions(rig: Rig, engines: dict[str, Any]) -> None:
    add_lead(rig, "13800000001")  # the interested persona
    (res,) = await rig.dialer(f"sip:{{phone}}@127.0.0.1:{rig.callee_port}").run_until_idle(
        rig.campaign_id
    )
    att = stored_attempt(rig, res)
    assert att.disposition == "completed" and att.answered_at is not None
    # robot -> callee: the greeting is in the callee's recording, as the ASR hears it
    (report,) = [r for r in rig.callee.reports if r.number == "13800000001"]
    assert report.recording and report.heard_s > 5
    pcm = read_wav(report.recording)[: 8000 * 2 * 12]  # the first 12 s: the greeting
    heard = (await engines["asr"].transcribe(pcm, 8000)).text
    greeting = res.turns[0].text
    assert res.turns[0].speaker == "robot"
    assert syllable_recall(greeting[:40], heard) >= 0.5, heard
    # callee -> robot: the callee's first line was recognized with the right intent
    dialogue = [(t.speaker, t.text, t.intent) for t in res.turns]
    first = next(t for t in res.turns if t.speaker == "callee")
    assert first.intent == "affirm", dialogue
    assert res.outcome == "qualified", dialogue


async def test_busy_486_is_stored(rig: Rig) -> None:
    add_lead(rig, "13800000486")
    (res,) = await rig.dialer(f"sip:{{phone}}@127.0.0.1:{rig.callee_port}").run_until_idle(
        rig.campaign_id
    )
    att = stored_attempt(rig, res)
    assert (att.disposition, att.sip_code, att.outcome) == ("busy", 486, None)


async def test_unreachable_uri_is_stored_as_failed(rig: Rig) -> None:
    add_lead(rig, "13800000001")
    closed = free_udp_port()  # nothing listens there
    (res,) = await rig.dialer(f"sip:{{phone}}@127.0.0.1:{closed}").run_until_idle(rig.campaign_id)
    att = stored_attempt(rig, res)
    assert att.disposition == "failed" and att.answered_at is None
    with rig.db() as s:
        lead = s.query(Lead).filter_by(campaign_id=rig.campaign_id).one()
        assert lead.status == "retry"


async def test_callee_hangs_up_mid_sentence(rig: Rig) -> None:
    add_lead(rig, "13800000099")  # hangs up 1.5 s into the greeting
    (res,) = await rig.dialer(f"sip:{{phone}}@127.0.0.1:{rig.callee_port}").run_until_idle(
        rig.campaign_id
    )
    att = stored_attempt(rig, res)
    assert (att.disposition, att.hangup_by, att.outcome) == ("completed", "remote", "hung_up")
    assert att.final_state == "greeting"


async def test_worker_killed_mid_call(rig: Rig) -> None:
    add_lead(rig, "13800000001")
    dialer = rig.dialer(f"sip:{{phone}}@127.0.0.1:{rig.callee_port}")
    task = asyncio.create_task(dialer.run_until_idle(rig.campaign_id))
    async with asyncio.timeout(20):
        while not any(r.answered for r in rig.callee.reports):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # mid-greeting
    pid = rig.robot.worker_pids[0]
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    (res,) = await asyncio.wait_for(task, 30)
    att = stored_attempt(rig, res)
    assert att.disposition == "worker_lost"
    with rig.db() as s:
        lead = s.query(Lead).filter_by(campaign_id=rig.campaign_id).one()
        assert lead.status == "retry"  # dialed again later
    # the pool restarted the worker
    async with asyncio.timeout(10):
        while rig.robot.worker_pids[0] in (None, pid):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
