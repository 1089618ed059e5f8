"""Script versions in the store: record a script file's content, pin campaigns to it, list.

``pin`` is called by the node when it loads a campaign's script and again whenever the file's
content hash changes (``app.scripts``): the content becomes a version (the same bytes are the
same version, whichever node saw them first) and every running campaign on that file points
at it. ``versions_main`` is ``main.py script versions NAME``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TextIO

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from models import Campaign, ScriptVersion


@dataclass(frozen=True, slots=True)
class Version:
    id: int
    name: str
    version: int
    sha256: str
    created_at: datetime
    campaigns: int = 0  # campaigns pinned to it


def _aware(at: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _find(s: Session, name: str, digest: str) -> ScriptVersion | None:
    return s.scalar(
        select(ScriptVersion).where(ScriptVersion.name == name, ScriptVersion.sha256 == digest)
    )


def store_version(db: sessionmaker[Session], name: str, path: str, data: bytes) -> Version:
    """The version of `data` for script `name`: found, or stored as the next number. Two
    nodes storing the same new content at once: the loser of the unique index reads the
    winner's row."""
    digest = content_hash(data)
    for _ in range(3):
        with db() as s:
            row = _find(s, name, digest)
            if row is None:
                last = s.scalar(
                    select(func.max(ScriptVersion.version)).where(ScriptVersion.name == name)
                )
                row = ScriptVersion(
                    name=name,
                    sha256=digest,
                    version=(last or 0) + 1,
                    path=path,
                    text=data.decode("utf-8", errors="replace"),
                )
                s.add(row)
                try:
                    s.commit()
                except IntegrityError:  # stored meanwhile by another node: read it
                    s.rollback()
                    continue
            return Version(row.id, row.name, row.version, row.sha256, _aware(row.created_at))
    raise RuntimeError(f"script {name!r}: could not store its version")


def pin(db: sessionmaker[Session], path: str, name: str, data: bytes) -> Version:
    """Store `data` as a version of `name` and pin every campaign whose script is `path`."""
    version = store_version(db, name, path, data)
    with db() as s:
        s.execute(
            update(Campaign)
            .where(Campaign.script == path)
            .where(
                (Campaign.script_version_id.is_(None)) | (Campaign.script_version_id != version.id)
            )
            .values(script_version_id=version.id)
        )
        s.commit()
    return version


def versions(db: sessionmaker[Session], name: str) -> list[Version]:
    """Every stored version of script `name`, oldest first, with its pinned campaigns."""
    pinned = (
        select(Campaign.script_version_id, func.count().label("n"))
        .group_by(Campaign.script_version_id)
        .subquery()
    )
    query = (
        select(ScriptVersion, func.coalesce(pinned.c.n, 0))
        .outerjoin(pinned, pinned.c.script_version_id == ScriptVersion.id)
        .where(ScriptVersion.name == name)
        .order_by(ScriptVersion.version)
    )
    with db() as s:
        return [
            Version(v.id, v.name, v.version, v.sha256, _aware(v.created_at), int(n))
            for v, n in s.execute(query)
        ]


def versions_main(db: sessionmaker[Session], name: str, out: TextIO) -> int:
    """Print one line per version: number, hash, first seen, campaigns pinned; 1 if none."""
    found = versions(db, name)
    if not found:
        print(f"script versions: no stored version of {name!r}", file=out)
        return 1
    for v in found:
        print(
            f"v{v.version}  sha256:{v.sha256[:12]}  {v.created_at:%Y-%m-%d %H:%M:%S}  "
            f"campaigns {v.campaigns}",
            file=out,
        )
    return 0
