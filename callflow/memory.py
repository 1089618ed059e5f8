"""What a call remembers: slots across turns, the intents heard, the per-turn mood scores.

The NLU gives each turn's slots (``nlu.slots``: time, callback_at, wechat, phone, email, amount,
products, team_size, decision_maker) and scores (``slots["sentiment"]``: interest, hesitation,
annoyance). ``remember`` folds one turn into the call's memory, pure, so the machine can keep
it in ``DialogState``:

- slots persist: a later value replaces an earlier one; ``budget`` is the amount said,
  ``product_interest`` every product named, ``objections`` every objection intent heard
  (price_objection, already_have, hesitate) in order;
- the scores are a trajectory (one entry per callee turn), never mixed into the slots.

``environment`` is what a ``when:`` condition (``callflow.when``) reads:

- ``slot.NAME``: the remembered value (an amount compares as its number: ``slot.budget > 5000``);
- ``intent.NAME``: how many times the intent was acted on in the call (0 is false);
- ``score.NAME``: the last turn's score, ``score.NAME_max`` / ``score.NAME_avg`` over the call;
- ``lead.NAME``: a lead field (``callflow.personal``); ``turns``: callee turns so far;
  ``outcome``: the call's outcome once known (grading rules), e.g. ``outcome == "qualified"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

SCORES: Final = ("interest", "hesitation", "annoyance")
SLOTS: Final = frozenset(
    {
        "time",
        "callback_at",
        "wechat",
        "phone",
        "email",
        "amount",
        "budget",
        "products",
        "product_interest",
        "team_size",
        "decision_maker",
        "objections",
    }
)
"""Slots the memory knows; a script declares any other it names under ``slots:``."""
OBJECTIONS: Final = ("price_objection", "already_have", "hesitate")
_PER_TURN: Final = frozenset({"sentiment", "fallback_from"})  # never remembered


def remember(memory: Mapping[str, Any], heard: Mapping[str, Any], intent: str) -> dict[str, Any]:
    """`memory` with one turn's slots (`heard`) and acted-on `intent` folded in."""
    out = dict(memory)
    for key, value in heard.items():
        if key not in _PER_TURN and value not in (None, "", [], {}):
            out[key] = value
    if isinstance(heard.get("amount"), Mapping):
        out["budget"] = heard["amount"]
    if heard.get("products"):
        named = [*out.get("product_interest", ()), *heard["products"]]
        out["product_interest"] = list(dict.fromkeys(named))
    if intent in OBJECTIONS:
        out["objections"] = list(dict.fromkeys([*out.get("objections", ()), intent]))
    return out


def turn_scores(heard: Mapping[str, Any]) -> dict[str, float] | None:
    """The turn's mood scores from its slots (``nlu.sentiment``), or None when it has none."""
    raw = heard.get("sentiment")
    if not isinstance(raw, Mapping):
        return None
    return {name: float(raw.get(name, 0.0)) for name in SCORES}


def _number(value: Any) -> Any:
    """An amount slot compares as its number; anything else as it is."""
    if isinstance(value, Mapping) and "value" in value:
        return value["value"]
    return value


def environment(
    *,
    slots: Mapping[str, Any],
    heard: Mapping[str, int],
    scores: tuple[Mapping[str, float], ...],
    lead: Mapping[str, str],
    turns: int,
    outcome: str | None = None,
) -> dict[str, Any]:
    """The names a ``when:`` condition reads, for one moment of a call (module docstring)."""
    env: dict[str, Any] = {"turns": turns, "outcome": outcome}
    env.update({f"slot.{k}": _number(v) for k, v in slots.items()})
    env.update({f"intent.{k}": n for k, n in heard.items()})
    for name in SCORES:
        series = [s.get(name, 0.0) for s in scores]
        if series:
            env[f"score.{name}"] = series[-1]
            env[f"score.{name}_max"] = max(series)
            env[f"score.{name}_avg"] = round(sum(series) / len(series), 3)
    env.update({f"lead.{k}": v for k, v in lead.items()})
    return env


def known_name(name: str, *, intents: set[str], slots: frozenset[str] | set[str]) -> str | None:
    """None when a condition may read `name`, else what is wrong with it (load-time check)."""
    if name in ("turns", "outcome"):
        return None
    space, _, rest = name.partition(".")
    if space == "slot" and rest in slots:
        return None
    if space == "intent" and rest in intents:
        return None
    scores = {*SCORES, *(f"{s}_max" for s in SCORES), *(f"{s}_avg" for s in SCORES)}
    if space == "score" and rest in scores:
        return None
    if space == "lead" and rest:
        return None  # any lead-file column may be named (a missing one is simply missing)
    kinds = {"slot": "slot", "intent": "intent", "score": "score"}
    if space in kinds:
        return f"unknown {kinds[space]} {rest!r}"
    return f"unknown name {name!r} (use slot.X, intent.X, score.X, lead.X, turns or outcome)"
