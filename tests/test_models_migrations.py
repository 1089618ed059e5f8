"""Schema migrations: the models and the migrations agree, and an existing database keeps its
rows across the upgrade.

LEGACY_DDL is the schema `Base.metadata.create_all` made before migrations existed (SQLite,
printed from sqlite_master at that commit): deployments have databases made by it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, inspect, text

from models import (
    Base,
    Campaign,
    CampaignDncEntry,
    DncEntry,
    Lead,
    OutboxItem,
    init_db,
    make_engine,
    upgrade,
)
from models.db import BASELINE, alembic_config

LEGACY_DDL = """
CREATE TABLE campaign (
    id INTEGER NOT NULL, name VARCHAR(200) NOT NULL, script VARCHAR(500) NOT NULL,
    status VARCHAR(20) NOT NULL, timezone VARCHAR(64) NOT NULL, created_at DATETIME NOT NULL,
    PRIMARY KEY (id), UNIQUE (name));
CREATE TABLE dnc (
    phone VARCHAR(32) NOT NULL, source VARCHAR(40) NOT NULL, added_at DATETIME NOT NULL,
    PRIMARY KEY (phone));
CREATE TABLE lead (
    id INTEGER NOT NULL, campaign_id INTEGER NOT NULL, phone VARCHAR(32) NOT NULL,
    name VARCHAR(200) NOT NULL, timezone VARCHAR(64), status VARCHAR(20) NOT NULL,
    grade VARCHAR(2), attempts INTEGER NOT NULL, next_attempt_at DATETIME,
    callback_at DATETIME, claimed_by VARCHAR(64), claimed_until DATETIME,
    extra JSON NOT NULL, created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL,
    PRIMARY KEY (id), FOREIGN KEY(campaign_id) REFERENCES campaign (id));
CREATE INDEX ix_lead_due ON lead (campaign_id, status, next_attempt_at);
CREATE TABLE call_attempt (
    id INTEGER NOT NULL, lead_id INTEGER NOT NULL, campaign_id INTEGER NOT NULL,
    node VARCHAR(64) NOT NULL, started_at DATETIME NOT NULL, answered_at DATETIME,
    ended_at DATETIME, disposition VARCHAR(20), sip_code INTEGER, sip_reason VARCHAR(200),
    hangup_by VARCHAR(10), outcome VARCHAR(30), final_state VARCHAR(60), duration_s FLOAT,
    PRIMARY KEY (id), FOREIGN KEY(lead_id) REFERENCES lead (id),
    FOREIGN KEY(campaign_id) REFERENCES campaign (id));
CREATE INDEX ix_call_attempt_campaign_id ON call_attempt (campaign_id);
CREATE INDEX ix_call_attempt_lead_id ON call_attempt (lead_id);
CREATE TABLE outbox (
    id INTEGER NOT NULL, kind VARCHAR(40) NOT NULL, lead_id INTEGER, payload JSON NOT NULL,
    created_at DATETIME NOT NULL, sent_at DATETIME, tries INTEGER NOT NULL, last_error TEXT,
    PRIMARY KEY (id), FOREIGN KEY(lead_id) REFERENCES lead (id));
CREATE TABLE turn (
    id INTEGER NOT NULL, attempt_id INTEGER NOT NULL, seq INTEGER NOT NULL,
    speaker VARCHAR(10) NOT NULL, text TEXT NOT NULL, intent VARCHAR(40), confidence FLOAT,
    latency_ms FLOAT, interrupted BOOLEAN, at DATETIME NOT NULL, detail JSON NOT NULL,
    PRIMARY KEY (id), FOREIGN KEY(attempt_id) REFERENCES call_attempt (id));
CREATE INDEX ix_turn_attempt_id ON turn (attempt_id);
"""

LEGACY_ROWS = """
INSERT INTO campaign VALUES (1, '春季促销', 's.yaml', 'active', 'Asia/Shanghai',
    '2026-11-20 01:00:00.000000');
INSERT INTO lead VALUES (1, 1, '13800000001', '张三', NULL, 'qualified', 'A', 1, NULL, NULL,
    NULL, NULL, '{}', '2026-11-20 01:00:00.000000', '2026-11-20 02:00:00.000000');
INSERT INTO outbox VALUES (1, 'lead.qualified', 1, '{"lead_id": 1}',
    '2026-11-20 02:00:00.000000', '2026-11-20 02:00:01.000000', 1, NULL);
INSERT INTO outbox VALUES (2, 'lead.qualified', 1, '{"lead_id": 1}',
    '2026-11-20 03:00:00.000000', NULL, 3, 'CRM answered HTTP 503');
INSERT INTO outbox VALUES (3, 'lead.qualified', 1, '{"lead_id": 1}',
    '2026-11-20 04:00:00.000000', NULL, 0, NULL);
"""


def _sqlite(path: Path) -> str:
    return f"sqlite:///{path}"


def _legacy_db(url: str, *, rows: bool) -> Engine:
    engine = create_engine(url)
    with engine.begin() as conn:
        for stmt in (LEGACY_DDL + (LEGACY_ROWS if rows else "")).split(";"):
            if stmt.strip():
                conn.exec_driver_sql(stmt)
    return engine


def _differences(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), Base.metadata)


def _schema(engine: Engine) -> dict[str, Any]:
    """Every table's columns, keys and indexes as the database reports them."""
    insp = inspect(engine)
    out: dict[str, Any] = {}
    for table in sorted(set(insp.get_table_names()) - {"alembic_version"}):
        out[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)
            ],
            "pk": insp.get_pk_constraint(table)["constrained_columns"],
            "fks": sorted(
                (tuple(fk["constrained_columns"]), fk["referred_table"])
                for fk in insp.get_foreign_keys(table)
            ),
            "indexes": sorted(
                (ix["name"], tuple(ix["column_names"]), bool(ix["unique"]))
                for ix in insp.get_indexes(table)
            ),
            "unique": sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(table)),
        }
    return out


def _version(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.scalar(text("SELECT version_num FROM alembic_version")))


def _head() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def test_a_fresh_database_at_head_is_exactly_the_models(tmp_path: Path) -> None:
    url = _sqlite(tmp_path / "fresh.db")
    init_db(url)
    engine = make_engine(url)
    assert _differences(engine) == []
    assert _version(engine) == _head()


def test_the_models_without_migrations_would_differ(tmp_path: Path) -> None:
    """The comparison can fail: the baseline alone lacks the outbox's next-try column."""
    engine = make_engine(_sqlite(tmp_path / "base.db"))
    upgrade(engine, BASELINE)
    diffs = _differences(engine)
    assert ("add_column", None, "outbox", OutboxItem.__table__.c.next_try_at) in diffs


def test_the_baseline_is_the_schema_create_all_made(tmp_path: Path) -> None:
    legacy = _legacy_db(_sqlite(tmp_path / "legacy.db"), rows=False)
    baseline = make_engine(_sqlite(tmp_path / "baseline.db"))
    upgrade(baseline, BASELINE)
    assert _schema(baseline) == _schema(legacy)


def test_a_database_made_before_migrations_is_upgraded_with_its_rows(tmp_path: Path) -> None:
    url = _sqlite(tmp_path / "old.db")
    _legacy_db(url, rows=True).dispose()

    db = init_db(url)

    engine = make_engine(url)
    assert _version(engine) == _head() and _differences(engine) == []
    with db() as s:
        camp = s.get(Campaign, 1)
        lead = s.get(Lead, 1)
        assert camp is not None and camp.name == "春季促销"
        assert lead is not None and (lead.name, lead.status, lead.grade) == (
            "张三",
            "qualified",
            "A",
        )
        rows = {r.id: r for r in s.query(OutboxItem)}
    assert rows[1].sent_at is not None and rows[1].next_try_at is None  # delivered
    # waiting after its third failed try (created_at then held the last try's time):
    # the old worker's backoff, 15 s x 2^2 = 60 s after it
    waiting = rows[2].next_try_at
    assert waiting is not None and waiting.replace(tzinfo=UTC) == datetime(
        2026, 11, 20, 3, 1, tzinfo=UTC
    )
    assert rows[3].next_try_at is None  # never tried: due at once


def test_init_db_twice_is_harmless(tmp_path: Path) -> None:
    url = _sqlite(tmp_path / "twice.db")
    db = init_db(url)
    with db.begin() as s:
        s.add(Campaign(name="c", script="s"))
    db = init_db(url)
    with db() as s:
        assert [c.name for c in s.query(Campaign)] == ["c"]
    assert _version(make_engine(url)) == _head()


def test_a_partial_schema_without_version_is_refused(tmp_path: Path) -> None:
    url = _sqlite(tmp_path / "odd.db")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE lead (id INTEGER PRIMARY KEY)")
    with pytest.raises(RuntimeError, match="not a schema this version knows"):
        init_db(url)


def test_downgrade_to_the_baseline_and_back(tmp_path: Path) -> None:
    url = _sqlite(tmp_path / "down.db")
    init_db(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), BASELINE)
    assert _schema(engine) == _schema(_legacy_db(_sqlite(tmp_path / "legacy.db"), rows=False))
    upgrade(engine)
    assert _differences(engine) == []


def test_0004_upgrades_a_database_at_0003_with_its_rows(tmp_path: Path) -> None:
    """Campaigns, leads and the do-not-call list of 0003 survive: `active` becomes `running`,
    the DNC rows stay the global list, the new columns are NULL (not recorded)."""
    url = _sqlite(tmp_path / "at3.db")
    engine = make_engine(url)
    upgrade(engine, "0003")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO campaign (id, name, script, status, timezone, created_at) VALUES "
            "(1, 'a', 's', 'active', 'Asia/Shanghai', '2026-11-20'), "
            "(2, 'b', 's', 'paused', 'Asia/Shanghai', '2026-11-20')"
        )
        conn.exec_driver_sql(
            "INSERT INTO lead (id, campaign_id, phone, name, status, attempts, extra, "
            "created_at, updated_at) VALUES (1, 1, '13800000001', '张三', 'retry', 1, '{}', "
            "'2026-11-20', '2026-11-20')"
        )
        conn.exec_driver_sql(
            "INSERT INTO dnc (phone, source, added_at) VALUES ('13800000009', 'callee', "
            "'2026-11-20')"
        )

    db = init_db(url)

    assert _version(engine) == _head() and _differences(engine) == []
    with db() as s:
        assert {c.name: c.status for c in s.query(Campaign)} == {"a": "running", "b": "paused"}
        lead = s.get(Lead, 1)
        assert lead is not None and (lead.phone, lead.name, lead.status, lead.attempts) == (
            "13800000001",
            "张三",
            "retry",
            1,
        )
        assert (lead.source, lead.consent) == (None, None)
        assert [(d.phone, d.source) for d in s.query(DncEntry)] == [("13800000009", "callee")]
        assert s.query(CampaignDncEntry).count() == 0
    with engine.begin() as conn:  # and back: the old code's "active" again
        command.downgrade(alembic_config(conn), "0003")
        assert conn.exec_driver_sql("SELECT status FROM campaign WHERE id = 1").scalar() == (
            "active"
        )
