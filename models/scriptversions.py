"""Script versions: every content of a script file a campaign has run, by name and hash.

A campaign pins the version it dials with (``campaign.script_version_id``); an edited file is
a new version (the next number for its name) once a node loads it, and new calls use it while
calls in progress finish on theirs. The YAML text is kept, so a version can be read back
(``main.py script versions NAME``) and compared after the file has changed again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .tables import Base, utcnow


class ScriptVersion(Base):
    __tablename__ = "script_version"
    __table_args__ = (
        Index("uq_script_version_hash", "name", "sha256", unique=True),
        Index("uq_script_version_number", "name", "version", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))  # the script's ``name:``
    sha256: Mapped[str] = mapped_column(String(64))  # of the file's bytes
    version: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per name, in order of first use
    path: Mapped[str] = mapped_column(String(500))  # the file it was read from
    text: Mapped[str] = mapped_column(Text)  # the YAML as loaded
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
