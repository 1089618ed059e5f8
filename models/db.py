"""Engine, schema upgrade and session factory for the configured SQLAlchemy URL.

The schema changes only by migration (`models/migrations/`, Alembic): `init_db` upgrades the
database to the newest revision before handing out sessions, so a deployment keeps its rows
across upgrades. A database made before migrations existed (by `create_all`: the tables but
no `alembic_version`) is recognised, stamped at the baseline revision, then upgraded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BASELINE = "0001"  # the schema `create_all` made before migrations existed
BASELINE_TABLES = frozenset({"campaign", "lead", "call_attempt", "turn", "dnc", "outbox"})
_PG_LOCK_KEY = 0x63616C6C  # any constant: serialises nodes upgrading one PostgreSQL database


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()

    return engine


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic settings without an alembic.ini: the scripts here, the given connection."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _made_before_migrations(conn: Connection) -> bool:
    """True for a database `create_all` made: our tables, no alembic_version."""
    names = set(inspect(conn).get_table_names())
    if "alembic_version" in names or not names & BASELINE_TABLES:
        return False
    missing = BASELINE_TABLES - names
    if missing:
        raise RuntimeError(
            f"the database has some of callbot's tables but not {sorted(missing)} and no "
            "alembic_version: not a schema this version knows how to upgrade"
        )
    return True


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database to `revision` (stamping a pre-migration database first)."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        cfg = alembic_config(conn)
        if _made_before_migrations(conn):
            command.stamp(cfg, BASELINE)
        command.upgrade(cfg, revision)


def init_db(url: str) -> sessionmaker[Session]:
    """Upgrade the schema to the newest revision and return a session factory."""
    engine = make_engine(url)
    upgrade(engine)
    return sessionmaker(engine, expire_on_commit=False)
