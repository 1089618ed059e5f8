"""What a call leaves behind: its turns (who said what, how fast, how much was heard) and the
session's result, which the dialer stores (``models``) and reports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.vocab import Grade, Outcome
from nlu.base import IntentResult
from speech.asr.base import Final, Partial
from telephony.base import Progress, TransferEnded

from .machine import Finish, Handled
from .timing import TurnTimes

OutcomeHook = Callable[[Outcome, Grade | None, dict[str, Any]], None]
"""Told a call's outcome (and grade, slots) the moment the machine decides it, before the
goodbye line: the dialer stores it at once, so a crash mid-goodbye loses no opt-out. Called on
the event loop; it must not block (schedule the write, do not await it)."""


@dataclass(slots=True)
class TurnRecord:
    speaker: str  # "robot" | "callee"
    text: str
    intent: str | None = None
    confidence: float | None = None
    latency_ms: float | None = None  # callee turns: end of speech -> reply audio queued
    interrupted: bool | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class SessionResult:
    answered: bool
    end: Progress | None  # the final call-progress event (SIP code, reason, who hung up)
    outcome: Outcome | None  # None when never answered
    grade: Grade | None
    slots: dict[str, Any]
    final_state: str
    turns: list[TurnRecord]
    answered_at: float | None = None  # time.time()
    transfer: TransferEnded | None = None  # how a transfer to a person ended, if one was tried
    # the mood scores (interest, hesitation, annoyance) of each callee turn (callflow.memory)
    scores: list[dict[str, float]] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        finish: Finish | None,
        *,
        end: Progress | None,
        final_state: str,
        turns: list[TurnRecord],
        answered_at: float | None,
    ) -> SessionResult:
        """A session's result from the machine's ``Finish`` (None: no outcome)."""
        return cls(
            answered=answered_at is not None,
            end=end,
            outcome=finish.outcome if finish else None,
            grade=finish.grade if finish else None,
            slots=dict(finish.slots) if finish else {},
            final_state=final_state,
            turns=turns,
            answered_at=answered_at,
            scores=[dict(s) for s in finish.scores] if finish else [],
        )


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def callee_turn(
    final: Final, result: IntentResult, times: TurnTimes, nlu_done: float, partials: list[Any]
) -> TurnRecord:
    """The record of one understood callee turn: what was heard, and where the time went
    (``endpoint_ms``: end of speech -> endpoint; ``asr_ms``: endpoint -> final; ``nlu_ms``)."""
    return TurnRecord(
        speaker="callee",
        text=final.text,
        intent=result.intent,
        confidence=round(result.confidence, 3),
        detail={
            "endpoint_ms": _ms(times.endpoint - times.speech_end),
            "asr_ms": _ms(times.final - times.endpoint),
            "decode_ms": final.decode_ms,
            "nlu_ms": _ms(nlu_done - times.final),
            "audio_s": round(final.end_t - final.start_t, 2),
            "asr_confidence": round(final.confidence, 3),
            "capped": final.capped,
            "partials": partials,
            "slots": result.slots,
        },
    )


def handled_turn(turn: TurnRecord, handled: Handled | None) -> None:
    """Record how the machine took a callee turn: ``clarify`` is "act", "confirm" or
    "ask_again" (absent: ignored, e.g. during the goodbye); ``clarify_intent`` the intent acted
    on or asked about; ``answers`` the pending intent this turn confirmed or denied."""
    if handled is None:
        return
    turn.detail["clarify"] = handled.decision
    turn.detail["clarify_intent"] = handled.intent
    if handled.answers is not None:
        turn.detail["answers"] = handled.answers


class PartialLog:
    """Interim transcripts, handed to the turn whose utterance they belong to."""

    def __init__(self) -> None:
        self._partials: list[Partial] = []

    def add(self, partial: Partial) -> None:
        self._partials.append(partial)

    def take(self, end_t: float) -> list[list[Any]]:
        """The partials up to stream time `end_t`, as ``[t, text]`` pairs (removed)."""
        mine = [p for p in self._partials if p.t <= end_t + 1e-6]
        self._partials = [p for p in self._partials if p.t > end_t + 1e-6]
        return [[round(p.t, 2), p.text] for p in mine]
