"""The lead import on PostgreSQL: the same report and rows as on SQLite, batch after batch."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from campaigns import importer
from campaigns.importer import Rejection, import_leads
from models import Campaign, CampaignDncEntry, DncEntry, Lead, init_db
from tests.pg import pg_server, pg_url  # noqa: F401 - fixtures

TEXT = (
    "手机号码,客户名称,来源,同意,备注\n"
    "13800000001,张三,展会,是,=1+1\n"
    "13800000002,李四,,否,\n"
    "138 0000 0001,张三,,,\n"  # a duplicate in the same batch
    "13800000003,王五,,,\n"
    "13800000004,赵六,,,\n"  # on the campaign's do-not-call list
    "13800000005,钱七,,,\n"  # on the global one
    "13800000002,李四,,,\n"  # a duplicate in a later batch
    "1380000000x,孙八,,,\n"
    "010-65529988,周九,,,\n"
)


def _run(url: str, tmp_path: Path) -> tuple[importer.ImportReport, dict[str, Lead]]:
    db: sessionmaker[Session] = init_db(url)
    with db.begin() as s:
        s.add(DncEntry(phone="+8613800000005"))
        s.add(Campaign(name="c1", script="s.yaml"))
        s.flush()
        s.add(CampaignDncEntry(campaign_id=s.query(Campaign.id).scalar(), phone="+8613800000004"))
    p = tmp_path / "a.csv"
    p.write_bytes(TEXT.encode("gbk"))
    rep = import_leads(db, "c1", p, script="s.yaml", timezone="Asia/Shanghai")
    with db() as s:
        return rep, {x.phone: x for x in s.query(Lead)}


def test_postgresql_imports_as_sqlite_does(
    tmp_path: Path,
    pg_url: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(importer, "BATCH_ROWS", 3)
    pg_rep, pg_leads = _run(pg_url, tmp_path)
    lite_rep, lite_leads = _run(f"sqlite:///{tmp_path}/i.db", tmp_path)
    assert pg_rep.as_json() == lite_rep.as_json()
    assert (pg_rep.accepted, pg_rep.duplicates) == (4, 2)
    assert pg_rep.rejected == [
        Rejection(6, "手机号码: on the do-not-call list"),
        Rejection(7, "手机号码: on the do-not-call list"),
        Rejection(9, "手机号码: has letters a phone number cannot have"),
    ]
    assert sorted(pg_leads) == sorted(lite_leads)
    first = pg_leads["+8613800000001"]
    assert (first.name, first.source, first.consent, first.extra) == (
        "张三",
        "展会",
        True,
        {"备注": "'=1+1"},
    )
    assert pg_leads["+8613800000002"].consent is False
