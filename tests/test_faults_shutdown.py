"""Issue 9, item 3: SIGTERM or Ctrl-C mid-call stops claiming, lets the live calls finish (up
to ``campaign.shutdown_grace_s``, then hangs them up), records every outcome and exits 0.

A real ``python main.py run`` process over the fake engines (as tests/test_node.py composes
them) on a real SQLite file; its calls are slow because the callee never speaks and the
no-input timeout is long.
"""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from app.config import load_config
from models import Campaign, Lead, LeadStatus, init_db
from tests.nodeenv import start_node
from tests.test_node import node_env

ROOT = Path(__file__).resolve().parent.parent
PHONES = ["13800000001", "13800000002", "13800000003"]


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Read the node's database with plain sqlite3 (``init_db`` would upgrade it again)."""
    con = sqlite3.connect(f"file:{url.removeprefix('sqlite:///')}?mode=ro", uri=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def leads(url: str) -> list[tuple[str, int]]:
    """(status, attempts) of each lead."""
    return [(row[0], row[1]) for row in query(url, "SELECT status, attempts FROM lead ORDER BY id")]


def attempts(url: str) -> list[tuple[str | None, str]]:
    """(ended_at, disposition) of each stored attempt."""
    return [
        (row[0], row[1]) for row in query(url, "SELECT ended_at, disposition FROM call_attempt")
    ]


def wait(cond: object, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize(
    ("sig", "no_input_s", "grace_s"),
    [
        (signal.SIGTERM, "1.0", "30"),  # the live calls end by themselves within the grace
        (signal.SIGINT, "1.0", "30"),  # Ctrl-C does the same
        (signal.SIGTERM, "60", "0.5"),  # calls that outlast the grace are hung up, then recorded
    ],
)
def test_a_signal_mid_call_records_every_live_call_and_exits_0(
    tmp_path: Path, sig: signal.Signals, no_input_s: str, grace_s: str
) -> None:
    env = node_env(tmp_path, "http://127.0.0.1:9/unused") | {
        "CALLBOT__CRM__ENGINE": "none",
        "CALLBOT__CALLFLOW__NO_INPUT_TIMEOUT_S": no_input_s,
        "CALLBOT__CAMPAIGN__SHUTDOWN_GRACE_S": grace_s,
    }
    url = env["DATABASE_URL"]
    db = init_db(url)
    with db.begin() as s:
        camp = Campaign(name="spring", script=load_config(None).callflow.script)
        s.add(camp)
        s.flush()
        s.add_all([Lead(campaign_id=camp.id, phone=p) for p in PHONES])
    proc = start_node(env)
    try:
        claimed = wait(lambda: all(status == LeadStatus.CALLING for status, _ in leads(url)), 30)
        died = proc.poll() is not None and proc.stderr is not None
        assert claimed, proc.stderr.read() if died and proc.stderr else "no lead was claimed"
        assert attempts(url) == []  # every call is live
        time.sleep(0.3)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    stored = attempts(url)
    assert len(stored) == len(PHONES), err
    assert all(ended is not None and disposition == "completed" for ended, disposition in stored)
    assert [status for status, _ in leads(url)].count(LeadStatus.CALLING) == 0
    assert all(n == 1 for _, n in leads(url))
