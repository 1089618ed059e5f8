"""Lead import: a lead list (`campaigns.leadfile`) streamed into a campaign in batches.

The file is read once, row by row; valid rows are stored `BATCH_ROWS` at a time, each batch in
its own short write transaction, so memory does not grow with the file and a running node's
dialer is never locked out for long. What the operator gets back (`ImportReport`): accepted,
duplicates (repeated in the file or already in the campaign: skipped), and each rejected row
with its line and reason; accepted leads whose phone another campaign also holds are counted
(`elsewhere`), not refused.

A file that cannot be a lead list (unreadable, undecodable, no phone column, no rows) is
refused before anything is stored (`LeadImportError`), as is a `script` that differs from an
existing campaign's. An import stopped part-way keeps the batches it committed; running it
again adds the rest (what is stored counts as duplicates).

A campaign holds a phone once (the unique index on lead (campaign_id, phone)). Two imports
running at once into one campaign are safe: every batch is inserted with INSERT ... ON
CONFLICT DO NOTHING, so a phone the other import stored first (and a campaign it created
first) counts as a duplicate instead of failing the import; on SQLite each batch also takes
the write lock before it reads (BEGIN IMMEDIATE).

Phones are stored in E.164 (`campaigns.phones.normalize`), the form `campaigns.dnc` stores.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

from models import Campaign, CampaignDncEntry, DncEntry, Lead, write_transaction

from .leadfile import LeadFile, LeadFileError, LeadRow, RowError
from .phones import DEFAULT_REGION, legacy_forms

BATCH_ROWS = 1000
"""Leads per INSERT (and per write transaction)."""


class LeadImportError(ValueError):
    """Nothing was imported; `errors` lists each problem as one line (file: reason)."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Rejection:
    row: int  # line in the file, header = 1
    reason: str  # "column: why"


@dataclass(slots=True)
class ImportReport:
    campaign_id: int | None = None  # None: no batch was stored (every row rejected)
    accepted: int = 0
    duplicates: int = 0  # repeated in the file, or already in this campaign
    rejected: list[Rejection] = field(default_factory=list)
    elsewhere: int = 0  # accepted leads whose phone another campaign also holds
    blank_rows: int = 0
    encoding: str = ""
    delimiter: str = ""
    columns: str = ""  # "phone=手机号码, name=客户名称"

    @property
    def imported(self) -> int:
        """The older name of `accepted`."""
        return self.accepted

    def as_json(self) -> dict[str, Any]:
        """Exactly the `--json` report: accepted, duplicates, rejected rows."""
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": [{"row": r.row, "reason": r.reason} for r in self.rejected],
        }


def import_leads(
    db: sessionmaker[Session],
    campaign_name: str,
    path: str | Path,
    *,
    script: str,
    timezone: str,
    check_script: bool = True,
    column_map: dict[str, str] | None = None,
    region: str = DEFAULT_REGION,
    progress: bool = False,
    progress_file: TextIO | None = None,
) -> ImportReport:
    """Import the lead list at `path` into campaign `campaign_name` (created if new).

    `script` and `timezone` are a new campaign's. With `check_script`, an existing campaign
    whose script is not `script` is refused (LeadImportError) before anything is stored.
    `column_map`: field -> column header, over the automatic mapping. `region`: the country
    of numbers written without a country code. `progress`: a tqdm bar on `progress_file`
    (stderr by default).
    """
    p = Path(path)
    try:
        lead_file = LeadFile(p, column_map=column_map, region=region)
    except LeadFileError as exc:
        raise LeadImportError([f"{p}: {exc}"]) from None
    with lead_file:
        if check_script:
            _refuse_other_script(db, campaign_name, script)
        batches = _Batches(db, campaign_name, script, timezone, check_script, lead_file)
        with _bar(lead_file.size, progress, progress_file) as bar:
            batches.run(bar)
        report = batches.report
    report.rejected.sort(key=lambda r: r.row)
    if not (report.accepted or report.duplicates or report.rejected):
        raise LeadImportError([f"{p}: no lead rows"])
    return report


class _Batches:
    """Reads the rows and stores the valid ones, BATCH_ROWS per transaction."""

    def __init__(
        self,
        db: sessionmaker[Session],
        campaign_name: str,
        script: str,
        timezone: str,
        check_script: bool,
        lead_file: LeadFile,
    ) -> None:
        self.db = db
        self.campaign = (campaign_name, script, timezone, check_script)
        self.file = lead_file
        cols = lead_file.columns
        self.phone_column = cols.names[cols.fields["phone"]]
        self.report = ImportReport(
            encoding=lead_file.encoding, delimiter=lead_file.delimiter, columns=cols.describe()
        )
        self.legacy_dnc: bool | None = None  # any do-not-call entry not in E.164? (asked once)

    def run(self, bar: tqdm[Any]) -> None:
        batch: dict[str, LeadRow] = {}  # the first row of each phone
        repeats: list[LeadRow] = []  # later rows of a phone in this batch
        for row in self.file.rows():
            if isinstance(row, RowError):
                self.report.rejected.append(Rejection(row.line, str(row)))
            elif row.phone in batch:
                repeats.append(row)
            else:
                batch[row.phone] = row
                if len(batch) >= BATCH_ROWS:
                    self.store(list(batch.values()), repeats)
                    batch.clear()
                    repeats.clear()
                    bar.update(self.file.bytes_read - bar.n)
        if batch:
            self.store(list(batch.values()), repeats)
        bar.update(self.file.size - bar.n)
        self.report.blank_rows = self.file.blank_rows

    def store(self, rows: list[LeadRow], repeats: list[LeadRow]) -> None:
        """One batch in one write transaction; the report changes only once it committed.

        `repeats` (phones of `rows` again) are duplicates, or rejected like their first row
        when it is on a do-not-call list: the same counts wherever the batches split the file.
        """
        name, script, timezone, check_script = self.campaign
        with self.db.begin() as s:
            write_transaction(s)
            cid = _campaign_id(s, name, script=script, timezone=timezone, check=check_script)
            phones = [r.phone for r in rows]
            if self.legacy_dnc is None:
                self.legacy_dnc = _has_legacy_dnc(s)
            listed = _on_dnc(s, phones, cid, legacy=self.legacy_dnc)
            fresh = [r for r in rows if r.phone not in listed]
            elsewhere = _in_other_campaigns(s, phones, cid)
            inserted = _insert_new(s, [_values(cid, r) for r in fresh])
        report = self.report
        report.campaign_id = cid
        report.rejected += [
            Rejection(r.line, f"{self.phone_column}: on the do-not-call list")
            for r in rows + repeats
            if r.phone in listed
        ]
        report.accepted += len(inserted)
        report.duplicates += len(fresh) - len(inserted)
        report.duplicates += sum(r.phone not in listed for r in repeats)
        report.elsewhere += len(inserted & elsewhere)


def _values(campaign_id: int, row: LeadRow) -> dict[str, Any]:
    return {
        "campaign_id": campaign_id,
        "phone": row.phone,
        "name": row.name,
        "timezone": row.timezone,
        "extra": row.extra,
        "source": row.source,
        "consent": row.consent,
    }


@contextmanager
def _bar(total: int, enabled: bool, out: TextIO | None) -> Iterator[tqdm[Any]]:
    """A byte-based progress bar (off unless `enabled`), closed however the import ends."""
    bar: tqdm[Any] = tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        desc="import",
        disable=not enabled,
        file=out,
        leave=False,
        mininterval=0.5,
    )
    try:
        yield bar
    finally:
        bar.close()


def _same_script(stored: str, given: str) -> bool:
    if stored == given:
        return True
    try:
        return os.path.samefile(stored, given)
    except OSError:
        return False


def _refuse_other_script(db: sessionmaker[Session], name: str, script: str) -> None:
    with db() as s:
        stored = s.scalar(select(Campaign.script).where(Campaign.name == name))
    if stored is not None and not _same_script(stored, script):
        raise LeadImportError([f"campaign {name!r} uses the script {stored}, not {script}"])


def _insert_ignoring(s: Session, table: Table, conflict: list[str]) -> Any:
    """INSERT ... ON CONFLICT (`conflict`) DO NOTHING for this session's database."""
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=conflict)
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=conflict)
    raise RuntimeError(f"lead import supports SQLite and PostgreSQL, not {dialect}")


def _campaign_id(s: Session, name: str, *, script: str, timezone: str, check: bool) -> int:
    """The campaign called `name`, created (once, whoever comes first) if new."""
    found = s.execute(select(Campaign.id, Campaign.script).where(Campaign.name == name)).first()
    if found is None:
        table = Campaign.__table__
        assert isinstance(table, Table)
        s.execute(
            _insert_ignoring(s, table, ["name"]).values(name=name, script=script, timezone=timezone)
        )
        found = s.execute(select(Campaign.id, Campaign.script).where(Campaign.name == name)).one()
    if check and not _same_script(found.script, script):  # made meanwhile by another import
        raise LeadImportError([f"campaign {name!r} uses the script {found.script}, not {script}"])
    return int(found.id)


def _has_legacy_dnc(s: Session) -> bool:
    """True if a do-not-call list holds a number stored before numbers were E.164."""
    old = [
        select(DncEntry.phone).where(DncEntry.phone.not_like("+%")).limit(1),
        select(CampaignDncEntry.phone).where(CampaignDncEntry.phone.not_like("+%")).limit(1),
    ]
    return any(s.scalar(q) is not None for q in old)


def _on_dnc(s: Session, phones: list[str], campaign_id: int, *, legacy: bool) -> set[str]:
    """The phones on the global do-not-call list or the campaign's.

    With `legacy`, entries stored before numbers were E.164 (national digits) match too.
    """
    forms = {form: p for p in phones for form in (p, *(legacy_forms(p) if legacy else ()))}
    keys = list(forms)
    found = set(s.scalars(select(DncEntry.phone).where(DncEntry.phone.in_(keys))))
    found |= set(
        s.scalars(
            select(CampaignDncEntry.phone).where(
                CampaignDncEntry.campaign_id == campaign_id, CampaignDncEntry.phone.in_(keys)
            )
        )
    )
    return {forms[f] for f in found}


def _in_other_campaigns(s: Session, phones: list[str], campaign_id: int) -> set[str]:
    return set(
        s.scalars(
            select(Lead.phone)
            .where(Lead.phone.in_(phones), Lead.campaign_id != campaign_id)
            .distinct()
        )
    )


def _insert_new(s: Session, rows: list[dict[str, Any]]) -> set[str]:
    """Insert the leads, skipping any whose (campaign, phone) is stored; the phones that went
    in. Rows go in phone order: two imports inserting the same phones in different orders would
    each wait on the other's unique-index entry (PostgreSQL saw "deadlock detected")."""
    if not rows:
        return set()
    rows = sorted(rows, key=lambda r: str(r["phone"]))
    table = Lead.__table__
    assert isinstance(table, Table)
    stmt = _insert_ignoring(s, table, ["campaign_id", "phone"]).returning(table.c.phone)
    return set(s.scalars(stmt, rows))
