"""SentencePiece-unigram tokenizer for the encoder models, on the ``tokenizers`` package.

No torch and no sentencepiece model file: the vocabulary (pieces and scores) is stored as the
``tokenizers`` JSON; the per-codepoint normalization map of the original SentencePiece model is
stored beside it and applied with ``str.translate``. Segmentation is Viterbi over the pieces,
with a Metaspace pre-tokenizer, like the original. A pruned vocabulary (the student's) keeps all
single characters it needs, so unseen words still split into known characters.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

TOKENIZER_FILE: Final = "tokenizer.json"
CHARMAP_FILE: Final = "charmap.json"


class SpTokenizer:
    def __init__(
        self,
        tokenizer: Tokenizer,
        charmap: Mapping[int, str],
        *,
        bos: int,
        eos: int,
        pad: int,
        max_length: int = 64,
    ) -> None:
        self.tokenizer = tokenizer
        self.charmap = dict(charmap)
        self.bos, self.eos, self.pad = bos, eos, pad
        self.max_length = max_length

    @classmethod
    def build(
        cls,
        pieces: Sequence[str],
        scores: Sequence[float] | np.ndarray,
        special: Mapping[str, int],
        charmap: Mapping[int, str],
        max_length: int = 64,
    ) -> SpTokenizer:
        model = models.Unigram(
            [(p, float(s)) for p, s in zip(pieces, scores, strict=True)], unk_id=special["unk"]
        )
        tok = Tokenizer(model)
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
        tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
        return cls(
            tok,
            charmap,
            bos=special["bos"],
            eos=special["eos"],
            pad=special["pad"],
            max_length=max_length,
        )

    @property
    def vocab_size(self) -> int:
        return int(self.tokenizer.get_vocab_size())

    def _prepare(self, text: str) -> str:
        return " ".join(text.translate(self.charmap).split())

    def pieces(self, text: str) -> list[str]:
        return list(self.tokenizer.encode(self._prepare(text), add_special_tokens=False).tokens)

    def encode(self, text: str) -> list[int]:
        """Token ids with <s> ... </s>, truncated to ``max_length``."""
        ids = self.tokenizer.encode(self._prepare(text), add_special_tokens=False).ids
        return [self.bos, *ids[: self.max_length - 2], self.eos]

    def batch(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(ids, lengths) padded to the longest text of the batch."""
        rows = [self.encode(t) for t in texts]
        lengths = np.array([len(r) for r in rows], dtype=np.int32)
        ids = np.full((len(rows), int(lengths.max(initial=2))), self.pad, dtype=np.int32)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
        return ids, lengths

    def save(self, out_dir: str | os.PathLike[str]) -> None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save(str(out / TOKENIZER_FILE))
        meta = {
            "bos": self.bos,
            "eos": self.eos,
            "pad": self.pad,
            "max_length": self.max_length,
            "charmap": {str(k): v for k, v in sorted(self.charmap.items())},
        }
        (out / CHARMAP_FILE).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> SpTokenizer:
        path = Path(folder)
        meta = json.loads((path / CHARMAP_FILE).read_text(encoding="utf-8"))
        tok = Tokenizer.from_file(str(path / TOKENIZER_FILE))
        charmap = {int(k): v for k, v in meta["charmap"].items()}
        return cls(
            tok,
            charmap,
            bos=meta["bos"],
            eos=meta["eos"],
            pad=meta["pad"],
            max_length=meta["max_length"],
        )
