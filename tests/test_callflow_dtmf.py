"""Table tests of DTMF, transfer, sending digits and the recording notice: the script syntax
(`callflow.script`) and the pure machine (`callflow.machine`), no audio."""

from __future__ import annotations

from typing import Any

import pytest

from callflow.machine import (
    Answered,
    DialogState,
    Event,
    Finish,
    Hangup,
    NoInput,
    PlaybackFinished,
    RemoteHangup,
    Say,
    SendDigits,
    Transfer,
    TransferDone,
    UserPressed,
    UserSaid,
    step,
)
from callflow.script import Script, ScriptError
from callflow.script_parse import parse_script
from core.vocab import Outcome
from nlu.base import INTENTS


def script_data(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "edge",
        "start": "greeting",
        "dtmf": {"1": "request_human", "2": "complaint_dnc"},
        "transfer": {"say": "正在为您转接。", "failed": "end_human"},
        "global": {"request_human": {"transfer": "agent"}, "complaint_dnc": "end_dnc"},
        "states": {
            "greeting": {
                "say": "您好，我是AI助理。按1转人工，按2不再来电。",
                "dtmf": {"9": "affirm"},
                "on": {"affirm": "menu"},
            },
            "menu": {
                "say": "请稍候。",
                "on": {"affirm": {"send_dtmf": "1#", "goto": "pitch"}, "deny": {"send_dtmf": "0"}},
            },
            "pitch": {"say": "我们的产品很好。"},
            "end_human": {"say": "顾问会回电。", "end": "human_requested"},
            "end_dnc": {"say": "不再打扰。", "end": "dnc"},
            "end_no_response": {"say": "再见。", "end": "no_response"},
        },
    }
    data.update(extra)
    return data


def make(**extra: Any) -> Script:
    return parse_script(script_data(**extra), source="edge.yaml", known_intents=INTENTS)


@pytest.fixture(scope="module")
def script() -> Script:
    return make()


def play(script: Script, events: list[Event]) -> tuple[DialogState, list[Any]]:
    """Answer, then each event; every robot line plays to its end before the next event."""
    state, log = step(script, DialogState(), Answered())
    log = list(log)
    for event in [*events, None]:
        if state.speaking:
            state, actions = step(script, state, PlaybackFinished(state.speaking))
            log += actions
        if event is not None:
            state, actions = step(script, state, event)
            log += actions
    return state, log


def kinds(log: list[Any]) -> list[str]:
    return [type(a).__name__ for a in log]


@pytest.mark.parametrize(
    ("events", "outcome", "node"),
    [
        ([UserPressed("2")], "dnc", "end_dnc"),  # a global key
        ([UserPressed("9")], None, "menu"),  # the state's own key
        ([UserPressed("5")], None, "greeting"),  # unmapped: ignored
        ([UserPressed("9"), UserPressed("9")], None, "menu"),  # 9 is greeting's only
        ([UserPressed("1"), TransferDone(answered=False)], "human_requested", "end_human"),
        ([UserPressed("1"), TransferDone(answered=True)], "transferred", "greeting"),
        ([UserSaid("request_human", 0.95), TransferDone(True)], "transferred", "greeting"),
    ],
)
def test_keys_and_transfers(
    script: Script, events: list[Event], outcome: str | None, node: str
) -> None:
    state, _ = play(script, events)
    assert (state.outcome, state.node) == (outcome, node)


def test_transfer_says_its_line_then_transfers_and_hangs_up_when_answered(script: Script) -> None:
    state, log = play(script, [UserPressed("1")])
    say = log[-2]
    assert isinstance(say, Say) and say.text == "正在为您转接。" and not say.interruptible
    assert log[-1] == Transfer("agent")
    assert state.transfer == "agent" and not state.ended
    # the callee's words and keys and silence while waiting for the agent change nothing
    for ev in (UserSaid("complaint_dnc", 0.99), UserPressed("2"), NoInput()):
        same, actions = step(script, state, ev)
        assert actions == [] and (same.node, same.transfer, same.outcome) == (
            "greeting",
            "agent",
            None,
        )
    after, actions = step(script, state, TransferDone(answered=True))
    assert actions == [Finish(Outcome.TRANSFERRED, None, {}), Hangup()]
    assert after.ended and after.outcome is Outcome.TRANSFERRED
    assert step(script, after, TransferDone(answered=True)) == (after, [])  # once only


def test_a_bridged_transfer_keeps_the_line(script: Script) -> None:
    state, _ = play(script, [UserPressed("1")])
    after, actions = step(script, state, TransferDone(answered=True, keep_line=True))
    assert actions == [Finish(Outcome.TRANSFERRED, None, {})] and after.ended


def test_agent_not_answering_enters_the_failed_state(script: Script) -> None:
    state, log = play(script, [UserPressed("1"), TransferDone(answered=False)])
    assert kinds(log)[-3:] == ["Finish", "Say", "Hangup"]
    assert state.outcome is Outcome.HUMAN_REQUESTED and state.ended


def test_hangup_while_transferring_is_hung_up(script: Script) -> None:
    state, _ = play(script, [UserPressed("1")])
    after, actions = step(script, state, RemoteHangup())
    assert after.outcome is Outcome.HUNG_UP and after.ended
    assert actions == [Finish(Outcome.HUNG_UP, None, {})]


def test_send_dtmf_alone_and_with_goto(script: Script) -> None:
    state, log = play(script, [UserPressed("9"), UserSaid("deny", 0.95)])
    assert log[-1] == SendDigits("0") and state.node == "menu"
    state, log = play(script, [UserPressed("9"), UserSaid("affirm", 0.95)])
    i = log.index(SendDigits("1#"))
    assert isinstance(log[i + 1], Say) and state.node == "pitch"


def test_keys_are_ignored_before_answer_and_while_ending(script: Script) -> None:
    assert step(script, DialogState(), UserPressed("2")) == (DialogState(), [])
    state, _ = step(script, DialogState(), Answered())
    ending, _ = step(script, state, UserPressed("2"))
    assert ending.ending and step(script, ending, UserPressed("1")) == (ending, [])


def test_recording_notice_is_said_before_the_greeting() -> None:
    script = make(recording_notice="本次通话可能会被录音。")
    state, actions = step(script, DialogState(), Answered())
    notice, greeting = actions
    assert isinstance(notice, Say) and isinstance(greeting, Say)
    assert (notice.text, greeting.text) == ("本次通话可能会被录音。", script.states["greeting"].say)
    assert not notice.interruptible and state.speaking == greeting.say_id
    assert "本次通话可能会被录音。" in script.lines() and "正在为您转接。" in script.lines()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"dtmf": {"12": "affirm"}}, "not one DTMF key"),
        ({"dtmf": {"x": "affirm"}}, "not one DTMF key"),
        ({"dtmf": {"1": "no_such_intent"}}, "unknown intent"),
        ({"transfer": {"say": "转接"}}, "transfer.failed must name"),
        ({"transfer": {"failed": "nowhere"}}, "unknown state"),
        ({"transfer": {"faild": "end_human"}}, "unknown key"),
        ({"global": {"affirm": {"transfer": "agent", "goto": "pitch"}}}, "exactly one"),
        ({"global": {"affirm": {"send_dtmf": "1", "say": "x"}}}, "send_dtmf"),
        ({"global": {"affirm": {"send_dtmf": "12x"}}}, "DTMF keys"),
        ({"recording_notice": ""}, "must not be empty"),
    ],
)
def test_bad_edge_syntax_is_a_script_error(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ScriptError, match=message):
        make(**change)


def test_a_recorded_node_requires_a_recording_notice() -> None:
    with pytest.raises(ScriptError, match="recording_notice"):
        parse_script(
            script_data(),
            source="edge.yaml",
            known_intents=INTENTS,
            require_recording_notice=True,
        )
    notice = script_data(recording_notice="本次通话可能会被录音。")
    ok = parse_script(
        notice, source="edge.yaml", known_intents=INTENTS, require_recording_notice=True
    )
    assert ok.recording_notice
