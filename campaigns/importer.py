"""Lead CSV import: validate every row first, then store all of it in one transaction.

Columns: `phone` (required), `name`, `timezone`, anything else goes into the lead's `extra`.
Chinese spreadsheets are often exported as GBK: UTF-8 (with or without BOM) is tried first.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models import Campaign, DncEntry, Lead

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
        camp = s.scalar(select(Campaign).where(Campaign.name == campaign_name))
        if camp is None:
            camp = Campaign(name=campaign_name, script=script, timezone=timezone)
            s.add(camp)
            s.flush()
        report = ImportReport(camp.id, skipped_invalid=invalid)
        existing = set(s.scalars(select(Lead.phone).where(Lead.campaign_id == camp.id)))
        dnc = set(s.scalars(select(DncEntry.phone)))
        for row in rows:
            if row["phone"] in existing:
                report.duplicates += 1
            elif row["phone"] in dnc:
                report.on_dnc += 1
            else:
                s.add(Lead(campaign_id=camp.id, **row))
                existing.add(row["phone"])
                report.imported += 1
        return report
