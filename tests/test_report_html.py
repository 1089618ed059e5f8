"""Issue 14, item 2: the daily report as an HTML page people read, reconciled with the database.

A seeded day (Asia/Shanghai, UTC+8, no DST) of leads, attempts, turns and outcomes across
hours and dispositions, on a real SQLite file. The figures are read back out of the page's
tables and compared with counts the test computes with its own SQL, not with the report code.
"""

from __future__ import annotations

import math
import os
import re
import stat
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

import main
from campaigns.report_files import due_day, ensure_daily, report_paths
from campaigns.report_html import to_html
from campaigns.reports import ReportConfig, daily_report
from models import CallAttempt, Campaign, Lead, Turn, init_db

REPO = Path(__file__).resolve().parent.parent
DAY = date(2026, 11, 21)
TZ = "Asia/Shanghai"
START, END = "2026-11-20 16:00:00", "2026-11-21 16:00:00"  # the local day in UTC
CFG = ReportConfig(cost_per_minute=0.3, cost_per_dial=0.05, billing_increment_s=60)
PII = ("13800001111", "王小明", "我想了解一下价格")

# (UTC hour on the 21st or -1 for 20:xx on the 20th, disposition, outcome, talk s, callee intents)
CALLS: list[tuple[int, str, str | None, float | None, list[str | None]]] = [
    (-1, "no_answer", None, None, []),  # 17:30Z on the 20th = 01:30 local: inside the day
    (1, "completed", "qualified", 95.0, ["affirm", "ask_price", "book_meeting"]),
    (1, "busy", None, None, []),
    (1, "completed", "not_interested", 20.0, ["deny"]),
    (2, "completed", "callback", 41.5, ["busy_callback"]),
    (2, "no_answer", None, None, []),
    (2, "completed", "hung_up", 3.0, []),  # answered, silent: connected, no conversation
    (6, "completed", "qualified", 130.0, ["affirm", None, "book_meeting"]),
    (6, "completed", "dnc", 12.0, ["complaint_dnc"]),
    (6, "rejected", None, None, []),
    (7, "completed", "voicemail", 30.0, ["voicemail"]),
    (7, "failed", None, None, []),
]


def seed(url: str) -> sessionmaker[Session]:
    db = init_db(url)
    with db.begin() as s:
        camp = Campaign(name="双十一", script="s")
        other = Campaign(name="Other", script="s")
        s.add_all([camp, other])
        s.flush()
        for i, (hour, disposition, outcome, talk_s, intents) in enumerate(CALLS):
            lead = Lead(
                campaign_id=(camp if i % 3 else other).id,
                phone=f"+86138000{i:05d}",
                name=PII[1],
                grade="A" if outcome == "qualified" else None,
            )
            s.add(lead)
            s.flush()
            started = (
                datetime(2026, 11, 20, 17, 30, tzinfo=UTC)
                if hour < 0
                else datetime(2026, 11, 21, hour, 7 * i % 60, tzinfo=UTC)
            )
            answered = None if talk_s is None else started + timedelta(seconds=8)
            att = CallAttempt(
                lead_id=lead.id,
                campaign_id=lead.campaign_id,
                started_at=started,
                answered_at=answered,
                ended_at=(answered or started) + timedelta(seconds=talk_s or 0),
                disposition=disposition,
                outcome=outcome,
                duration_s=talk_s or 0.0,
            )
            s.add(att)
            s.flush()
            for seq, intent in enumerate(intents):
                s.add(Turn(attempt_id=att.id, seq=2 * seq, speaker="robot", text="您好"))
                s.add(
                    Turn(
                        attempt_id=att.id,
                        seq=2 * seq + 1,
                        speaker="callee",
                        text=PII[2],
                        intent=intent,
                        latency_ms=500.0,
                    )
                )
        # outside the day on both sides: must not count
        for when in (datetime(2026, 11, 20, 15, 59), datetime(2026, 11, 21, 16, 0)):
            lead = Lead(campaign_id=camp.id, phone=f"+8613900{when.hour}", name="x")
            s.add(lead)
            s.flush()
            s.add(
                CallAttempt(
                    lead_id=lead.id,
                    campaign_id=camp.id,
                    started_at=when,
                    answered_at=when,
                    disposition="completed",
                    outcome="qualified",
                    duration_s=60.0,
                )
            )
    return db


class Tables(HTMLParser):
    """table name -> row key -> column -> cell text, from data-table/data-key/data-col."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, dict[str, dict[str, str]]] = {}
        self._table: str | None = None
        self._row: str | None = None
        self._col: str | None = None
        self.external: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.add(tag)
        for name in ("src", "href"):
            if a.get(name):
                self.external.append(a[name] or "")
        if tag == "table" and a.get("data-table"):
            self._table = a["data-table"]
            self.tables[self._table or ""] = {}
        elif tag == "tr" and self._table and a.get("data-key") is not None:
            self._row = a["data-key"]
            self.tables[self._table][self._row or ""] = {}
        elif tag == "td" and self._row is not None:
            self._col = a.get("data-col")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = self._row = None
        elif tag == "tr":
            self._row = None
        elif tag == "td":
            self._col = None

    def handle_data(self, data: str) -> None:
        if self._table and self._row is not None and self._col:
            cell = self.tables[self._table][self._row]
            cell[self._col] = cell.get(self._col, "") + data.strip()


def parse(page: str) -> Tables:
    p = Tables()
    p.feed(page)
    return p


def sql(db: sessionmaker[Session], query: str) -> list[tuple]:
    with db() as s:
        return [tuple(r) for r in s.execute(text(query), {"start": START, "end": END})]


IN_DAY = "a.started_at >= :start AND a.started_at < :end"


@pytest.fixture
def db(tmp_path: Path) -> sessionmaker[Session]:
    return seed(f"sqlite:///{tmp_path}/r.db")


def test_html_tables_reconcile_with_the_database(db: sessionmaker[Session]) -> None:
    page = to_html(daily_report(db, DAY, tz=TZ, campaign=None, cfg=CFG))
    t = parse(page).tables

    [(dialled, connected)] = sql(
        db, f"SELECT count(*), count(a.answered_at) FROM call_attempt a WHERE {IN_DAY}"
    )
    [(conversation,)] = sql(
        db,
        "SELECT count(DISTINCT a.id) FROM call_attempt a JOIN turn t ON t.attempt_id = a.id "
        f"WHERE {IN_DAY} AND t.speaker = 'callee' AND a.answered_at IS NOT NULL",
    )
    [(qualified,)] = sql(
        db, f"SELECT count(*) FROM call_attempt a WHERE {IN_DAY} AND a.outcome = 'qualified'"
    )
    funnel = {k: int(v["count"]) for k, v in t["funnel"].items()}
    assert funnel == {
        "dialled": dialled,
        "connected": connected,
        "conversation": conversation,
        "qualified": qualified,
    }
    assert funnel == {"dialled": 12, "connected": 7, "conversation": 6, "qualified": 2}

    outcomes = dict(
        sql(db, f"SELECT a.outcome, count(*) FROM call_attempt a WHERE {IN_DAY} GROUP BY 1")
    )
    outcomes["none"] = outcomes.pop(None)
    assert {k: int(v["count"]) for k, v in t["outcomes"].items()} == outcomes

    intents = dict(
        sql(
            db,
            "SELECT coalesce(t.intent, 'none'), count(*) FROM turn t "
            f"JOIN call_attempt a ON a.id = t.attempt_id WHERE {IN_DAY} "
            "AND t.speaker = 'callee' AND a.answered_at IS NOT NULL GROUP BY 1",
        )
    )
    assert {k: int(v["count"]) for k, v in t["intents"].items()} == intents
    assert intents["affirm"] == 2 and intents["none"] == 1

    # hour of the dial in Shanghai time: UTC + 8 h (no DST there)
    hours = sql(
        db,
        "SELECT CAST(strftime('%H', a.started_at, '+8 hours') AS INTEGER), count(*), "
        f"count(a.answered_at) FROM call_attempt a WHERE {IN_DAY} GROUP BY 1 ORDER BY 1",
    )
    shown = {
        int(k): (int(v["dials"]), int(v["answered"]), v["answer_rate"])
        for k, v in t["by_hour"].items()
    }
    assert shown == {h: (n, a, f"{a / n * 100:.1f}%") for h, n, a in hours}
    assert set(shown) == {1, 9, 10, 14, 15}

    durations = sql(
        db, f"SELECT a.duration_s FROM call_attempt a WHERE {IN_DAY} AND a.answered_at IS NOT NULL"
    )
    billed_min = sum(math.ceil(d / 60) for (d,) in durations)
    cost = billed_min * CFG.cost_per_minute + dialled * CFG.cost_per_dial
    [(leads_qualified,)] = sql(
        db,
        "SELECT count(DISTINCT a.lead_id) FROM call_attempt a "
        f"WHERE {IN_DAY} AND a.outcome = 'qualified'",
    )
    c = {k: v["value"] for k, v in t["cost"].items()}
    assert float(c["billed_minutes"]) == billed_min == 10  # 2+1+1+1+3+1+1
    assert float(c["cost"]) == pytest.approx(cost) == pytest.approx(3.6)
    assert int(c["qualified"]) == leads_qualified
    assert float(c["cost_per_qualified"]) == pytest.approx(round(cost / leads_qualified, 2))

    per = sql(
        db,
        "SELECT c.name, count(*), count(a.answered_at) FROM call_attempt a "
        f"JOIN campaign c ON c.id = a.campaign_id WHERE {IN_DAY} GROUP BY 1",
    )
    camps = t["campaigns"]
    assert {n: (int(camps[n]["dials"]), int(camps[n]["answered"])) for n, _, _ in per} == {
        n: (d, a) for n, d, a in per
    }
    assert int(camps["total"]["dials"]) == dialled


def test_page_is_self_contained_bilingual_and_free_of_pii(db: sessionmaker[Session]) -> None:
    page = to_html(daily_report(db, DAY, tz=TZ, campaign=None, cfg=CFG))
    p = parse(page)
    assert p.external == [] and "script" not in p.tags and "link" not in p.tags
    assert "url(" not in page and "@import" not in page
    assert page.count("<svg") == 4  # funnel, outcomes, intents, answer rate by hour
    for label in ("转化漏斗", "Funnel", "分时接通率", "Answer rate by hour", "单条线索成本"):
        assert label in page
    assert "双十一" in page  # a campaign name, escaped but unmangled
    for secret in PII:
        assert secret not in page


def test_cli_html(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    seed(url)
    os.environ["DATABASE_URL"] = url
    try:
        rc = main.main(
            ["--config", str(REPO / "config.yaml"), "report", "daily", "--date", "2026-11-21",
             "--format", "html", "--tz", TZ]
        )  # fmt: skip
    finally:
        del os.environ["DATABASE_URL"]
    out, err = capsys.readouterr()
    assert (rc, err) == (0, "")
    assert out.startswith("<!DOCTYPE html>")
    assert {k: v["count"] for k, v in parse(out).tables["funnel"].items()}["dialled"] == "12"


def test_due_only_after_midnight_grace() -> None:
    # 00:10 local on the 22nd (16:10Z on the 21st): not yet; 00:15: the 21st is due
    assert due_day(TZ, 15, datetime(2026, 11, 21, 16, 10, tzinfo=UTC)) is None
    assert due_day(TZ, 15, datetime(2026, 11, 21, 16, 15, tzinfo=UTC)) == DAY
    assert due_day(TZ, 15, datetime(2026, 11, 22, 15, 59, tzinfo=UTC)) == DAY


def test_node_writes_the_day_once_private(db: sessionmaker[Session], tmp_path: Path) -> None:
    folder = tmp_path / "reports"
    now = datetime(2026, 11, 21, 17, 0, tzinfo=UTC)  # 01:00 on the 22nd in Shanghai
    kw: dict[str, Any] = {"tz": TZ, "cfg": CFG, "folder": folder, "after_min": 15, "now": now}
    assert ensure_daily(db, **kw) == DAY
    paths = report_paths(folder, DAY)
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in paths.values())
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for p in paths.values():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    first = {k: p.stat().st_mtime_ns for k, p in paths.items()}
    assert ensure_daily(db, **kw) is None  # a restarted node writes nothing again
    assert {k: p.stat().st_mtime_ns for k, p in paths.items()} == first
    paths["csv"].unlink()
    assert ensure_daily(db, **kw) == DAY  # a missing file is written again
    html = paths["html"].read_text(encoding="utf-8")
    assert re.search(r'data-key="dialled">.*?<td class="n" data-col="count">12<', html)
    assert '"dialled": 12' in paths["json"].read_text(encoding="utf-8")
