"""A real PostgreSQL server for tests: initdb into a temporary folder, started on 127.0.0.1.

Use it from a test module with ``from tests.pg import pg_server, pg_url  # noqa: F401``:

- ``pg_server`` (session scope) runs Debian's ``initdb`` and ``pg_ctl`` (from
  /usr/lib/postgresql/*/bin, the newest version; as the ``postgres`` user through ``runuser``
  when the tests run as root, since PostgreSQL refuses to run as root), listening on
  127.0.0.1 and a free port only, and stops it (``pg_ctl stop -m immediate``) at the end of
  the session. It yields the server's admin URL (database ``postgres``).
- ``pg_url`` (function scope) creates a fresh, empty database on that server for one test and
  yields its ``postgresql+psycopg://`` URL.

Tests skip, saying why, only when no PostgreSQL server binaries are installed
(``scripts/setup.sh`` installs Debian's ``postgresql`` package).
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_DB_NAMES = itertools.count(1)


def pg_bindir() -> Path | None:
    """The newest installed PostgreSQL server's bin folder, or None."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(argv: list[str]) -> list[str]:
    """`argv` run as the postgres user when we are root (the server refuses root)."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _run(argv: list[str], timeout: float = 60) -> None:
    done = subprocess.run(
        _as_postgres(argv), capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{Path(argv[0]).name} failed ({done.returncode}): {done.stderr}")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A PostgreSQL server on 127.0.0.1 for the test session; yields its admin URL."""
    bindir = pg_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (apt postgresql)")
    root = Path(tempfile.mkdtemp(prefix="callbot-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", _free_port()
    _run(
        [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]
        + ["-E", "UTF8", "--locale=C", "--no-sync"]
    )
    opts = f"-h 127.0.0.1 -p {port} -k {root} -F -c fsync=off -c full_page_writes=off"
    _run(
        [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-o", opts]
        + ["-w", "-t", "60", "start"],
        timeout=90,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        try:
            _run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
        finally:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A new, empty database on the session's server; yields its SQLAlchemy URL."""
    import psycopg

    name = f"t{os.getpid()}_{next(_DB_NAMES)}"
    admin = pg_server.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield pg_server.rsplit("/", 1)[0] + f"/{name}"
