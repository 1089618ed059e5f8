"""Retry policy per disposition: how long to wait before the next try, and how many tries.

Configured as one line (``campaign.retry_policy``), e.g.
``"busy=30m, no_answer=2h/5, rejected=4h, failed=15m, worker_lost=5m"``: a disposition, its
delay (s, m, h or d) and optionally ``/N``, the most attempts a lead may have when its last
one ended that way (never more than ``campaign.max_attempts``, which the claim enforces).
A disposition not named waits `default` and may use every attempt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

from core.vocab import Disposition

_RULE = re.compile(r"^\s*([a-z_]+)\s*=\s*(\d+(?:\.\d+)?)\s*([smhd])\s*(?:/\s*(\d+))?\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}

DEFAULT_POLICY = (
    "busy=30m, no_answer=2h, rejected=4h, failed=15m, worker_lost=5m, "
    "invalid_number=1d/1, powered_off=4h, suspended=1d/2, unreachable=1h, busy_in_call=20m, "
    "voicemail=4h, call_screening=1d/2, ivr=1d/1"
)
"""The delays the dialer had before they were configurable, and those of the machines the
call screening hears (``callflow.screening``): an invalid number (空号) and an IVR are never
tried again (``/1``: done after their first such attempt), a phone switched off is tried a
few hours later, one busy in another call soon."""


@dataclass(frozen=True, slots=True)
class RetryRule:
    delay: timedelta
    max_attempts: int | None = None  # None: campaign.max_attempts


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    rules: dict[str, RetryRule] = field(default_factory=dict)
    default: RetryRule = RetryRule(timedelta(hours=2))

    @classmethod
    def parse(cls, text: str) -> RetryPolicy:
        known = {str(d) for d in Disposition}
        rules: dict[str, RetryRule] = {}
        for part in text.split(","):
            if not part.strip():
                continue
            m = _RULE.match(part.lower())
            if not m:
                raise ValueError(
                    f"retry_policy entries look like no_answer=2h/5, got {part.strip()!r}"
                )
            name, amount, unit, tries = m.groups()
            if name not in known:
                raise ValueError(f"retry_policy: unknown disposition {name!r}")
            delay = timedelta(seconds=float(amount) * _UNIT[unit])
            rules[name] = RetryRule(delay, int(tries) if tries else None)
        return cls(rules)

    def rule(self, disposition: str) -> RetryRule:
        return self.rules.get(disposition, self.default)

    def next_try(self, disposition: str, attempts: int, max_attempts: int) -> timedelta | None:
        """The delay before the next try after an attempt that ended `disposition`, the
        lead having had `attempts`; None when it has had its last."""
        rule = self.rule(disposition)
        limit = min(max_attempts, rule.max_attempts or max_attempts)
        return None if attempts >= limit else rule.delay


DEFAULT = RetryPolicy.parse(DEFAULT_POLICY)
