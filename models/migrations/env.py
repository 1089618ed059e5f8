"""Alembic environment for the system of record (run by `models.db.upgrade`, or the CLI).

`models.db.upgrade` hands over an open connection in `config.attributes["connection"]`. The
Alembic CLI needs a small ini file (none is kept in the repository)::

    [alembic]
    script_location = models/migrations
    prepend_sys_path = .
    file_template = rev_%%(rev)s_%%(slug)s

then `alembic -c that.ini -x url=sqlite:///var/callbot.db current` (or `upgrade head`), and
for a new revision after changing models/tables.py:
`alembic -c that.ini -x url=sqlite:///var/new.db revision --autogenerate --rev-id 0003 -m ...`
(on a database upgraded to head), then read and fix what it wrote. Batch mode lets SQLite
alter tables by copying them.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from models.tables import Base


def _migrate(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def _run() -> None:
    if context.is_offline_mode():
        raise RuntimeError("offline (--sql) migrations are not supported: give a database")
    given = context.config.attributes.get("connection")
    if given is not None:
        _migrate(given)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("no database: pass -x url=... or set sqlalchemy.url")
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            _migrate(connection)
            connection.commit()
    finally:
        engine.dispose()


_run()
