"""bench/understanding.py: its data file, its render plan and its metrics, without audio."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bench.understanding import (
    DIALECTS,
    KINDS,
    Ear,
    Reply,
    Row,
    accuracy,
    action_counts,
    decide,
    macro_f1,
    path_metrics,
    percentiles,
    plan_renders,
    read_replies,
    report,
    script_prompt,
)
from core.text import canonical
from nlu.base import INTENTS
from speech.scoring import strip_punct

ROOT = Path(__file__).resolve().parents[1]


def _key(text: str) -> str:
    return strip_punct(canonical(text))


def test_replies_cover_every_intent_and_kind() -> None:
    replies = read_replies()
    assert len(replies) >= 400
    per_intent = Counter(r.intent for r in replies)
    assert set(per_intent) == set(INTENTS) and min(per_intent.values()) >= 20
    kinds = Counter(r.kind for r in replies)
    assert set(kinds) == set(KINDS) and min(kinds.values()) >= 40
    assert {r.dialect for r in replies if r.kind == "dialect"} == set(DIALECTS)
    assert len({_key(r.text) for r in replies}) == len(replies)  # no duplicates


def test_replies_are_not_in_the_training_data() -> None:
    """Fresh: no reply equals a text of nlu/data/*.jsonl after canonical() (and, stricter,
    after punctuation and spaces are dropped)."""
    seen: set[str] = set()
    for path in sorted((ROOT / "nlu" / "data").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                seen.update(_key(row[k]) for k in ("text", "ear_text") if row.get(k))
    assert len(seen) > 10_000
    overlap = [r.text for r in read_replies() if _key(r.text) in seen]
    assert overlap == []


def test_bad_lines_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("affirm\t好的\tloud\n", encoding="utf-8")
    with pytest.raises(ValueError, match="kind"):
        read_replies(bad)
    bad.write_text("affirm\t要得\tdialect\n", encoding="utf-8")  # which dialect?
    with pytest.raises(ValueError, match="dialect"):
        read_replies(bad)


def test_render_plan_is_seeded_distinct_and_uses_evaluation_voices() -> None:
    reply = Reply("deny", "唔使喇，唔该", "dialect", "yue")
    plan = plan_renders(reply, 3, seed=10)
    assert plan == plan_renders(reply, 3, seed=10)
    assert plan != plan_renders(reply, 3, seed=11)
    assert len({(r.variant, r.speed, r.pitch, r.gap) for r in plan}) == 3
    assert {r.voice for r in plan} == {"yue"}
    mandarin = plan_renders(Reply("deny", "不用了", "plain"), 40, seed=1)
    assert {r.voice for r in mandarin} == {"cmn-latn-pinyin"}
    assert {r.variant for r in mandarin} <= {"f2", "m3", "f4", "klatt3"}
    assert {r.speed for r in mandarin} <= {110, 150} and {r.gap for r in mandarin} <= {0, 3}
    assert {r.codec for r in mandarin} == {"ulaw", "alaw"}
    assert any(r.noise_dbfs is None for r in mandarin)
    assert any(r.noise_dbfs is not None for r in mandarin)


GOLD = ["ask_price", "ask_price", "deny", "deny", "affirm", "other"]
PRED = ["ask_price", "deny", "deny", "other", "affirm", "affirm"]


def test_accuracy_and_macro_f1() -> None:
    assert accuracy(GOLD, PRED) == 3 / 6
    # ask_price P=1 R=.5 F=2/3; deny P=.5 R=.5 F=.5; affirm P=.5 R=1 F=2/3; other F=0
    assert macro_f1(GOLD, PRED) == pytest.approx((2 / 3 + 0.5 + 2 / 3 + 0.0) / 4)
    assert macro_f1(["a", "a"], ["a", "a"]) == 1.0
    assert macro_f1(["a"], ["b"]) == 0.0  # b has no gold example: not averaged, but a loses


def test_wrong_actions_and_clarifications() -> None:
    decisions = ["act", "act", "confirm", "act", "ask_again", "act"]
    counts = action_counts(GOLD, PRED, decisions)
    # acted: ask_price right; deny (gold ask_price) wrong; other never acted on -> asked again;
    # affirm for gold other: wrong.
    assert counts == Counter(right_action=1, wrong_action=2, clarification=3)
    metrics = path_metrics(GOLD, PRED, decisions)
    assert metrics["wrong_action_rate"] == round(2 / 6, 4)
    assert metrics["clarification_rate"] == 0.5 and metrics["right_action_rate"] == round(1 / 6, 4)


def test_decide_never_acts_on_other() -> None:
    def always(intent: str, confidence: float, margin: float | None) -> str:
        return "act"

    assert decide("other", 0.99, None, always) == "ask_again"
    assert decide("deny", 0.2, None, always) == "act"
    assert decide("deny", 0.2, None, lambda i, c, m: "confirm") == "confirm"


def _row(intent: str, pred: str, decision: str, kind: str = "plain") -> Row:
    return Row(
        intent, "t", kind, None, "f2", "ulaw", "r", "h", "hh", 0, 0.5, 0.25, intent, pred, 0.9,
        "act", pred, 0.5, decision,
    )  # fmt: skip


def test_report_groups_and_compares_paths() -> None:
    rows = [
        _row("deny", "deny", "act"),
        _row("deny", "affirm", "confirm", kind="short"),
        _row("affirm", "affirm", "act", kind="short"),
    ]
    out = report(rows)
    assert out["overall"]["n"] == 3 and out["overall"]["cer"] == 0.5
    assert out["overall"]["cer_current"] == 0.25
    assert out["overall"]["text_accuracy"] == 1.0
    assert out["overall"]["baseline"]["wrong_action_rate"] == round(1 / 3, 4)
    assert out["overall"]["current"]["wrong_action_rate"] == 0.0
    assert out["overall"]["current"]["clarification_rate"] == round(1 / 3, 4)
    assert set(out["by_kind"]) == {"plain", "short"} and out["by_kind"]["short"]["n"] == 2
    assert out["by_dialect"] == {}


def test_percentiles() -> None:
    assert percentiles([]) == {"p50": 0.0, "p95": 0.0}
    values = [float(v) for v in range(1, 101)]
    assert percentiles(values) == {"p50": 50.5, "p95": 95.0}


class PromptEcho:
    """A recognizer that hears the prompt it was given (or nothing)."""

    def __init__(self) -> None:
        self.prompts: list[str | None] = []

    async def transcribe(self, pcm: bytes, rate: int, *, prompt: str | None = None) -> Any:
        from speech.asr.base import Transcript

        self.prompts.append(prompt)
        return Transcript(prompt or "", 0.4, "zh", 0.1, 0.0)


def test_the_ear_caches_each_prompt_apart(tmp_path: Path) -> None:
    import asyncio

    engine = PromptEcho()
    ear = Ear(engine, {"engine": "echo"}, tmp_path)
    pcm = b"\x01\x00" * 800

    async def hear_twice() -> list[str]:
        out = []
        for prompt in (None, "好的，多少钱", None, "好的，多少钱"):
            out.append((await ear.hear(pcm, prompt)).text)
        return out

    assert asyncio.run(hear_twice()) == ["", "好的，多少钱", "", "好的，多少钱"]
    assert engine.prompts == [None, "好的，多少钱"]  # the repeats came from the cache
    assert (ear.decoded, ear.cached) == (2, 2)


def test_the_default_hints_are_the_configured_scripts() -> None:
    prompt = script_prompt("callflow/scripts/saas_demo.yaml")
    assert prompt and "多少钱" in prompt
