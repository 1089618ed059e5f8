"""campaigns.importer: what is stored, what is skipped and reported, what refuses the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from campaigns import importer
from campaigns.importer import ImportReport, LeadImportError, Rejection, import_leads
from models import Campaign, CampaignDncEntry, DncEntry, Lead, init_db


def write(tmp_path: Path, text: str, enc: str = "utf-8", name: str = "leads.csv") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode(enc))
    return p


def imp(db: sessionmaker[Session], p: Path, campaign: str = "c1") -> ImportReport:
    return import_leads(db, campaign, p, script="s.yaml", timezone="Asia/Shanghai")


@pytest.fixture
def db(tmp_path: Path) -> sessionmaker[Session]:
    return init_db(f"sqlite:///{tmp_path}/i.db")


def test_gbk_file_with_chinese_headers(tmp_path: Path, db: sessionmaker[Session]) -> None:
    p = write(tmp_path, "手机号,姓名,行业\n+86 138-0000-0001,张三,餐饮\n13800000002,李四,\n", "gbk")
    rep = imp(db, p)
    assert (rep.accepted, rep.duplicates, rep.rejected, rep.encoding) == (2, 0, [], "gb18030")
    with db() as s:
        lead = s.query(Lead).filter_by(phone="+8613800000001").one()
        assert lead.name == "张三" and lead.extra == {"行业": "餐饮"}
        assert s.query(Lead).filter_by(phone="+8613800000002").one().extra == {}


def test_bad_rows_are_named_and_skipped_while_the_rest_import(
    tmp_path: Path, db: sessionmaker[Session]
) -> None:
    p = write(tmp_path, "phone,name,timezone\n13800000001,a,\nabc,b,\n13800000003,c,Mars/Base\n")
    rep = imp(db, p)
    assert rep.accepted == 1
    assert rep.rejected == [
        Rejection(3, "phone: has letters a phone number cannot have"),
        Rejection(4, "timezone: unknown timezone"),
    ]
    with db() as s:
        assert [x.phone for x in s.query(Lead)] == ["+8613800000001"]


@pytest.mark.parametrize("batch", [1000, 1], ids=["one-batch", "a-batch-a-row"])
def test_duplicates_and_do_not_call_lists(
    tmp_path: Path, db: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    monkeypatch.setattr(importer, "BATCH_ROWS", batch)
    with db.begin() as s:
        s.add(DncEntry(phone="+8613800000009"))
        s.add(DncEntry(phone="13800000008"))  # stored before numbers were E.164
        s.add(Campaign(name="c1", script="s.yaml"))
        s.flush()
        s.add(CampaignDncEntry(campaign_id=1, phone="+8613800000007"))
    body = "13800000001\n138 0000 0001\n13800000009\n13800000008\n13800000007\nxx\n13800000009\n"
    p = write(tmp_path, "phone\n" + body)
    rep = imp(db, p)
    assert (rep.accepted, rep.duplicates) == (1, 1)
    assert rep.rejected == [
        Rejection(4, "phone: on the do-not-call list"),
        Rejection(5, "phone: on the do-not-call list"),
        Rejection(6, "phone: on the do-not-call list"),
        Rejection(7, "phone: has letters a phone number cannot have"),
        Rejection(8, "phone: on the do-not-call list"),  # wherever the batches split
    ]
    rep2 = imp(db, p)
    assert rep2.accepted == 0 and rep2.duplicates == 2  # re-import keeps what is stored
    other = imp(db, write(tmp_path, "phone\n13800000007\n", name="b.csv"), campaign="c2")
    assert other.accepted == 1  # c1's own list does not bind c2


def test_missing_phone_column_stores_nothing(tmp_path: Path, db: sessionmaker[Session]) -> None:
    p = write(tmp_path, "name\nx\n")
    with pytest.raises(LeadImportError, match="no phone column"):
        imp(db, p)
    with db() as s:
        assert s.query(Campaign).count() == 0 and s.query(Lead).count() == 0


def test_a_header_without_rows_is_refused(tmp_path: Path, db: sessionmaker[Session]) -> None:
    with pytest.raises(LeadImportError, match="no lead rows"):
        imp(db, write(tmp_path, "phone,name\n\n\n"))
    with db() as s:
        assert s.query(Campaign).count() == 0


def test_only_bad_rows_store_no_campaign(tmp_path: Path, db: sessionmaker[Session]) -> None:
    rep = imp(db, write(tmp_path, "phone\n1380013800\n"))
    assert (rep.accepted, rep.campaign_id, len(rep.rejected)) == (0, None, 1)
    with db() as s:
        assert s.query(Campaign).count() == 0


def test_a_number_in_other_campaigns_is_imported_and_counted(
    tmp_path: Path, db: sessionmaker[Session]
) -> None:
    imp(db, write(tmp_path, "phone\n13800000001\n13800000002\n"), campaign="spring")
    rep = imp(db, write(tmp_path, "phone\n13800000001\n13800000003\n", name="b.csv"), "summer")
    assert (rep.accepted, rep.duplicates, rep.elsewhere) == (2, 0, 1)


def test_a_different_script_for_an_existing_campaign_is_refused(
    tmp_path: Path, db: sessionmaker[Session]
) -> None:
    imp(db, write(tmp_path, "phone\n13800000001\n"))
    p = write(tmp_path, "phone\n13800000002\n", name="b.csv")
    with pytest.raises(LeadImportError, match="uses the script s.yaml, not other.yaml"):
        import_leads(db, "c1", p, script="other.yaml", timezone="Asia/Shanghai")
    rep = import_leads(
        db, "c1", p, script="other.yaml", timezone="Asia/Shanghai", check_script=False
    )
    assert rep.accepted == 1  # no --script given: the campaign keeps its own
    with db() as s:
        assert s.query(Lead).count() == 2
        assert s.query(Campaign).one().script == "s.yaml"


def test_the_same_script_by_another_path_is_the_same(
    tmp_path: Path, db: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "s.yaml"
    script.write_text("x: 1\n")
    monkeypatch.chdir(tmp_path)
    import_leads(
        db, "c1", write(tmp_path, "phone\n13800000001\n"), script=str(script), timezone="UTC"
    )
    rep = import_leads(
        db,
        "c1",
        write(tmp_path, "phone\n13800000002\n", name="b.csv"),
        script="s.yaml",
        timezone="UTC",
    )
    assert rep.accepted == 1
