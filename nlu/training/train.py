"""Train the linear intent model: ``train(out_dir) -> metrics``.

Build command (install time, seconds on one core)::

    .venv/bin/python -c "from nlu.training.train import train; train('build/nlu/linear')"

Trains on the dataset's train part + ``nlu/data/extra_examples.jsonl``, evaluates on the
held-out part (real utterances only), writes the model and ``manifest.json`` (data sha256,
sizes, macro-F1, per-intent F1, timestamp).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from core.text import canonical
from nlu.features import FeatureConfig, Vectorizer
from nlu.linear import DEFAULT_MIN_CONFIDENCE, LinearIntentClassifier
from nlu.prepare import raw_model_text
from nlu.training.dataset import (
    DEFAULT_HELDOUT,
    DEFAULT_SEED,
    EXTRA_EXAMPLES,
    Example,
    build_split,
    find_data_path,
    sha256_of,
)
from nlu.training.metrics import evaluate


@dataclass(frozen=True, slots=True)
class TrainConfig:
    features: FeatureConfig = field(default_factory=FeatureConfig)
    c: float = 10.0  # inverse L2 strength of the logistic regression
    # class weight (n_examples / (n_intents * n_intent)) ** power: 1 = "balanced", 0 = none.
    # Measured on a validation split carved from the train part: 0 beat 0.5 and 1 (the extra
    # examples already lift the small intents; weighting them more cost precision).
    class_weight_power: float = 0.0
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    seed: int = DEFAULT_SEED
    heldout_fraction: float = DEFAULT_HELDOUT


def fit(examples: Sequence[Example], config: TrainConfig) -> LinearIntentClassifier:
    """Fit vectorizer + logistic regression on examples (scikit-learn needed here only)."""
    from scipy.sparse import csr_matrix
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    pairs = [(raw_model_text(ex.text), ex.intent) for ex in examples]
    pairs = [(text, intent) for text, intent in pairs if text]
    texts = [text for text, _ in pairs]
    labels = [intent for _, intent in pairs]
    vectorizer = Vectorizer.fit(texts, config.features)
    data, indices, indptr = vectorizer.matrix(texts)
    x = csr_matrix((data, indices, indptr), shape=(len(texts), len(vectorizer.vocabulary)))
    counts = Counter(labels)
    weights = {
        intent: (len(labels) / (len(counts) * n)) ** config.class_weight_power
        for intent, n in counts.items()
    }
    # newton-cg converges in ~8 steps here (lbfgs: ~100); one BLAS thread is both faster on a
    # shared machine (no oversubscription) and deterministic.
    model = LogisticRegression(C=config.c, solver="newton-cg", max_iter=200, class_weight=weights)
    with threadpool_limits(1):
        model.fit(x, labels)
    if len(model.classes_) < 3:
        raise ValueError("need at least three intents to train")
    return LinearIntentClassifier(
        vectorizer=vectorizer,
        classes=[str(c) for c in model.classes_],
        coef=np.ascontiguousarray(model.coef_.T),
        intercept=model.intercept_,
        min_confidence=config.min_confidence,
    )


def predict_all(model: LinearIntentClassifier, texts: Sequence[str]) -> list[str]:
    """Predicted intents for raw texts (put in canonical form first, as the recognizer would)."""
    return [model.classify(canonical(text)).intent for text in texts]


def train(
    out_dir: str | os.PathLike[str],
    data_path: str | os.PathLike[str] | None = None,
    config: TrainConfig | None = None,
) -> dict[str, Any]:
    """Train, evaluate on held-out, save to ``out_dir``; return the metrics dict."""
    config = config or TrainConfig()
    started = time.perf_counter()
    path = find_data_path(data_path)
    split = build_split(path, fraction=config.heldout_fraction, seed=config.seed)
    model = fit(split.train, config)
    heldout = evaluate(
        [ex.intent for ex in split.heldout], predict_all(model, [ex.text for ex in split.heldout])
    )
    metrics: dict[str, Any] = {
        "macro_f1": heldout["macro_f1"],
        "accuracy": heldout["accuracy"],
        "per_intent_f1": {k: v["f1"] for k, v in heldout["per_intent"].items()},
        "heldout": heldout,
    }
    manifest = {
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": {"file": path.name, "sha256": sha256_of(path)},
        "extra_examples": {"file": EXTRA_EXAMPLES.name, "sha256": sha256_of(EXTRA_EXAMPLES)},
        "split": {"seed": config.seed, "heldout_fraction": config.heldout_fraction},
        "sizes": {
            "train": len(split.train),
            "train_extra": sum(ex.source == "extra" for ex in split.train),
            "heldout": len(split.heldout),
            "features": len(model.vectorizer.vocabulary),
            "train_per_intent": dict(sorted(Counter(ex.intent for ex in split.train).items())),
        },
        "hyper": {"c": config.c, "class_weight_power": config.class_weight_power},
        "heldout_macro_f1": metrics["macro_f1"],
        "heldout_accuracy": metrics["accuracy"],
        "heldout_per_intent_f1": metrics["per_intent_f1"],
        "train_seconds": round(time.perf_counter() - started, 2),
    }
    model.save(out_dir, manifest)
    metrics["train_seconds"] = manifest["train_seconds"]
    metrics["model_dir"] = str(Path(out_dir))
    return metrics
