"""Table tests of the pure dialogue machine on the shipped demo script."""

from __future__ import annotations

import pytest

from callflow.machine import (
    Answered,
    CallState,
    Finish,
    Hangup,
    NoInput,
    PlaybackFinished,
    RemoteHangup,
    Say,
    UserSaid,
    step,
)
from callflow.script import Script, load_script
from nlu.base import INTENTS


@pytest.fixture(scope="module")
def script() -> Script:
    return load_script("callflow/scripts/saas_demo.yaml", known_intents=INTENTS)


def run(script: Script, intents: list[str]) -> tuple[CallState, list[object]]:
    """Answer, then for each intent: finish the current line and hear the intent."""
    state, actions = step(script, CallState(), Answered())
    log: list[object] = list(actions)
    for intent in intents:
        state, actions = step(script, state, PlaybackFinished(state.speaking or 0))
        log += actions
        state, actions = step(script, state, UserSaid(intent, 0.9, ""))
        log += actions
    if state.speaking:
        state, actions = step(script, state, PlaybackFinished(state.speaking))
        log += actions
    return state, log


@pytest.mark.parametrize(
    ("intents", "outcome", "node"),
    [
        (["affirm", "affirm", "book_meeting"], "qualified", "end_qualified"),
        (["affirm", "ask_price", "affirm"], "qualified", "end_qualified"),
        (["affirm", "busy_callback"], "callback", "end_callback"),
        (["busy_callback"], "callback", "end_callback"),
        (["complaint_dnc"], "dnc", "end_dnc"),
        (["affirm", "ask_price", "complaint_dnc"], "dnc", "end_dnc"),
        (["deny"], "not_interested", "end_not_interested"),
        (["voicemail"], "voicemail", "end_voicemail"),
        (["wrong_person"], "wrong_person", "end_wrong_person"),
        (["other", "other", "other", "other"], "no_response", "end_no_response"),
        (["affirm", "ask_price", "hesitate"], "callback", "end_callback"),
    ],
)
def test_paths_end_with_outcome_then_hangup(
    script: Script, intents: list[str], outcome: str, node: str
) -> None:
    state, log = run(script, intents)
    finishes = [a for a in log if isinstance(a, Finish)]
    assert [f.outcome for f in finishes] == [outcome]
    assert state.node == node
    assert state.ended
    assert isinstance(log[-1], Hangup)


def test_greeting_discloses_ai(script: Script) -> None:
    _, actions = step(script, CallState(), Answered())
    assert isinstance(actions[0], Say)
    assert "AI" in actions[0].text or "机器人" in actions[0].text


def test_identity_question_answers_in_place(script: Script) -> None:
    state, _ = step(script, CallState(), Answered())
    state, actions = step(script, state, UserSaid("ask_identity", 0.9))
    assert state.node == "greeting"
    assert len(actions) == 1 and isinstance(actions[0], Say)
    assert "机器人" in actions[0].text


def test_repeat_says_current_line_again(script: Script) -> None:
    state, first = step(script, CallState(), Answered())
    state, again = step(script, state, UserSaid("repeat", 0.9))
    assert isinstance(first[0], Say) and isinstance(again[0], Say)
    assert again[0].text == first[0].text and again[0].say_id != first[0].say_id


def test_no_input_reprompts_then_gives_up(script: Script) -> None:
    state, _ = step(script, CallState(), Answered())
    says = []
    for _ in range(script.max_retries + 1):
        state, actions = step(script, state, NoInput())
        says += [a.text for a in actions if isinstance(a, Say)]
    assert says[: script.max_retries] == [script.reprompt] * script.max_retries
    assert state.node == script.give_up and state.outcome == "no_response"


def test_remote_hangup_mid_sentence_records_hung_up(script: Script) -> None:
    state, _ = step(script, CallState(), Answered())
    state, actions = step(script, state, RemoteHangup())
    assert state.ended
    assert actions == [Finish("hung_up", None, {})]
    # nothing happens after the end
    assert step(script, state, UserSaid("affirm", 0.9)) == (state, [])


def test_remote_hangup_during_goodbye_keeps_outcome(script: Script) -> None:
    state, _ = step(script, CallState(), Answered())
    state, _ = step(script, state, UserSaid("complaint_dnc", 0.99))
    state, actions = step(script, state, RemoteHangup())
    assert actions == [] and state.outcome == "dnc"


def test_speech_during_goodbye_is_ignored(script: Script) -> None:
    state, _ = step(script, CallState(), Answered())
    state, _ = step(script, state, UserSaid("busy_callback", 0.9))
    assert step(script, state, UserSaid("affirm", 0.9))[1] == []


def test_stale_playback_report_is_ignored(script: Script) -> None:
    state, _ = step(script, CallState(), Answered())
    state, _ = step(script, state, UserSaid("ask_identity", 0.9))  # say 2 now playing
    state2, actions = step(script, state, PlaybackFinished(1))
    assert actions == [] and state2.speaking == state.speaking


def test_slots_reach_the_outcome(script: Script) -> None:
    state, _ = step(script, CallState(), Answered())
    _, actions = step(
        script,
        state,
        UserSaid("busy_callback", 0.9, slots={"callback_at": "2026-11-23T06:00:00+00:00"}),
    )
    fin = [a for a in actions if isinstance(a, Finish)][0]
    assert fin.slots["callback_at"].startswith("2026-11-23")


def test_every_state_reachable_lines_are_rendered(script: Script) -> None:
    lines = script.lines()
    for st in script.states.values():
        assert st.say in lines
    assert script.reprompt in lines
