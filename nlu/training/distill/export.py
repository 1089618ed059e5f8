"""Export an encoder state dict (BertModel names) to a CTranslate2 encoder, int8 or float32.

A small converter of our own fills CTranslate2's ``TransformerEncoderModelSpec`` (post-norm
BERT: word + token-type embeddings added, absolute positions, embedding LayerNorm) straight from
numpy arrays, so no transformers tokenizer is involved (the stock converter loads one with
AutoTokenizer) and no pooler is needed (we mean-pool; the head runs in numpy).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from ctranslate2.converters.converter import Converter
from ctranslate2.specs import common_spec, transformer_spec


class _StateDictConverter(Converter):
    def __init__(
        self,
        weights: Mapping[str, np.ndarray],
        vocabulary: Sequence[str],
        layers: int,
        heads: int,
        eps: float,
    ) -> None:
        self.w = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()}
        self.vocabulary = list(vocabulary)
        self.layers, self.heads, self.eps = layers, heads, eps

    def _linear(self, spec: common_spec.LinearSpec, name: str) -> None:
        spec.weight = self.w[f"{name}.weight"]
        spec.bias = self.w[f"{name}.bias"]

    def _norm(self, spec: common_spec.LayerNormSpec, name: str) -> None:
        spec.gamma = self.w[f"{name}.weight"]
        spec.beta = self.w[f"{name}.bias"]

    def _load(self) -> transformer_spec.TransformerEncoderModelSpec:
        enc = transformer_spec.TransformerEncoderSpec(
            self.layers,
            self.heads,
            pre_norm=False,
            activation=common_spec.Activation.GELU,
            layernorm_embedding=True,
            num_source_embeddings=2,
            embeddings_merge=common_spec.EmbeddingsMerge.ADD,
        )
        spec = transformer_spec.TransformerEncoderModelSpec(enc, pooling_layer=False)
        spec.encoder.scale_embeddings = False
        spec.encoder.embeddings[0].weight = self.w["embeddings.word_embeddings.weight"]
        spec.encoder.embeddings[1].weight = self.w["embeddings.token_type_embeddings.weight"]
        spec.encoder.position_encodings.encodings = self.w["embeddings.position_embeddings.weight"]
        self._norm(spec.encoder.layernorm_embedding, "embeddings.LayerNorm")
        for i, layer in enumerate(spec.encoder.layer):
            p = f"encoder.layer.{i}"
            qkv = [common_spec.LinearSpec() for _ in range(3)]
            for part, name in zip(qkv, ("query", "key", "value"), strict=True):
                self._linear(part, f"{p}.attention.self.{name}")
            layer.self_attention.linear[0].weight = np.concatenate([q.weight for q in qkv])
            layer.self_attention.linear[0].bias = np.concatenate([q.bias for q in qkv])
            self._linear(layer.self_attention.linear[1], f"{p}.attention.output.dense")
            self._norm(layer.self_attention.layer_norm, f"{p}.attention.output.LayerNorm")
            self._linear(layer.ffn.linear_0, f"{p}.intermediate.dense")
            self._linear(layer.ffn.linear_1, f"{p}.output.dense")
            self._norm(layer.ffn.layer_norm, f"{p}.output.LayerNorm")
        spec.register_vocabulary(self.vocabulary)
        spec.config.unk_token = "<unk>"
        spec.config.layer_norm_epsilon = self.eps
        return spec


def export_ct2(
    weights: Mapping[str, np.ndarray],
    vocabulary: Sequence[str],
    out_dir: Path,
    *,
    layers: int,
    heads: int,
    eps: float,
    quantization: str = "int8",
) -> Path:
    conv = _StateDictConverter(weights, vocabulary, layers, heads, eps)
    conv.convert(str(out_dir), quantization=quantization, force=True)
    return out_dir
