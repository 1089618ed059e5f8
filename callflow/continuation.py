"""Which callee turns continue the previous one (the session's half of continuations).

The recognizer may end a turn early on a short pause after words that read complete
("别再 … 打了"). A new final that starts within ``window_s`` of the last turn's end, while the
machine still holds that turn as undoable, continues it: the NLU hears the joined text and the
machine gets ``UserContinued`` (see ``callflow.machine``). ``window_s`` 0 turns this off.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Heard:
    text: str  # what the NLU should understand (joined, for a continuation)
    continues: str | None  # the earlier part this turn continues, if any


class TurnJoiner:
    def __init__(self, window_s: float) -> None:
        self._window_s = window_s
        self._last: tuple[float, str] | None = None  # (end_t, text) of the last turn

    def hear(self, text: str, start_t: float, end_t: float, *, undoable: bool) -> Heard:
        """A final from `start_t` to `end_t` (stream seconds); `undoable`: the machine could
        still take the last turn back."""
        last = self._last
        if last is not None and undoable and start_t - last[0] <= self._window_s:
            heard = Heard(f"{last[1]}，{text}", last[1])
        else:
            heard = Heard(text, None)
        self._last = (end_t, heard.text)
        return heard
