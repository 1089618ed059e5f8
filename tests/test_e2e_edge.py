"""The call's edge over real SIP: DTMF both ways, transfer by REFER and by a bridged second
call, and recording, through Kamailio playing the carrier.

The robot (a `WorkerPool` of real pjsua2 media workers, the real Dialer, CallSession, espeak
voice and a real SQLite store) dials through Kamailio (digest challenge, record-route) to the
simulated callee (another `WorkerPool`). The REFER goes in-dialog through Kamailio along the
record-route; the agent is a second simulated party on the callee's pool (persona
13900000001), reached directly by the leg that the transfer places. The robot's recognizer and
intent model are the fakes: these calls are driven by keys, not speech, and the tests measure
the edge, not understanding (tests/test_e2e_calls.py runs Whisper and the intent model).
"""

from __future__ import annotations

import asyncio
import stat
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("pjsua2")

from app.config import Config
from app.demo import CALLEE_SPEED, CALLEE_VARIANT
from app.engines import (
    make_asr,
    make_nlu,
    make_prompts,
    make_session_factory,
    make_tts,
)
from bus.fake import RecordingBus
from callflow.script import Script
from callflow.script_parse import parse_script
from campaigns.compliance import CallingWindow
from campaigns.dialer import AttemptSummary, Dialer
from campaigns.recordings import Recordings
from models import CallAttempt, Lead, init_db
from nlu.base import INTENTS
from simcallee.callee import CallReport, SimulatedCallee
from telephony.pool import WorkerPool
from tests.siprig import kamailio_trunk, new_campaign, rig_config, sip_pair
from tests.test_trunk_kamailio import KAMAILIO, Carrier, kamailio

pytestmark = [
    pytest.mark.sip,
    pytest.mark.slow,
    pytest.mark.skipif(KAMAILIO is None, reason="kamailio binary not installed (apt kamailio)"),
]

AGENT = "13900000001"
AGENT_LINE = "您好，我是顾问小王，很高兴为您服务。"  # simcallee/personas.yaml
NOTICE = "本次通话可能会被录音。"
GREETING = "您好，我是云启科技的AI语音助理小安。按1转人工，按2不再来电。"


def edge_script() -> Script:
    data: dict[str, Any] = {
        "name": "edge_e2e",
        "start": "greeting",
        "recording_notice": NOTICE,
        "dtmf": {"1": "request_human", "2": "complaint_dnc", "3": "ask_detail"},
        "transfer": {"say": "好的，正在为您转接人工顾问，请稍候。", "failed": "end_human"},
        "global": {"request_human": {"transfer": "agent"}, "complaint_dnc": "end_dnc"},
        "states": {
            "greeting": {
                "say": GREETING,
                "on": {"ask_detail": {"send_dtmf": "42#", "goto": "menu"}},
            },
            "menu": {"say": "好的，请稍候。"},
            "end_human": {"say": "顾问稍后给您回电，再见。", "end": "human_requested"},
            "end_dnc": {"say": "好的，以后不再打扰您，再见。", "end": "dnc"},
            "end_no_response": {"say": "再见。", "end": "no_response"},
        },
    }
    return parse_script(
        data,
        source="edge_e2e",
        known_intents=INTENTS,
        require_disclosure=True,
        require_recording_notice=True,
    )


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    cfg = rig_config(tmp_path_factory.mktemp("edge"), ring_timeout_s=5, max_call_s=60)
    cfg.speech.asr_engine = "fake"
    cfg.nlu.engine = "fake"
    cfg.callflow.no_input_timeout_s = 20  # keys drive these calls; no reprompt in between
    return cfg


@dataclass
class Rig:
    cfg: Config
    db: Any
    callee: SimulatedCallee
    callee_port: int
    carrier: Carrier
    campaign_id: int
    recordings: Recordings
    prompts: Any
    robot: WorkerPool
    engines: dict[str, Any]

    def dialer(self, mode: str) -> Dialer:
        self.cfg.callflow.transfer_to = f"agent=sip:{AGENT}@127.0.0.1:{self.callee_port}"
        self.cfg.callflow.transfer_mode = mode
        make_session = make_session_factory(
            self.cfg, edge_script(), self.engines["asr"], self.engines["nlu"], self.prompts
        )
        return Dialer(
            db=self.db,
            telephony=self.robot,
            make_session=make_session,
            bus=RecordingBus(),
            trunk=kamailio_trunk(self.carrier),
            window=CallingWindow.parse("00:00-24:00"),
            max_concurrent=1,
            max_attempts=3,
            node="edge",
            recordings=self.recordings,
        )

    async def call(self, phone: str, mode: str = "auto") -> tuple[AttemptSummary, CallAttempt]:
        with self.db.begin() as s:
            s.add(Lead(campaign_id=self.campaign_id, phone=phone))
        async with asyncio.timeout(90):
            (res,) = await self.dialer(mode).run_until_idle(self.campaign_id)
        with self.db() as s:
            att = s.get(CallAttempt, res.attempt_id)
            assert att is not None
            s.expunge(att)
        return res, att

    async def report(self, number: str, *, ended: bool = True) -> CallReport:
        """The callee's report for `number`, once its recording is written."""
        async with asyncio.timeout(40):
            while True:
                found = [r for r in self.callee.reports if r.number == number]
                if found and (found[-1].recording or not ended):
                    return found[-1]
                await asyncio.sleep(0.1)


@pytest.fixture
async def rig(cfg: Config, tmp_path: Path) -> AsyncIterator[Rig]:
    cfg.database.url = f"sqlite:///{tmp_path}/edge.db"
    db = init_db(cfg.database.url)
    campaign_id = new_campaign(db, "edge", "edge_e2e")
    engines = {"asr": make_asr(cfg), "nlu": make_nlu(cfg)}
    prompts = make_prompts(cfg, make_tts(cfg))
    await prompts.prefetch(edge_script().lines())
    recordings = Recordings(tmp_path / "recordings", retention_days=30)
    async with sip_pair(cfg) as sip:
        with kamailio(tmp_path, sip.callee_port) as carrier:
            yield Rig(
                cfg,
                db,
                sip.callee,
                sip.callee_port,
                carrier,
                campaign_id,
                recordings,
                prompts,
                sip.robot,
                engines,
            )


# --- audio matching ---------------------------------------------------------------------


def read_wav(path: str | Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64)


def envelope(pcm: np.ndarray) -> np.ndarray:
    """Log energy per 20 ms frame."""
    n = len(pcm) // 160
    frames = pcm[: n * 160].reshape(n, 160)
    return np.log10(1.0 + (frames**2).mean(axis=1))


def find(needle: np.ndarray, haystack: np.ndarray) -> tuple[float, float]:
    """Where the energy envelope of `needle` best matches in `haystack`: (Pearson r, offset
    in seconds). Robust to G.711 and small timing shifts; a different sentence scores low."""
    a, b = envelope(needle), envelope(haystack)
    assert len(b) >= len(a) > 10
    a = (a - a.mean()) / (a.std() + 1e-9)
    best, at = -1.0, 0
    for i in range(len(b) - len(a) + 1):
        w = b[i : i + len(a)]
        r = float(np.dot(a, (w - w.mean()) / (w.std() + 1e-9)) / len(a))
        if r > best:
            best, at = r, i
    return best, at * 0.02


def modes(folder: Path) -> dict[str, int]:
    """Permission bits of a call's folder, its day folder and its files."""
    out = {".": folder.stat().st_mode, "..": folder.parent.stat().st_mode}
    out.update({p.name: p.stat().st_mode for p in folder.iterdir()})
    return {name: stat.S_IMODE(mode) for name, mode in out.items()}


def callee_voice(cfg: Config) -> Any:
    """The simulated callee's (and agent's) voice, as `app.demo.make_callee` builds it."""
    return make_prompts(cfg, make_tts(cfg, speed=CALLEE_SPEED, variant=CALLEE_VARIANT), "callee")


async def rendered(prompts: Any, text: str) -> np.ndarray:
    return np.frombuffer(await prompts.get(text), "<i2").astype(np.float64)


# --- tests ------------------------------------------------------------------------------


async def test_dtmf_both_ways(rig: Rig) -> None:
    # the callee presses 2: the script maps it to complaint_dnc -> the dnc ending
    res, att = await rig.call("13800000203")
    assert (res.outcome, att.disposition, att.final_state) == ("dnc", "completed", "end_dnc")
    pressed = await rig.report("13800000203")
    assert pressed.lines_spoken == ["<dtmf 2>"]
    # the callee presses 3: the handler sends "42#" back (navigating an IVR) and moves on
    res, att = await rig.call("13800000204")
    assert att.final_state == "menu"
    heard = await rig.report("13800000204")
    assert heard.keys_heard == "42#"


async def test_refer_reaches_the_agent(rig: Rig) -> None:
    res, att = await rig.call("13800000201", mode="refer")
    assert (res.outcome, att.transfer_mode, att.agent_answered) == ("transferred", "refer", True)
    assert att.hangup_by == "local"  # the robot left once the NOTIFY said 200
    agent = await rig.report(AGENT, ended=False)
    assert agent.answered
    # the REFER and its NOTIFYs followed the record-route through the carrier
    assert rig.carrier.lines("in-dialog REFER relayed")
    assert rig.carrier.lines("in-dialog NOTIFY relayed")


async def test_refused_refer_bridges_a_call_to_the_agent(rig: Rig) -> None:
    res, att = await rig.call("13800000202", mode="auto")
    assert (res.outcome, att.transfer_mode, att.agent_answered) == ("transferred", "bridge", True)
    agent = await rig.report(AGENT)
    assert agent.answered and agent.lines_spoken == [AGENT_LINE]
    # the callee heard the agent's line through the robot's bridge
    callee = await rig.report("13800000202")
    assert callee.recording is not None
    voice = callee_voice(rig.cfg)  # the agent's voice
    r, at = find(await rendered(voice, AGENT_LINE), read_wav(callee.recording))
    assert r >= 0.8, (r, at)
    # and the robot's recording holds it too (the other side of the bridge)
    assert att.recording_path is not None
    r, _ = find(await rendered(voice, AGENT_LINE), read_wav(Path(att.recording_path, "robot.wav")))
    assert r >= 0.8


async def test_recording_holds_both_directions_privately(rig: Rig) -> None:
    res, att = await rig.call("13800000301")
    assert att.recording_path is not None and res.disposition == "completed"
    folder = Path(att.recording_path)
    assert modes(folder) == {
        ".": 0o700,
        "..": 0o700,
        "callee.wav": 0o600,
        "robot.wav": 0o600,
    }
    robot = read_wav(folder / "robot.wav")
    # the notice, then the greeting, at the start of the robot's track
    r, at = find(await rendered(rig.prompts, GREETING), robot)
    assert r >= 0.9 and at < 6.0, (r, at)
    r_notice, at_notice = find(await rendered(rig.prompts, NOTICE), robot)
    assert r_notice >= 0.9 and at_notice < at
    # the callee's "喂，你好" is in the callee track, after the greeting
    voice = callee_voice(rig.cfg)
    r, at_hello = find(await rendered(voice, "喂，你好"), read_wav(folder / "callee.wav"))
    assert r >= 0.8 and at_hello > at, (r, at_hello)
