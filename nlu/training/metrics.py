"""Per-intent precision/recall/F1, macro-F1 and a confusion matrix (pure Python)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def evaluate(gold: Sequence[str], pred: Sequence[str]) -> dict[str, Any]:
    """Scores of ``pred`` against ``gold``.

    Macro-F1 averages over the intents present in ``gold``: an intent with no gold example has
    no recall to measure. Predictions of such an intent are still errors, counted against the
    recall of the gold intents they were taken from (and shown in the confusion matrix).
    """
    if len(gold) != len(pred):
        raise ValueError("gold and pred differ in length")
    pairs = Counter(zip(gold, pred, strict=True))
    gold_n, pred_n = Counter(gold), Counter(pred)
    labels = sorted(set(gold) | set(pred))
    per_intent: dict[str, dict[str, float | int]] = {}
    for label in sorted(gold_n):
        tp = pairs[(label, label)]
        p = tp / pred_n[label] if pred_n[label] else 0.0
        r = tp / gold_n[label]
        per_intent[label] = {
            "precision": round(p, 4),
            "recall": round(r, 4),
            "f1": round(_f1(p, r), 4),
            "support": gold_n[label],
        }
    macro = sum(float(v["f1"]) for v in per_intent.values()) / len(per_intent) if gold else 0.0
    accuracy = sum(pairs[(lab, lab)] for lab in labels) / len(gold) if gold else 0.0
    confusion = {g: {p: pairs[(g, p)] for p in labels if pairs[(g, p)]} for g in sorted(gold_n)}
    return {
        "n": len(gold),
        "accuracy": round(accuracy, 4),
        "macro_f1": round(macro, 4),
        "per_intent": per_intent,
        "confusion": confusion,
    }
