"""A call's recording as one playable WAV: the media worker writes two mono tracks per call
(``campaigns.recordings``: callee.wav and robot.wav, 8 kHz PCM16, aligned at their start);
the player gets them as one stereo file (left: callee, right: robot), the shorter padded with
silence. A call folder with one track plays that track alone."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np

TRACKS = ("callee.wav", "robot.wav")  # left, right


def tracks(recording: Path) -> list[Path]:
    """The existing tracks of a recording folder (or the file itself)."""
    if recording.is_file():
        return [recording]
    return [recording / name for name in TRACKS if (recording / name).is_file()]


def _read(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise ValueError(f"{path.name}: not 16-bit mono PCM")
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2"), w.getframerate()


def playable(recording: Path) -> bytes:
    """One WAV file of the recording (ValueError when a track is not PCM16 mono)."""
    found = tracks(recording)
    if not found:
        raise FileNotFoundError("no recording tracks")
    pcm = [_read(p) for p in found]
    rate = pcm[0][1]
    if any(r != rate for _, r in pcm):
        raise ValueError("the tracks' sample rates differ")
    length = max(len(a) for a, _ in pcm)
    channels = np.zeros((length, len(pcm)), dtype="<i2")
    for i, (samples, _) in enumerate(pcm):
        channels[: len(samples), i] = samples
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(len(pcm))
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(channels.tobytes())
    return out.getvalue()
