"""A bounded, thread-safe cache of per-text model outputs (intent probability rows).

Callers repeat themselves across calls: "好的", "嗯", "不需要", "多少钱" are a large share of
all replies a node hears, and the student's pass over them costs milliseconds each. A model
keeps its rows here keyed by the model text (``nlu.prepare.model_text``), so a repeated reply
costs a dictionary lookup. The rows are the ones the model computed for that text, so a hit
changes no prediction. Rows are stored read-only; evicted least-recently-used first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Final

import numpy as np

DEFAULT_SIZE: Final = 4096  # ~4096 x 18 floats: well under a megabyte


class RowCache:
    """``rows(texts, compute)``: cached rows for known texts, one ``compute`` call for the rest."""

    def __init__(self, maxsize: int = DEFAULT_SIZE) -> None:
        if maxsize < 0:
            raise ValueError("maxsize must be >= 0")
        self.maxsize = maxsize
        self._rows: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._rows)

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()

    def _get(self, texts: Sequence[str]) -> list[np.ndarray | None]:
        with self._lock:
            found = [self._rows.get(t) for t in texts]
            for text, row in zip(texts, found, strict=True):
                if row is not None:
                    self._rows.move_to_end(text)
            hits = sum(row is not None for row in found)
            self.hits += hits
            self.misses += len(texts) - hits
        return found

    def _put(self, texts: Sequence[str], rows: np.ndarray) -> None:
        with self._lock:
            for text, row in zip(texts, rows, strict=True):
                frozen = np.array(row)
                frozen.flags.writeable = False
                self._rows[text] = frozen
                self._rows.move_to_end(text)
            while len(self._rows) > self.maxsize:
                self._rows.popitem(last=False)

    def rows(
        self, texts: Sequence[str], compute: Callable[[Sequence[str]], np.ndarray]
    ) -> np.ndarray:
        """One row per text (stacked), computing the missing ones in one ``compute`` call."""
        if self.maxsize == 0:
            return np.asarray(compute(texts))
        found = self._get(texts)
        missing = list(dict.fromkeys(t for t, row in zip(texts, found, strict=True) if row is None))
        if missing:
            fresh = np.asarray(compute(missing))
            self._put(missing, fresh)
            by_text = dict(zip(missing, fresh, strict=True))
            found = [
                by_text[t] if row is None else row for t, row in zip(texts, found, strict=True)
            ]
        return np.stack([row for row in found if row is not None])
