"""The daily lead/ROI report for sales operations: aggregates only, never a phone number, a
name or a transcript.

The day is a calendar day in a timezone (`campaign.timezone` by default); its local midnights
are converted to UTC for the queries, so a day across a DST change has 23 or 25 hours. The
database holds UTC, naive (SQLite) or aware (PostgreSQL): the bounds are aware UTC datetimes,
which SQLite compares as UTC wall time and PostgreSQL as instants.

What belongs to the day:
- attempts that *started* in it, with their turns (callee turn latency) and the leads they
  qualified (grade from the lead row);
- CRM outbox rows written for those attempts (their payload names the attempt), so a call
  that starts before midnight and qualifies its lead after it counts on the day it started;
  rows whose payload names no attempt count on the day of their `created_at`;
- do-not-call entries added in it (the list is global: in the total row only).

The funnel counts attempts: dialled, connected (answered), conversation (answered with at
least one callee turn), qualified (outcome qualified); `intents` counts the callee turns of
answered attempts; `by_hour` the dials and connects by the local hour (in the report's
timezone) the dial started. The HTML page (`campaigns.report_html`) renders this dict only.

Money (currency is a label from the config, no conversion): each answered call is billed in
whole `billing_increment_s` increments, rounded up; cost = billed minutes x cost_per_minute +
dials x cost_per_dial; value = sum of the qualified leads' grade values; roi = (value - cost) /
cost, None when nothing was spent. Percentiles are nearest-rank (the ceil(p/100 x n)-th
smallest sample), so every figure can be checked by hand.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.vocab import Disposition, Grade, Outcome
from models import CallAttempt, Campaign, DncEntry, Lead, OutboxItem, Turn

from .compliance import zone

# Known keys come first, always present (zeros included) so JSON and CSV keep one shape;
# any other value found in the data is added after them, sorted.
DISPOSITIONS: tuple[str, ...] = tuple(Disposition)
OUTCOMES: tuple[str, ...] = (  # every Outcome, the ones sales looks at first
    Outcome.QUALIFIED,
    Outcome.CALLBACK,
    Outcome.NOT_INTERESTED,
    Outcome.DNC,
    Outcome.WRONG_PERSON,
    Outcome.HUMAN_REQUESTED,
    Outcome.TRANSFERRED,
    Outcome.VOICEMAIL,
    Outcome.NO_RESPONSE,
    Outcome.HUNG_UP,
)
GRADES: tuple[str, ...] = tuple(Grade)
NONE_KEY = "none"  # an attempt with no outcome (never answered) or no disposition
TOTAL = "total"


@dataclass
class ReportConfig:
    """Prices and lead values for `main.py report daily` (the `report:` section of
    config.yaml; flat keys: the config loader takes scalars)."""

    currency: str = "CNY"  # a label only: no conversion
    cost_per_minute: float = 0.1  # trunk price per billed minute of answered calls
    cost_per_dial: float = 0.0  # per attempt, answered or not
    billing_increment_s: int = 60  # answered calls are billed in whole increments, rounded up
    value_grade_a: float = 500.0  # what one qualified lead of grade A is worth
    value_grade_b: float = 200.0
    value_grade_c: float = 50.0
    # `main.py run` writes yesterday's JSON, CSV and HTML here once today is `daily_after_min`
    # minutes old in campaign.timezone (campaigns.report_files); empty: not written (config.yaml
    # sets var/reports)
    folder: str = ""
    daily_after_min: int = 15


class ReportError(ValueError):
    """Input a report cannot be made from; the message names the bad value."""


@dataclass(slots=True)
class _Tally:
    dials: int = 0
    answered: int = 0
    talk_s: float = 0.0
    billed_s: int = 0
    dispositions: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    qualified: dict[int, str] = field(default_factory=dict)  # lead id -> grade; ids stay here
    crm: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    conversations: int = 0  # answered attempts in which the callee said something
    qualified_attempts: int = 0
    intents: Counter[str] = field(default_factory=Counter)  # callee turns by intent
    hours: list[list[int]] = field(default_factory=lambda: [[0, 0] for _ in range(24)])


def parse_day(text: str) -> date:
    """A YYYY-MM-DD date, strictly (no week dates, no compact forms)."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise ReportError(f"bad --date {text!r}: expected YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ReportError(f"bad --date {text!r}: {exc}") from None


def yesterday(tz: str, now: datetime | None = None) -> date:
    """The calendar day before today in `tz`."""
    local = (now or datetime.now(UTC)).astimezone(_zone(tz))
    return local.date() - timedelta(days=1)


def day_bounds(day: date, tz: str) -> tuple[datetime, datetime]:
    """[start, end) of the local calendar day, as aware UTC datetimes."""
    z = _zone(tz)
    start = datetime.combine(day, time(0), tzinfo=z)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=z)
    return start.astimezone(UTC), end.astimezone(UTC)


def _zone(tz: str) -> ZoneInfo:
    try:
        return zone(tz)
    except ValueError as exc:
        raise ReportError(str(exc)) from None


def _check(cfg: ReportConfig) -> None:
    if cfg.billing_increment_s <= 0:
        raise ReportError(
            f"report.billing_increment_s must be a positive number of seconds, "
            f"got {cfg.billing_increment_s!r}"
        )
    for key in (
        "cost_per_minute",
        "cost_per_dial",
        "value_grade_a",
        "value_grade_b",
        "value_grade_c",
    ):
        if getattr(cfg, key) < 0:
            raise ReportError(f"report.{key} must not be negative, got {getattr(cfg, key)!r}")


def _grade_key(grade: str | None) -> str:
    return grade.strip().upper() if grade and grade.strip() else NONE_KEY


def _billed_s(duration_s: float, increment_s: int) -> int:
    # milliseconds first: float noise such as 60.0000000001 s must not bill another increment
    return math.ceil(round(duration_s, 3) / increment_s) * increment_s


def _percentile(sorted_xs: list[float], p: float) -> float | None:
    if not sorted_xs:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_xs)))
    return sorted_xs[rank - 1]


def _r(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)


def _keyed(counts: Counter[str], known: tuple[str, ...]) -> dict[str, int]:
    out = {k: counts.get(k, 0) for k in known}
    out.update({k: counts[k] for k in sorted(set(counts) - set(known))})
    return out


def _row(t: _Tally, cfg: ReportConfig) -> dict[str, Any]:
    values: dict[str, float] = {
        Grade.A: cfg.value_grade_a,
        Grade.B: cfg.value_grade_b,
        Grade.C: cfg.value_grade_c,
    }
    grades = Counter(t.qualified.values())
    qualified = len(t.qualified)
    billed_min = t.billed_s / 60
    cost = billed_min * cfg.cost_per_minute + t.dials * cfg.cost_per_dial
    value = sum(values.get(g, 0.0) * n for g, n in grades.items())
    lat = sorted(t.latencies)
    return {
        "dials": t.dials,
        "answered": t.answered,
        "connect_rate": _r(t.answered / t.dials if t.dials else None, 4),
        "talk_minutes": round(t.talk_s / 60, 2),
        "avg_talk_s": _r(t.talk_s / t.answered if t.answered else None, 1),
        "dispositions": _keyed(t.dispositions, DISPOSITIONS),
        "outcomes": _keyed(t.outcomes, (*OUTCOMES, NONE_KEY)),
        "qualified": qualified,
        "qualified_by_grade": _keyed(grades, GRADES),
        "crm": {
            "outbox": sum(t.crm.values()),
            "delivered": t.crm["delivered"],
            "pending": t.crm["pending"],
            "failed": t.crm["failed"],
        },
        "latency_ms": {
            "samples": len(lat),
            "p50": _r(_percentile(lat, 50), 1),
            "p95": _r(_percentile(lat, 95), 1),
        },
        "billed_minutes": round(billed_min, 2),
        "cost": round(cost, 2),
        "value": round(value, 2),
        "roi": _r((value - cost) / cost if cost > 0 else None, 4),
        "cost_per_qualified": _r(cost / qualified if qualified else None, 2),
        **_funnel(t),
    }


def _funnel(t: _Tally) -> dict[str, Any]:
    """The funnel (attempts at each stage), callee intents (most frequent first) and the
    answer rate by local hour of the dial: what the HTML report charts."""
    return {
        "funnel": {
            "dialled": t.dials,
            "connected": t.answered,
            "conversation": t.conversations,
            "qualified": t.qualified_attempts,
        },
        "intents": dict(sorted(t.intents.items(), key=lambda kv: (-kv[1], kv[0]))),
        "by_hour": [
            {
                "hour": h,
                "dials": dials,
                "answered": answered,
                "answer_rate": _r(answered / dials if dials else None, 4),
            }
            for h, (dials, answered) in enumerate(t.hours)
        ],
    }


def _campaign_id(s: Session, name: str) -> int:
    cid = s.scalar(select(Campaign.id).where(Campaign.name == name))
    if cid is not None:
        return cid
    known = sorted(s.scalars(select(Campaign.name)))
    shown = ", ".join(known[:20]) + (f", ... ({len(known)} in all)" if len(known) > 20 else "")
    raise ReportError(f"unknown campaign {name!r} (known: {shown or 'none'})")


class _Tallies:
    """Per-campaign tallies plus the total; every row counts in its campaign and the total."""

    def __init__(self, only: int | None) -> None:
        self.per: dict[int, _Tally] = {} if only is None else {only: _Tally()}
        self.total = _Tally()

    def of(self, cid: int | None) -> list[_Tally]:
        return [self.total] if cid is None else [self.per.setdefault(cid, _Tally()), self.total]


def _tally_attempts(
    s: Session, in_day: list[Any], tallies: _Tallies, cfg: ReportConfig, tz: ZoneInfo
) -> dict[int, int]:
    """Dials, connects, minutes, dispositions, outcomes and qualified leads of the day's
    attempts, and dials and connects by local hour (in `tz`) of the dial; returns attempt id ->
    campaign id."""
    attempt_campaign: dict[int, int] = {}
    rows = s.execute(
        select(
            CallAttempt.id,
            CallAttempt.campaign_id,
            CallAttempt.lead_id,
            CallAttempt.answered_at.is_not(None),
            CallAttempt.disposition,
            CallAttempt.outcome,
            CallAttempt.duration_s,
            Lead.grade,
            CallAttempt.started_at,
        )
        .join(Lead, Lead.id == CallAttempt.lead_id)
        .where(*in_day)
    )
    for aid, cid, lead_id, answered, disposition, outcome, duration_s, grade, started in rows:
        attempt_campaign[aid] = cid
        hour = _local_hour(started, tz)
        for t in tallies.of(cid):
            t.dials += 1
            t.hours[hour][0] += 1
            t.hours[hour][1] += 1 if answered else 0
            t.dispositions[disposition or NONE_KEY] += 1
            t.outcomes[outcome or NONE_KEY] += 1
            if answered:
                t.answered += 1
                t.talk_s += duration_s or 0.0
                t.billed_s += _billed_s(duration_s or 0.0, cfg.billing_increment_s)
            if outcome == Outcome.QUALIFIED:
                t.qualified[lead_id] = _grade_key(grade)
                t.qualified_attempts += 1
    return attempt_campaign


def _local_hour(at: datetime, tz: ZoneInfo) -> int:
    """The hour of day in `tz` of a stored UTC time (naive on SQLite, aware on PostgreSQL)."""
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(tz).hour


def _tally_turns(s: Session, in_day: list[Any], tallies: _Tallies) -> None:
    """Conversations (answered attempts with at least one callee turn) and the callee turns'
    intents ("none": a turn the NLU gave no intent)."""
    turns = (
        select(CallAttempt.id, CallAttempt.campaign_id, Turn.intent)
        .join(CallAttempt, CallAttempt.id == Turn.attempt_id)
        .where(*in_day, Turn.speaker == "callee", CallAttempt.answered_at.is_not(None))
        .order_by(CallAttempt.id)
    )
    talked: set[int] = set()
    for aid, cid, intent in s.execute(turns):
        for t in tallies.of(cid):
            t.intents[intent or NONE_KEY] += 1
            if aid not in talked:
                t.conversations += 1
        talked.add(aid)


def _tally_latency(s: Session, in_day: list[Any], tallies: _Tallies) -> None:
    lat = (
        select(CallAttempt.campaign_id, Turn.latency_ms)
        .join(CallAttempt, CallAttempt.id == Turn.attempt_id)
        .where(*in_day, Turn.speaker == "callee", Turn.latency_ms.is_not(None))
    )
    for cid, ms in s.execute(lat):
        for t in tallies.of(cid):
            t.latencies.append(float(ms or 0.0))  # never None: filtered above


def daily_report(
    db: sessionmaker[Session],
    day: date,
    *,
    tz: str,
    campaign: str | None = None,
    cfg: ReportConfig,
) -> dict[str, Any]:
    """One day's figures per campaign (campaigns with attempts that day, or the one named)
    and in total. Reads only."""
    _check(cfg)
    start, end = day_bounds(day, tz)
    with db() as s:
        cid_filter = None if campaign is None else _campaign_id(s, campaign)
        tallies = _Tallies(cid_filter)
        in_day = [CallAttempt.started_at >= start, CallAttempt.started_at < end]
        if cid_filter is not None:
            in_day.append(CallAttempt.campaign_id == cid_filter)
        attempt_campaign = _tally_attempts(s, in_day, tallies, cfg, _zone(tz))
        _tally_latency(s, in_day, tallies)
        _tally_turns(s, in_day, tallies)
        _tally_outbox(s, in_day, start, end, cid_filter, attempt_campaign, tallies.of)
        dnc_added = s.scalar(
            select(func.count())
            .select_from(DncEntry)
            .where(DncEntry.added_at >= start, DncEntry.added_at < end)
        )
        named = select(Campaign.id, Campaign.name).where(Campaign.id.in_(list(tallies.per)))
        names = {row.id: row.name for row in s.execute(named)}
    campaigns = [
        {"campaign_id": cid, "campaign": names[cid], **_row(tally, cfg)}
        for cid, tally in sorted(tallies.per.items())
    ]
    total = {"campaign_id": None, "campaign": TOTAL, **_row(tallies.total, cfg)}
    return {
        "report": "daily",
        "date": day.isoformat(),
        "timezone": tz,
        "window_utc": {"start": start.isoformat(), "end": end.isoformat()},
        "campaign_filter": campaign,
        "currency": cfg.currency,
        "pricing": _pricing(cfg),
        "campaigns": campaigns,
        "total": {**total, "dnc_added": int(dnc_added or 0)},
    }


def _pricing(cfg: ReportConfig) -> dict[str, Any]:
    return {
        "cost_per_minute": cfg.cost_per_minute,
        "cost_per_dial": cfg.cost_per_dial,
        "billing_increment_s": cfg.billing_increment_s,
        "value_per_grade": {"A": cfg.value_grade_a, "B": cfg.value_grade_b, "C": cfg.value_grade_c},
    }


def _tally_outbox(
    s: Session,
    in_day: list[Any],
    start: datetime,
    end: datetime,
    cid_filter: int | None,
    attempt_campaign: dict[int, int],
    tallies: Callable[[int | None], list[_Tally]],
) -> None:
    """CRM outbox rows of the day's attempts (by the payload's attempt id), plus rows naming no
    attempt that were created in the day."""
    cols = (
        OutboxItem.id,
        OutboxItem.payload,
        OutboxItem.sent_at,
        OutboxItem.dead_at,
        Lead.campaign_id,
    )
    day_leads = select(CallAttempt.lead_id).where(*in_day)
    linked = (
        select(*cols)
        .outerjoin(Lead, Lead.id == OutboxItem.lead_id)
        .where(OutboxItem.lead_id.in_(day_leads))
    )
    created = (
        select(*cols)
        .outerjoin(Lead, Lead.id == OutboxItem.lead_id)
        .where(OutboxItem.created_at >= start, OutboxItem.created_at < end)
    )
    if cid_filter is not None:
        created = created.where(Lead.campaign_id == cid_filter)
    created_ids: set[int] = set()
    found: dict[int, tuple[Any, ...]] = {}
    for row in s.execute(created):
        created_ids.add(row[0])
        found[row[0]] = tuple(row)
    for row in s.execute(linked):
        found[row[0]] = tuple(row)
    for oid, payload, sent_at, dead_at, lead_campaign in found.values():
        aid = payload.get("attempt_id") if isinstance(payload, dict) else None
        if isinstance(aid, int) and not isinstance(aid, bool):
            if aid not in attempt_campaign:
                continue  # another day's attempt (or another campaign's)
            cid = attempt_campaign[aid]
        elif oid in created_ids:
            cid = lead_campaign
        else:
            continue
        state = (
            "delivered"
            if sent_at is not None
            else "failed"  # a dead letter (crm_sync.outbox), until replayed
            if dead_at is not None
            else "pending"
        )
        for t in tallies(cid):
            t.crm[state] += 1


def _csv_keys(rows: list[dict[str, Any]], part: str, known: tuple[str, ...]) -> list[str]:
    extra = sorted({k for r in rows for k in r[part]} - set(known))
    return [*known, *extra]


def to_csv(report: dict[str, Any]) -> str:
    """One line per campaign, then the total; a stable column order (the known dispositions,
    outcomes and grades always, any others after them, sorted). Empty cell: no value."""
    rows = [*report["campaigns"], report["total"]]
    dispositions = _csv_keys(rows, "dispositions", DISPOSITIONS)
    outcomes = _csv_keys(rows, "outcomes", (*OUTCOMES, NONE_KEY))
    grades = _csv_keys(rows, "qualified_by_grade", GRADES)
    plain = (
        "dials",
        "answered",
        "connect_rate",
        "talk_minutes",
        "avg_talk_s",
        "billed_minutes",
        "cost",
        "value",
        "roi",
        "cost_per_qualified",
        "qualified",
    )
    header = [
        "date",
        "timezone",
        "currency",
        "row",
        "campaign_id",
        "campaign",
        *plain,
        *(f"qualified_{g}" for g in grades),
        "crm_outbox",
        "crm_delivered",
        "crm_pending",
        "crm_failed",
        "dnc_added",
        "latency_samples",
        "latency_p50_ms",
        "latency_p95_ms",
        *(f"disposition_{k}" for k in dispositions),
        *(f"outcome_{k}" for k in outcomes),
    ]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        is_total = r is report["total"]
        cells: list[Any] = [
            report["date"],
            report["timezone"],
            report["currency"],
            TOTAL if is_total else "campaign",
            r["campaign_id"],
            r["campaign"],
            *(r[k] for k in plain),
            *(r["qualified_by_grade"].get(g, 0) for g in grades),
            *(r["crm"][k] for k in ("outbox", "delivered", "pending", "failed")),
            r.get("dnc_added"),
            *(r["latency_ms"][k] for k in ("samples", "p50", "p95")),
            *(r["dispositions"].get(k, 0) for k in dispositions),
            *(r["outcomes"].get(k, 0) for k in outcomes),
        ]
        w.writerow(["" if c is None else c for c in cells])
    return buf.getvalue()
