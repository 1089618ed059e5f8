"""Outbox worker: deliver pending outbox rows to the CRM, at least once, with backoff.

A row is due while unsent, tried fewer than OUTBOX_MAX_TRIES times, and its `next_try_at` is
NULL (never tried) or has passed; a failed try sets `next_try_at` from the backoff. A CRM
answer that retrying cannot fix marks the row failed for good (tries = OUTBOX_MAX_TRIES).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models import OUTBOX_MAX_TRIES, OutboxItem

from .base import CrmAdapter, CrmError

log = logging.getLogger(__name__)


def backoff(tries: int) -> timedelta:
    """The wait after the `tries`-th failed try: 15 s, doubling, at most an hour."""
    return timedelta(seconds=min(3600, 15 * 2 ** max(0, tries - 1)))


@dataclass(frozen=True, slots=True)
class _Due:
    id: int
    kind: str
    payload: dict[str, Any]


def _due(db: sessionmaker[Session], now: datetime, limit: int) -> list[_Due]:
    with db() as s:
        rows = s.execute(
            select(OutboxItem.id, OutboxItem.kind, OutboxItem.payload)
            .where(
                OutboxItem.sent_at.is_(None),
                OutboxItem.tries < OUTBOX_MAX_TRIES,
                OutboxItem.next_try_at.is_(None) | (OutboxItem.next_try_at <= now),
            )
            .order_by(OutboxItem.id)
            .limit(limit)
        ).all()
        return [_Due(i, kind, {**payload, "outbox_id": i}) for i, kind, payload in rows]


def _mark(db: sessionmaker[Session], item_id: int, now: datetime, error: CrmError | None) -> None:
    with db.begin() as s:
        row = s.get(OutboxItem, item_id)
        if row is None:
            return
        row.tries += 1
        if error is None:
            row.sent_at, row.last_error, row.next_try_at = now, None, None
            return
        row.last_error = str(error)
        row.next_try_at = now + backoff(row.tries)
        if not error.retryable:
            row.tries = OUTBOX_MAX_TRIES


async def deliver_pending(
    db: sessionmaker[Session], crm: CrmAdapter, *, now: datetime | None = None, limit: int = 50
) -> tuple[int, int]:
    """One pass over due rows; returns (delivered, failed)."""
    now = now or datetime.now(UTC)
    ok = failed = 0
    for item in await asyncio.to_thread(_due, db, now, limit):
        try:
            await crm.deliver(item.kind, item.payload)
        except CrmError as exc:
            log.warning("CRM delivery failed", extra={"outbox_id": item.id, "error": str(exc)})
            await asyncio.to_thread(_mark, db, item.id, now, exc)
            failed += 1
        else:
            await asyncio.to_thread(_mark, db, item.id, now, None)
            ok += 1
    return ok, failed
