"""Answering-machine cues from the callee's audio: beeps, speech runs, how much was said.

Pure and cheap (one 320-sample FFT per 20 ms frame, no model): ``AudioCues.push(frame)`` takes
``core.audio`` frames (8 kHz PCM16 mono, 20 ms) and ``cues()`` returns a snapshot that
``callflow.screening`` turns, with the transcript, into a verdict. What the cues are for:

- **a beep** (the "嘀" before a voicemail records): a steady single tone between 400 and
  2000 Hz lasting at least ``min_beep_ms``. A frame is tonal when the energy around its
  spectral peak (Hann-windowed 40 ms, 25 Hz bins) is most of the band's energy; a beep is a
  run of tonal frames whose peak stays put. Speech, even a sung vowel, spreads over harmonics.
- **speech runs** (webrtcvad over an energy floor, as ``speech.vad``; tonal frames are never
  speech): a run survives pauses shorter than ``gap_ms``. A greeting that goes on for seconds
  without a pause is a machine cue; a short "喂，你好" followed by silence a human one.

Times are stream seconds (frames pushed x 20 ms), so tests need no clock. The interface
(``Cues``, ``CueAnalyzer``) is ``speech.cues``, which ``callflow`` may import.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from core.audio import FRAME_BYTES, FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE
from speech.audio import float_to_pcm16
from speech.cues import Cues
from speech.vad import webrtc_classifier

_WINDOW = 2 * FRAME_SAMPLES  # 40 ms: 25 Hz bins at 8 kHz
_HANN = np.hanning(_WINDOW).astype(np.float32)
_FREQS = np.fft.rfftfreq(_WINDOW, 1 / SAMPLE_RATE)
_BAND = (_FREQS >= 250) & (_FREQS <= 3400)  # the telephone band the ratio is taken over
_FRAME_S = FRAME_MS / 1000


def beep(hz: float = 1000.0, ms: int = 400, dbfs: float = -12.0) -> bytes:
    """A pure tone as PCM16 (8 kHz), with 5 ms fades: the beep a voicemail plays, for the
    simulated callee and tests."""
    n = SAMPLE_RATE * ms // 1000
    t = np.arange(n) / SAMPLE_RATE
    wave = np.sin(2 * np.pi * hz * t) * 10 ** (dbfs / 20)
    fade = min(n // 2, SAMPLE_RATE // 200)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        wave[:fade] *= ramp
        wave[n - fade :] *= ramp[::-1]
    return float_to_pcm16(wave)


class _ToneTracker:
    """Runs of tonal frames at one frequency; reports a beep once a run ends long enough."""

    def __init__(self, min_beep_ms: int, peak_ratio: float, floor_dbfs: float) -> None:
        self._min_frames = max(1, -(-min_beep_ms // FRAME_MS))
        self._ratio = peak_ratio
        self._floor = (32768 * 10 ** (floor_dbfs / 20)) ** 2 * _WINDOW * float(np.mean(_HANN**2))
        self._prev = np.zeros(FRAME_SAMPLES, np.float32)
        self._hz = 0.0
        self.frames = 0  # tonal frames in the run in progress

    def peak(self, samples: np.ndarray) -> float | None:
        """The frame's tone frequency when it is tonal (400-2000 Hz), else None."""
        window = np.concatenate([self._prev, samples]) * _HANN
        self._prev = samples
        power = np.abs(np.fft.rfft(window)) ** 2
        band = float(power[_BAND].sum())
        if band < self._floor:
            return None
        k = int(np.argmax(np.where(_BAND, power, 0.0)))
        hz = float(_FREQS[k])
        near = float(power[max(0, k - 2) : k + 3].sum())  # the Hann main lobe and a bin more
        return hz if 400 <= hz <= 2000 and near >= self._ratio * band else None

    def push(self, hz: float | None) -> float | None:
        """Feed one frame's peak; returns the tone's frequency when a long-enough run ends."""
        if hz is not None and (self.frames == 0 or abs(hz - self._hz) <= 50):
            self._hz = hz if self.frames == 0 else self._hz
            self.frames += 1
            return None
        ended = self._hz if self.frames >= self._min_frames else None
        self.frames = 1 if hz is not None else 0
        self._hz = hz or 0.0
        return ended


class AudioCues:
    """Streaming cue analysis of one call's callee audio (see the module docstring)."""

    def __init__(
        self,
        *,
        gap_ms: int = 300,
        min_beep_ms: int = 150,
        peak_ratio: float = 0.8,
        aggressiveness: int = 2,
        energy_floor_dbfs: float = -45.0,
        classifier: Callable[[bytes], bool] | None = None,
    ) -> None:
        """`classifier` says whether a frame is speech (default: webrtcvad at
        `aggressiveness`); frames under `energy_floor_dbfs` are never speech or tone."""
        self._is_speech = classifier or webrtc_classifier(SAMPLE_RATE, aggressiveness)
        self._floor_sq = (32768 * 10 ** (energy_floor_dbfs / 20)) ** 2
        self._gap = max(1, -(-gap_ms // FRAME_MS))
        self._tones = _ToneTracker(min_beep_ms, peak_ratio, energy_floor_dbfs)
        self._frames = 0
        self._voiced = 0
        self._runs = 0
        self._run_start = -1  # frame index where the run in progress (or the last) began
        self._last_voiced = -1
        self._longest = 0
        self._first: int | None = None
        self._beep: tuple[int, float] | None = None

    def push(self, frame: bytes) -> None:
        """Analyse one 20 ms frame (ValueError on a wrong size)."""
        if len(frame) != FRAME_BYTES:
            raise ValueError(f"frame must be {FRAME_BYTES} bytes, got {len(frame)}")
        samples = np.frombuffer(frame, dtype="<i2").astype(np.float32)
        index = self._frames
        self._frames += 1
        loud = float(np.dot(samples, samples)) / samples.size >= self._floor_sq
        hz = self._tones.peak(samples) if loud else None
        ended = self._tones.push(hz)
        if ended is not None and self._beep is None:
            self._beep = (index, ended)
        if hz is None and loud and self._is_speech(frame):
            self._voiced_frame(index)

    def _voiced_frame(self, index: int) -> None:
        self._voiced += 1
        if self._last_voiced < 0 or index - self._last_voiced > self._gap:
            self._runs += 1
            self._run_start = index
            if self._first is None:
                self._first = index
        self._last_voiced = index
        self._longest = max(self._longest, index - self._run_start + 1)

    def cues(self) -> Cues:
        """The snapshot of everything pushed so far."""
        n, last = self._frames, self._last_voiced
        speaking = last >= 0 and n - 1 - last < self._gap
        run = last - self._run_start + 1 if last >= 0 else 0
        beep_t, beep_hz = (None, None) if self._beep is None else self._beep
        return Cues(
            t=n * _FRAME_S,
            speech_s=self._voiced * _FRAME_S,
            runs=self._runs,
            speaking=speaking,
            run_s=run * _FRAME_S,
            longest_run_s=self._longest * _FRAME_S,
            first_speech_t=None if self._first is None else self._first * _FRAME_S,
            silence_s=(n - 1 - last) * _FRAME_S if last >= 0 else n * _FRAME_S,
            beep_t=None if beep_t is None else beep_t * _FRAME_S,
            beep_hz=beep_hz,
            tone_s=self._tones.frames * _FRAME_S,
        )
