"""Issue 9, items 1, 3 and 5: claims are atomic, never starve open leads, and a lost lease is
closed by the retry policy.

- Two (or four) claimers racing, each with its own engine as separate nodes would be, on one
  SQLite file and on a real PostgreSQL (started on 127.0.0.1 by tests/pg.py), never get the
  same lead, and each lead's attempt count equals the times it was claimed.
- Two `main.py run` processes on one SQLite file: the second refuses to start, naming the
  database, and no lead is dialled twice.
- Leads whose calling window is closed, ahead in the queue, do not starve open ones.
- A lead whose lease expired is given back to the retry policy with its lost attempt recorded
  (`worker_lost`, final state `lease_expired`); on its last allowed attempt it is closed
  (`done`), never left `calling`.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from campaigns import store
from campaigns.compliance import CallingWindow
from core.vocab import Disposition
from models import CallAttempt, Campaign, Lead, LeadStatus, init_db
from tests.nodeenv import fake_node_env
from tests.pg import pg_server, pg_url  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parent.parent
NOON_SHANGHAI = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
ALL_DAY = CallingWindow.parse("00:00-24:00")


def _seed(db: sessionmaker[Session], name: str, phones: list[str], tz: str | None = None) -> int:
    with db.begin() as s:
        camp = Campaign(name=name, script="s.yaml", timezone="Asia/Shanghai")
        s.add(camp)
        s.flush()
        s.add_all([Lead(campaign_id=camp.id, phone=p, timezone=tz) for p in phones])
        return camp.id


def _claim(
    db: sessionmaker[Session],
    cid: int,
    *,
    limit: int = 10,
    now: datetime = NOON_SHANGHAI,
    node: str = "n1",
    window: CallingWindow = ALL_DAY,
    max_attempts: int = 3,
) -> list[store.ClaimedLead]:
    return store.claim_due_leads(
        db, cid, limit=limit, now=now, node=node, window=window, max_attempts=max_attempts
    )


def _race(url: str, *, claimers: int, rounds: int, leads: int) -> None:
    """`claimers` threads, one engine each, claim the same campaign at once, `rounds` times."""
    setup = init_db(url)
    nodes = [init_db(url) for _ in range(claimers)]
    shared: list[tuple[int, int]] = []  # (round, lead id) claimed by more than one
    miscounted = unclaimed = 0  # leads whose attempts differ from their claims; left over
    for rnd in range(rounds):
        cid = _seed(setup, f"race{rnd}", [f"1380000{rnd:02d}{i:02d}" for i in range(leads)])
        gate = threading.Barrier(claimers)
        got: list[list[store.ClaimedLead]] = [[] for _ in range(claimers)]

        def claimer(k: int, cid: int = cid, gate: threading.Barrier = gate) -> None:
            gate.wait(timeout=10)
            got[k] = _claim(nodes[k], cid, limit=leads, node=f"node{k}")  # noqa: B023

        threads = [threading.Thread(target=claimer, args=(k,)) for k in range(claimers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        times = Counter(x.lead_id for batch in got for x in batch)
        shared += [(rnd, lead_id) for lead_id, n in times.items() if n > 1]
        with setup() as s:
            rows = s.execute(select(Lead.id, Lead.attempts).where(Lead.campaign_id == cid))
            miscounted += sum(1 for r in rows if r.attempts != times.get(r.id, 0))
        unclaimed += leads - len(times)  # every due lead goes to some claimer
    assert shared == [], f"{len(shared)} leads claimed twice in {rounds} rounds"
    assert miscounted == 0, f"{miscounted} leads' attempts differ from their claims"
    assert unclaimed == 0, f"{unclaimed} due leads claimed by no one"


def test_claimers_racing_on_one_sqlite_file_never_share_a_lead(tmp_path: Path) -> None:
    _race(f"sqlite:///{tmp_path}/race.db", claimers=2, rounds=40, leads=4)


def test_four_claimers_racing_on_sqlite(tmp_path: Path) -> None:
    _race(f"sqlite:///{tmp_path}/race4.db", claimers=4, rounds=15, leads=6)


def test_claimers_racing_on_postgresql_never_share_a_lead(pg_url: str) -> None:  # noqa: F811
    _race(pg_url, claimers=4, rounds=30, leads=6)


# ---- item 3: starvation by timezone ---------------------------------------------------------

# 06:00 UTC: 14:00 in Shanghai (open), 22:00 in Los Angeles (closed) for 09:00-21:00
AFTERNOON_SHANGHAI = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
OFFICE_HOURS = CallingWindow.parse("09:00-21:00")


def test_closed_windows_ahead_in_the_queue_do_not_starve_open_leads(tmp_path: Path) -> None:
    db = init_db(f"sqlite:///{tmp_path}/tz.db")
    cid = _seed(db, "mixed", [f"139000000{i:02d}" for i in range(20)], tz="America/Los_Angeles")
    with db.begin() as s:
        s.add_all(
            [Lead(campaign_id=cid, phone=f"137000000{i:02d}", timezone=None) for i in range(5)]
        )  # the campaign's timezone: Asia/Shanghai
    got = _claim(db, cid, limit=5, now=AFTERNOON_SHANGHAI, window=OFFICE_HOURS)
    assert sorted(x.phone for x in got) == [f"137000000{i:02d}" for i in range(5)]
    assert all(x.timezone == "Asia/Shanghai" for x in got)
    # and the Los Angeles leads come when their window opens (09:00 there is 17:00 UTC)
    la_morning = datetime(2026, 11, 23, 17, 30, tzinfo=UTC)
    later = _claim(db, cid, limit=50, now=la_morning, window=OFFICE_HOURS)
    assert len(later) == 20 and {x.timezone for x in later} == {"America/Los_Angeles"}


def test_mixed_timezones_on_postgresql(pg_url: str) -> None:  # noqa: F811
    db = init_db(pg_url)
    cid = _seed(db, "mixed", [f"139000000{i:02d}" for i in range(20)], tz="America/Los_Angeles")
    with db.begin() as s:
        s.add_all(
            [
                Lead(campaign_id=cid, phone=f"137000000{i:02d}", timezone="Asia/Tokyo")
                for i in range(3)
            ]
        )
    got = _claim(db, cid, limit=3, now=AFTERNOON_SHANGHAI, window=OFFICE_HOURS)
    assert sorted(x.timezone for x in got) == ["Asia/Tokyo"] * 3


# ---- item 5 (issue item 3): a lost lease ends in the retry policy -------------------------


def _attempt_rows(db: sessionmaker[Session], lead_id: int) -> list[CallAttempt]:
    with db() as s:
        return list(s.scalars(select(CallAttempt).where(CallAttempt.lead_id == lead_id)))


def test_a_lease_lost_on_the_last_attempt_closes_the_lead(tmp_path: Path) -> None:
    db = init_db(f"sqlite:///{tmp_path}/lease.db")
    cid = _seed(db, "c", ["13800000001"])
    with db.begin() as s:
        s.scalars(select(Lead)).one().attempts = 2  # two tries already made
    (lead,) = _claim(db, cid, max_attempts=3)  # the last allowed attempt; the node then dies
    assert lead.attempt_no == 3
    expired = NOON_SHANGHAI + store.LEASE + timedelta(seconds=1)
    assert _claim(db, cid, now=expired, max_attempts=3) == []
    with db() as s:
        row = s.get(Lead, lead.lead_id)
        assert row is not None
        assert (row.status, row.claimed_by, row.claimed_until) == (LeadStatus.DONE, None, None)
    (lost,) = _attempt_rows(db, lead.lead_id)
    assert (lost.disposition, lost.final_state, lost.node) == (
        Disposition.WORKER_LOST,
        "lease_expired",
        "n1",
    )


def test_a_lost_lease_in_a_paused_campaign_is_settled_by_the_node_sweep(tmp_path: Path) -> None:
    """Nobody claims a paused campaign, so its expired leases are settled by the sweep the
    node runs every poll (`settle_expired_leases`), not only by the next claim."""
    db = init_db(f"sqlite:///{tmp_path}/paused.db")
    cid = _seed(db, "c", ["13800000001"])
    with db.begin() as s:
        s.scalars(select(Lead)).one().attempts = 2
    (lead,) = _claim(db, cid, max_attempts=3)
    with db.begin() as s:
        camp = s.get(Campaign, cid)
        assert camp is not None
        camp.status = "paused"
    expired = NOON_SHANGHAI + store.LEASE + timedelta(seconds=1)
    store.settle_expired_leases(db, now=NOON_SHANGHAI, max_attempts=3)  # not yet expired
    with db() as s:
        assert s.get(Lead, lead.lead_id).status == LeadStatus.CALLING  # type: ignore[union-attr]
    store.settle_expired_leases(db, now=expired, max_attempts=3)
    with db() as s:
        assert s.get(Lead, lead.lead_id).status == LeadStatus.DONE  # type: ignore[union-attr]
    (lost,) = _attempt_rows(db, lead.lead_id)
    assert (lost.campaign_id, lost.final_state) == (cid, "lease_expired")


def test_a_lease_lost_before_the_last_attempt_is_retried_and_counted(tmp_path: Path) -> None:
    db = init_db(f"sqlite:///{tmp_path}/lease2.db")
    cid = _seed(db, "c", ["13800000001"])
    (first,) = _claim(db, cid, max_attempts=3)
    expired = NOON_SHANGHAI + store.LEASE + timedelta(seconds=1)
    (again,) = _claim(db, cid, now=expired, node="n2", max_attempts=3)
    assert again.lead_id == first.lead_id and again.attempt_no == 2
    rows = _attempt_rows(db, first.lead_id)
    assert [(r.disposition, r.node) for r in rows] == [(Disposition.WORKER_LOST, "n1")]
    # the retry is this node's; releasing it restores a due lead, never a lease-less `calling`
    assert store.release_claim(db, again, node="n2")
    with db() as s:
        row = s.get(Lead, first.lead_id)
        assert row is not None and row.status == LeadStatus.RETRY and row.attempts == 1


# ---- item 1: two node processes on one SQLite file -------------------------------------------


def _node_env(tmp_path: Path, db_file: Path) -> dict[str, str]:
    return fake_node_env(tmp_path, db_file, inherit=True, CALLBOT__CRM__ENGINE="none", MQTT_URL="")


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    _, err = proc.communicate(timeout=20)
    return proc.returncode, err


def test_two_nodes_on_one_sqlite_file_do_not_both_dial(tmp_path: Path) -> None:
    db_file = tmp_path / "node.db"
    db = init_db(f"sqlite:///{db_file}")
    _seed(db, "spring", [f"1380000{i:04d}" for i in range(30)])
    with db.begin() as s:
        s.scalars(select(Campaign)).one().script = "callflow/scripts/saas_demo.yaml"
    env = _node_env(tmp_path, db_file)
    cmd = [sys.executable, "main.py", "--config", "config.yaml", "run"]
    kw = {"cwd": ROOT, "env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE}
    nodes = [subprocess.Popen(cmd, text=True, **kw) for _ in range(2)]  # type: ignore[call-overload]

    def attempted() -> int:
        with db() as s:
            return int(s.scalar(select(func.count(func.distinct(CallAttempt.lead_id)))) or 0)

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and attempted() < 30:
        time.sleep(0.2)
    time.sleep(1.0)  # a second node, had it started, would be dialling by now
    results = [_stop(p) for p in nodes]

    with db() as s:
        per_lead = Counter(s.scalars(select(CallAttempt.lead_id)))
    assert len(per_lead) == 30, f"only {len(per_lead)} of 30 leads dialled: {results}"
    twice = sum(1 for n in per_lead.values() if n > 1)
    assert twice == 0, f"{twice} of 30 leads dialled twice"
    refused = [err for rc, err in results if rc != 0]
    assert len(refused) == 1, f"exactly one node must refuse to start: {results}"
    lines = refused[0].strip().splitlines()
    assert len(lines) == 1, f"not a one-line error: {refused[0]}"
    assert "another node" in lines[0] and str(db_file) in lines[0]
