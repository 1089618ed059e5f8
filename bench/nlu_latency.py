"""NLU latency on the call path: the deployed cascade vs the previous ensemble, interleaved.

    .venv/bin/python bench/nlu_latency.py [--n 300] [--rounds 2] [--out FILE]

What ``CallSession`` does per turn: ``classify(text, context)`` with the state, the caller's
dialect, the expected intents and, when Whisper's beam has them, the n-best
(``context["alternatives"]``). Texts: the held-out split (``build/nlu/heldout.tsv``, else the
split rebuilt from nlu/data), canonical, as the recognizer emits them; and, as phone-like text,
the ear transcripts that training left out (``nlu/data/ear_transcripts.jsonl``, split "test":
training voices, never bench/ data). Second hypotheses are made from each held-out text the way
Whisper's beam differs from its 1-best: ``distinct``: one character changed (the model reads two
texts); ``same_model_text``: punctuation only (the model reads one).
Paths, each on its own classifier instance over the same committed model:

- ``previous``: the ensemble before the cascade (the student on every text), cold cache;
- ``deployed``: ``load_classifier()``'s defaults (the cascade: the student skipped when the
  linear model alone is decisive), on a cold cache (cleared first);
- ``deployed_repeat``: the same reply classified again (the per-text cache warm: a reply heard
  before, e.g. "好的").

Every text is run through every path in turn (the order rotated per text), so a busy machine
slows all paths alike. Reported per case and path: wall-clock and CPU (``time.process_time``,
all threads of this process: what one utterance costs a quiet core) p50/p95 ms; per case the
share of texts the deployed path scored without the student, and how often its intent and its
action (``callflow.clarify.judge`` at its defaults) equal the previous path's; the load average
before and after. The machine this runs on is shared: quote CPU medians as the quiet-machine
figure, wall medians with the load. One thread (``OMP_NUM_THREADS=1``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from callflow.clarify import judge  # noqa: E402
from core.report import emit_json  # noqa: E402
from core.text import canonical  # noqa: E402
from nlu import load_classifier  # noqa: E402
from nlu.base import IntentResult  # noqa: E402
from nlu.ensemble import EnsembleIntentClassifier  # noqa: E402
from nlu.postprocess import decide  # noqa: E402
from nlu.prepare import model_text  # noqa: E402
from nlu.rules import match_rule  # noqa: E402

HELDOUT = REPO / "build" / "nlu" / "heldout.tsv"
EAR = REPO / "nlu" / "data" / "ear_transcripts.jsonl"
SWAP = "加价在再是事发放"  # near-homophones Whisper swaps
Classify = Callable[[str, Mapping[str, Any]], IntentResult]


def usable(raw: Sequence[str], n: int) -> list[str]:
    """Canonical texts the model reads (non-empty, not decided by the rule layer), first `n`."""
    texts = [canonical(t) for t in raw]
    return [t for t in texts if model_text(t) and match_rule(model_text(t)) is None][:n]


def heldout_texts(n: int) -> list[str]:
    if HELDOUT.is_file():
        lines = HELDOUT.read_text(encoding="utf-8").splitlines()
        raw = [ln.split("\t", 1)[1] for ln in lines if ln and not ln.startswith("#")]
    else:
        from nlu.training.dataset import build_split

        raw = [ex.text for ex in build_split().heldout]
    return usable(raw, n)


def ear_texts(n: int) -> list[str]:
    """The ear transcripts training left out (split "test"): phone-like text."""
    rows = [json.loads(ln) for ln in EAR.read_text("utf-8").splitlines() if ln]
    return usable([r["ear_text"] for r in rows if r.get("split") == "test"], n)


def second_hypothesis(text: str, case: str, i: int) -> str:
    if case == "same_model_text":
        return text.rstrip("。？！") + ("？" if i % 2 else "。")
    pos = len(text) // 2
    swap = SWAP[i % len(SWAP)]
    if text[pos] == swap:
        swap = SWAP[(i + 1) % len(SWAP)]
    return text[:pos] + swap + text[pos + 1 :]


def paths(deployed: EnsembleIntentClassifier) -> dict[str, Classify]:
    def fresh(cascade_tau: float | None) -> EnsembleIntentClassifier:
        return EnsembleIntentClassifier(
            deployed.student,
            deployed.linear,
            linear_weight=deployed.linear_weight,
            cascade_tau=cascade_tau,
            cascade_margin=deployed.cascade_margin,
        )

    previous, cold, warm = fresh(None), fresh(deployed.cascade_tau), fresh(deployed.cascade_tau)

    def on_cold(model: EnsembleIntentClassifier) -> Classify:
        def run(text: str, ctx: Mapping[str, Any]) -> IntentResult:
            model.cache.clear()
            return decide(text, model, ctx)

        return run

    return {
        "previous": on_cold(previous),
        "deployed": on_cold(cold),
        "deployed_repeat": lambda t, c: decide(t, warm, c),  # warmed before timing (measure)
    }


def summary(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
    return {"p50": round(statistics.median(ordered), 3), "p95": round(p95, 3)}


def _action(res: IntentResult) -> str:
    return judge(res.intent, res.confidence, margin=res.margin)


def measure(
    runs: Mapping[str, Classify], contexts: Sequence[tuple[str, dict[str, Any]]], rounds: int
) -> dict[str, Any]:
    wall: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    same_intent = same_action = 0
    names = list(runs)
    for r in range(rounds):
        for i, (text, ctx) in enumerate(contexts):
            got = {}
            for k in range(len(names)):
                name = names[(i + r + k) % len(names)]
                if name == "deployed_repeat":
                    runs[name](text, ctx)  # heard before: warm the cache outside the timing
                w, c = time.perf_counter(), time.process_time()
                got[name] = runs[name](text, ctx)
                cpu[name].append((time.process_time() - c) * 1000)
                wall[name].append((time.perf_counter() - w) * 1000)
            same = got["previous"].intent == got["deployed"].intent
            same_intent += same
            same_action += same and _action(got["previous"]) == _action(got["deployed"])
    total = rounds * len(contexts)
    return {
        **{name: {"wall_ms": summary(wall[name]), "cpu_ms": summary(cpu[name])} for name in names},
        "same_intent_previous_vs_deployed": round(same_intent / total, 4),
        "same_action_previous_vs_deployed": round(same_action / total, 4),
    }


def skip_share(model: EnsembleIntentClassifier, contexts: Sequence[tuple[str, Any]]) -> float:
    """Share of the texts the model reads that it scored without the student (cold cache)."""
    model.cache.clear()
    model.skipped = model.scored = 0
    for text, ctx in contexts:
        model.cache.clear()
        decide(text, model, ctx)
    return round(model.skipped / max(1, model.skipped + model.scored), 4)


def cases_for(texts: Sequence[str], ear: Sequence[str]) -> dict[str, list[tuple[str, Any]]]:
    state = {"state": "pitch", "dialect": None, "expected": ("affirm", "ask_price", "hesitate")}
    cases: dict[str, list[tuple[str, dict[str, Any]]]] = {
        "1best": [(t, dict(state)) for t in texts],
        "1best_ear_test": [(t, dict(state)) for t in ear],
    }
    for case in ("distinct", "same_model_text"):
        cases[f"2best_{case}"] = [
            (t, {**state, "alternatives": ((t, -1.0), (second_hypothesis(t, case, i), -1.7))})
            for i, t in enumerate(texts)
        ]
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=300, help="texts per case (default 300)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)
    base = load_classifier()
    if not isinstance(base, EnsembleIntentClassifier) or base.cascade_tau is None:
        print("nlu_latency: the default model is not the cascading ensemble", file=sys.stderr)
        return 1
    runs = paths(base)
    cases = cases_for(heldout_texts(args.n), ear_texts(args.n))
    for text, ctx in cases["2best_distinct"][:20]:  # warm up every path
        for run in runs.values():
            run(text, ctx)
    load_before = os.getloadavg()
    result: dict[str, Any] = {
        "texts": {name: len(ctxs) for name, ctxs in cases.items()},
        "rounds": args.rounds,
        "threads": 1,
        "cpu_count": os.cpu_count(),
        "cascade": {"tau": base.cascade_tau, "margin": base.cascade_margin},
        "cases": {name: measure(runs, ctxs, args.rounds) for name, ctxs in cases.items()},
        "student_skipped_share": {name: skip_share(base, ctxs) for name, ctxs in cases.items()},
    }
    result["loadavg_before"] = [round(x, 2) for x in load_before]
    result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    emit_json(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
