"""Lead CSV import: validate every row first, then store all of it in one transaction.

Columns: `phone` (required), `name`, `timezone`, anything else goes into the lead's `extra`.
Chinese spreadsheets are often exported as GBK: UTF-8 (with or without BOM) is tried first.

A campaign holds a phone once (the unique index on lead (campaign_id, phone)). Two imports
running at once into one campaign are safe: on SQLite the import takes the write lock before
it reads what is stored, so they run one after the other; on PostgreSQL rows are inserted
with ON CONFLICT DO NOTHING, so a phone the other import stored first (and a campaign it
created first) counts as a duplicate instead of failing the import.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from models import Campaign, DncEntry, Lead, write_transaction

from .compliance import normalize_phone, zone

PHONE_ALIASES = ("phone", "mobile", "tel", "电话", "手机", "手机号", "号码")
NAME_ALIASES = ("name", "姓名", "客户", "联系人")


class LeadImportError(ValueError):
    """The file cannot be imported; `errors` lists each problem as file:row:field: message."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(slots=True)
class ImportReport:
    campaign_id: int
    imported: int = 0
    duplicates: int = 0  # already in this campaign, or repeated in the file
    on_dnc: int = 0  # on the do-not-call list: not imported
    skipped_invalid: list[str] = field(default_factory=list)


def _decode(raw: bytes, path: str) -> str:
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    raise LeadImportError([f"{path}: not UTF-8 or GBK text"])


def _column(header: Sequence[str], aliases: tuple[str, ...]) -> str | None:
    low = {h.strip().lower(): h for h in header}
    return next((low[a] for a in aliases if a in low), None)


def parse_leads(
    raw: bytes, path: str, *, default_tz: str, skip_invalid: bool = False
) -> tuple[list[dict], list[str]]:
    """Rows as dicts (phone, name, timezone, extra); raises LeadImportError on bad input."""
    reader = csv.DictReader(io.StringIO(_decode(raw, path)))
    header = reader.fieldnames or []
    phone_col = _column(header, PHONE_ALIASES)
    if phone_col is None:
        raise LeadImportError(
            [f"{path}:1: no phone column (expected one of {', '.join(PHONE_ALIASES)})"]
        )
    name_col = _column(header, NAME_ALIASES)
    tz_col = _column(header, ("timezone", "tz", "时区"))
    rows: list[dict] = []
    errors: list[str] = []
    for lineno, rec in enumerate(reader, start=2):
        if None in rec:
            errors.append(f"{path}:{lineno}: more fields than the header has")
            continue
        phone = normalize_phone(rec.get(phone_col) or "")
        tz = (rec.get(tz_col) or "").strip() if tz_col else ""
        if not 7 <= len(phone) <= 15:
            errors.append(f"{path}:{lineno}:{phone_col}: not a phone number")
            continue
        if tz:
            try:
                zone(tz)
            except ValueError:
                errors.append(f"{path}:{lineno}:{tz_col}: unknown timezone {tz!r}")
                continue
        used = {phone_col, name_col, tz_col}
        rows.append(
            {
                "phone": phone,
                "name": (rec.get(name_col) or "").strip() if name_col else "",
                "timezone": tz or None,
                "extra": {k: v for k, v in rec.items() if k not in used and v},
            }
        )
    if errors and not skip_invalid:
        raise LeadImportError(errors)
    if not rows and not errors:
        raise LeadImportError([f"{path}: no lead rows"])
    return rows, errors


def import_leads(
    db: sessionmaker[Session],
    campaign_name: str,
    path: str | Path,
    *,
    script: str,
    timezone: str,
    skip_invalid: bool = False,
) -> ImportReport:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise LeadImportError([f"{p}: cannot read ({exc.strerror})"]) from None
    rows, invalid = parse_leads(raw, str(p), default_tz=timezone, skip_invalid=skip_invalid)
    with db.begin() as s:
        write_transaction(s)
        campaign_id = _campaign_id(s, campaign_name, script=script, timezone=timezone)
        report = ImportReport(campaign_id, skipped_invalid=invalid)
        existing = set(s.scalars(select(Lead.phone).where(Lead.campaign_id == campaign_id)))
        dnc = set(s.scalars(select(DncEntry.phone)))
        fresh: list[dict[str, Any]] = []
        for row in rows:
            if row["phone"] in existing:
                report.duplicates += 1
            elif row["phone"] in dnc:
                report.on_dnc += 1
            else:
                fresh.append({"campaign_id": campaign_id, **row})
                existing.add(row["phone"])
        report.imported = _insert_new(s, fresh)
        report.duplicates += len(fresh) - report.imported  # stored meanwhile by another import
        return report


def _insert_ignoring(s: Session, table: Table, conflict: list[str]) -> Any:
    """INSERT ... ON CONFLICT (`conflict`) DO NOTHING for this session's database."""
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=conflict)
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=conflict)
    raise RuntimeError(f"lead import supports SQLite and PostgreSQL, not {dialect}")


def _campaign_id(s: Session, name: str, *, script: str, timezone: str) -> int:
    """The campaign called `name`, created (once, whoever comes first) if new."""
    found = s.scalar(select(Campaign.id).where(Campaign.name == name))
    if found is not None:
        return found
    table = Campaign.__table__
    assert isinstance(table, Table)
    s.execute(
        _insert_ignoring(s, table, ["name"]).values(name=name, script=script, timezone=timezone)
    )
    made = s.scalar(select(Campaign.id).where(Campaign.name == name))
    assert made is not None
    return made


def _insert_new(s: Session, rows: list[dict[str, Any]]) -> int:
    """Insert the leads, skipping any whose (campaign, phone) is stored; how many went in."""
    if not rows:
        return 0
    table = Lead.__table__
    assert isinstance(table, Table)
    stmt = _insert_ignoring(s, table, ["campaign_id", "phone"]).returning(table.c.id)
    return len(s.execute(stmt, rows).all())
