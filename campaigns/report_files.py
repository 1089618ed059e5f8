"""The daily report kept on disk: after local midnight (plus a short grace for calls still
being stored), the previous day's JSON, CSV and HTML are written once to the reports folder.

Files are ``daily-YYYY-MM-DD.json|csv|html``. Each is written to a temporary name and renamed,
so a reader never sees half a file and a crash leaves no partial report; the day counts as
done when all three exist, so a restarted node writes nothing twice (a missing one is
rewritten). The folder is 0o700 and the files 0o600: aggregates only, but business figures
(cost, ROI, campaign names) are for the operator alone.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from .compliance import zone
from .report_html import to_html
from .reports import ReportConfig, daily_report, to_csv

FORMATS = ("json", "csv", "html")


def report_paths(folder: Path, day: date) -> dict[str, Path]:
    """Where the day's report files go, by format."""
    return {fmt: folder / f"daily-{day.isoformat()}.{fmt}" for fmt in FORMATS}


def due_day(tz: str, after_min: int, now: datetime | None = None) -> date | None:
    """Yesterday in `tz` once today is `after_min` minutes old there; None before that."""
    local = (now or datetime.now(UTC)).astimezone(zone(tz))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if local - midnight < timedelta(minutes=after_min):
        return None
    return local.date() - timedelta(days=1)


def _write_private(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:  # mkstemp makes it 0o600
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_daily(
    db: sessionmaker[Session], day: date, *, tz: str, cfg: ReportConfig, folder: Path
) -> dict[str, Path]:
    """Write the day's report in every format (one aggregation, three renderings)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    rep = daily_report(db, day, tz=tz, campaign=None, cfg=cfg)
    texts = {
        "json": json.dumps(rep, ensure_ascii=False, indent=2) + "\n",
        "csv": to_csv(rep),
        "html": to_html(rep),
    }
    paths = report_paths(folder, day)
    for fmt in FORMATS:
        _write_private(paths[fmt], texts[fmt])
    return paths


def ensure_daily(
    db: sessionmaker[Session],
    *,
    tz: str,
    cfg: ReportConfig,
    folder: Path,
    after_min: int,
    now: datetime | None = None,
) -> date | None:
    """Write yesterday's report unless it is not due yet or already on disk; returns the day
    written (None: nothing to do)."""
    day = due_day(tz, after_min, now)
    if day is None or all(p.exists() for p in report_paths(folder, day).values()):
        return None
    write_daily(db, day, tz=tz, cfg=cfg, folder=folder)
    return day
