from __future__ import annotations

from pathlib import Path

import pytest

from campaigns.importer import LeadImportError, import_leads
from models import DncEntry, Lead, init_db


def write(tmp_path: Path, text: str, enc: str = "utf-8") -> Path:
    p = tmp_path / "leads.csv"
    p.write_bytes(text.encode(enc))
    return p


def test_gbk_file_with_chinese_headers(tmp_path: Path) -> None:
    db = init_db(f"sqlite:///{tmp_path}/i.db")
    p = write(tmp_path, "手机号,姓名,行业\n+86 138-0000-0001,张三,餐饮\n13800000002,李四,\n", "gbk")
    rep = import_leads(db, "c1", p, script="s.yaml", timezone="Asia/Shanghai")
    assert rep.imported == 2
    with db() as s:
        lead = s.query(Lead).filter_by(phone="13800000001").one()
        assert lead.name == "张三" and lead.extra == {"行业": "餐饮"}


def test_bad_rows_are_named_and_nothing_is_stored(tmp_path: Path) -> None:
    db = init_db(f"sqlite:///{tmp_path}/i.db")
    p = write(tmp_path, "phone,name,timezone\n13800000001,a,\nabc,b,\n13800000003,c,Mars/Base\n")
    with pytest.raises(LeadImportError) as err:
        import_leads(db, "c1", p, script="s.yaml", timezone="Asia/Shanghai")
    assert f"{p}:3:phone: not a phone number" in err.value.errors
    assert f"{p}:4:timezone: unknown timezone 'Mars/Base'" in err.value.errors
    with db() as s:
        assert s.query(Lead).count() == 0


def test_skip_invalid_duplicates_and_dnc(tmp_path: Path) -> None:
    db = init_db(f"sqlite:///{tmp_path}/i.db")
    with db.begin() as s:
        s.add(DncEntry(phone="13800000009"))
    p = write(tmp_path, "phone\n13800000001\n13800000001\n13800000009\nxx\n")
    rep = import_leads(db, "c1", p, script="s.yaml", timezone="Asia/Shanghai", skip_invalid=True)
    assert (rep.imported, rep.duplicates, rep.on_dnc, len(rep.skipped_invalid)) == (1, 1, 1, 1)
    rep2 = import_leads(db, "c1", p, script="s.yaml", timezone="Asia/Shanghai", skip_invalid=True)
    assert rep2.imported == 0 and rep2.duplicates == 2  # re-import keeps what is stored


def test_missing_phone_column(tmp_path: Path) -> None:
    db = init_db(f"sqlite:///{tmp_path}/i.db")
    p = write(tmp_path, "name\nx\n")
    with pytest.raises(LeadImportError, match="no phone column"):
        import_leads(db, "c1", p, script="s.yaml", timezone="Asia/Shanghai")
