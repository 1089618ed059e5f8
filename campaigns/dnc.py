"""Do-not-call lists: the global one (`DncEntry`) and one per campaign (`CampaignDncEntry`).

A number on the global list is never dialled; one on a campaign's list is never dialled by
that campaign. The claim excludes both in SQL (`not_listed`), and the dialer checks again
immediately before dialling (`campaigns.store.dial_check`), so a number added between the
claim and the dial is not called. Callee opt-outs go on the global list (`campaigns.outcomes`).

Numbers are stored in the form leads are (`normalize`), so "+86 138-0013-8000",
"0086 13800138000" and "13800138000" are one entry and match the lead however either was
written.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import ColumnElement, case, delete, exists, func, literal, select
from sqlalchemy.orm import Session, sessionmaker

from models import Campaign, CampaignDncEntry, DncEntry, Lead

from .compliance import normalize_phone

MAX_FILE_BYTES = 200 * 1024 * 1024  # a DNC file larger than this is refused
BATCH = 5000


def normalize(raw: str) -> str:
    """The stored form of a number: the lead importer's (`campaigns.phones.normalize`,
    E.164) when present, else the national digits of `compliance.normalize_phone`."""
    try:
        from campaigns import phones  # the importer's normaliser, once it exists
    except ImportError:
        return normalize_phone(raw)
    return str(phones.normalize(raw))  # type: ignore[attr-defined,unused-ignore]


class DncError(ValueError):
    """A DNC command that cannot be done (unknown campaign, unreadable file): one line."""


def forms(phone: str) -> list[str]:
    """The forms `phone` (as stored) may have in rows stored by other versions: E.164 and the
    national digits stored before E.164 ("+8613800138000" and "13800138000"), both ways."""
    if phone.startswith("+"):
        if phone.startswith("+86"):
            return [phone, phone[3:], "0" + phone[3:]]
        return [phone, phone[1:]]
    out = [phone, "+86" + phone, "+" + phone]
    if phone.startswith("0"):
        out.append("+86" + phone[1:])
    return out


def _forms_sql(phone: ColumnElement[str]) -> list[ColumnElement[str]]:
    """`forms` as SQL over a stored phone column (NULL where a form does not apply)."""
    e164, cn = phone.like("+%"), phone.like("+86%")
    national = func.substr(phone, 4)
    return [
        phone,
        case((cn, national)),
        case((cn, literal("0") + national)),
        case((e164 & ~cn, func.substr(phone, 2))),
        case((~e164, literal("+86") + phone)),
        case((~e164, literal("+") + phone)),
        case((phone.like("0%"), literal("+86") + func.substr(phone, 2))),
    ]


def not_listed(campaign_id: int) -> list[ColumnElement[bool]]:
    """SQL conditions on `Lead`: its number, in any stored form, on neither the global nor
    the campaign's list."""
    any_form = _forms_sql(Lead.phone.expression)
    return [
        ~exists().where(DncEntry.phone.in_(any_form)),
        ~exists().where(
            CampaignDncEntry.campaign_id == campaign_id, CampaignDncEntry.phone.in_(any_form)
        ),
    ]


def is_listed(s: Session, phone: str, campaign_id: int | None) -> bool:
    """True if `phone` (stored form) is on the global list or on `campaign_id`'s."""
    any_form = forms(phone)
    if s.scalar(select(DncEntry.phone).where(DncEntry.phone.in_(any_form)).limit(1)):
        return True
    if campaign_id is None:
        return False
    hit = s.scalar(
        select(CampaignDncEntry.phone)
        .where(CampaignDncEntry.campaign_id == campaign_id, CampaignDncEntry.phone.in_(any_form))
        .limit(1)
    )
    return hit is not None


def campaign_id_of(s: Session, name: str | None) -> int | None:
    """The id of campaign `name` (None: the global list); DncError if there is none."""
    if name is None:
        return None
    cid = s.scalar(select(Campaign.id).where(Campaign.name == name))
    if cid is None:
        raise DncError(f"no campaign named {name!r}")
    return cid


@dataclass(frozen=True, slots=True)
class Added:
    added: int  # new entries
    present: int  # already on the list (or repeated in the input)
    invalid: int  # not a phone number (skipped)


def add(
    db: sessionmaker[Session], phones: Iterable[str], *, campaign: str | None, source: str
) -> Added:
    """Put numbers on the global list (campaign None) or a campaign's, normalised first."""
    added = present = invalid = 0
    valid: list[str] = []
    for raw in phones:
        number = _normalized(raw)
        if number is None:
            invalid += 1
        else:
            valid.append(number)
    with db.begin() as s:
        cid = campaign_id_of(s, campaign)
        for chunk in _chunks(valid):
            listed = _listed(s, chunk, cid)
            for phone in chunk:
                if phone in listed:
                    present += 1
                    continue
                listed.add(phone)
                if cid is None:
                    s.add(DncEntry(phone=phone, source=source))
                else:
                    s.add(CampaignDncEntry(campaign_id=cid, phone=phone, source=source))
                added += 1
            s.flush()
    return Added(added, present, invalid)


def _normalized(raw: str) -> str | None:
    """The stored form of `raw`; None when it is not a phone number."""
    try:
        number = normalize(raw)
    except ValueError:
        return None
    return number if sum(c.isdigit() for c in number) >= 5 else None


def _listed(s: Session, phones: list[str], cid: int | None) -> set[str]:
    if cid is None:
        return set(s.scalars(select(DncEntry.phone).where(DncEntry.phone.in_(phones))))
    return set(
        s.scalars(
            select(CampaignDncEntry.phone).where(
                CampaignDncEntry.campaign_id == cid, CampaignDncEntry.phone.in_(phones)
            )
        )
    )


def _chunks(items: Iterable[str]) -> Iterator[list[str]]:
    chunk: list[str] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= BATCH:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def remove(db: sessionmaker[Session], phone: str, *, campaign: str | None) -> bool:
    """Take a number off the global list or a campaign's; False if it was not on it."""
    number = _normalized(phone)
    if number is None:
        raise DncError("not a phone number")
    with db.begin() as s:
        cid = campaign_id_of(s, campaign)
        if cid is None:
            gone = s.execute(delete(DncEntry).where(DncEntry.phone == number))
        else:
            gone = s.execute(
                delete(CampaignDncEntry).where(
                    CampaignDncEntry.campaign_id == cid, CampaignDncEntry.phone == number
                )
            )
        return bool(gone.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Listing:
    """A list's size by source; `numbers` only when asked for (they are PII)."""

    total: int
    by_source: dict[str, int]
    numbers: list[str] | None


def listing(db: sessionmaker[Session], *, campaign: str | None, numbers: bool) -> Listing:
    with db() as s:
        cid = campaign_id_of(s, campaign)
        if cid is None:
            table: type[DncEntry] | type[CampaignDncEntry] = DncEntry
            where: list[ColumnElement[bool]] = []
        else:
            table = CampaignDncEntry
            where = [CampaignDncEntry.campaign_id == cid]
        by_source = {
            str(src): int(n)
            for src, n in s.execute(
                select(table.source, func.count()).where(*where).group_by(table.source)
            )
        }
        phones = (
            list(s.scalars(select(table.phone).where(*where).order_by(table.phone)))
            if numbers
            else None
        )
    return Listing(sum(by_source.values()), by_source, phones)


def read_numbers(path: Path) -> list[str]:
    """The numbers of a DNC file: one a line, or a CSV whose first column (or a column named
    phone/mobile/电话/手机) holds them. UTF-8 (BOM or not), UTF-16 or GB18030."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DncError(f"{path}: {size} bytes, more than the {MAX_FILE_BYTES} allowed")
        raw = path.read_bytes()
    except OSError as exc:
        raise DncError(f"{path}: {exc.strerror or type(exc).__name__}") from None
    text = _decode(raw, path)
    rows = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
    if not rows:
        return []
    col = _phone_column(rows[0])
    body = rows[1:] if col is not None else rows
    col = col or 0
    return [r[col].strip() for r in body if len(r) > col and r[col].strip()]


_PHONE_HEADERS = ("phone", "mobile", "number", "tel", "电话", "手机", "号码")


def _phone_column(header: list[str]) -> int | None:
    """The phone column of a header row; None when the first row is data (has digits)."""
    for i, cell in enumerate(header):
        name = cell.strip().lower()
        if any(h in name for h in _PHONE_HEADERS) and not any(c.isdigit() for c in name):
            return i
    return None


def _decode(raw: bytes, path: Path) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise DncError(f"{path}: not text in UTF-8, UTF-16 or GB18030")
