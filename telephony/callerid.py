"""A rotating caller-ID pool with per-number answer-rate health.

Carriers and handset apps flag a number that places many unanswered calls; its answer rate
falls and keeps falling. The pool hands out its numbers in turn (`next`), counts how each
one's calls end (`record`), and rests a number whose answer rate, after ``min_calls`` counted
calls, is below ``min_answer_rate``: it is skipped for ``rest_s``, then comes back with fresh
counts. If every number is resting, rotation goes on over all of them (a call is never held
back for its caller ID). Calls that say nothing about the number (failed, trunk refused,
worker lost) are not counted. Time comes from `clock` (a fake one in tests).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from core.vocab import Disposition

log = logging.getLogger("telephony.callerid")

# how a call's end counts for its caller ID: True answered, False not, None not counted
_COUNTS: dict[Disposition, bool | None] = {
    Disposition.COMPLETED: True,
    Disposition.BUSY: False,
    Disposition.NO_ANSWER: False,
    Disposition.REJECTED: False,
    Disposition.FAILED: None,
    Disposition.WORKER_LOST: None,
    Disposition.TRUNK_REJECTED: None,
}


@dataclass(slots=True)
class NumberHealth:
    number: str
    calls: int = 0  # counted calls since the last rest
    answered: int = 0
    rested_until: float = 0.0

    @property
    def answer_rate(self) -> float | None:
        return self.answered / self.calls if self.calls else None


def tail(number: str) -> str:
    """A caller ID as logs show it: its last 4 digits only."""
    return f"...{number[-4:]}"


class CallerIdPool:
    def __init__(
        self,
        numbers: Iterable[str],
        *,
        min_calls: int = 20,
        min_answer_rate: float = 0.1,
        rest_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        unique = list(dict.fromkeys(n.strip() for n in numbers if n.strip()))
        if not unique:
            raise ValueError("a caller-ID pool needs at least one number")
        if min_calls < 1 or not 0.0 <= min_answer_rate <= 1.0 or rest_s < 0:
            raise ValueError("need min_calls >= 1, 0 <= min_answer_rate <= 1, rest_s >= 0")
        self._health = {n: NumberHealth(n) for n in unique}
        self._order = unique
        self._next = 0
        self._min_calls = min_calls
        self._min_rate = min_answer_rate
        self._rest_s = rest_s
        self._clock = clock

    def next(self) -> str:
        """The next healthy number in turn (every number in turn when all are resting)."""
        now = self._clock()
        n = len(self._order)
        for step in range(n):
            number = self._order[(self._next + step) % n]
            if self._health[number].rested_until <= now:
                self._next = (self._next + step + 1) % n
                return number
        number = self._order[self._next]
        self._next = (self._next + 1) % n
        return number

    def record(self, number: str, disposition: Disposition | None) -> None:
        """Count how a call placed with `number` ended; rest the number when it is unhealthy."""
        health = self._health.get(number)
        counted = _COUNTS.get(disposition) if disposition is not None else None
        if health is None or counted is None:
            return
        health.calls += 1
        health.answered += int(counted)
        rate = health.answer_rate
        if health.calls >= self._min_calls and rate is not None and rate < self._min_rate:
            health.rested_until = self._clock() + self._rest_s
            log.warning(
                "caller ID %s rested for %.0f s: answer rate %.0f%% over %d calls",
                tail(number),
                self._rest_s,
                rate * 100,
                health.calls,
            )
            health.calls = health.answered = 0

    def health(self) -> list[NumberHealth]:
        """Each number's counts and rest deadline, in rotation order (a copy)."""
        return [
            NumberHealth(h.number, h.calls, h.answered, h.rested_until)
            for h in (self._health[n] for n in self._order)
        ]

    def resting(self) -> list[str]:
        now = self._clock()
        return [n for n in self._order if self._health[n].rested_until > now]
