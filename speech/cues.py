"""The interface of answering-machine cue analysis (implemented by ``speech.amd``).

``callflow`` screens the first seconds of a call with a `CueAnalyzer` it is handed (one per
call phase) and never imports the implementation: ``push(frame)`` takes ``core.audio`` frames
(8 kHz PCM16 mono, 20 ms), ``cues()`` returns a `Cues` snapshot. Times are stream seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Cues:
    """What the audio says so far (stream seconds since the first frame pushed)."""

    t: float  # audio pushed so far
    speech_s: float = 0.0  # voiced speech in all
    runs: int = 0  # speech runs begun (a run bridges short pauses)
    speaking: bool = False  # a run is in progress
    run_s: float = 0.0  # length of the run in progress, or of the last one
    longest_run_s: float = 0.0
    first_speech_t: float | None = None  # where the first run began
    silence_s: float = 0.0  # since the last voiced frame (all of `t` when nothing was said)
    beep_t: float | None = None  # where the first beep ended (its tone stopped); None: no beep
    beep_hz: float | None = None
    tone_s: float = 0.0  # the steady tone in progress (0 when none)


class CueAnalyzer(Protocol):
    """One call phase's streaming cue analysis."""

    def push(self, frame: bytes) -> None:
        """Analyse one 20 ms frame (ValueError on a wrong size)."""
        ...

    def cues(self) -> Cues:
        """The snapshot of everything pushed so far."""
        ...
