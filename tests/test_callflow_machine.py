"""Table tests of the pure dialogue machine on the shipped demo script."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest

from callflow.machine import (
    Answered,
    DialogState,
    Finish,
    Handled,
    Hangup,
    NoInput,
    PlaybackFinished,
    RemoteHangup,
    Say,
    UserContinued,
    UserSaid,
    step,
)
from callflow.personal import render
from callflow.script import Script
from callflow.script_parse import load_script
from core.vocab import Outcome
from nlu.base import INTENTS


@pytest.fixture(scope="module")
def script() -> Script:
    return load_script("callflow/scripts/saas_demo.yaml", known_intents=INTENTS)


def run(script: Script, intents: list[str]) -> tuple[DialogState, list[object]]:
    """Answer, then for each intent: finish the current line and hear the intent."""
    state, actions = step(script, DialogState(), Answered())
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
    _, actions = step(script, DialogState(), Answered())
    assert isinstance(actions[0], Say)
    assert "AI" in actions[0].text or "机器人" in actions[0].text


def test_identity_question_answers_in_place(script: Script) -> None:
    state, _ = step(script, DialogState(), Answered())
    state, actions = step(script, state, UserSaid("ask_identity", 0.9))
    assert state.node == "greeting"
    assert len(actions) == 1 and isinstance(actions[0], Say)
    assert "机器人" in actions[0].text


def test_repeat_says_current_line_again(script: Script) -> None:
    state, first = step(script, DialogState(), Answered())
    state, again = step(script, state, UserSaid("repeat", 0.9))
    assert isinstance(first[0], Say) and isinstance(again[0], Say)
    assert again[0].text == first[0].text and again[0].say_id != first[0].say_id


def test_no_input_asks_if_the_callee_is_there_then_says_goodbye(script: Script) -> None:
    """Silence has its own path (``silence:``), apart from the no-match reprompts."""
    assert script.silence is not None
    state, _ = step(script, DialogState(), Answered())
    says = []
    for _ in range(script.silence.max + 1):
        state, actions = step(script, state, NoInput())
        says += [a.text for a in actions if isinstance(a, Say)]
    assert says == [script.silence.prompt] * script.silence.max + [script.silence.goodbye]
    assert state.ending and state.outcome == "no_response" and script.reprompt not in says


def test_remote_hangup_mid_sentence_records_hung_up(script: Script) -> None:
    state, _ = step(script, DialogState(), Answered())
    state, actions = step(script, state, RemoteHangup())
    assert state.ended
    assert actions == [Finish(Outcome.HUNG_UP, None, {})]
    # nothing happens after the end
    assert step(script, state, UserSaid("affirm", 0.9)) == (state, [])


def test_remote_hangup_during_goodbye_keeps_outcome(script: Script) -> None:
    state, _ = step(script, DialogState(), Answered())
    state, _ = step(script, state, UserSaid("complaint_dnc", 0.99))
    state, actions = step(script, state, RemoteHangup())
    assert actions == [] and state.outcome == "dnc"


def test_speech_during_goodbye_is_ignored(script: Script) -> None:
    state, _ = step(script, DialogState(), Answered())
    state, _ = step(script, state, UserSaid("busy_callback", 0.9))
    assert step(script, state, UserSaid("affirm", 0.9))[1] == []


def test_stale_playback_report_is_ignored(script: Script) -> None:
    state, _ = step(script, DialogState(), Answered())
    state, _ = step(script, state, UserSaid("ask_identity", 0.9))  # say 2 now playing
    state2, actions = step(script, state, PlaybackFinished(1))
    assert actions == [] and state2.speaking == state.speaking


def test_slots_reach_the_outcome(script: Script) -> None:
    state, _ = step(script, DialogState(), Answered())
    _, actions = step(
        script,
        state,
        UserSaid("busy_callback", 0.9, slots={"callback_at": "2026-11-23T06:00:00+00:00"}),
    )
    fin = [a for a in actions if isinstance(a, Finish)][0]
    assert fin.slots["callback_at"].startswith("2026-11-23")


def test_every_state_reachable_lines_are_rendered(script: Script) -> None:
    lines = script.lines()
    for st in script.states.values():  # a personal line: its neutral form (callflow.personal)
        assert render(st.say, lead={}, slots={}, fallbacks=script.fallbacks) in lines
    assert script.reprompt in lines


# ---- continuations: the machine takes back a turn whose reply was cut short ----------------


def _reprompted(script: Script) -> tuple[DialogState, DialogState]:
    """The greeting played, then an unusable answer: (state before it, state after it)."""
    state, _ = step(script, DialogState(), Answered())
    state, _ = step(script, state, PlaybackFinished(state.speaking or 0))
    after, actions = step(script, state, UserSaid("other", 0.5, "别再"))
    assert [type(a) for a in actions] == [Say] and after.undo is not None
    return state, after


@pytest.mark.parametrize(
    ("between", "undone"),
    [
        ([], True),  # the callee goes on while the re-prompt is still queued
        ([PlaybackFinished(2, interrupted=True)], True),  # ... and cut it short
        ([PlaybackFinished(2)], False),  # the re-prompt played to its end
        ([NoInput()], False),
    ],
)
def test_continuation_undoes_the_last_turn_while_its_reply_is_cut_short(
    script: Script, between: list[object], undone: bool
) -> None:
    before, state = _reprompted(script)
    assert state.speaking == 2  # the re-prompt
    for event in between:
        state, _ = step(script, state, event)  # type: ignore[arg-type]
    said = UserSaid("complaint_dnc", 0.9, "别再，打了")
    seq = state.say_seq
    state, actions = step(script, state, UserContinued(said))
    finishes = [a for a in actions if isinstance(a, Finish)]
    assert [f.outcome for f in finishes] == ["dnc"] and state.node == "end_dnc"
    # the joined turn replaces the first part: one callee turn, not two
    assert state.turns == before.turns + (1 if undone else 2)
    assert state.say_seq == state.speaking == seq + 1  # say ids never repeat, undo or not
    assert state.undo is None  # the goodbye is not interruptible speech to undo


def test_continuation_of_a_turn_that_is_not_undoable_is_an_ordinary_turn(script: Script) -> None:
    _, state = _reprompted(script)
    state, _ = step(script, state, PlaybackFinished(state.speaking or 0))
    assert state.undo is None
    said = UserSaid("affirm", 0.9, "别再，好的")
    assert step(script, state, UserContinued(said)) == step(script, state, said)


def test_undo_is_kept_only_behind_interruptible_speech(script: Script) -> None:
    state, _ = step(script, DialogState(), Answered())
    state, _ = step(script, state, UserSaid("ask_identity", 0.9))
    assert state.undo is not None and state.undo.undo is None  # one level, no chain
    state, _ = step(script, state, UserSaid("complaint_dnc", 0.9))  # an ending: Finish + Say
    assert state.undo is None
    state, _ = step(script, DialogState(), Answered())
    state, actions = step(script, state, RemoteHangup())
    assert state.undo is None and state.outcome == "hung_up"
    assert actions == [Finish(Outcome.HUNG_UP, None, {})]


# ---- clarification: confirm a weak reply, ask again on none, never delay an opt-out ---------


def _at_pitch(script: Script) -> DialogState:
    """Greeting played, a clear yes, the pitch playing: the state before each case below."""
    state, _ = step(script, DialogState(), Answered())
    state, _ = step(script, state, UserSaid("affirm", 0.95))
    assert state.node == "pitch"
    return state


def _says(actions: Sequence[object]) -> list[str]:
    return [a.text for a in actions if isinstance(a, Say)]


def test_a_weak_reply_is_confirmed_with_the_scripts_question(script: Script) -> None:
    state = _at_pitch(script)
    state, actions = step(script, state, UserSaid("ask_price", 0.45, "加格"))
    assert _says(actions) == ["您是想了解价格吗？"] and state.node == "pitch"
    assert state.pending is not None and state.pending.intent == "ask_price"
    assert state.handled is not None and state.handled.decision == "confirm"


@pytest.mark.parametrize(
    ("answer", "node", "decision", "answers"),
    [
        (UserSaid("affirm", 0.9, "对"), "price", "act", "ask_price"),  # yes: as if heard clearly
        (UserSaid("ask_price", 0.9, "对，多少钱"), "price", "act", "ask_price"),  # the same again
        (UserSaid("deny", 0.9, "不是"), "pitch", "ask_again", "ask_price"),  # no: ask again
        (UserSaid("busy_callback", 0.9, "我在开会"), "end_callback", "act", None),  # new intent
        (UserSaid("complaint_dnc", 0.99, "别打了"), "end_dnc", "act", None),  # opt-out wins
    ],
)
def test_the_answer_to_a_confirmation(
    script: Script, answer: UserSaid, node: str, decision: str, answers: str | None
) -> None:
    state, _ = step(script, _at_pitch(script), UserSaid("ask_price", 0.45))
    state, actions = step(script, state, answer)
    assert state.node == node and state.pending is None
    assert state.handled is not None
    assert (state.handled.decision, state.handled.answers) == (decision, answers)
    if decision == "ask_again":
        assert _says(actions) == [script.reprompt] and state.retries == 1


def test_confirmed_intent_acts_exactly_as_a_confident_one(script: Script) -> None:
    slots = {"callback_at": "2026-11-23T06:00:00+00:00"}
    direct, direct_actions = step(
        script, _at_pitch(script), UserSaid("busy_callback", 0.9, "", slots)
    )
    state, _ = step(script, _at_pitch(script), UserSaid("busy_callback", 0.4, "", slots))
    state, actions = step(script, state, UserSaid("affirm", 0.9, "对"))
    assert [type(a) for a in actions] == [type(a) for a in direct_actions]
    assert [f.slots for f in actions if isinstance(f, Finish)] == [slots]  # heard with the guess
    assert (state.node, state.outcome, state.retries) == (direct.node, direct.outcome, 0)
    assert state.turns == direct.turns + 1  # the question and its answer: two callee turns


@pytest.mark.parametrize("intent", ["complaint_dnc", "request_human"])
def test_an_opt_out_is_never_delayed_by_a_confirmation(script: Script, intent: str) -> None:
    for confidence, margin in [(0.99, None), (0.61, 0.01), (0.7, 0.0)]:
        state, actions = step(
            script, _at_pitch(script), UserSaid(intent, confidence, "", {}, margin)
        )
        assert [type(a) for a in actions] == [Finish, Say] and state.pending is None
        assert state.handled is not None and state.handled.decision == "act"


def test_a_weak_opt_out_is_confirmed_never_dropped(script: Script) -> None:
    state, actions = step(script, _at_pitch(script), UserSaid("complaint_dnc", 0.2))
    assert _says(actions) == [script.confirm["complaint_dnc"]]
    state, actions = step(script, state, UserSaid("affirm", 0.9, "对"))
    assert state.outcome == "dnc" and [type(a) for a in actions] == [Finish, Say]


def test_a_confident_reply_with_a_near_tie_is_confirmed(script: Script) -> None:
    state, actions = step(script, _at_pitch(script), UserSaid("ask_price", 0.7, "", {}, 0.05))
    assert _says(actions) == ["您是想了解价格吗？"]
    state, actions = step(script, _at_pitch(script), UserSaid("ask_price", 0.7, "", {}, 0.5))
    assert state.node == "price" and state.handled == Handled("act", "ask_price")


def test_hardly_any_evidence_asks_again(script: Script) -> None:
    state, actions = step(script, _at_pitch(script), UserSaid("ask_price", 0.2))
    assert _says(actions) == [script.reprompt] and state.node == "pitch" and state.retries == 1
    assert state.handled == Handled("ask_again", "other") and state.pending is None


def test_denied_confirmations_count_as_unusable_answers(script: Script) -> None:
    state = _at_pitch(script)
    for retries in range(1, script.max_retries + 1):
        state, _ = step(script, state, UserSaid("ask_price", 0.45))
        state, _ = step(script, state, UserSaid("deny", 0.9, "不是"))
        assert state.retries == retries and state.node == "pitch"
    state, _ = step(script, state, UserSaid("ask_price", 0.45))
    state, _ = step(script, state, UserSaid("deny", 0.9, "不是"))
    assert state.outcome == "no_response"


def test_repeat_asks_the_confirmation_again(script: Script) -> None:
    state, first = step(script, _at_pitch(script), UserSaid("ask_price", 0.45))
    state, again = step(script, state, UserSaid("repeat", 0.9, "你说啥"))
    assert _says(again) == _says(first) and state.pending is not None
    state, _ = step(script, state, UserSaid("affirm", 0.9))
    assert state.node == "price"


def test_an_unusable_answer_keeps_the_question_open(script: Script) -> None:
    state, _ = step(script, _at_pitch(script), UserSaid("ask_price", 0.45))
    state, actions = step(script, state, UserSaid("other", 0.9, "嗯嗯啊"))
    assert _says(actions) == [script.reprompt] and state.pending is not None
    state, actions = step(script, state, NoInput())  # silence: its own question
    assert script.silence is not None
    assert _says(actions) == [script.silence.prompt] and state.pending is not None
    state, _ = step(script, state, UserSaid("affirm", 0.9, "对"))
    assert state.node == "price"


def test_no_question_when_a_wrong_guess_changes_nothing(script: Script) -> None:
    # in the greeting, a yes and an unusable answer both lead to the pitch
    state, _ = step(script, DialogState(), Answered())
    state, _ = step(script, state, UserSaid("affirm", 0.45))
    assert state.node == "pitch" and state.handled == Handled("act", "affirm")


def test_an_intent_without_a_question_is_acted_on(script: Script) -> None:
    state, _ = step(script, _at_pitch(script), UserSaid("voicemail", 0.45))
    assert "voicemail" not in script.confirm and state.outcome == "voicemail"


def test_clarification_off_acts_on_every_guess(script: Script) -> None:
    off = dataclasses.replace(script, clarify_below=0.0)
    state, _ = step(off, _at_pitch(off), UserSaid("ask_price", 0.36))
    assert state.node == "price" and state.handled == Handled("act", "ask_price")
    state, _ = step(off, _at_pitch(off), UserSaid("other", 0.9))
    assert state.handled == Handled("ask_again", "other")  # "other" is never acted on


def test_a_continuation_of_a_confirmed_turn_is_judged_again(script: Script) -> None:
    before = _at_pitch(script)
    state, _ = step(script, before, UserSaid("hesitate", 0.4, "这个"))
    assert state.pending is not None and state.undo is not None
    said = UserSaid("ask_price", 0.9, "这个，多少钱")
    state, _ = step(script, state, UserContinued(said))
    assert state.node == "price" and state.pending is None
    assert state.turns == before.turns + 1  # the question was taken back with its turn


def test_ignored_speech_is_not_judged(script: Script) -> None:
    state, _ = step(script, DialogState(), Answered())
    state, _ = step(script, state, UserSaid("busy_callback", 0.9))  # the goodbye plays
    state, _ = step(script, state, UserSaid("ask_price", 0.4))
    assert state.handled is None
