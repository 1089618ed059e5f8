"""Endpointing over webrtcvad: 20 ms PCM16 frames in, VoiceStarted / VoiceEnded out.

These are the endpointer's own events (voice activity, with the utterance's audio); a recognizer
stream turns them into its ``VoiceStarted`` / ``VoiceEnded`` (``speech.asr.base``).

Pure and cheap (~0.01 % of a core per call): ``push()`` is synchronous, does no I/O and keeps
no reference to the caller's buffers. Times are stream seconds since the endpointer was created
(or last ``reset()``), counted in frames, so tests need no clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.audio import FRAME_MS, SAMPLE_RATE, SAMPLE_WIDTH, pcm_seconds

_RATES = (8000, 16000, 32000, 48000)  # what webrtcvad accepts
_FRAME_MS = (10, 20, 30)


@dataclass(frozen=True, slots=True)
class VoiceStarted:
    t: float  # stream seconds at the first voiced frame of the onset


@dataclass(frozen=True, slots=True)
class VoiceEnded:
    t: float  # stream seconds at the end of the last voiced frame (the cut, when capped)
    pcm: bytes = field(repr=False)  # the utterance: pre-roll + speech + a short tail
    start_t: float = 0.0  # stream seconds where `pcm` begins (pre-roll included)
    capped: bool = False  # cut at max_utterance_s while the callee was still talking
    sample_rate: int = SAMPLE_RATE

    @property
    def duration_s(self) -> float:
        return pcm_seconds(self.pcm, self.sample_rate)


VadEvent = VoiceStarted | VoiceEnded


def webrtc_classifier(sample_rate: int, aggressiveness: int) -> Callable[[bytes], bool]:
    """A frame classifier backed by webrtcvad (package ``webrtcvad-wheels``)."""
    try:
        import webrtcvad
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the VAD needs webrtcvad: pip install webrtcvad-wheels") from exc
    vad: Any = webrtcvad.Vad(aggressiveness)
    return lambda frame: bool(vad.is_speech(frame, sample_rate))


class Endpointer:
    """Turns a stream of fixed-size PCM16 frames into utterance events.

    Onset: at least ``min_speech_ms`` of voiced frames within the last ``onset_window_ms``
    (a voiced frame: louder than ``energy_floor_dbfs`` and speech to webrtcvad).
    Offset: ``end_silence_ms`` of consecutive unvoiced frames. An utterance reaching
    ``max_utterance_s`` is emitted at once with ``capped=True`` and endpointing restarts.
    """

    def __init__(
        self,
        *,
        sample_rate: int = SAMPLE_RATE,
        frame_ms: int = FRAME_MS,
        aggressiveness: int = 2,
        min_speech_ms: int = 150,
        onset_window_ms: int = 300,
        end_silence_ms: int = 600,
        pre_roll_ms: int = 200,
        tail_ms: int = 200,
        max_utterance_s: float = 15.0,
        energy_floor_dbfs: float | None = -55.0,
        classifier: Callable[[bytes], bool] | None = None,
    ) -> None:
        if sample_rate not in _RATES or frame_ms not in _FRAME_MS:
            raise ValueError(f"webrtcvad needs rates {_RATES} and frames of {_FRAME_MS} ms")
        if not 0 <= aggressiveness <= 3:
            raise ValueError("aggressiveness must be 0..3")
        if min_speech_ms > onset_window_ms or end_silence_ms < frame_ms:
            raise ValueError("need min_speech_ms <= onset_window_ms and end_silence_ms >= frame")
        if max_utterance_s * 1000 <= min_speech_ms:
            raise ValueError("max_utterance_s must exceed min_speech_ms")
        self.sample_rate = sample_rate
        self.frame_ms = frame_ms
        self.frame_bytes = sample_rate * frame_ms // 1000 * SAMPLE_WIDTH
        self._is_speech = classifier or webrtc_classifier(sample_rate, aggressiveness)
        # webrtcvad flags a few frames whenever a steady noise floor starts; frames quieter
        # than the floor (line hiss, comfort noise) are never speech.
        self._floor_sq = (
            None if energy_floor_dbfs is None else (32768 * 10 ** (energy_floor_dbfs / 20)) ** 2
        )
        frames = lambda ms: max(1, -(-ms // frame_ms))  # noqa: E731 - ceil division
        self._min_speech = frames(min_speech_ms)
        self._onset_window = frames(onset_window_ms)
        self._end_silence = frames(end_silence_ms)
        self._tail = min(frames(tail_ms), self._end_silence) if tail_ms else 0
        self._max_frames = frames(round(max_utterance_s * 1000))
        self._pre_roll = frames(pre_roll_ms)
        self.reset()

    def reset(self) -> None:
        """Forget everything; time restarts at 0."""
        self._frame_index = 0
        self._history: deque[tuple[bytes, bool]] = deque(maxlen=self._pre_roll + self._onset_window)
        self._speaking = False
        self._utterance: list[bytes] = []
        self._start_index = 0  # frame index where _utterance[0] was captured
        self._last_voiced = 0  # frame index of the last voiced frame
        self._silence_run = 0

    @property
    def speaking(self) -> bool:
        return self._speaking

    def _loud_enough(self, frame: bytes) -> bool:
        if self._floor_sq is None:
            return True
        samples = np.frombuffer(frame, dtype="<i2").astype(np.float32)
        return float(np.dot(samples, samples)) / samples.size >= self._floor_sq

    def _t(self, frame_index: int) -> float:
        return frame_index * self.frame_ms / 1000

    def push(self, frame: bytes) -> list[VadEvent]:
        """Feed one frame; returns the events it caused (usually none, at most one)."""
        if len(frame) != self.frame_bytes:
            raise ValueError(f"frame must be {self.frame_bytes} bytes, got {len(frame)}")
        voiced = self._loud_enough(frame) and self._is_speech(frame)
        index = self._frame_index
        self._frame_index += 1
        if self._speaking:
            return self._continue(frame, voiced, index)
        return self._idle(frame, voiced, index)

    def _idle(self, frame: bytes, voiced: bool, index: int) -> list[VadEvent]:
        self._history.append((frame, voiced))
        history = list(self._history)
        window = history[-self._onset_window :]
        if sum(v for _, v in window) < self._min_speech:
            return []
        first_voiced = next(i for i, (_, v) in enumerate(window) if v)
        onset_index = index - (len(window) - 1 - first_voiced)
        keep = history[-(index - onset_index + 1 + self._pre_roll) :]
        self._utterance = [f for f, _ in keep]
        self._start_index = index - len(keep) + 1
        self._history.clear()
        self._speaking = True
        self._last_voiced = index
        self._silence_run = 0
        return [VoiceStarted(self._t(onset_index))]

    def _continue(self, frame: bytes, voiced: bool, index: int) -> list[VadEvent]:
        self._utterance.append(frame)
        if voiced:
            self._last_voiced = index
            self._silence_run = 0
        else:
            self._silence_run += 1
        if self._silence_run >= self._end_silence:
            return [self._finish(capped=False)]
        if len(self._utterance) >= self._max_frames:
            return [self._finish(capped=True)]
        return []

    @property
    def silence_ms(self) -> int:
        """Trailing unvoiced time of the utterance in progress (0 when idle)."""
        return self._silence_run * self.frame_ms if self._speaking else 0

    @property
    def utterance_ms(self) -> int:
        """Length of the utterance in progress, pre-roll included (0 when idle)."""
        return len(self._utterance) * self.frame_ms if self._speaking else 0

    def peek(self) -> VoiceEnded | None:
        """What ``flush()`` would emit now, without ending the utterance (None when idle)."""
        return self._event(capped=False) if self._speaking else None

    def _finish(self, *, capped: bool) -> VoiceEnded:
        event = self._event(capped=capped)
        self._speaking = False
        self._utterance = []
        self._silence_run = 0
        return event

    def _event(self, *, capped: bool) -> VoiceEnded:
        if capped:
            end = len(self._utterance)
            t_end = self._t(self._start_index + end)
        else:
            end = min(len(self._utterance), self._last_voiced - self._start_index + 1 + self._tail)
            t_end = self._t(self._last_voiced + 1)
        return VoiceEnded(
            t=t_end,
            pcm=b"".join(self._utterance[:end]),
            start_t=self._t(self._start_index),
            capped=capped,
            sample_rate=self.sample_rate,
        )

    def flush(self) -> list[VadEvent]:
        """End of stream: emit the utterance in progress, if any."""
        if not self._speaking:
            return []
        return [self._finish(capped=False)]
