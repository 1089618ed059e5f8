"""The operator's commands on campaigns and do-not-call lists (`main.py campaign list|start|
pause|resume|complete|status`, `main.py dnc import|add|remove|list`).

Each returns the exit status: 0 done, 1 refused (unknown campaign, wrong state, bad input,
the database failing), with one line on stderr and never a traceback. Output has counts and
names of campaigns only; phone numbers are printed only by ``dnc list --show-numbers``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from . import dnc, lifecycle

DNC_IMPORT_SOURCE = "import"
DNC_MANUAL_SOURCE = "operator"


def _guarded(what: str, body: Callable[[], int], err: TextIO) -> int:
    try:
        return body()
    except (lifecycle.LifecycleError, dnc.DncError, ValueError) as exc:
        print(f"{what}: {exc}", file=err)
    except SQLAlchemyError as exc:  # its text may hold parameters (phones): the type only
        print(f"{what}: database error ({type(exc).__name__}); nothing changed", file=err)
    return 1


def campaign_main(
    db: sessionmaker[Session],
    action: str,
    name: str | None,
    *,
    tz: str,
    max_attempts: int,
    hours: str | None = None,
    days: str | None = None,
    as_json: bool = False,
    now: datetime | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr

    def body() -> int:
        if action == "list":
            rows = lifecycle.list_campaigns(db)
            if as_json:
                keys = ("name", "state", "leads")
                print(json.dumps([dict(zip(keys, r, strict=True)) for r in rows]), file=out)
            for n, st, leads in [] if as_json else rows:
                print(f"{n}\t{st}\t{leads} leads", file=out)
            return 0
        assert name is not None
        if action == "status":
            rep = lifecycle.status_report(
                db, name, now=now or datetime.now(UTC), tz=tz, max_attempts=max_attempts
            )
            text = json.dumps(rep.as_dict(), ensure_ascii=False, indent=None if as_json else 2)
            print(text, file=out)
            return 0
        before, after = lifecycle.transition(db, name, action, hours=hours, days=days)
        note = "" if before != after else " (already)"
        print(f"campaign {name}: {before} -> {after}{note}", file=out)
        return 0

    return _guarded(f"campaign {action}", body, err)


def dnc_main(
    db: sessionmaker[Session],
    action: str,
    *,
    campaign: str | None,
    phone: str | None = None,
    file: Path | None = None,
    show_numbers: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    where = "global list" if campaign is None else f"campaign {campaign}'s list"

    def body() -> int:
        if action in ("add", "import"):
            if action == "add":
                assert phone is not None
                numbers, source = [phone], DNC_MANUAL_SOURCE
            else:
                assert file is not None
                numbers, source = dnc.read_numbers(file), DNC_IMPORT_SOURCE
            res = dnc.add(db, numbers, campaign=campaign, source=source)
            if action == "add" and res.invalid:
                raise dnc.DncError("not a phone number")
            print(
                f"{where}: added {res.added}, already listed {res.present}, "
                f"not a phone number {res.invalid}",
                file=out,
            )
            return 0
        if action == "remove":
            assert phone is not None
            if not dnc.remove(db, phone, campaign=campaign):
                print(f"{where}: that number is not listed", file=err)
                return 1
            print(f"{where}: removed 1", file=out)
            return 0
        listing = dnc.listing(db, campaign=campaign, numbers=show_numbers)
        sources = ", ".join(f"{k} {v}" for k, v in sorted(listing.by_source.items()))
        print(f"{where}: {listing.total} numbers" + (f" ({sources})" if sources else ""), file=out)
        for number in listing.numbers or []:
            print(number, file=out)
        return 0

    return _guarded(f"dnc {action}", body, err)
