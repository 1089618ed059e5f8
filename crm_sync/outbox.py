"""Outbox worker: deliver pending outbox rows to the CRM, at least once, with backoff."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models import OutboxItem

from .base import CrmAdapter, CrmError

log = logging.getLogger(__name__)
MAX_TRIES = 8


def _backoff(tries: int) -> timedelta:
    return timedelta(seconds=min(3600, 15 * 2 ** max(0, tries - 1)))


def _due(db: sessionmaker[Session], now: datetime, limit: int) -> list[tuple[int, str, dict]]:
    with db() as s:
        rows = s.scalars(
            select(OutboxItem)
            .where(OutboxItem.sent_at.is_(None), OutboxItem.tries < MAX_TRIES)
            .order_by(OutboxItem.id)
            .limit(limit * 4)
        ).all()
        out = []
        for r in rows:
            last = r.created_at if r.created_at.tzinfo else r.created_at.replace(tzinfo=UTC)
            if r.tries == 0 or now >= last + _backoff(r.tries):
                out.append((r.id, r.kind, {**r.payload, "outbox_id": r.id}))
        return out[:limit]


def _mark(db: sessionmaker[Session], item_id: int, now: datetime, error: CrmError | None) -> None:
    with db.begin() as s:
        row = s.get(OutboxItem, item_id)
        if row is None:
            return
        row.tries += 1
        if error is None:
            row.sent_at, row.last_error = now, None
        else:
            row.last_error = str(error)
            row.created_at = now  # backoff counts from the last try
            if not error.retryable:
                row.tries = MAX_TRIES


async def deliver_pending(
    db: sessionmaker[Session], crm: CrmAdapter, *, now: datetime | None = None, limit: int = 50
) -> tuple[int, int]:
    """One pass over due rows; returns (delivered, failed)."""
    now = now or datetime.now(UTC)
    ok = failed = 0
    for item_id, kind, payload in await asyncio.to_thread(_due, db, now, limit):
        try:
            await crm.deliver(kind, payload)
        except CrmError as exc:
            log.warning("CRM delivery failed", extra={"outbox_id": item_id, "error": str(exc)})
            await asyncio.to_thread(_mark, db, item_id, now, exc)
            failed += 1
        else:
            await asyncio.to_thread(_mark, db, item_id, now, None)
            ok += 1
    return ok, failed
