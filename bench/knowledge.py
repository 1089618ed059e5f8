"""Knowledge answers: recall of the right entry, clean and through phone-ASR noise. JSON out.

    .venv/bin/python bench/knowledge.py [--split test|dev|all] [--engine hybrid|lexical|dense]
                                        [--variants 3] [--limit N] [--tune] [--out FILE]

Questions: ``bench/data/knowledge_questions.tsv`` (written for this benchmark, never copied
from the knowledge files), split dev/test by a hash of the question (40 % dev). The engines'
weight and threshold were chosen with ``--tune``, which reads the dev split only; the figures
to quote are the test split's.

Conditions: ``clean`` (the question as written, canonical), ``phone`` (character error rate
0.15) and ``hard`` (0.30), each noisy question drawn ``--variants`` times from
``bench.asrnoise`` (confusions learned from Whisper's transcripts of phone audio), seeded.

Figures: ``recall@1`` / ``recall@3`` (the expected entry first / among the top three, over
questions the file answers), ``answered_right`` / ``answered_wrong`` (the answer spoken after
the threshold), ``fallback_out_of_scope`` (questions the file cannot answer that fell back to the
script, as they should), per knowledge file, and latency p50/p95 of ``answer()`` in ms.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from bench.asrnoise import NoiseModel, load_model  # noqa: E402
from core.report import emit_json  # noqa: E402
from core.text import canonical  # noqa: E402
from nlu.knowledge import retrieval  # noqa: E402
from nlu.knowledge.file import KnowledgeFileError, load_knowledge  # noqa: E402
from nlu.knowledge.index import (  # noqa: E402
    Embed,
    Index,
    prepared,
)
from nlu.knowledge.retrieval import RetrievalKnowledgeBase  # noqa: E402

QUESTIONS: Final = REPO / "bench" / "data" / "knowledge_questions.tsv"
FILES: Final = {
    "saas": REPO / "callflow" / "scripts" / "saas_demo.knowledge.yaml",
    "edu": REPO / "callflow" / "scripts" / "edu_upgrade.knowledge.yaml",
}
RATES: Final = {"clean": 0.0, "phone": 0.15, "hard": 0.30}
NONE: Final = "-"
DEV_SHARE: Final = 4  # of 10
UTILITY: Final = {"right": 1.0, "fallback": 0.0, "wrong": -2.0}


@dataclass(frozen=True, slots=True)
class Question:
    set: str
    expected: str  # entry id, or NONE
    text: str

    @property
    def split(self) -> str:
        digest = hashlib.sha1(self.text.encode("utf-8")).hexdigest()
        return "dev" if int(digest[:8], 16) % 10 < DEV_SHARE else "test"


def read_questions(path: Path = QUESTIONS) -> list[Question]:
    """The question set; a malformed line is a ValueError naming its line number."""
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#") or line.startswith("set\t"):
            continue
        parts = line.split("\t")
        if len(parts) != 3 or parts[0] not in FILES or not parts[2].strip():
            raise ValueError(f"{path}:{n}: expected set<TAB>entry id<TAB>question")
        out.append(Question(parts[0], parts[1], canonical(parts[2])))
    return out


def noisy(
    questions: Sequence[Question], noise: NoiseModel, rate: float, variants: int
) -> list[Question]:
    """Each question `variants` times through the noise model (seeded by the question)."""
    if rate == 0.0:
        return list(questions)
    out: list[Question] = []
    for q in questions:
        rng = random.Random(int(hashlib.sha1(q.text.encode("utf-8")).hexdigest()[:12], 16))
        out.extend(
            Question(q.set, q.expected, noise.corrupt(q.text, rate, rng)) for _ in range(variants)
        )
    return out


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


@dataclass(frozen=True, slots=True)
class Scored:
    """Lexical and dense scores of one set's questions against its file's entries."""

    lexical: np.ndarray  # (questions, entries)
    dense: np.ndarray
    expected: np.ndarray  # entry index, -1 for a question the file cannot answer

    def fused(self, weight: float) -> np.ndarray:
        return weight * self.lexical + (1.0 - weight) * self.dense


def score(index: Index, questions: Sequence[Question]) -> Scored:
    ids = [e.id for e in index.kfile.entries]
    texts = [prepared(q.text) for q in questions]
    for q in questions:
        if q.expected != NONE and q.expected not in ids:
            raise ValueError(f"question {q.text!r}: no entry {q.expected!r} in {index.kfile.name}")
    return Scored(
        np.stack([index.lexical(t) for t in texts]),
        np.stack([index.dense(t) for t in texts]),
        np.array([ids.index(q.expected) if q.expected != NONE else -1 for q in questions]),
    )


def figures(scored: Sequence[Scored], weight: float, threshold: float) -> dict[str, Any]:
    """Recall and answer outcomes over `scored` (one or more sets) at `weight`/`threshold`."""
    c = dict.fromkeys(("in", "r1", "r3", "right", "wrong", "out", "fell_back"), 0)
    for s in scored:
        fused = s.fused(weight)
        top = np.argsort(-fused, axis=1, kind="stable")[:, :3]
        answered = fused.max(axis=1) >= threshold
        inside = s.expected >= 0
        c["in"] += int(inside.sum())
        c["r1"] += int((top[:, 0] == s.expected)[inside].sum())
        c["r3"] += int((top == s.expected[:, None]).any(axis=1)[inside].sum())
        c["right"] += int((answered & (top[:, 0] == s.expected))[inside].sum())
        c["wrong"] += int((answered & (top[:, 0] != s.expected))[inside].sum())
        c["out"] += int((~inside).sum())
        c["fell_back"] += int((~answered)[~inside].sum())
    n = max(1, c["in"])
    utility = (
        c["right"] * UTILITY["right"] + (c["wrong"] + c["out"] - c["fell_back"]) * UTILITY["wrong"]
    )
    return {
        "questions": c["in"],
        "recall@1": round(c["r1"] / n, 4),
        "recall@3": round(c["r3"] / n, 4),
        "answered_right": round(c["right"] / n, 4),
        "answered_wrong": round(c["wrong"] / n, 4),
        "out_of_scope": c["out"],
        "fallback_out_of_scope": round(c["fell_back"] / max(1, c["out"]), 4),
        "utility_per_question": round(utility / max(1, c["in"] + c["out"]), 4),
    }


def load_embed() -> Embed:
    """The committed intent model's sentence embedding (the int8 student's)."""
    from nlu import load_classifier

    model = load_classifier()
    embed = getattr(model, "embed", None)
    if embed is None:
        raise RuntimeError("the intent model has no sentence embedding (no student)")
    return embed


def conditions(
    questions: Sequence[Question], variants: int, rates: dict[str, float]
) -> dict[str, list[Question]]:
    """The questions as written and through the noise model at each rate."""
    noise = load_model() if any(rates.values()) else None
    return {
        name: list(questions)
        if rate == 0 or noise is None
        else noisy(questions, noise, rate, variants)
        for name, rate in rates.items()
    }


def score_all(indexes: dict[str, Index], questions: Sequence[Question]) -> dict[str, Scored]:
    """Scores per set (the sets `questions` touch)."""
    names = sorted({q.set for q in questions})
    return {n: score(indexes[n], [q for q in questions if q.set == n]) for n in names}


def tune(scored: Sequence[Scored]) -> dict[str, Any]:
    """The fusion weight that ranks best (recall@1, then recall@3), then the threshold with the
    best utility (right +1, fallback 0, wrong -2), on the given (dev) scores."""
    weights = [round(w, 2) for w in np.arange(0.0, 1.0001, 0.05)]
    ranking = {w: figures(scored, w, 0.0) for w in weights}
    best_w = max(weights, key=lambda w: (ranking[w]["recall@1"], ranking[w]["recall@3"], w))
    thresholds = [round(t, 2) for t in np.arange(0.0, 0.901, 0.025)]
    utility = {t: figures(scored, best_w, t)["utility_per_question"] for t in thresholds}
    best_t = max(thresholds, key=lambda t: (utility[t], -t))
    return {
        "weight": best_w,
        "threshold": best_t,
        "recall_by_weight": {str(w): [r["recall@1"], r["recall@3"]] for w, r in ranking.items()},
        "utility_by_threshold": {str(t): u for t, u in utility.items()},
    }


def latency(
    kbs: dict[str, RetrievalKnowledgeBase], questions: Sequence[Question]
) -> dict[str, float]:
    """answer() wall time per question, ms (one thread)."""
    millis = []
    for q in questions:
        start = time.perf_counter()
        kbs[q.set].answer(q.text)
        millis.append((time.perf_counter() - start) * 1000)
    return {"p50": round(_percentile(millis, 0.5), 2), "p95": round(_percentile(millis, 0.95), 2)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    questions = [q for q in read_questions() if args.split in ("all", q.split)][
        : args.limit or None
    ]
    embed = None if args.engine == "lexical" else load_embed()
    t0 = time.perf_counter()
    indexes = {n: Index(load_knowledge(p), embed) for n, p in FILES.items()}
    build_s = (time.perf_counter() - t0) / len(FILES)
    rates = {"clean": 0.0} if args.variants == 0 else RATES
    scored = {
        c: score_all(indexes, qs) for c, qs in conditions(questions, args.variants, rates).items()
    }
    if args.tune:
        dev = [*scored["clean"].values(), *scored.get("phone", {}).values()]
        return {"split": args.split, **tune(dev)}
    weight = {"lexical": 1.0, "dense": 0.0}.get(args.engine, retrieval.HYBRID_WEIGHT)
    threshold = (
        retrieval.LEXICAL_THRESHOLD if args.engine == "lexical" else retrieval.HYBRID_THRESHOLD
    )
    by_condition = {c: _per_set(s, weight, threshold) for c, s in scored.items()}
    kbs = {
        n: RetrievalKnowledgeBase(i, weight=weight, threshold=threshold) for n, i in indexes.items()
    }
    return {
        "split": args.split,
        "engine": args.engine,
        "weight": weight,
        "threshold": threshold,
        "recall@1": by_condition["clean"]["recall@1"],
        "recall@3": by_condition["clean"]["recall@3"],
        "conditions": by_condition,
        "latency_ms": latency(kbs, questions),
        "index_build_s": round(build_s, 3),
    }


def _per_set(scored: dict[str, Scored], weight: float, threshold: float) -> dict[str, Any]:
    return {
        **figures(list(scored.values()), weight, threshold),
        "per_set": {n: figures([s], weight, threshold) for n, s in scored.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", choices=("test", "dev", "all"), default="test")
    parser.add_argument("--engine", choices=("hybrid", "lexical", "dense"), default="hybrid")
    parser.add_argument(
        "--variants", type=int, default=3, help="noisy draws per question (0: clean only)"
    )
    parser.add_argument(
        "--limit", type=int, default=0, help="only the first N questions (smoke test)"
    )
    parser.add_argument(
        "--tune", action="store_true", help="choose weight and threshold (use --split dev)"
    )
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    try:
        result = run(args)
    except (OSError, ValueError, KnowledgeFileError, RuntimeError) as exc:
        print(f"bench/knowledge.py: {exc}", file=sys.stderr)
        return 1
    emit_json(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
