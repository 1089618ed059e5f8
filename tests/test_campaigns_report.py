"""The daily lead/ROI report on a real SQLite database, every figure computed by hand.

The day is 2026-11-21 in Asia/Shanghai (UTC+8): [2026-11-20T16:00Z, 2026-11-21T16:00Z).
Rows sit on both sides of each bound: 15:59:59Z on the 20th is 23:59:59 on the 20th in
Shanghai (outside), 16:00:00Z on the 21st is midnight of the 22nd (outside).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

import main
from app.config import load_config
from campaigns import reports
from campaigns.reports import ReportConfig, ReportError, daily_report, to_csv
from core.vocab import Disposition, Outcome
from models import OUTBOX_MAX_TRIES as MAX_TRIES
from models import CallAttempt, Campaign, DncEntry, Lead, OutboxItem, Turn, init_db

REPO = Path(__file__).resolve().parent.parent
DAY = date(2026, 11, 21)
TZ = "Asia/Shanghai"
# prices chosen so that the per-minute and the per-dial parts both show
CFG = ReportConfig(
    currency="CNY",
    cost_per_minute=0.5,
    cost_per_dial=0.02,
    billing_increment_s=60,
    value_grade_a=500.0,
    value_grade_b=200.0,
    value_grade_c=50.0,
)
PROMO = "春季促销"  # a Chinese campaign name must come through JSON and CSV unescaped
PII = ("1380000", "张三", "李四", "我想了解一下价格")  # phones, names, transcript text


def utc(d: int, h: int, m: int = 0, s: int = 0) -> datetime:
    return datetime(2026, 11, d, h, m, s, tzinfo=UTC)


@dataclass
class Seeded:
    url: str
    db: sessionmaker[Session]
    ids: dict[str, int]


def _attempt(
    s: Session,
    lead: Lead,
    started: datetime,
    disposition: str,
    outcome: str | None = None,
    talk_s: float | None = None,  # None: never answered
    naive: bool = False,
) -> CallAttempt:
    answered = None if talk_s is None else started + timedelta(seconds=10)
    ended = (answered or started) + timedelta(seconds=talk_s or 0)
    if naive:  # SQLite keeps naive UTC; the dialer writes aware UTC: both must count alike
        started = started.replace(tzinfo=None)
    att = CallAttempt(
        lead_id=lead.id,
        campaign_id=lead.campaign_id,
        node="n1",
        started_at=started,
        answered_at=answered,
        ended_at=ended,
        disposition=disposition,
        outcome=outcome,
        duration_s=0.0 if talk_s is None else talk_s,
    )
    s.add(att)
    s.flush()
    return att


def _turns(s: Session, att: CallAttempt, latencies: list[float | None]) -> None:
    for i, ms in enumerate(latencies):
        s.add(Turn(attempt_id=att.id, seq=2 * i, speaker="robot", text="您好", latency_ms=None))
        s.add(
            Turn(
                attempt_id=att.id,
                seq=2 * i + 1,
                speaker="callee",
                text="我想了解一下价格",
                latency_ms=ms,
            )
        )


@pytest.fixture
def seeded(tmp_path: Path) -> Seeded:
    url = f"sqlite:///{tmp_path}/r.db"
    db = init_db(url)
    ids: dict[str, int] = {}
    with db.begin() as s:
        promo = Campaign(name=PROMO, script="s.yaml")
        b2b = Campaign(name="B2B", script="s.yaml")
        idle = Campaign(name="Idle", script="s.yaml")
        s.add_all([promo, b2b, idle])
        s.flush()
        ids.update(promo=promo.id, b2b=b2b.id, idle=idle.id)
        grades = {1: "A", 4: "C", 7: "B"}
        leads = {}
        for n in range(1, 11):
            camp = promo if n <= 6 else b2b if n <= 9 else idle
            lead = Lead(
                campaign_id=camp.id,
                phone=f"138000000{n:02d}",
                name="张三" if n % 2 else "李四",
                grade=grades.get(n),
            )
            s.add(lead)
            leads[n] = lead
        s.flush()
        L = leads

        # campaign 春季促销, inside the day
        a1 = _attempt(s, L[1], utc(20, 16), "completed", "qualified", 61.0)  # 00:00:00 local
        a2 = _attempt(s, L[2], utc(21, 2), "completed", "callback", 30.0, naive=True)
        _attempt(s, L[3], utc(21, 3), "busy")
        a4 = _attempt(s, L[4], utc(21, 4), "completed", "qualified", 120.0, naive=True)
        _attempt(s, L[5], utc(21, 5), "completed", "dnc", 13.5)
        _attempt(s, L[6], utc(21, 15, 59, 59), "no_answer")  # 23:59:59 local
        # ... and just outside it
        x1 = _attempt(s, L[3], utc(20, 15, 59, 59), "completed", "qualified", 600.0)
        _attempt(s, L[6], utc(21, 16), "completed", "not_interested", 45.0)  # the 22nd
        # campaign B2B
        b1 = _attempt(s, L[7], utc(21, 6), "completed", "qualified", 200.0)
        _attempt(s, L[8], utc(21, 7), "rejected")
        _attempt(s, L[9], utc(21, 8), "worker_lost", "hung_up", 5.0)
        _attempt(s, L[8], utc(21, 10), "cancelled")  # a disposition the report does not know
        # campaign Idle: only another day
        _attempt(s, L[10], utc(22, 1), "completed", "qualified", 90.0)

        _turns(s, a1, [300, 500, None])  # a callee turn without latency does not count
        s.add(Turn(attempt_id=a1.id, seq=9, speaker="robot", text="再见", latency_ms=50.0))
        _turns(s, a2, [700])
        _turns(s, a4, [400, 1200])
        _turns(s, x1, [9999])  # another day's attempt
        _turns(s, b1, [float(ms) for ms in range(100, 2001, 100)])  # 20 samples

        def outbox(lead: Lead, created: datetime, **kw: Any) -> None:
            payload = {"lead_id": lead.id}
            if "attempt" in kw:
                payload["attempt_id"] = kw.pop("attempt").id
            s.add(
                OutboxItem(
                    kind="lead.qualified",
                    lead_id=lead.id,
                    payload=payload,
                    created_at=created,
                    **kw,
                )
            )

        outbox(L[1], utc(21, 0), attempt=a1, sent_at=utc(21, 0, 1), tries=1)  # delivered
        # failed for good, its last try the next day: still the 21st's
        outbox(
            L[4],
            utc(21, 4, 2, 10),
            attempt=a4,
            tries=MAX_TRIES,
            next_try_at=utc(22, 3),
            dead_at=utc(22, 3),  # a dead letter: failed
        )
        outbox(L[7], utc(21, 6, 5), attempt=b1, tries=MAX_TRIES - 1)  # still pending
        # written when the 20th's last call ended, after midnight: the 20th's, not the 21st's
        outbox(L[3], utc(20, 16, 10, 9), attempt=x1, tries=3, next_try_at=utc(21, 9))
        # no attempt named: counted by created_at
        outbox(L[2], utc(21, 9), tries=MAX_TRIES + 1, dead_at=utc(21, 10))  # failed
        outbox(L[2], utc(21, 16), sent_at=utc(21, 16, 1), tries=1)  # the 22nd

        s.add(DncEntry(phone="13800000005", source="callee", added_at=utc(21, 5, 1)))
        s.add(DncEntry(phone="13900000001", source="import", added_at=utc(20, 16)))
        s.add(DncEntry(phone="13900000002", source="import", added_at=utc(20, 15, 59, 59)))
        s.add(DncEntry(phone="13900000003", source="import", added_at=utc(21, 16)))
    return Seeded(url, db, ids)


def zeros(keys: tuple[str, ...], **counts: int) -> dict[str, int]:
    return {**dict.fromkeys(keys, 0), **counts}


DISP = reports.DISPOSITIONS
OUTC = (*reports.OUTCOMES, "none")


def expected_promo(cid: int) -> dict[str, Any]:
    # answered: 61 + 30 + 120 + 13.5 = 224.5 s talked
    # billed (60 s increments, rounded up): 120 + 60 + 120 + 60 = 360 s = 6 min
    # cost 6 x 0.5 + 6 dials x 0.02 = 3.12; value A 500 + C 50 = 550
    return {
        "campaign_id": cid,
        "campaign": PROMO,
        "dials": 6,
        "answered": 4,
        "connect_rate": 0.6667,
        "talk_minutes": 3.74,  # 224.5 / 60 = 3.7417
        "avg_talk_s": 56.1,  # 224.5 / 4 = 56.125
        "dispositions": zeros(DISP, completed=4, busy=1, no_answer=1),
        "outcomes": zeros(OUTC, qualified=2, callback=1, dnc=1, none=2),
        "qualified": 2,
        "qualified_by_grade": {"A": 1, "B": 0, "C": 1, "D": 0},
        "crm": {"outbox": 3, "delivered": 1, "pending": 0, "failed": 2},
        # [300, 400, 500, 700, 1200]: rank ceil(2.5) = 3 and ceil(4.75) = 5
        "latency_ms": {"samples": 5, "p50": 500.0, "p95": 1200.0},
        "billed_minutes": 6.0,
        "cost": 3.12,
        "value": 550.0,
        "roi": 175.2821,  # (550 - 3.12) / 3.12 = 175.28205
        "cost_per_qualified": 1.56,
    }


def expected_b2b(cid: int) -> dict[str, Any]:
    # answered: 200 + 5 = 205 s; billed 240 + 60 = 300 s = 5 min
    # cost 5 x 0.5 + 4 x 0.02 = 2.58; value B 200
    return {
        "campaign_id": cid,
        "campaign": "B2B",
        "dials": 4,
        "answered": 2,
        "connect_rate": 0.5,
        "talk_minutes": 3.42,  # 205 / 60 = 3.4167
        "avg_talk_s": 102.5,
        "dispositions": {**zeros(DISP, completed=1, rejected=1, worker_lost=1), "cancelled": 1},
        "outcomes": zeros(OUTC, qualified=1, hung_up=1, none=2),
        "qualified": 1,
        "qualified_by_grade": {"A": 0, "B": 1, "C": 0, "D": 0},
        "crm": {"outbox": 1, "delivered": 0, "pending": 1, "failed": 0},
        # 100..2000 step 100: rank 10 -> 1000, rank ceil(19) = 19 -> 1900 (not the max)
        "latency_ms": {"samples": 20, "p50": 1000.0, "p95": 1900.0},
        "billed_minutes": 5.0,
        "cost": 2.58,
        "value": 200.0,
        "roi": 76.5194,  # 197.42 / 2.58 = 76.51938
        "cost_per_qualified": 2.58,
    }


EXPECTED_TOTAL: dict[str, Any] = {
    "campaign_id": None,
    "campaign": "total",
    "dials": 10,
    "answered": 6,
    "connect_rate": 0.6,
    "talk_minutes": 7.16,  # 429.5 / 60 = 7.1583
    "avg_talk_s": 71.6,  # 429.5 / 6 = 71.583
    "dispositions": {
        **zeros(DISP, completed=5, busy=1, no_answer=1, rejected=1, worker_lost=1),
        "cancelled": 1,
    },
    "outcomes": zeros(OUTC, qualified=3, callback=1, dnc=1, hung_up=1, none=4),
    "qualified": 3,
    "qualified_by_grade": {"A": 1, "B": 1, "C": 1, "D": 0},
    "crm": {"outbox": 4, "delivered": 1, "pending": 1, "failed": 2},
    # 25 samples: 100 200 300 300 400 400 500 500 600 700 700 800 [900] 1000 1100 1200 1200
    # 1300 1400 1500 1600 1700 1800 [1900] 2000: ranks 13 and ceil(23.75) = 24
    "latency_ms": {"samples": 25, "p50": 900.0, "p95": 1900.0},
    "billed_minutes": 11.0,
    "cost": 5.7,  # 11 x 0.5 + 10 x 0.02
    "value": 750.0,
    "roi": 130.5789,  # 744.3 / 5.7 = 130.57895
    "cost_per_qualified": 1.9,
    "dnc_added": 2,  # 16:00:00Z on the 20th and 05:01Z on the 21st
}


CHART_KEYS = ("funnel", "intents", "by_hour")  # checked in tests/test_report_html.py


def plain(row: dict[str, Any]) -> dict[str, Any]:
    """A report row without the chart data (funnel, intents, answer rate by hour)."""
    return {k: v for k, v in row.items() if k not in CHART_KEYS}


def test_daily_report_every_figure(seeded: Seeded) -> None:
    rep = daily_report(seeded.db, DAY, tz=TZ, campaign=None, cfg=CFG)
    assert rep["date"] == "2026-11-21" and rep["timezone"] == TZ and rep["currency"] == "CNY"
    assert rep["window_utc"] == {
        "start": "2026-11-20T16:00:00+00:00",
        "end": "2026-11-21T16:00:00+00:00",
    }
    # Idle had calls, but not that day
    assert [plain(r) for r in rep["campaigns"]] == [
        expected_promo(seeded.ids["promo"]),
        expected_b2b(seeded.ids["b2b"]),
    ]
    assert plain(rep["total"]) == EXPECTED_TOTAL


def test_a_utc_day_would_differ(seeded: Seeded) -> None:
    """The bounds are local midnights: the same date in UTC counts other rows."""
    rep = daily_report(seeded.db, DAY, tz="UTC", campaign=None, cfg=CFG)
    # UTC 21st: a1 (16:00Z on the 20th) drops out, the 22nd-local not_interested call comes in
    assert rep["total"]["dials"] == 10
    assert rep["total"]["outcomes"]["qualified"] == 2
    assert rep["total"]["outcomes"]["not_interested"] == 1
    assert rep["total"]["dnc_added"] == 2  # 05:01Z and 16:00Z on the 21st


def test_billing_increment_rounds_each_call_up(seeded: Seeded) -> None:
    cfg = ReportConfig(cost_per_minute=0.5, cost_per_dial=0.02, billing_increment_s=6)
    rep = daily_report(seeded.db, DAY, tz=TZ, campaign=None, cfg=cfg)
    promo, b2b = rep["campaigns"]
    # 61 -> 66, 30 -> 30, 120 -> 120, 13.5 -> 18: 234 s
    assert promo["billed_minutes"] == 3.9
    assert promo["cost"] == 2.07  # 3.9 x 0.5 + 6 x 0.02
    # 200 -> 204, 5 -> 6: 210 s
    assert b2b["billed_minutes"] == 3.5
    assert rep["total"]["billed_minutes"] == 7.4
    assert rep["total"]["cost"] == 3.9  # 7.4 x 0.5 + 10 x 0.02
    assert rep["pricing"]["billing_increment_s"] == 6


def test_named_campaign_only_but_dnc_stays_global(seeded: Seeded) -> None:
    rep = daily_report(seeded.db, DAY, tz=TZ, campaign="B2B", cfg=CFG)
    assert rep["campaign_filter"] == "B2B"
    assert [plain(r) for r in rep["campaigns"]] == [expected_b2b(seeded.ids["b2b"])]
    total = plain(rep["total"])
    assert total.pop("dnc_added") == 2
    assert total == {**expected_b2b(seeded.ids["b2b"]), "campaign_id": None, "campaign": "total"}


def test_named_campaign_without_calls_has_no_ratios(seeded: Seeded) -> None:
    rep = daily_report(seeded.db, DAY, tz=TZ, campaign="Idle", cfg=CFG)
    (row,) = rep["campaigns"]
    assert row["campaign"] == "Idle" and row["dials"] == 0
    assert row["connect_rate"] is None and row["avg_talk_s"] is None
    assert row["cost"] == 0.0 and row["roi"] is None and row["cost_per_qualified"] is None
    assert row["latency_ms"] == {"samples": 0, "p50": None, "p95": None}


def test_cost_without_qualified_leads_gives_negative_roi(seeded: Seeded) -> None:
    rep = daily_report(seeded.db, DAY - timedelta(days=1), tz=TZ, campaign=None, cfg=CFG)
    # the 20th in Shanghai: only x1 (qualified, 600 s, lead 3 has no grade) and its turn
    (row,) = rep["campaigns"]
    assert row["dials"] == 1 and row["billed_minutes"] == 10.0
    assert row["qualified_by_grade"] == {"A": 0, "B": 0, "C": 0, "D": 0, "none": 1}
    assert row["value"] == 0.0 and row["cost"] == 5.02  # 10 x 0.5 + 0.02
    assert row["roi"] == -1.0
    assert row["crm"] == {"outbox": 1, "delivered": 0, "pending": 1, "failed": 0}
    assert rep["total"]["dnc_added"] == 1  # 15:59:59Z on the 20th


def test_report_errors_name_the_bad_value(seeded: Seeded) -> None:
    with pytest.raises(ReportError, match="unknown campaign 'Nope'.*B2B, Idle, 春季促销"):
        daily_report(seeded.db, DAY, tz=TZ, campaign="Nope", cfg=CFG)
    with pytest.raises(ReportError, match="unknown timezone 'Mars/Olympus'"):
        daily_report(seeded.db, DAY, tz="Mars/Olympus", campaign=None, cfg=CFG)
    with pytest.raises(ReportError, match="billing_increment_s .* got 0"):
        daily_report(seeded.db, DAY, tz=TZ, cfg=ReportConfig(billing_increment_s=0))
    with pytest.raises(ReportError, match="cost_per_dial must not be negative"):
        daily_report(seeded.db, DAY, tz=TZ, cfg=ReportConfig(cost_per_dial=-1.0))


def test_no_pii_in_json_or_csv(seeded: Seeded) -> None:
    rep = daily_report(seeded.db, DAY, tz=TZ, campaign=None, cfg=CFG)
    for text in (json.dumps(rep, ensure_ascii=False), to_csv(rep)):
        for secret in PII:
            assert secret not in text


def test_csv_columns_and_rows(seeded: Seeded) -> None:
    rep = daily_report(seeded.db, DAY, tz=TZ, campaign=None, cfg=CFG)
    text = to_csv(rep)
    header = text.splitlines()[0].split(",")
    assert header[:17] == [
        "date",
        "timezone",
        "currency",
        "row",
        "campaign_id",
        "campaign",
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
    ]
    dispositions = [h for h in header if h.startswith("disposition_")]
    assert dispositions == [f"disposition_{k}" for k in (*DISP, "cancelled")]  # unknown last
    assert header[-1] == "outcome_none"
    assert to_csv(rep) == text  # stable
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["row"] for r in rows] == ["campaign", "campaign", "total"]
    promo, b2b, total = rows
    assert promo["campaign"] == PROMO and promo["campaign_id"] == str(seeded.ids["promo"])
    assert (promo["dials"], promo["connect_rate"], promo["roi"]) == ("6", "0.6667", "175.2821")
    assert promo["qualified_A"] == "1" and promo["crm_failed"] == "2"
    assert promo["dnc_added"] == ""  # the DNC list is global
    assert (b2b["disposition_cancelled"], b2b["latency_p95_ms"]) == ("1", "1900.0")
    assert total["campaign_id"] == "" and total["campaign"] == "total"
    assert (total["dnc_added"], total["cost"], total["outcome_none"]) == ("2", "5.7", "4")


def test_known_keys_are_the_vocabulary() -> None:
    assert len(reports.OUTCOMES) == len(set(reports.OUTCOMES))
    assert set(reports.OUTCOMES) == set(Outcome)
    assert tuple(str(r) for r in Disposition) == reports.DISPOSITIONS


def test_yesterday_is_local() -> None:
    now = datetime(2026, 11, 21, 16, 30, tzinfo=UTC)  # 00:30 on the 22nd in Shanghai
    assert reports.yesterday(TZ, now) == date(2026, 11, 21)
    assert reports.yesterday("UTC", now) == date(2026, 11, 20)


def test_day_bounds_across_dst() -> None:
    start, end = reports.day_bounds(date(2026, 3, 8), "America/New_York")  # 23-hour day
    assert (start.isoformat(), end - start) == ("2026-03-08T05:00:00+00:00", timedelta(hours=23))


def test_shipped_config_documents_report_defaults() -> None:
    cfg = load_config(REPO / "config.yaml", env={})
    # the shipped config turns the nightly report files on; everything else is the default
    assert cfg.report.folder == "var/reports"
    assert replace(cfg.report, folder="") == ReportConfig()
    text = (REPO / "config.yaml").read_text(encoding="utf-8")
    for key in ReportConfig.__dataclass_fields__:
        assert f"\n  {key}: " in text
    cfg = load_config(REPO / "config.yaml", env={"CALLBOT__REPORT__COST_PER_MINUTE": "0.25"})
    assert cfg.report.cost_per_minute == 0.25


# the command line


@pytest.fixture
def cli_env(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> Seeded:
    monkeypatch.setenv("DATABASE_URL", seeded.url)
    for key, value in {
        "COST_PER_MINUTE": "0.5",
        "COST_PER_DIAL": "0.02",
        "BILLING_INCREMENT_S": "60",
    }.items():
        monkeypatch.setenv(f"CALLBOT__REPORT__{key}", value)
    return seeded


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main.main(["--config", str(REPO / "config.yaml"), "report", "daily", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_json(cli_env: Seeded, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run_cli(capsys, "--date", "2026-11-21")
    assert (rc, err) == (0, "")
    assert PROMO in out and "\\u" not in out  # ensure_ascii=False
    assert out.startswith("{\n  ")  # pretty-printed
    rep = json.loads(out)
    assert rep["timezone"] == TZ  # campaign.timezone from the config
    assert plain(rep["campaigns"][0]) == expected_promo(cli_env.ids["promo"])
    assert plain(rep["total"]) == EXPECTED_TOTAL


def test_cli_csv_with_campaign_and_tz(cli_env: Seeded, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run_cli(
        capsys, "--date", "2026-11-21", "--campaign", PROMO, "--format", "csv", "--tz", TZ
    )
    assert rc == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["row"], r["campaign"], r["dials"]) for r in rows] == [
        ("campaign", PROMO, "6"),
        ("total", "total", "6"),
    ]
    assert rows[1]["cost"] == "3.12" and rows[1]["dnc_added"] == "2"


def test_cli_default_date_is_yesterday_in_tz(
    cli_env: Seeded, capsys: pytest.CaptureFixture[str]
) -> None:
    before = reports.yesterday(TZ).isoformat()
    rc, out, _ = run_cli(capsys)
    after = reports.yesterday(TZ).isoformat()
    assert rc == 0
    assert json.loads(out)["date"] in (before, after)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--date", "2026-13-01"], "bad --date '2026-13-01': month must be in 1..12"),
        (["--date", "21/11/2026"], "bad --date '21/11/2026': expected YYYY-MM-DD"),
        (["--date", "20261121"], "bad --date '20261121': expected YYYY-MM-DD"),
        (["--tz", "Mars/Olympus"], "unknown timezone 'Mars/Olympus'"),
        (["--campaign", "秋季"], "unknown campaign '秋季'"),
    ],
)
def test_cli_bad_input_exits_2(
    cli_env: Seeded, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    rc, out, err = run_cli(capsys, "--date", "2026-11-21", *args)
    assert rc == 2
    assert out == ""
    assert err.startswith("report: ") and message in err


def test_cli_missing_database_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope" / "x.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{missing}")
    rc, out, err = run_cli(capsys, "--date", "2026-11-21")
    assert rc == 2 and f"no database at {missing}" in err
    assert not missing.exists()  # a report never creates a database
