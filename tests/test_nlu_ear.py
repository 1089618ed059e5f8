"""Training on what the ear hears: the ear-data plan (voices, sample, split), the committed
transcripts, the confusion-folded pinyin features and the phone-robust linear model."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from nlu.features import FeatureConfig, Vectorizer, fold, tokens
from nlu.training.dataset import Example
from nlu.training.ear import (
    EAR_FILE,
    GAPS,
    PITCHES,
    SPEEDS,
    VARIANTS,
    is_test,
    load_ear,
    sample,
    voice_for,
)

# The benchmark's voices (bench/understanding.py): training must never use them.
EVAL_VARIANTS = {"f2", "m3", "f4", "klatt3"}
EVAL_SPEEDS, EVAL_PITCHES, EVAL_GAPS = {110, 150}, {40, 60}, {0, 3}


def test_training_voices_are_disjoint_from_the_benchmarks() -> None:
    assert not set(VARIANTS) & EVAL_VARIANTS
    assert not set(SPEEDS) & EVAL_SPEEDS
    assert not set(PITCHES) & EVAL_PITCHES
    assert not set(GAPS) & EVAL_GAPS
    voice = voice_for("价格太贵了", 1)
    assert voice == voice_for("价格太贵了", 1)  # seeded by the text: reruns give the same audio
    assert voice["variant"] in VARIANTS and voice["codec"] in ("ulaw", "alaw")


def test_the_sample_is_stratified_bounded_and_distinct() -> None:
    examples = [Example(f"句子{i}号", "affirm", "data") for i in range(50)]
    examples += [Example(f"多少钱{i}", "ask_price", "data") for i in range(3)]
    examples += [Example("好的", "affirm", "data")] * 5 + [Example("长" * 40, "deny", "data")]
    picked = sample(examples, per_intent=10, seed=1)
    counts = Counter(ex.intent for ex in picked)
    assert counts == {"affirm": 10, "ask_price": 3}  # too-long sentences are left out
    assert len({ex.text for ex in picked}) == len(picked)
    assert picked == sample(examples, per_intent=10, seed=1)


def test_the_test_slice_is_split_by_sentence() -> None:
    texts = [f"第{i}句话" for i in range(400)]
    share = sum(is_test(t) for t in texts) / len(texts)
    assert 0.08 < share < 0.25
    assert all(is_test(t) == is_test(t + "。") for t in texts[:50])  # same normalized sentence


def test_load_ear_reads_rows_and_filters_the_split(tmp_path: Path) -> None:
    path = tmp_path / "ear.jsonl"
    rows = [
        {"id": "a", "text": "价格", "ear_text": "加格", "intent": "ask_price", "split": "train"},
        {"id": "b", "text": "好的", "ear_text": "好得", "intent": "affirm", "split": "test"},
    ]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    assert [ex.text for ex in load_ear(path, split="train")] == ["加格"]
    assert [ex.source for ex in load_ear(path)] == ["ear", "ear"]
    assert load_ear(tmp_path / "missing.jsonl") == []


def test_the_committed_ear_transcripts_are_well_formed() -> None:
    if not EAR_FILE.is_file():
        pytest.skip("ear transcripts not generated")
    assert EAR_FILE.stat().st_size < 2_000_000
    rows = [json.loads(line) for line in EAR_FILE.read_text("utf-8").splitlines()]
    assert len({r["id"] for r in rows}) == len(rows)
    for row in rows:
        assert row["split"] in ("train", "test")
        assert row["voice"]["variant"] in VARIANTS and row["voice"]["speed"] in SPEEDS
        assert row["split"] == ("test" if is_test(row["text"]) else "train")
    assert len({r["intent"] for r in rows}) >= 15  # stratified: (nearly) every intent


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("zhuan", "zuan"),
        ("chi", "ci"),
        ("shi", "si"),
        ("neng", "leng"),
        ("hu", "fu"),
        ("fang", "fan"),
        ("ren", "reng"),
        ("xing", "xin"),
        ("jiang", "jian"),
    ],
)
def test_fold_merges_the_usual_confusions(a: str, b: str) -> None:
    assert fold(a) == fold(b)


def test_fold_keeps_distinct_sounds_apart_and_passes_other_chunks() -> None:
    assert fold("ma") != fold("ba")
    assert fold("jia") != fold("zha")
    assert fold("，ok") == "，ok"


def test_folded_features_are_off_unless_configured() -> None:
    plain = tokens("价格", FeatureConfig())
    folded = tokens("价格", FeatureConfig(folded_ngrams=(1, 2)))
    assert not any(t.startswith("q:") for t in plain)
    assert "q:jia ge" in folded
    # a near-homophone transcript shares the folded features the plain pinyin misses
    said = tokens("你发我邮箱", FeatureConfig(folded_ngrams=(1, 2)))  # ni fa wo you xiang
    heard = tokens("里发我油香", FeatureConfig(folded_ngrams=(1, 2)))  # li fa wo you xiang

    def part(counts: Counter[str], prefix: str) -> set[str]:
        return {t for t in counts if t.startswith(prefix)}

    assert part(said, "p:") != part(heard, "p:")
    assert part(said, "q:") == part(heard, "q:")


def test_feature_config_round_trips_and_old_manifests_load() -> None:
    config = FeatureConfig(folded_ngrams=(1, 2))
    assert FeatureConfig.from_json(config.to_json()) == config
    old = {"char_ngrams": [1, 3], "pinyin_ngrams": [1, 2], "min_df": 2}
    assert FeatureConfig.from_json(old).folded_ngrams == (0, 0)
    assert "folded_ngrams" not in FeatureConfig().to_json()
    vec = Vectorizer.fit(["价格太贵", "价格太贵了", "好的"], FeatureConfig(folded_ngrams=(1, 2)))
    assert any(t.startswith("q:") for t in vec.vocabulary)


def test_the_ensemble_uses_linear_ear_and_the_baseline_stays_loadable() -> None:
    pytest.importorskip("ctranslate2")
    from nlu import ModelNotFoundError, load_classifier
    from nlu.ensemble import EnsembleIntentClassifier
    from nlu.training.ear import STUDENT_DIR

    manifest = json.loads((STUDENT_DIR / "manifest.json").read_text("utf-8"))
    assert manifest["ensemble"]["linear_dir"] == "linear-ear"
    assert manifest["ensemble"]["baseline_linear_dir"] == "linear"
    current = load_classifier(STUDENT_DIR)
    baseline = load_classifier(STUDENT_DIR, linear="linear")
    assert isinstance(current, EnsembleIntentClassifier)
    assert isinstance(baseline, EnsembleIntentClassifier)
    assert current.linear.vectorizer.config.folded_ngrams == (1, 2)
    assert baseline.linear.vectorizer.config.folded_ngrams == (0, 0)
    assert current.classify("多少钱").intent == baseline.classify("多少钱").intent == "ask_price"
    with pytest.raises(ModelNotFoundError):
        load_classifier(STUDENT_DIR, linear="no-such-linear")


def test_poorly_heard_transcripts_get_the_heard_model_and_the_baseline_never_does() -> None:
    pytest.importorskip("ctranslate2")
    from nlu import load_classifier
    from nlu.ensemble import EnsembleIntentClassifier
    from nlu.training.ear import HEARD_LINEAR, STUDENT_DIR

    manifest = json.loads((STUDENT_DIR / "manifest.json").read_text("utf-8"))
    assert manifest["ensemble"]["heard_linear_dir"] == HEARD_LINEAR
    heard = json.loads((STUDENT_DIR / HEARD_LINEAR / "manifest.json").read_text("utf-8"))
    assert heard["hyper"]["ear"] is True and heard["hyper"]["ear_repeat"] == 6
    figures = manifest["ensemble"]["ear_figures"]["ear_test"]
    assert figures["linear_heard"]["accuracy"] > figures["ensemble"]["accuracy"]
    current = load_classifier(STUDENT_DIR, linear_only_below=0.5)
    baseline = load_classifier(STUDENT_DIR, linear="linear", linear_only_below=0.5)
    assert isinstance(current, EnsembleIntentClassifier)
    assert isinstance(baseline, EnsembleIntentClassifier)
    assert current.heard_poorly.linear is not current.linear
    assert current.heard_poorly.linear.manifest["hyper"]["ear_repeat"] == 6
    assert baseline.heard_poorly.linear is baseline.linear  # the old path stays the old path
