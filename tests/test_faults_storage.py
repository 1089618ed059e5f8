"""Issue 9, item 6 (storage): what the database keeps, and how it fails, leaks nothing and
duplicates nothing.

- The SQLite file (and its -wal/-shm) is created 0600, whatever the umask.
- An error raised by the database (a lock held too long) does not carry a lead's phone or name
  in its text, so no traceback prints them.
- A lock held for several seconds is ridden out (busy timeout), not an error.
- One lead per (campaign, phone): two imports at once store every phone once (on SQLite and on
  PostgreSQL), and the migration that adds the constraint refuses a database with duplicates,
  saying how many and in which campaigns, without touching a row.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from campaigns.importer import ImportReport, import_leads
from models import Campaign, Lead, init_db, make_engine, upgrade
from models.db import alembic_config
from tests.pg import pg_server, pg_url  # noqa: F401 - fixtures

PHONE, NAME = "13812345678", "王小明"


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_the_sqlite_database_and_its_wal_are_private(tmp_path: Path, loose_umask: None) -> None:
    path = tmp_path / "sub" / "callbot.db"
    db = init_db(f"sqlite:///{path}")
    with db.begin() as s:
        s.add(Campaign(name="c", script="s.yaml"))
    with db() as s:  # an open reader keeps the -wal and -shm files
        s.scalar(select(Campaign.id))
        for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            assert name.exists(), name
            mode = stat.S_IMODE(name.stat().st_mode)
            assert mode & 0o077 == 0, f"{name.name} is {oct(mode)}"


def test_an_existing_world_readable_database_is_made_private(
    tmp_path: Path, loose_umask: None
) -> None:
    path = tmp_path / "old.db"
    sqlite3.connect(path).close()
    path.chmod(0o644)
    init_db(f"sqlite:///{path}")
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


def _hold_write_lock(path: Path, seconds: float) -> threading.Thread:
    """Another connection holds the database's write lock for `seconds`."""
    locked = threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        locked.set()
        time.sleep(seconds)
        conn.execute("COMMIT")
        conn.close()

    t = threading.Thread(target=hold)
    t.start()
    assert locked.wait(10)
    return t


def test_a_lock_error_does_not_carry_the_leads_phone_or_name(tmp_path: Path) -> None:
    path = tmp_path / "pii.db"
    db = init_db(f"sqlite:///{path}")
    with db.begin() as s:
        s.add(Campaign(name="c", script="s.yaml"))
    holder = _hold_write_lock(path, 1.5)
    try:
        with pytest.raises(OperationalError) as err, db.begin() as s:
            s.connection().exec_driver_sql("PRAGMA busy_timeout=50")  # fail fast here
            s.add(Lead(campaign_id=1, phone=PHONE, name=NAME))
    finally:
        holder.join()
    text = f"{err.value}\n{err.value!r}\n{err.getrepr()}"
    assert "locked" in text
    assert PHONE not in text and NAME not in text


def test_a_lock_held_for_seconds_is_ridden_out(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    db = init_db(f"sqlite:///{path}")
    holder = _hold_write_lock(path, 6.0)
    try:
        with db.begin() as s:  # waits for the lock instead of failing after 5 s
            s.add(Campaign(name="c", script="s.yaml"))
    finally:
        holder.join()
    with db() as s:
        assert s.scalar(select(func.count(Campaign.id))) == 1


# ---- one lead per (campaign, phone) -----------------------------------------------------------


def _csv(tmp_path: Path, name: str, phones: list[str]) -> Path:
    p = tmp_path / name
    p.write_text("phone,name\n" + "".join(f"{x},n{x}\n" for x in phones), encoding="utf-8")
    return p


def _import_twice_at_once(url: str, tmp_path: Path, *, new_campaign: bool) -> None:
    """Two imports of the same 300 phones into campaign "spring" (made by them, or before)."""
    phones = [f"1390000{i:04d}" for i in range(300)]
    files = [_csv(tmp_path, "a.csv", phones), _csv(tmp_path, "b.csv", phones[::-1])]
    dbs = [init_db(url) for _ in files]
    if not new_campaign:
        with dbs[0].begin() as s:
            s.add(Campaign(name="spring", script="s.yaml"))
    gate = threading.Barrier(len(files))
    reports: list[ImportReport | BaseException] = [RuntimeError("not run")] * len(files)

    def run(k: int) -> None:
        gate.wait(timeout=10)
        try:
            reports[k] = import_leads(
                dbs[k], "spring", files[k], script="s.yaml", timezone="Asia/Shanghai"
            )
        except BaseException as exc:  # reported below
            reports[k] = exc

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(files))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    done = [r for r in reports if isinstance(r, ImportReport)]
    assert len(done) == len(files), reports
    with dbs[0]() as s:
        stored = list(s.scalars(select(Lead.phone)))
        assert s.scalar(select(func.count(Campaign.id))) == 1
    assert len(stored) == len(set(stored)) == 300, f"{len(stored) - len(set(stored))} twice"
    assert sum(r.imported for r in done) == 300
    assert sum(r.duplicates for r in done) == 300


@pytest.mark.parametrize("new_campaign", [False, True], ids=["existing", "new"])
def test_two_imports_at_once_store_each_phone_once_on_sqlite(
    tmp_path: Path, new_campaign: bool
) -> None:
    _import_twice_at_once(f"sqlite:///{tmp_path}/imp.db", tmp_path, new_campaign=new_campaign)


@pytest.mark.parametrize("new_campaign", [False, True], ids=["existing", "new"])
def test_two_imports_at_once_store_each_phone_once_on_postgresql(
    tmp_path: Path,
    pg_url: str,  # noqa: F811
    new_campaign: bool,
) -> None:
    _import_twice_at_once(pg_url, tmp_path, new_campaign=new_campaign)


def test_the_database_refuses_a_second_lead_with_the_same_phone(tmp_path: Path) -> None:
    db = init_db(f"sqlite:///{tmp_path}/u.db")
    with db.begin() as s:
        s.add(Campaign(id=1, name="c", script="s.yaml"))
        s.add(Campaign(id=2, name="d", script="s.yaml"))
        s.add(Lead(campaign_id=1, phone=PHONE))
        s.add(Lead(campaign_id=2, phone=PHONE))  # another campaign may hold it
    with pytest.raises(IntegrityError), db.begin() as s:
        s.add(Lead(campaign_id=1, phone=PHONE))


def test_the_unique_migration_refuses_duplicates_and_keeps_every_row(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/dup.db"
    engine = make_engine(url)
    upgrade(engine, "0002")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO campaign (id, name, script, status, timezone, created_at) VALUES "
            "(1, 'a', 's', 'active', 'Asia/Shanghai', '2026-11-20'), "
            "(7, 'b', 's', 'active', 'Asia/Shanghai', '2026-11-20')"
        )
        for i, (cid, phone) in enumerate(
            [(1, PHONE), (1, PHONE), (1, PHONE), (7, "13900000000"), (7, "13900000000")]
        ):
            conn.exec_driver_sql(
                "INSERT INTO lead (id, campaign_id, phone, name, status, attempts, extra, "
                "created_at, updated_at) VALUES "
                f"({i + 1}, {cid}, '{phone}', '{NAME}', 'new', 0, '{{}}', '2026-11-20', "
                "'2026-11-20')"
            )
    with pytest.raises(RuntimeError) as err:
        upgrade(engine)
    message = str(err.value)
    assert "3 duplicate leads" in message and "campaign ids 1, 7" in message
    assert PHONE not in message and NAME not in message
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM lead").scalar() == 5
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0002"
    # once the operator removes the duplicates, the upgrade goes through
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM lead WHERE id IN (2, 3, 5)")
    upgrade(engine)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0002")  # and back down
    upgrade(engine)
