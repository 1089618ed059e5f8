"""Issue 15: what several nodes do at once on one PostgreSQL, each node its own engine (as
separate processes would have), racing through a barrier (tests/pg.py starts the server on
127.0.0.1).

- The per-number lock: two nodes claiming the same number in two campaigns at the same moment
  respect its frequency cap across campaigns (one call a day: one claim, never two).
- The CRM outbox: two nodes delivering at once never send the same row; every row goes once.
- Lease renewal from the keeper's own engine: a claim renewed, a claim settled by another node
  found lost, and an old claim of a lead its node claimed again never stored.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from campaigns import store
from campaigns.compliance import CallingWindow, FrequencyCap
from campaigns.leases import LeaseKeeper
from core.vocab import Disposition
from crm_sync.fake import FakeCrm
from crm_sync.outbox import deliver_pending
from models import Campaign, Lead, LeadStatus, OutboxItem, OutboxKind, init_db
from tests.pg import pg_bindir, pg_server, pg_url  # noqa: F401 - fixtures

NOON_SHANGHAI = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
ALL_DAY = CallingWindow.parse("00:00-24:00")
ONE_A_DAY = FrequencyCap(per_day=1, per_week=0)


@pytest.fixture
def pg(request: pytest.FixtureRequest) -> str:
    """A fresh database; fails (never skips) without PostgreSQL: CI installs it."""
    assert pg_bindir() is not None, "PostgreSQL is not installed (scripts/setup.sh installs it)"
    url: str = request.getfixturevalue("pg_url")
    return url


def _campaign(db: sessionmaker[Session], name: str, phones: list[str]) -> int:
    with db.begin() as s:
        camp = Campaign(name=name, script="s.yaml", timezone="Asia/Shanghai", status="running")
        s.add(camp)
        s.flush()
        s.add_all(Lead(campaign_id=camp.id, phone=p) for p in phones)
        return camp.id


def _at_once(jobs: list[Callable[[], Any]]) -> list[Any]:
    """Run `jobs` in threads released together by a barrier; their results in order."""
    gate = threading.Barrier(len(jobs))
    out: list[Any] = [None] * len(jobs)

    def run(k: int) -> None:
        gate.wait(timeout=10)
        out[k] = jobs[k]()

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return out


def _claim(db: sessionmaker[Session], cid: int, node: str, **kw: Any) -> list[store.ClaimedLead]:
    return store.claim_due_leads(
        db, cid, limit=50, now=NOON_SHANGHAI, node=node, window=ALL_DAY, max_attempts=3, **kw
    )


def test_two_nodes_claiming_one_number_in_two_campaigns_respect_its_cap(pg: str) -> None:
    setup = init_db(pg)
    node_a, node_b = init_db(pg), init_db(pg)
    over_cap: list[str] = []
    for rnd in range(12):
        phones = [f"13900{rnd:02d}{i:04d}" for i in range(8)]
        a, b = _campaign(setup, f"a{rnd}", phones), _campaign(setup, f"b{rnd}", phones)
        got = _at_once(
            [
                lambda a=a: _claim(node_a, a, "na", caps=ONE_A_DAY),  # type: ignore[misc]
                lambda b=b: _claim(node_b, b, "nb", caps=ONE_A_DAY),  # type: ignore[misc]
            ]
        )
        per_phone = Counter(lead.phone for batch in got for lead in batch)
        over_cap += [p for p, n in per_phone.items() if n > 1]
        assert set(per_phone) == set(phones), "every number claimed once, in one campaign"
    assert over_cap == [], f"{len(over_cap)} numbers claimed in two campaigns at once"


def _qualified_rows(db: sessionmaker[Session], n: int) -> list[int]:
    cid = _campaign(db, "crm", [f"1370000{i:04d}" for i in range(n)])
    with db.begin() as s:
        leads = list(s.scalars(select(Lead).where(Lead.campaign_id == cid)))
        rows = []
        for lead in leads:
            lead.status = LeadStatus.QUALIFIED
            row = OutboxItem(
                kind=OutboxKind.LEAD_QUALIFIED,
                lead_id=lead.id,
                payload={"lead_id": lead.id, "attempt_id": 1, "grade": "A"},
            )
            s.add(row)
            rows.append(row)
        s.flush()
        return [row.id for row in rows]


class _SlowCrm(FakeCrm):
    """Takes a moment per delivery, so the two nodes' passes overlap."""

    async def deliver(self, kind: str, payload: dict[str, Any]) -> None:
        await asyncio.sleep(0.005)
        await super().deliver(kind, payload)


def test_two_nodes_delivering_the_outbox_at_once_never_send_a_row_twice(pg: str) -> None:
    ids = _qualified_rows(init_db(pg), 60)
    nodes = {name: (init_db(pg), _SlowCrm()) for name in ("na", "nb")}

    def drain(name: str) -> None:
        db, crm = nodes[name]
        for _ in range(40):
            sent, failed = asyncio.run(
                deliver_pending(db, crm, node=name, limit=4, lease=timedelta(minutes=1))
            )
            assert failed == 0
            if not sent:
                with db() as s:
                    if s.scalar(select(OutboxItem.id).where(OutboxItem.sent_at.is_(None))) is None:
                        return

    _at_once([lambda: drain("na"), lambda: drain("nb")])
    sent = Counter(p["outbox_id"] for _, crm in nodes.values() for _, p in crm.delivered)
    assert sorted(sent) == sorted(ids), "every row delivered"
    assert set(sent.values()) == {1}, [k for k, v in sent.items() if v > 1]
    assert all(crm.delivered for _, crm in nodes.values()), "both nodes delivered some"


def test_the_keeper_renews_its_claims_and_reports_the_lost(pg: str) -> None:
    db = init_db(pg)
    cid = _campaign(db, "k", ["13600000001", "13600000002"])
    kept, taken = _claim(db, cid, "na", lease=timedelta(seconds=30))
    later = datetime.now(UTC) + timedelta(minutes=5)  # the renewal's clock
    keeper = LeaseKeeper.beside(db, node="na", lease=timedelta(seconds=30), now=lambda: later)
    lost: list[int] = []
    keeper.hold([kept, taken], lost.append)
    with db.begin() as s:  # another node settled `taken` as lost and claimed it again
        row = s.get(Lead, taken.lead_id)
        assert row is not None
        row.claimed_by, row.claimed_at = "nb", NOON_SHANGHAI + timedelta(seconds=1)
    assert keeper.renew_now() == {taken.lead_id}
    assert lost == [taken.lead_id] and keeper.held == 1
    with db() as s:
        until = s.scalar(select(Lead.claimed_until).where(Lead.id == kept.lead_id))
    assert until == later + timedelta(seconds=30)
    asyncio.run(keeper.aclose())


def test_an_old_claim_of_a_lead_its_node_claimed_again_is_never_stored(pg: str) -> None:
    db = init_db(pg)
    cid = _campaign(db, "aba", ["13500000001"])
    (old,) = _claim(db, cid, "na", lease=timedelta(seconds=1))
    store.settle_expired_leases(db, now=NOON_SHANGHAI + timedelta(seconds=5), max_attempts=3)
    (new,) = store.claim_due_leads(
        db, cid, limit=1, now=NOON_SHANGHAI + timedelta(seconds=6), node="na",
        window=ALL_DAY, max_attempts=3,
    )  # fmt: skip
    assert new.lead_id == old.lead_id and new.claimed_at != old.claimed_at
    assert store.renew_leases(
        db, {old.lead_id: old.claimed_at}, node="na", until=NOON_SHANGHAI + timedelta(minutes=1)
    ) == {old.lead_id}
    rec = store.AttemptRecord(
        lead=old,
        node="na",
        started_at=NOON_SHANGHAI,
        answered_at=None,
        ended_at=NOON_SHANGHAI + timedelta(seconds=2),
        disposition=Disposition.NO_ANSWER,
        sip_code=480,
        sip_reason=None,
        hangup_by=None,
        outcome=None,
        grade=None,
        final_state=None,
        slots={},
        turns=[],
    )
    with pytest.raises(store.ClaimLost):
        store.record_attempt(db, rec, max_attempts=3, default_callback=NOON_SHANGHAI)
    assert not store.release_claim(db, old, node="na")
    with db() as s:
        lead = s.get(Lead, new.lead_id)
        assert lead is not None
        assert (lead.status, lead.claimed_by, lead.attempts) == (LeadStatus.CALLING, "na", 2)
