"""CRM dead letters: outbox rows the worker gave up on, listed and replayed by the operator
(`main.py crm dead`, `main.py crm replay --id N | --all`).

Replaying clears `dead_at`, the tries and the backoff, so the next outbox pass (``main.py
run``, every ``crm.poll_s``) delivers the row again with the same idempotency key; a row that
fails again becomes a dead letter again after ``crm.max_tries`` failures. The listing shows
ids, counts and our own error text only: no phone number, name or anything said.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from models import OutboxItem


class DeadLetterError(ValueError):
    """A replay that cannot be done (unknown id, not a dead letter); the message says which."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    kind: str
    lead_id: int | None
    tries: int
    created_at: datetime
    dead_at: datetime
    last_error: str | None


def dead_letters(db: sessionmaker[Session]) -> list[DeadLetter]:
    """Every dead letter, oldest first."""
    cols = (
        OutboxItem.id,
        OutboxItem.kind,
        OutboxItem.lead_id,
        OutboxItem.tries,
        OutboxItem.created_at,
        OutboxItem.dead_at,
        OutboxItem.last_error,
    )
    with db() as s:
        rows = s.execute(
            select(*cols).where(OutboxItem.dead_at.is_not(None)).order_by(OutboxItem.id)
        )
        return [
            DeadLetter(oid, kind, lead_id, tries, created, dead, error)
            for oid, kind, lead_id, tries, created, dead, error in rows
            if dead is not None  # always: filtered above
        ]


def replay(db: sessionmaker[Session], ids: Sequence[int] | None) -> list[int]:
    """Put dead letters back in the queue: the ones in `ids`, or all (None). Returns the ids
    replayed; an id that is unknown or not a dead letter is refused and nothing changes."""
    with db.begin() as s:
        dead: ColumnElement[bool] = OutboxItem.dead_at.is_not(None)
        if ids is not None:
            found = set(s.scalars(select(OutboxItem.id).where(OutboxItem.id.in_(ids), dead)))
            missing = sorted(set(ids) - found)
            if missing:
                raise DeadLetterError(
                    f"outbox row {', '.join(map(str, missing))} is not a dead letter "
                    "(see `main.py crm dead`)"
                )
            dead = dead & OutboxItem.id.in_(ids)
        chosen = sorted(s.scalars(select(OutboxItem.id).where(dead)))
        s.execute(
            update(OutboxItem)
            .where(OutboxItem.id.in_(chosen))
            .values(dead_at=None, tries=0, next_try_at=None)
        )
        return chosen


def _when(at: datetime) -> str:
    return at.isoformat(timespec="seconds")


def crm_main(
    db: sessionmaker[Session],
    action: str,
    *,
    ids: Sequence[int] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """`crm dead` (a line per dead letter: id, kind, lead id, tries, dates, error) and `crm
    replay` (`ids` None: all). Exit 0 done, 1 refused (one line on stderr)."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        if action == "dead":
            rows = dead_letters(db)
            print(f"{len(rows)} dead letters", file=out)
            for d in rows:
                error = (d.last_error or "").replace("\n", " ")[:200]
                print(
                    f"{d.id}\t{d.kind}\tlead {d.lead_id}\ttries {d.tries}\t"
                    f"created {_when(d.created_at)}\tdead {_when(d.dead_at)}\t{error}",
                    file=out,
                )
            return 0
        done = replay(db, ids)
        shown = ", ".join(map(str, done)) if done else "none"
        print(f"replayed {len(done)} dead letters ({shown}): delivered on the next pass", file=out)
        return 0
    except DeadLetterError as exc:
        print(f"crm {action}: {exc}", file=err)
    except SQLAlchemyError as exc:  # its text may hold parameters: the type only
        print(f"crm {action}: database error ({type(exc).__name__}); nothing changed", file=err)
    return 1
