"""Outbox worker: deliver pending outbox rows to the CRM, at least once, with backoff.

A row is due while unsent and not a dead letter, and its `next_try_at` is NULL (never tried)
or has passed; a failed try sets `next_try_at` from the backoff. After `max_tries` failures
(``crm.max_tries``), or at once on a CRM answer that retrying cannot fix, the row becomes a
dead letter (`dead_at`): left alone until `main.py crm replay` (``crm_sync.deadletters``).

What is sent is built at delivery time (``crm_sync.payload``): the lead's fields, the call's
slots, summary and console links. A row written early (the outcome is known, the call still
on: no attempt id yet) waits while its lead is still in the call, so the CRM gets the call's
turns too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from models import OUTBOX_MAX_TRIES, Lead, OutboxItem, write_transaction

from .base import CrmAdapter, CrmError
from .payload import build

log = logging.getLogger(__name__)

OUTBOX_LEASE = timedelta(minutes=10)  # how long a node holds the rows it is delivering


def backoff(tries: int) -> timedelta:
    """The wait after the `tries`-th failed try: 15 s, doubling, at most an hour."""
    return timedelta(seconds=min(3600, 15 * 2 ** max(0, tries - 1)))


@dataclass(frozen=True, slots=True)
class _Due:
    id: int
    kind: str
    payload: dict[str, Any]


def _in_call(s: Session, row: OutboxItem, now: datetime) -> bool:
    """An early row (no attempt id yet) whose lead is still leased: its call is going on."""
    if row.payload.get("attempt_id") is not None or row.lead_id is None:
        return False
    lead = s.get(Lead, row.lead_id)
    until = None if lead is None else lead.claimed_until
    if until is None:
        return False
    return (until if until.tzinfo else until.replace(tzinfo=UTC)) > now


def _due(
    db: sessionmaker[Session],
    now: datetime,
    limit: int,
    console_url: str,
    claim: tuple[str, timedelta] = ("", OUTBOX_LEASE),
) -> list[_Due]:
    """Claim up to `limit` due rows for this node (`claim`: its id and the lease) in one
    write transaction: rows another node holds, unexpired, are not due, and on PostgreSQL
    rows another pass is choosing right now are skipped (FOR UPDATE SKIP LOCKED); so two
    nodes never deliver one row at once."""
    node, lease = claim
    with db.begin() as s:
        write_transaction(s)  # SQLite: the write lock before the read
        rows = s.scalars(
            select(OutboxItem)
            .where(
                OutboxItem.sent_at.is_(None),
                OutboxItem.dead_at.is_(None),
                OutboxItem.next_try_at.is_(None) | (OutboxItem.next_try_at <= now),
                OutboxItem.claimed_until.is_(None) | (OutboxItem.claimed_until < now),
            )
            .order_by(OutboxItem.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        due = [
            _Due(row.id, row.kind, build(s, row, console_url=console_url))
            for row in rows
            if not _in_call(s, row, now)
        ]
        for row in rows:
            if any(d.id == row.id for d in due):
                row.claimed_by, row.claimed_until = node, now + lease
        return due


def _release(db: sessionmaker[Session], item_ids: list[int]) -> None:
    """Give back claimed rows this pass did not try (it ran out of lease)."""
    with db.begin() as s:
        s.execute(
            update(OutboxItem)
            .where(OutboxItem.id.in_(item_ids), OutboxItem.sent_at.is_(None))
            .values(claimed_by=None, claimed_until=None)
        )


def _mark(
    db: sessionmaker[Session],
    item_id: int,
    now: datetime,
    error: CrmError | None,
    max_tries: int = OUTBOX_MAX_TRIES,
) -> None:
    with db.begin() as s:
        row = s.get(OutboxItem, item_id)
        if row is None:
            return
        row.tries += 1
        row.claimed_by = row.claimed_until = None
        if error is None:
            row.sent_at, row.last_error, row.next_try_at = now, None, None
            return
        row.last_error = str(error)[:500]
        row.next_try_at = now + backoff(row.tries)
        if not error.retryable or row.tries >= max_tries:
            row.dead_at = now  # a dead letter: `main.py crm replay` puts it back


async def deliver_pending(
    db: sessionmaker[Session],
    crm: CrmAdapter,
    *,
    now: datetime | None = None,
    limit: int = 50,
    max_tries: int = OUTBOX_MAX_TRIES,
    console_url: str = "",
    node: str = "",
    lease: timedelta = OUTBOX_LEASE,
) -> tuple[int, int]:
    """One pass over due rows; returns (delivered, failed). `max_tries`: failures before a row
    becomes a dead letter; `console_url`: the base of the payload's links. The pass claims its
    rows for `node` for `lease` first (a node that dies leaves them to others after it), and
    gives back those it has not tried when half the lease has gone."""
    now = now or datetime.now(UTC)
    ok = failed = 0
    # half the lease from before the claim (not from its end: building the payloads of a
    # large pass on a loaded machine takes seconds, and the rows are another node's to send
    # once the lease has run out)
    deadline = time.monotonic() + lease.total_seconds() / 2
    items = await asyncio.to_thread(_due, db, now, limit, console_url, (node, lease))
    for i, item in enumerate(items):
        if time.monotonic() > deadline:
            await asyncio.to_thread(_release, db, [d.id for d in items[i:]])
            break
        try:
            await crm.deliver(item.kind, item.payload)
        except CrmError as exc:
            log.warning("CRM delivery failed", extra={"outbox_id": item.id, "error": str(exc)})
            await asyncio.to_thread(_mark, db, item.id, now, exc, max_tries)
            failed += 1
        else:
            await asyncio.to_thread(_mark, db, item.id, now, None)
            ok += 1
    return ok, failed
