"""Knowledge answers: the file format, retrieval, the fallback, and the machine's answer handler."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from app.config import Config
from app.engines import make_knowledge
from callflow.knowledge import lookup, wants_answer
from callflow.machine import Answered, DialogState, Say, UserSaid, step
from callflow.script import ScriptError
from callflow.script_parse import load_script, parse_script
from nlu.base import INTENTS
from nlu.fake import FakeClassifier
from nlu.knowledge.fake import FakeKnowledgeBase
from nlu.knowledge.file import KnowledgeFileError, load_knowledge
from nlu.knowledge.retrieval import RetrievalKnowledgeBase, build_index, open_knowledge_base

ROOT = Path(__file__).resolve().parents[1]
SAAS = ROOT / "callflow" / "scripts" / "saas_demo.knowledge.yaml"
EDU = ROOT / "callflow" / "scripts" / "edu_upgrade.knowledge.yaml"

GOOD_ENTRY = """
  - id: trial
    kind: policy
    answer: 可以免费试用十四天。
    questions: [能试用吗, 有没有试用期]
"""


def _write(tmp_path: Path, body: str, name: str = "k.yaml") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


# ---- the file -------------------------------------------------------------------------------


def test_the_two_real_files_load() -> None:
    for path in (SAAS, EDU):
        kfile = load_knowledge(path)
        assert len(kfile.entries) >= 25
        assert all(len(e.questions) >= 3 and e.answer for e in kfile.entries)
        assert len(kfile.sha256) == 64


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("  - id: Bad-Id\n    answer: x\n    questions: [a, b]\n", "entries[1]: id must be"),
        (
            "  - id: trial\n    answer: x\n    questions: [c, d]\n",
            "entries[1] (trial): duplicate id",
        ),
        (
            "  - id: other\n    answer: x\n    questions: [能试用吗, e]\n",
            "(other): question '能试用吗' is also in trial",
        ),
        (
            "  - id: other\n    answer: x\n    questions: [only]\n",
            "(other): questions must be a list of at least 2",
        ),
        ("  - id: other\n    questions: [a, b]\n", "(other): answer must be a non-empty string"),
        (
            "  - id: other\n    kind: rumour\n    answer: x\n    questions: [a, b]\n",
            "(other): kind 'rumour'",
        ),
        ("  - id: other\n    answr: x\n    questions: [a, b]\n", "(other): unknown key 'answr'"),
        (
            "  - id: other\n    answer: x\n    questions: [a, a]\n",
            "(other): question 'a' is listed twice",
        ),
    ],
)
def test_file_errors_name_the_file_and_the_entry(tmp_path: Path, entry: str, expected: str) -> None:
    path = _write(tmp_path, "name: t\nentries:" + GOOD_ENTRY + entry)
    with pytest.raises(KnowledgeFileError) as err:
        load_knowledge(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert expected in message


def test_file_errors_for_the_whole_file(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeFileError, match="knowledge file not found"):
        load_knowledge(tmp_path / "missing.yaml")
    with pytest.raises(KnowledgeFileError, match="entries must be a non-empty list"):
        load_knowledge(_write(tmp_path, "name: t\nentries: []\n"))
    with pytest.raises(KnowledgeFileError, match="duplicate key"):
        load_knowledge(_write(tmp_path, "name: t\nname: u\nentries:" + GOOD_ENTRY))


# ---- retrieval ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saas() -> RetrievalKnowledgeBase:
    return open_knowledge_base(SAAS, engine="lexical")


@pytest.mark.parametrize(
    ("question", "entry"),
    [
        ("你们这个能先免费用几天看看吗", "free_trial"),  # paraphrase
        ("资料放在你们那里会不会被泄露出去", "data_security"),
        ("我们想接钉钉可以吗", "integrations"),
        ("俺们装系统要买啥机器不", "deploy_cloud"),  # 俺, 啥: dialect-flavoured
        ("能开发飘吗", "payment_invoice"),  # 票 -> 飘: a homophone the recognizer wrote
        ("十用要交钱吗", "free_trial"),  # 试 -> 十
        ("周末有人值班不", "support_hours"),  # colloquial A-not tag
    ],
)
def test_retrieval_finds_paraphrases_and_noisy_questions(
    saas: RetrievalKnowledgeBase, question: str, entry: str
) -> None:
    top3 = [c.entry_id for c in saas.ranked(question)]
    assert entry in top3, (question, top3)


def test_answer_carries_text_entry_score_and_candidates(saas: RetrievalKnowledgeBase) -> None:
    answer = saas.answer("合同最短要签多久")
    assert answer is not None
    assert answer.entry_id == "contract_term"
    assert answer.text == load_knowledge(SAAS).entry("contract_term").answer
    assert answer.confidence >= saas.threshold
    assert answer.candidates[0].entry_id == "contract_term"
    assert len(answer.candidates) == 3
    assert answer.candidates[0].score >= answer.candidates[1].score


def test_falls_back_below_the_threshold(saas: RetrievalKnowledgeBase) -> None:
    assert saas.answer("") is None
    assert saas.answer("帮我订一张去北京的机票") is None
    strict = RetrievalKnowledgeBase(saas.index, threshold=1.01)
    assert strict.answer("合同最短要签多久") is None


def test_the_index_is_built_once_per_file_content(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: t\nentries:" + GOOD_ENTRY)
    first = open_knowledge_base(path, engine="lexical")
    assert open_knowledge_base(path, engine="lexical").index is first.index
    path.write_text("name: t\nentries:" + GOOD_ENTRY.replace("十四天", "七天"), encoding="utf-8")
    assert open_knowledge_base(path, engine="lexical").index is not first.index


def test_unknown_engine_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown knowledge engine 'magic'"):
        open_knowledge_base(SAAS, engine="magic")


def test_hybrid_uses_the_intent_models_embedding() -> None:
    from nlu import load_classifier

    model: Any = load_classifier()
    kb = RetrievalKnowledgeBase(build_index(load_knowledge(EDU), model.embed))
    assert kb.name == "hybrid"
    assert 0.0 < kb.weight < 1.0
    dense = kb.index.dense("学费可以分几个月交吗")
    assert dense.shape == (len(kb.index.kfile.entries),)
    answer = kb.answer("学费可以分几个月交吗")
    assert answer is not None and answer.entry_id == "installments"


# ---- the script and the machine --------------------------------------------------------------


def _script(knowledge: str | None = "k.yaml", handler: Any = None) -> Any:
    data: dict[str, Any] = {
        "name": "t",
        "start": "pitch",
        "states": {
            "pitch": {
                "say": "介绍一下。",
                "on": {
                    "ask_detail": handler or {"answer": "knowledge", "fallback": "固定的介绍。"},
                    "affirm": "end",
                },
            },
            "end": {"say": "再见。", "end": "qualified"},
            "end_no_response": {"say": "再见。", "end": "no_response"},
        },
    }
    if knowledge:
        data["knowledge"] = knowledge
    return parse_script(data, source="t.yaml", known_intents=INTENTS)


def test_the_machine_says_the_knowledge_answer() -> None:
    script = _script()
    state = step(script, DialogState(), Answered())[0]
    state, actions = step(
        script, state, UserSaid("ask_detail", 0.95, "能试用吗", answer="可以试用十四天。")
    )
    assert [a.text for a in actions if isinstance(a, Say)] == ["可以试用十四天。"]
    assert state.node == "pitch"


def test_the_machine_falls_back_to_the_script_line() -> None:
    script = _script()
    state = step(script, DialogState(), Answered())[0]
    _, actions = step(script, state, UserSaid("ask_detail", 0.95, "你们老板是谁"))
    assert [a.text for a in actions if isinstance(a, Say)] == ["固定的介绍。"]
    assert "固定的介绍。" in script.lines()


def test_a_confirmed_question_keeps_its_answer() -> None:
    script = replace(_script(), confirm={"ask_detail": "您是想了解产品吗？"})
    state = step(script, DialogState(), Answered())[0]
    state, actions = step(script, state, UserSaid("ask_detail", 0.4, "试用", answer="可以试用。"))
    assert [a.text for a in actions if isinstance(a, Say)] == ["您是想了解产品吗？"]
    _, actions = step(script, state, UserSaid("affirm", 0.95, "对"))
    assert [a.text for a in actions if isinstance(a, Say)] == ["可以试用。"]


@pytest.mark.parametrize(
    ("knowledge", "handler", "expected"),
    [
        (None, None, "answers from knowledge but the script names no knowledge file"),
        ("k.yaml", {"answer": "llm", "fallback": "x"}, "answer must be knowledge"),
        ("k.yaml", {"answer": "knowledge"}, "exactly {answer: knowledge, fallback: ...}"),
        ("k.yaml", {"answer": "knowledge", "fallback": " "}, "fallback must not be empty"),
    ],
)
def test_answer_handler_errors(knowledge: str | None, handler: Any, expected: str) -> None:
    with pytest.raises(ScriptError) as err:
        _script(knowledge, handler)
    assert expected in str(err.value)


def test_load_script_resolves_the_knowledge_file(tmp_path: Path) -> None:
    demo = ROOT / "callflow" / "scripts" / "saas_demo.yaml"
    script = load_script(demo, known_intents=INTENTS)
    assert script.knowledge == str(SAAS)
    moved = _write(tmp_path, demo.read_text(encoding="utf-8"), "demo.yaml")
    with pytest.raises(ScriptError, match="knowledge file 'saas_demo.knowledge.yaml' not found"):
        load_script(moved, known_intents=INTENTS)


def test_lookup_asks_only_for_answer_handlers() -> None:
    script = _script()
    state = step(script, DialogState(), Answered())[0]
    kb = FakeKnowledgeBase({"试用": ("free_trial", "可以试用。")})
    assert wants_answer(script, state, "ask_detail")
    assert not wants_answer(script, state, "affirm")
    assert lookup(kb, script, state, "affirm", "能试用吗") is None
    assert kb.asked == []
    answer = lookup(kb, script, state, "ask_detail", "能试用吗")
    assert answer is not None and answer.entry_id == "free_trial"
    assert lookup(None, script, state, "ask_detail", "能试用吗") is None


def test_engine_factory_builds_the_scripts_knowledge_base(tmp_path: Path) -> None:
    cfg = Config()
    cfg.nlu.knowledge_engine = "lexical"
    demo = load_script(ROOT / "callflow" / "scripts" / "saas_demo.yaml", known_intents=INTENTS)
    kb = make_knowledge(cfg, demo, FakeClassifier())
    assert kb is not None and kb.name == "lexical"
    broken = replace(demo, knowledge=str(_write(tmp_path, "name: t\nentries: []\n")))
    with pytest.raises(ScriptError, match="entries must be a non-empty list"):
        make_knowledge(cfg, broken, FakeClassifier())


# ---- the benchmark ---------------------------------------------------------------------------


def test_bench_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    from bench.knowledge import main

    assert main(["--engine", "lexical", "--split", "all", "--limit", "12", "--variants", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0.0 <= result["recall@1"] <= result["recall@3"] <= 1.0
    assert set(result["conditions"]) == {"clean", "phone", "hard"}
    assert result["conditions"]["clean"]["questions"] > 0
    assert result["latency_ms"]["p50"] > 0
