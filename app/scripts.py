"""A node's script files, reloaded when their content changes (no node restart).

The node used to load a campaign's script once and keep it until it restarted. Now each file
is remembered with the SHA-256 of the bytes it was loaded from; ``changed`` re-reads the file
(a few kilobytes, in a worker thread) and says when the content differs. The runtime then
loads the new content, renders its fixed lines, gives the campaign's dialer a new session
factory for *new* calls (a call in progress keeps the ``Script`` object it started with) and
pins the new version in the store (``campaigns.scriptversions``). An edit that does not load
is logged once and the node keeps dialing the last good version.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from callflow.script import Script
from campaigns.scriptversions import Version, content_hash, pin

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Loaded:
    script: Script
    digest: str  # of the bytes it was loaded from
    version: Version | None = None  # pinned in the store (None: not yet)
    failed: str | None = None  # the digest of an edit that did not load (logged once)


def read(path: str) -> tuple[bytes, str]:
    data = Path(path).read_bytes()
    return data, content_hash(data)


async def changed(path: str, loaded: Loaded) -> bytes | None:
    """The file's new content when it differs from what `loaded` was read from (and did not
    already fail to load); None when unchanged or unreadable (the last version keeps going)."""
    try:
        data, digest = await asyncio.to_thread(read, path)
    except OSError:
        return None
    if digest in (loaded.digest, loaded.failed):
        return None
    return data


async def pin_version(db: sessionmaker[Session], path: str, loaded: Loaded, data: bytes) -> None:
    """Store the loaded content as a version and pin the campaigns on `path` to it; a store
    that fails is logged (the calls go on; the next change or start pins again)."""
    try:
        loaded.version = await asyncio.to_thread(pin, db, path, loaded.script.name, data)
    except Exception as exc:  # the database is down: dialing goes on, the pin comes later
        log.warning("script version not stored: %s", type(exc).__name__)
        return
    log.warning(
        "script version pinned",
        extra={"script": loaded.script.name, "version": loaded.version.version},
    )
