"""Choose the ensemble's cascade thresholds on a dev split of the training data.

``python -m nlu.training.cascade [--out FILE]``

The cascade (``nlu.ensemble``) skips the student when the linear model alone is decisive: its
top probability >= ``tau`` and its top-1 minus top-2 >= ``margin``. Whether that changes what the
ensemble says can only be measured where the linear model has not seen the text, so this:

1. carves a dev part (20 %, stratified, grouped by model text, its own seed) out of the
   *train* part of the split (real dataset rows only; never the held-out part, never bench/);
2. trains a linear model with the deployed recipe (``EAR_CONFIG``) on the rest (ear transcripts
   of dev sentences left out, augmentation drawn from the rest only);
3. scores the dev texts, as written and as the ear heard them (the committed ear transcripts of
   dev sentences), with that linear model and the deployed student (which did see the dev texts
   in distillation: it is, if anything, more often right there than on new text, so the
   cascade's losses against the full ensemble are overstated, not hidden);
4. for every (tau, margin) on a grid reports the share of turns that skip the student, how
   often the cascade's intent and action (``callflow``'s act/confirm rule at its defaults: act
   at confidence >= 0.6 and margin >= 0.15) equal the full ensemble's, and both accuracies;
5. picks the pair with the most skips whose intent *and* action agreement with the full
   ensemble are at least ``--min-agreement`` on both dev sets and whose accuracy is not below
   the ensemble's by more than ``--max-loss``. (Action agreement matters: a skipped row is
   always acted on, where the full ensemble might have asked. With intent agreement alone the
   choice was tau 0.9, whose action agreement on the ear dev set was 0.980; on the phone-audio
   benchmark it acted wrongly on one clip more in 938 than the full ensemble.)

Prints JSON (the grid and the choice). Trains one linear model (~1-2 min on one thread).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.report import emit_json
from nlu.ensemble import decisive_rows
from nlu.prepare import raw_model_text
from nlu.training.dataset import Example, build_split, split_heldout
from nlu.training.ear import EAR_FILE, STUDENT_DIR
from nlu.training.train import EAR_CONFIG, fit, training_examples

DEV_SEED = 20261207
DEV_FRACTION = 0.2
TAUS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
MARGINS = (0.15, 0.3, 0.5, 0.7)
ACT_CONFIDENCE, ACT_MARGIN = 0.6, 0.15  # callflow.clarify's defaults (not imported: layers)


@dataclass(frozen=True, slots=True)
class Scored:
    """One dev set: gold intents, the cross-fit linear model's rows and the student's rows."""

    gold: np.ndarray  # class indices
    linear: np.ndarray  # (n, classes), student class order
    student: np.ndarray


def dev_split(train_part: Sequence[Example]) -> tuple[list[Example], list[Example]]:
    """(fit part, dev part): dev holds real dataset rows only; extra examples stay in fit."""
    real = [ex for ex in train_part if ex.source == "data"]
    rest, dev = split_heldout(real, DEV_FRACTION, DEV_SEED)
    return rest + [ex for ex in train_part if ex.source != "data"], dev


def ear_rows(dev_keys: set[str], path: Path = EAR_FILE) -> tuple[list[Example], list[Example]]:
    """(ear transcripts of non-dev sentences, of dev sentences) from the committed file."""
    keep: list[tuple[Example, str]] = []
    dev: list[tuple[Example, str]] = []
    for line in path.read_text("utf-8").splitlines() if path.is_file() else []:
        if line:
            row = json.loads(line)
            ex = Example(row["ear_text"], row["intent"], "ear")
            (dev if raw_model_text(row["text"]) in dev_keys else keep).append((ex, row["split"]))
    return [ex for ex, split in keep if split == "train"], [ex for ex, _ in dev]


def score(examples: Sequence[Example], linear: Any, student: Any) -> Scored:
    classes = list(student.classes)
    pairs = [(raw_model_text(ex.text), ex.intent) for ex in examples]
    pairs = [(t, i) for t, i in pairs if t and i in classes]
    texts = [t for t, _ in pairs]
    order = np.array([linear.classes.index(c) for c in classes])
    return Scored(
        gold=np.array([classes.index(i) for _, i in pairs]),
        linear=np.stack([linear.probabilities(t)[order] for t in texts]),
        student=np.asarray(student.probabilities_batch(texts)),
    )


def dev_sets() -> dict[str, Scored]:
    """``dev_text`` and ``dev_ear`` scored by a linear model fitted without them (steps 1-3)."""
    from nlu.encoder import EncoderIntentClassifier

    split = build_split()
    fit_part, dev = dev_split(split.train)
    dev_keys = {raw_model_text(ex.text) for ex in dev}
    ear_fit, ear_dev = ear_rows(dev_keys)
    config = dataclasses.replace(EAR_CONFIG, ear=False)  # ear rows of dev sentences left out
    linear = fit(training_examples(fit_part, config) + ear_fit, config)
    student = EncoderIntentClassifier.load(STUDENT_DIR)
    return {"dev_text": score(dev, linear, student), "dev_ear": score(ear_dev, linear, student)}


def _acts(p: np.ndarray) -> np.ndarray:
    top2 = np.sort(p, axis=1)[:, -2:]
    return (top2[:, 1] >= ACT_CONFIDENCE) & (top2[:, 1] - top2[:, 0] >= ACT_MARGIN)


def evaluate(s: Scored, tau: float, margin: float, weight: float = 0.5) -> dict[str, float]:
    """Skip share, agreement with the full ensemble, accuracies, for one threshold pair."""
    full = (1.0 - weight) * s.student + weight * s.linear
    skip = decisive_rows(s.linear, tau, margin)
    cascade = np.where(skip[:, None], s.linear, full)
    same_intent = cascade.argmax(1) == full.argmax(1)
    same_action = same_intent & (_acts(cascade) == _acts(full))
    return {
        "skip": round(float(skip.mean()), 4),
        "intent_agreement": round(float(same_intent.mean()), 4),
        "action_agreement": round(float(same_action.mean()), 4),
        "accuracy_full": round(float((full.argmax(1) == s.gold).mean()), 4),
        "accuracy_cascade": round(float((cascade.argmax(1) == s.gold).mean()), 4),
    }


def choose(
    sets: dict[str, Scored], min_agreement: float, max_loss: float
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    grid: list[dict[str, Any]] = []
    for tau in TAUS:
        for margin in MARGINS:
            row: dict[str, Any] = {"tau": tau, "margin": margin}
            row.update({name: evaluate(s, tau, margin) for name, s in sets.items()})
            grid.append(row)

    def ok(row: dict[str, Any]) -> bool:
        return all(
            row[n]["intent_agreement"] >= min_agreement
            and row[n]["action_agreement"] >= min_agreement
            and row[n]["accuracy_cascade"] >= row[n]["accuracy_full"] - max_loss
            for n in sets
        )

    good = [row for row in grid if ok(row)]
    best = max(good, key=lambda r: sum(r[n]["skip"] for n in sets), default=None)
    return grid, best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--min-agreement", type=float, default=0.99)
    parser.add_argument("--max-loss", type=float, default=0.005)
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)
    sets = dev_sets()
    grid, best = choose(sets, args.min_agreement, args.max_loss)
    result = {
        "dev": {name: len(s.gold) for name, s in sets.items()},
        "criterion": {"min_agreement": args.min_agreement, "max_loss": args.max_loss},
        "chosen": best,
        "grid": grid,
    }
    emit_json(result, args.out, indent=1)
    return 0 if best is not None else 1


if __name__ == "__main__":
    sys.exit(main())
