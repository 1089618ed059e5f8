"""Call recordings on disk: one folder per call, kept for a while, then swept.

Each recorded call gets ``<root>/<YYYY-MM-DD>/<lead id>-<random>/`` (UTC day of the dial), in
which the media worker writes ``callee.wav`` (what the callee said; during a bridged
transfer, the callee's side of the bridge) and ``robot.wav`` (what went to the callee: the
robot's lines, then an agent's voice after a bridged transfer), each 8 kHz PCM16 mono from the
moment media started, so the two tracks line up. Recordings are personal data: folders are
mode 0o700 and the worker creates the files 0o600; file and folder names carry no phone
number. The attempt row links the folder (``call_attempt.recording_path``).

`sweep` deletes call folders older than the retention (by the day in their path, so a file
touched later is still swept on time) and the day folders left empty; the node runs it from a
supervised loop.
"""

from __future__ import annotations

import logging
import secrets
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600
TRACKS = ("callee.wav", "robot.wav")


class Recordings:
    """Where calls are recorded and for how long (`retention_days`; 0: kept for ever)."""

    def __init__(self, root: str | Path, *, retention_days: int = 30) -> None:
        if retention_days < 0:
            raise ValueError(f"retention_days must be >= 0, got {retention_days}")
        self.root = Path(root)
        self.retention_days = retention_days

    def folder_for(self, lead_id: int, now: datetime) -> Path:
        """A new, private folder for one call's tracks (parents created private too)."""
        day = self.root / now.astimezone(UTC).date().isoformat()
        for folder in (self.root, day):
            folder.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            folder.chmod(DIR_MODE)  # mkdir's mode is masked by the umask
        call = day / f"{int(lead_id)}-{secrets.token_hex(4)}"
        call.mkdir(mode=DIR_MODE)
        call.chmod(DIR_MODE)
        return call

    def sweep(self, now: datetime) -> int:
        """Delete the call folders of days before the retention; returns how many."""
        if self.retention_days == 0 or not self.root.is_dir():
            return 0
        oldest_kept = now.astimezone(UTC).date() - timedelta(days=self.retention_days)
        removed = 0
        for day in sorted(self.root.iterdir()):
            when = _day(day)
            if when is None or when >= oldest_kept:
                continue
            calls = [p for p in day.iterdir() if p.is_dir()]
            for call in calls:
                shutil.rmtree(call, ignore_errors=True)
            removed += len(calls)
            if not any(day.iterdir()):
                day.rmdir()
        if removed:
            log.info("recordings past retention deleted", extra={"calls": removed})
        return removed


def _day(path: Path) -> date | None:
    """The day a day folder stands for; None for anything else under the root."""
    if not path.is_dir():
        return None
    try:
        return date.fromisoformat(path.name)
    except ValueError:
        return None
