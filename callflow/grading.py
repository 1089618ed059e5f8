"""A script's grading rules: the lead's grade (A-D) from what the call heard.

    grading:
      - {grade: A, when: "intent.book_meeting and slot.decision_maker"}
      - {grade: B, when: "outcome == 'qualified' or score.interest_max > 0.7"}
      - {grade: C, when: "outcome == 'callback'"}
      - {grade: D, when: "true"}

Rules are tried in order when the call's outcome is known (every ``Finish``); the first whose
``when:`` (``callflow.when``, over ``callflow.memory.environment`` with ``outcome``) holds gives
the grade. No rule holding leaves the ending state's own ``grade:`` (or none). The grade is
stored on a qualified lead and sent to the CRM.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from core.vocab import Grade

from .when import Condition, WhenError, compile_when


@dataclass(frozen=True, slots=True)
class Rule:
    grade: Grade
    when: Condition


def parse_grading(raw: Any, check: Callable[[str], str | None]) -> tuple[Rule, ...]:
    """The ``grading:`` list (None: no rules). Raises ValueError naming the rule (``grading[2]``)
    for an unknown grade, a bad condition or an unknown name."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ValueError("grading must be a list of {grade: X, when: condition}")
    rules = []
    allowed = sorted(g.value for g in Grade)
    for i, item in enumerate(raw):
        where = f"grading[{i}]"
        if not isinstance(item, Mapping) or set(item) != {"grade", "when"}:
            raise ValueError(f"{where} must be exactly {{grade: X, when: condition}}")
        try:
            grade = Grade(str(item["grade"]))
        except ValueError:
            raise ValueError(f"{where}.grade {item['grade']!r} is not one of {allowed}") from None
        try:
            rules.append(Rule(grade, compile_when(item["when"], check)))
        except WhenError as exc:
            raise ValueError(f"{where}.when: {exc}") from None
    return tuple(rules)


def grade(rules: tuple[Rule, ...], env: Mapping[str, Any]) -> Grade | None:
    """The first rule's grade whose condition holds in `env`, else None."""
    for rule in rules:
        if rule.when.holds(env):
            return rule.grade
    return None
