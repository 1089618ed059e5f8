"""Measure the weight of the script-state prior (``context["expected"]``) on a dev split.

``python -m nlu.training.prior [--script FILE] [--out FILE]``

On a call the NLU gets the intents the current state handles (``callflow.script.expected``: the
state's ``on:`` plus the script's ``global:``) and multiplies their probabilities by
``nlu.postprocess.EXPECTED_BOOST`` before deciding. This measures that weight on text the
models were not fitted to, built from the TRAINING data only:

- rows: the dev sets of ``nlu.training.cascade`` (a dev part of the train split, as written and
  as the ear heard it; scored by a linear model fitted without them and the deployed student),
  combined as deployed (the cascade at ``nlu.DEFAULT_CASCADE_TAU``);
- states: every dev reply is paired with each dialogue state of the script (states with
  handlers) where it is plausible: every state, except that a price objection or a discount
  question is not plausible before the price has been mentioned (the first state); the
  expected intents are that state's handlers plus the global ones, as the call path sends them;
- per weight: accuracy and macro-F1 of the decided intent (top probability, ``other`` under the
  model's threshold) and the clarification policy's wrong-action and clarification rates
  (``callflow.clarify``'s defaults, restated here: nlu does not import callflow).

Prints JSON: per dev set and weight, the figures; the weight with the best mean macro-F1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.report import emit_json
from core.yamlload import load_yaml
from nlu import DEFAULT_CASCADE_MARGIN, DEFAULT_CASCADE_TAU
from nlu.ensemble import decisive_rows
from nlu.postprocess import ALWAYS_FAVOURED
from nlu.training.cascade import Scored, dev_sets
from nlu.training.metrics import evaluate

_REPO = Path(__file__).resolve().parent.parent.parent
SCRIPT = _REPO / "callflow" / "scripts" / "saas_demo.yaml"
WEIGHTS = (1.0, 1.25, 1.5, 2.0, 3.0, 5.0)
AFTER_PRICE = frozenset({"price_objection", "ask_discount"})
MIN_CONFIDENCE = 0.35  # the deployed model's threshold (manifest)
ACT_CONFIDENCE, ACT_MARGIN, ASK_AGAIN_SHARE = 0.6, 0.15, 0.5  # callflow.clarify defaults


def state_expectations(script: Path) -> dict[str, frozenset[str]]:
    """State name -> the intents it expects (its handlers + the global ones), in script order."""
    doc = load_yaml(script, what="script")
    global_on = set(doc.get("global") or {})
    return {
        name: frozenset(set(state["on"]) | global_on)
        for name, state in doc["states"].items()
        if state.get("on")
    }


def labelled(
    s: Scored, classes: Sequence[str], states: Mapping[str, frozenset[str]]
) -> list[tuple[int, frozenset[str]]]:
    """(row index, expected intents) for every plausible (reply, state) pair."""
    first = next(iter(states))
    return [
        (i, expected)
        for i, gold in enumerate(s.gold)
        for name, expected in states.items()
        if not (name == first and classes[gold] in AFTER_PRICE)
    ]


def _action(intent: str, conf: float, margin: float) -> str:
    """``callflow.clarify.judge`` at its defaults."""
    if intent == "other":
        return "ask_again"
    if conf >= ACT_CONFIDENCE:
        opt_out = intent in ("complaint_dnc", "request_human")
        return "act" if opt_out or margin >= ACT_MARGIN else "confirm"
    if intent in ("complaint_dnc", "request_human") or conf >= ACT_CONFIDENCE * ASK_AGAIN_SHARE:
        return "confirm"
    return "ask_again"


def figures(
    rows: np.ndarray,
    gold: np.ndarray,
    pairs: Sequence[tuple[int, frozenset[str]]],
    classes: Sequence[str],
    weight: float,
) -> dict[str, float]:
    truth, pred, wrong, clarify = [], [], 0, 0
    for i, expected in pairs:
        favoured = expected | ALWAYS_FAVOURED
        q = rows[i] * np.array([weight if c in favoured else 1.0 for c in classes])
        q = q / q.sum()
        top2 = np.sort(q)[-2:]
        intent = classes[int(q.argmax())]
        if top2[1] < MIN_CONFIDENCE:
            intent = "other"
        action = _action(intent, float(top2[1]), float(top2[1] - top2[0]))
        truth.append(classes[gold[i]])
        pred.append(intent)
        wrong += action == "act" and intent != classes[gold[i]]
        clarify += action != "act"
    m = evaluate(truth, pred)
    return {
        "accuracy": m["accuracy"],
        "macro_f1": m["macro_f1"],
        "wrong_action_rate": round(wrong / len(pairs), 4),
        "clarification_rate": round(clarify / len(pairs), 4),
    }


def deployed_rows(s: Scored, weight: float = 0.5) -> np.ndarray:
    full = (1.0 - weight) * s.student + weight * s.linear
    skip = decisive_rows(s.linear, DEFAULT_CASCADE_TAU, DEFAULT_CASCADE_MARGIN)
    return np.asarray(np.where(skip[:, None], s.linear, full))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--script", default=str(SCRIPT))
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)
    from nlu.encoder import EncoderIntentClassifier
    from nlu.training.ear import STUDENT_DIR

    classes = list(EncoderIntentClassifier.load(STUDENT_DIR).classes)
    states = state_expectations(Path(args.script))
    result: dict[str, Any] = {"states": {k: sorted(v) for k, v in states.items()}, "sets": {}}
    for name, s in dev_sets().items():
        pairs = labelled(s, classes, states)
        rows = deployed_rows(s)
        result["sets"][name] = {
            "pairs": len(pairs),
            "expected_share": round(
                sum(classes[s.gold[i]] in e for i, e in pairs) / max(1, len(pairs)), 4
            ),
            "by_weight": {str(w): figures(rows, s.gold, pairs, classes, w) for w in WEIGHTS},
        }
    mean_f1 = {
        str(w): float(
            np.mean([v["by_weight"][str(w)]["macro_f1"] for v in result["sets"].values()])
        )
        for w in WEIGHTS
    }
    result["best_mean_macro_f1"] = max(mean_f1, key=lambda w: mean_f1[w])
    emit_json(result, args.out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
