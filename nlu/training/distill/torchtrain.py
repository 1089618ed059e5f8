"""Fine-tuning loop for encoder + mean-pool + linear head (training only, torch).

Batches are bucketed by length (short utterances: ~10 tokens), so a CPU epoch costs what the
tokens cost, not what padding to a fixed length would. Targets are either class indices (hard
labels) or probability rows (a teacher's soft labels; loss = KL at temperature T, plus
``hard_weight`` x cross-entropy where a hard label exists, -1 = unlabelled).
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from nlu.sptok import SpTokenizer

log = logging.getLogger(__name__)


class EncoderClassifier(nn.Module):
    def __init__(self, bert: Any, n_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.bert = bert
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(bert.config.hidden_size, n_classes)

    def pooled(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.pooled(ids, mask)))


@dataclass(frozen=True, slots=True)
class FitConfig:
    epochs: float = 2.0
    lr: float = 5e-5
    head_lr: float = 1e-3
    batch_size: int = 32
    warmup: float = 0.06
    weight_decay: float = 0.01
    freeze_embeddings: bool = True
    freeze_layers: int = 0  # lowest encoder layers kept fixed
    temperature: float = 2.0
    hard_weight: float = 0.5
    seed: int = 13


def _batches(lengths: Sequence[int], size: int, rng: random.Random) -> list[list[int]]:
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], rng.random()))
    chunks = [order[i : i + size] for i in range(0, len(order), size)]
    rng.shuffle(chunks)
    return chunks


def _tensors(tok: SpTokenizer, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    ids, lengths = tok.batch(texts)
    mask = (np.arange(ids.shape[1])[None, :] < lengths[:, None]).astype(np.int64)
    return torch.from_numpy(ids.astype(np.int64)), torch.from_numpy(mask)


def _freeze(model: EncoderClassifier, config: FitConfig) -> None:
    emb = model.bert.embeddings
    if config.freeze_embeddings:
        emb.word_embeddings.weight.requires_grad_(False)
    if config.freeze_layers > 0:
        for p in emb.parameters():
            p.requires_grad_(False)
        for layer in model.bert.encoder.layer[: config.freeze_layers]:
            for p in layer.parameters():
                p.requires_grad_(False)


def fit(
    model: EncoderClassifier,
    tok: SpTokenizer,
    texts: Sequence[str],
    hard: Sequence[int],
    soft: np.ndarray | None,
    config: FitConfig,
    on_epoch: Callable[[int], None] | None = None,
) -> dict[str, float]:
    """Train in place; returns {"seconds", "steps", "last_loss"}."""
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    _freeze(model, config)
    lengths = [len(tok.encode(t)) for t in texts]
    head = [p for n, p in model.named_parameters() if n.startswith("head") and p.requires_grad]
    body = [p for n, p in model.named_parameters() if not n.startswith("head") and p.requires_grad]
    opt = torch.optim.AdamW(
        [{"params": body, "lr": config.lr}, {"params": head, "lr": config.head_lr}],
        weight_decay=config.weight_decay,
    )
    per_epoch = math.ceil(len(texts) / config.batch_size)
    total = max(1, int(per_epoch * config.epochs))
    warm = max(1, int(total * config.warmup))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm)))
    )
    hard_t = torch.tensor(list(hard), dtype=torch.long)
    soft_t = torch.from_numpy(soft.astype(np.float32)) if soft is not None else None
    started, step, loss_v, epoch = time.perf_counter(), 0, 0.0, 0
    model.train()
    while step < total:
        for batch in _batches(lengths, config.batch_size, rng):
            if step >= total:
                break
            ids, mask = _tensors(tok, [texts[i] for i in batch])
            logits = model(ids, mask)
            loss = _loss(
                logits, hard_t[batch], soft_t[batch] if soft_t is not None else None, config
            )
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            loss_v = 0.98 * loss_v + 0.02 * float(loss) if step > 1 else float(loss)
            if step % 100 == 0:
                log.info(
                    "step %d/%d loss %.4f %.0fs", step, total, loss_v, time.perf_counter() - started
                )
        epoch += 1
        if on_epoch is not None:
            on_epoch(epoch)
    model.eval()
    return {"seconds": round(time.perf_counter() - started, 1), "steps": step, "last_loss": loss_v}


def _loss(
    logits: torch.Tensor, hard: torch.Tensor, soft: torch.Tensor | None, config: FitConfig
) -> torch.Tensor:
    ce = nn.functional.cross_entropy
    if soft is None:
        return ce(logits, hard, label_smoothing=0.05)
    t = config.temperature
    kl = nn.functional.kl_div(
        nn.functional.log_softmax(logits / t, -1), soft, reduction="batchmean"
    ) * (t * t)
    labelled = hard >= 0
    if config.hard_weight > 0 and bool(labelled.any()):
        return kl + config.hard_weight * ce(logits[labelled], hard[labelled])
    return kl


@torch.no_grad()
def predict(
    model: EncoderClassifier,
    tok: SpTokenizer,
    texts: Sequence[str],
    batch_size: int = 64,
    temperature: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities at ``temperature``, pooled embeddings) for texts, in input order."""
    model.eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    probs = np.zeros((len(texts), model.head.out_features), dtype=np.float32)
    pooled = np.zeros((len(texts), model.head.in_features), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        ids, mask = _tensors(tok, [texts[i] for i in idx])
        emb = model.pooled(ids, mask)
        logits = model.head(emb)
        probs[idx] = torch.softmax(logits / temperature, -1).numpy()
        pooled[idx] = emb.numpy()
    return probs, pooled
