"""Fine-tune a Hugging Face Whisper checkpoint on augmented examples (needs torch +
transformers: requirements-train.txt). Imported only by the pipeline, never at run time."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from speech.adapt.augment import Example

log = logging.getLogger(__name__)

PREFIX_TOKENS = ("<|startoftranscript|>", "{language}", "<|transcribe|>", "<|notimestamps|>")
EOT = "<|endoftext|>"


@dataclass(frozen=True, slots=True)
class TrainConfig:
    epochs: int = 3
    batch_size: int = 4
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    max_steps: int | None = None  # stop early (smoke runs)
    language: str = "zh"
    threads: int = 2
    seed: int = 0
    freeze_encoder: bool = False  # decoder-only tuning: faster, less data-hungry


@dataclass(frozen=True, slots=True)
class TrainResult:
    steps: int
    losses: list[float]
    seconds: float


def load_base(base: Path, tokenizer_file: Path | None) -> tuple[Any, Any, Any]:
    """(model, tokenizer, feature extractor) from a local HF Whisper folder, offline."""
    from transformers import (  # type: ignore[attr-defined]
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperTokenizerFast,
    )

    model = WhisperForConditionalGeneration.from_pretrained(base, local_files_only=True)
    if (base / "tokenizer.json").is_file() or (base / "tokenizer_config.json").is_file():
        tokenizer = WhisperTokenizerFast.from_pretrained(base, local_files_only=True)
    elif tokenizer_file is not None:
        tokenizer = WhisperTokenizerFast(tokenizer_file=str(tokenizer_file))
    else:
        raise FileNotFoundError(f"{base} has no tokenizer; pass a Whisper tokenizer.json")
    if (base / "preprocessor_config.json").is_file():
        features = WhisperFeatureExtractor.from_pretrained(base, local_files_only=True)
    else:
        features = WhisperFeatureExtractor(feature_size=model.config.num_mel_bins)
    return model, tokenizer, features


def token_ids(tokenizer: Any, text: str, language: str) -> list[int]:
    """<|startoftranscript|><|zh|><|transcribe|><|notimestamps|> text <|endoftext|>."""
    prefix = [t.format(language=f"<|{language}|>") for t in PREFIX_TOKENS]
    ids = [tokenizer.convert_tokens_to_ids(t) for t in prefix]
    if tokenizer.unk_token_id is not None and tokenizer.unk_token_id in ids:
        raise ValueError(f"the tokenizer has no special token for language {language!r}")
    body = tokenizer(text, add_special_tokens=False).input_ids
    return [*ids, *body, tokenizer.convert_tokens_to_ids(EOT)]


def _batch(
    examples: Sequence[Example], tokenizer: Any, features: Any, language: str, max_len: int
) -> dict[str, Any]:
    import torch

    mels = features(
        [e.samples for e in examples], sampling_rate=features.sampling_rate, return_tensors="np"
    ).input_features
    seqs = [token_ids(tokenizer, e.text, language)[: max_len + 1] for e in examples]
    width = max(len(s) for s in seqs) - 1
    pad = tokenizer.convert_tokens_to_ids(EOT)
    inputs = np.full((len(seqs), width), pad, dtype=np.int64)
    labels = np.full((len(seqs), width), -100, dtype=np.int64)
    for i, seq in enumerate(seqs):
        inputs[i, : len(seq) - 1] = seq[:-1]
        labels[i, : len(seq) - 1] = seq[1:]
    return {
        "input_features": torch.from_numpy(np.asarray(mels, dtype=np.float32)),
        "decoder_input_ids": torch.from_numpy(inputs),
        "labels": torch.from_numpy(labels),
    }


def finetune(
    model: Any, tokenizer: Any, features: Any, examples: Sequence[Example], config: TrainConfig
) -> TrainResult:
    """AdamW over shuffled mini-batches; returns the loss of every step."""
    import torch

    torch.manual_seed(config.seed)
    torch.set_num_threads(max(1, config.threads))
    rng = random.Random(config.seed)
    if config.freeze_encoder:
        for p in model.model.encoder.parameters():
            p.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    max_len = int(model.config.max_target_positions) - 1
    model.train()
    losses: list[float] = []
    started = time.monotonic()
    order = list(range(len(examples)))
    for epoch in range(config.epochs):
        rng.shuffle(order)
        for start in range(0, len(order), config.batch_size):
            chunk = [examples[i] for i in order[start : start + config.batch_size]]
            batch = _batch(chunk, tokenizer, features, config.language, max_len)
            loss = model(**batch).loss
            optim.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optim.step()
            losses.append(float(loss.detach()))
            log.info("adapt step", extra={"epoch": epoch, "step": len(losses), "loss": losses[-1]})
            if config.max_steps is not None and len(losses) >= config.max_steps:
                return TrainResult(len(losses), losses, time.monotonic() - started)
    model.eval()
    return TrainResult(len(losses), losses, time.monotonic() - started)


def save_checkpoint(model: Any, tokenizer: Any, features: Any, folder: Path) -> None:
    """The fine-tuned model as a HF folder (the converter's input; tunable again later)."""
    model.eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    features.save_pretrained(folder)
