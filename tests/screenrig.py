"""One session over the fakes with the screening on (the demo script, no real SIP): the rig of
tests/test_callflow_screening.py and tests/test_callflow_voicemail.py, which differ only in
what the keyword arguments set."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from callflow.gate import Screening
from callflow.script_parse import load_script
from callflow.session import CallSession
from callflow.voicemail import Voicemail
from nlu.base import INTENTS
from nlu.fake import FakeClassifier
from speech.asr.fake import FakeStreamAsr
from speech.cache import PromptCache
from speech.tts.fake import FakeTts
from telephony.base import DialRequest
from telephony.fake import FakeCall, FakeTelephony

DEMO_SCRIPT = "callflow/scripts/saas_demo.yaml"


async def screened_session(
    tmp_path: Path,
    asr: FakeStreamAsr,
    screening: Screening,
    *,
    voicemail: Voicemail | None,
    auto_play: bool,
    no_input_timeout_s: float,
    max_call_s: float,
) -> tuple[CallSession, FakeCall]:
    """A dialled fake call and its session (not started): the demo script with `voicemail`
    as its ``voicemail:`` section; `auto_play` False plays the robot's audio only as the test
    advances the call's clock."""
    script = load_script(DEMO_SCRIPT, known_intents=INTENTS)
    script = replace(script, voicemail=voicemail)
    tel = FakeTelephony(auto_play=auto_play)
    call = await tel.dial(DialRequest("sip:13800000001@sim"))
    session = CallSession(
        call=call,
        script=script,
        asr=asr,
        nlu=FakeClassifier(),
        prompts=PromptCache(FakeTts(), tmp_path / "cache"),
        no_input_timeout_s=no_input_timeout_s,
        max_call_s=max_call_s,
        screening=screening,
    )
    return session, call
