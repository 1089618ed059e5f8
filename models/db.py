"""Engine, schema upgrade and session factory for the configured SQLAlchemy URL.

The schema changes only by migration (`models/migrations/`, Alembic): `init_db` upgrades the
database to the newest revision before handing out sessions, so a deployment keeps its rows
across upgrades. A database made before migrations existed (by `create_all`: the tables but
no `alembic_version`) is recognised, stamped at the baseline revision, then upgraded.

SQLite serves one node: `single_writer` holds an exclusive lock on `<database>.lock` for the
node's life, so a second node on the same file refuses to start (`DatabaseInUseError`) instead
of dialling the same leads. `write_transaction` takes SQLite's write lock at the start of a
transaction that reads before it writes (BEGIN IMMEDIATE), so what it read stays true until it
commits. The database file holds phones and transcripts: it is created (or tightened to) 0600,
and errors never echo a statement's parameters (`hide_parameters`).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import AsyncExitStack, ExitStack, contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BASELINE = "0001"  # the schema `create_all` made before migrations existed
BASELINE_TABLES = frozenset({"campaign", "lead", "call_attempt", "turn", "dnc", "outbox"})
_PG_LOCK_KEY = 0x63616C6C  # any constant: serialises nodes upgrading one PostgreSQL database
BUSY_TIMEOUT_MS = 15_000  # SQLite: wait this long for another writer's lock before failing
PRIVATE = 0o600


class DatabaseInUseError(RuntimeError):
    """Another node holds this SQLite database (one node per SQLite file)."""


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for an in-memory database or another database."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or u.database in (None, "", ":memory:"):
        return None
    if u.database.startswith("file:"):
        return None  # a URI filename: left as given
    return Path(u.database)


def _private_file(path: Path) -> None:
    """Create `path` 0600 if missing; tighten it (and its -wal/-shm) if we own it.

    An existing database file is never opened here: closing any descriptor of a file drops
    every POSIX lock this process holds on it, so opening one beside live SQLite connections
    would silently release their locks (stale reads, or corruption under concurrent writers).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE))
        except FileExistsError:  # created meanwhile by another process: leave it be
            pass
    for f in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            st = f.stat()
            if st.st_mode & 0o077 and st.st_uid == os.geteuid():
                f.chmod(PRIVATE)
        except FileNotFoundError:
            pass


def make_engine(url: str) -> Engine:
    path = sqlite_path(url)
    if path is not None:
        _private_file(path)  # SQLite gives its -wal and -shm the database file's mode
    engine = create_engine(url, hide_parameters=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    return engine


def write_transaction(s: Session) -> None:
    """Make the session's transaction a writer from its start; call before its first query.

    On SQLite this is BEGIN IMMEDIATE: the write lock is taken (waiting up to the busy
    timeout) before anything is read, so two transactions that read-then-write run one after
    the other instead of both acting on what they read. (pysqlite, left to itself, begins a
    deferred transaction only at the first write.) Other databases lock rows instead (SELECT
    ... FOR UPDATE): nothing to do.
    """
    conn = s.connection()
    if conn.dialect.name != "sqlite":
        return
    dbapi = conn.connection.dbapi_connection
    if dbapi is not None and dbapi.in_transaction:
        raise RuntimeError("write_transaction must come before the transaction's first write")
    conn.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def single_writer(url: str) -> Iterator[None]:
    """Hold the node's exclusive lock on a SQLite database (nothing for other databases).

    The lock is an flock on `<database>.lock`, held until the block ends or the process dies,
    so a crashed node never leaves it behind. A second holder raises DatabaseInUseError.
    """
    path = sqlite_path(url)
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = Path(f"{path}.lock")
    fd = os.open(lock, os.O_CREAT | os.O_RDWR, PRIVATE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DatabaseInUseError(
                f"another node is already running on the SQLite database {path} (it holds "
                f"{lock}): run one node per SQLite file, or use PostgreSQL for several"
            ) from None
        yield
    finally:
        os.close(fd)  # releases the lock


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


def init_db(
    url: str, *, hold_lock: ExitStack | AsyncExitStack | None = None
) -> sessionmaker[Session]:
    """Upgrade the schema to the newest revision and return a session factory.

    `hold_lock`: a node's exit stack; on SQLite the node's `single_writer` lock is taken
    first and held until that stack closes (a second node raises DatabaseInUseError).
    """
    if hold_lock is not None:
        hold_lock.enter_context(single_writer(url))
    engine = make_engine(url)
    upgrade(engine)
    return sessionmaker(engine, expire_on_commit=False)
