"""Silero VAD (ONNX on onnxruntime, no torch) to confirm what webrtcvad calls speech.

webrtcvad is a cheap per-frame gate that also fires on clicks, music and loud noise; Silero is a
small neural VAD that tells speech from noise far better, at ~100x the cost. So it runs only on
decision points, off the event loop: on an onset (before barge-in is announced) and on a whole
utterance that was never confirmed (before it is decoded).

The ONNX comes from an installed wheel, never from the network:
  * ``silero-vad`` (``silero_vad/data/silero_vad.onnx``, v6, 8 kHz native). The wheel declares
    torch as a dependency it does not need for ONNX: ``pip install --no-deps silero-vad``.
  * ``faster-whisper`` (``faster_whisper/assets/silero_vad_v6.onnx``, 16 kHz only): always there
    with the Whisper engine; 8 kHz audio is upsampled first.
"""

from __future__ import annotations

import asyncio
import importlib.util
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from core.audio import SAMPLE_RATE
from speech import audio

_CONTEXT = {8000: 32, 16000: 64}
_WINDOW = {8000: 256, 16000: 512}


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)  # locates the package without importing it (torch)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def find_silero_model() -> Path:
    """The Silero ONNX shipped by an installed wheel (see the module docstring)."""
    candidates = []
    if (pkg := _package_dir("silero_vad")) is not None:
        candidates.append(pkg / "data" / "silero_vad.onnx")
    if (pkg := _package_dir("faster_whisper")) is not None:
        candidates.append(pkg / "assets" / "silero_vad_v6.onnx")
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(
        "no Silero VAD model installed: pip install --no-deps silero-vad==6.2.3 "
        "(or install faster-whisper, which ships one)"
    )


def _session(path: Path) -> Any:
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("Silero VAD needs onnxruntime: pip install onnxruntime") from exc
    opts = onnxruntime.SessionOptions()
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 4
    return onnxruntime.InferenceSession(
        str(path), providers=["CPUExecutionProvider"], sess_options=opts
    )


class SileroVad:
    """Speech probabilities for a clip (fresh model state per clip); thread-safe.

    ``confirm(pcm)`` (async, in its own one-thread pool) says whether a clip of 8 kHz PCM16
    holds at least ``min_speech_ms`` of windows with probability >= ``threshold``.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        threshold: float = 0.5,
        min_speech_ms: int = 90,
    ) -> None:
        self.path = Path(model_path) if model_path else find_silero_model()
        self._session = _session(self.path)
        names = {i.name for i in self._session.get_inputs()}
        self.rate = 8000 if "sr" in names else 16000  # v6 wheel model vs faster-whisper's
        self._stateful_sr = "sr" in names
        self.threshold = threshold
        self.min_speech_ms = min_speech_ms
        self.window_ms = _WINDOW[self.rate] * 1000 // self.rate
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="silero")

    def speech_probs(self, pcm: bytes, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        """One probability per window (32 ms) of the clip."""
        x = audio.pcm16_to_float(pcm)
        if sample_rate != self.rate:
            x = audio.resample_float(x, sample_rate, self.rate)
        win, ctx = _WINDOW[self.rate], _CONTEXT[self.rate]
        n = x.size // win
        if n == 0:
            return np.zeros(0, np.float32)
        windows = x[: n * win].reshape(n, win)
        context = np.zeros((n, ctx), np.float32)
        context[1:] = windows[:-1, -ctx:]
        batch = np.ascontiguousarray(np.concatenate([context, windows], axis=1))
        if not self._stateful_sr:  # faster-whisper's export: the rows are one sequence
            h = np.zeros((1, 1, 128), np.float32)
            out, _, _ = self._session.run(None, {"input": batch, "h": h, "c": h.copy()})
            return np.asarray(out, np.float32).reshape(-1)
        state = np.zeros((2, 1, 128), np.float32)
        sr = np.array(self.rate, dtype=np.int64)
        probs = np.empty(n, np.float32)
        for i in range(n):
            out, state = self._session.run(
                None, {"input": batch[i : i + 1], "state": state, "sr": sr}
            )
            probs[i] = float(out[0][0])
        return probs

    def is_speech(self, pcm: bytes, sample_rate: int = SAMPLE_RATE) -> bool:
        probs = self.speech_probs(pcm, sample_rate)
        voiced_ms = int((probs >= self.threshold).sum()) * self.window_ms
        return voiced_ms >= self.min_speech_ms

    async def confirm(self, pcm: bytes, sample_rate: int = SAMPLE_RATE) -> bool:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.is_speech, pcm, sample_rate)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
