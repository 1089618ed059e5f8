"""Do-not-call lists: global and per campaign, through `main.py dnc` (campaigns.cli) and the
claim. Numbers match however they were written; the list prints counts unless asked for the
numbers; bad input changes nothing and says so in one line."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import main
from campaigns import dnc, store
from campaigns.cli import dnc_main
from campaigns.compliance import CallingWindow
from models import Campaign, CampaignDncEntry, DncEntry, Lead, init_db

NOW = datetime(2026, 11, 23, 4, tzinfo=UTC)


def setup(tmp_path: Path) -> sessionmaker[Session]:
    db = init_db(f"sqlite:///{tmp_path}/d.db")
    with db.begin() as s:
        s.add_all([Campaign(name="spring", script="s.yaml"), Campaign(name="autumn", script="s")])
    return db


def run(db: sessionmaker[Session], action: str, **kw: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = dnc_main(db, action, out=out, err=err, **kw)  # type: ignore[arg-type]
    return rc, out.getvalue(), err.getvalue()


def test_add_list_remove_global_and_per_campaign(tmp_path: Path) -> None:
    db = setup(tmp_path)
    assert run(db, "add", campaign=None, phone="+86 138-0013-8000")[0] == 0
    assert run(db, "add", campaign=None, phone="0086 13800138000")[1].startswith(
        "global list: added 0, already listed 1"
    )
    assert run(db, "add", campaign="spring", phone="13800138001")[0] == 0
    rc, out, _ = run(db, "list", campaign=None)
    assert (rc, out) == (0, "global list: 1 numbers (operator 1)\n")  # a count, no number
    rc, out, _ = run(db, "list", campaign="spring", show_numbers=True)
    assert out.splitlines()[1] == dnc.normalize("13800138001")  # numbers only on request
    assert run(db, "list", campaign="autumn")[1] == "campaign autumn's list: 0 numbers\n"
    rc, _, err = run(db, "add", campaign="nosuch", phone="13800138001")
    assert (rc, err) == (1, "dnc add: no campaign named 'nosuch'\n")
    rc, _, err = run(db, "add", campaign=None, phone="hello")
    assert (rc, err) == (1, "dnc add: not a phone number\n")
    assert run(db, "remove", campaign="spring", phone="138 0013 8001")[0] == 0
    assert run(db, "remove", campaign="spring", phone="13800138001")[0] == 1  # not there now
    with db() as s:
        assert s.scalars(select(DncEntry.phone)).all() == [dnc.normalize("13800138000")]
        assert s.scalars(select(CampaignDncEntry)).all() == []


def test_import_a_file(tmp_path: Path) -> None:
    db = setup(tmp_path)
    f = tmp_path / "dnc.csv"
    f.write_bytes(
        "客户,手机号码\n张三,138 0013 8000\n李四,not-a-number\n王五,13800138000\n\n".encode("gbk")
    )
    rc, out, _ = run(db, "import", campaign="spring", file=f)
    assert (rc, out) == (
        0,
        "campaign spring's list: added 1, already listed 1, not a phone number 1\n",
    )
    plain = tmp_path / "plain.txt"
    plain.write_text("13800138002\n+8613800138003\n", encoding="utf-16")  # no header, UTF-16
    assert run(db, "import", campaign=None, file=plain)[1].startswith("global list: added 2")
    rc, _, err = run(db, "import", campaign=None, file=tmp_path / "missing.csv")
    assert rc == 1 and err.count("\n") == 1 and "missing.csv" in err


def test_the_claim_skips_listed_numbers_stored_in_any_form(tmp_path: Path) -> None:
    db = setup(tmp_path)
    with db.begin() as s:
        spring, autumn = (s.scalars(select(Campaign.id).order_by(Campaign.name)).all())[::-1]
        for cid in (spring, autumn):
            s.add(Lead(campaign_id=cid, phone=dnc.normalize("13800138000")))  # E.164
            s.add(Lead(campaign_id=cid, phone="13800138001"))  # stored before E.164
            s.add(Lead(campaign_id=cid, phone=dnc.normalize("13800138002")))
        s.add(DncEntry(phone="13800138002", source="callee"))  # an entry from before E.164
    dnc.add(db, ["13800138001"], campaign=None, source="import")  # E.164 entry, old lead
    dnc.add(db, ["13800138000"], campaign="autumn", source="import")
    window = CallingWindow.parse("00:00-24:00")

    def claimed(cid: int) -> set[str]:
        leads = store.claim_due_leads(
            db, cid, limit=10, now=NOW, node="n", window=window, max_attempts=3
        )
        return {c.phone for c in leads}

    assert claimed(spring) == {dnc.normalize("13800138000")}
    assert claimed(autumn) == set()
    assert store.is_dnc(db, "13800138001") and store.is_dnc(db, dnc.normalize("13800138002"))
    assert store.is_dnc(db, dnc.normalize("13800138000"), autumn)
    assert not store.is_dnc(db, dnc.normalize("13800138000"), spring)


def test_the_command_line(tmp_path: Path, capsys: object) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"database:\n  url: sqlite:///{tmp_path}/cli.db\n", encoding="utf-8")
    assert main.main(["--config", str(cfg), "dnc", "add", "13800138000"]) == 0
    assert main.main(["--config", str(cfg), "dnc", "list"]) == 0
    assert main.main(["--config", str(cfg), "dnc", "list", "--campaign", "x"]) == 1
    assert main.main(["--config", str(cfg), "campaign", "list"]) == 0
    assert main.main(["--config", str(cfg), "campaign", "pause", "x"]) == 1
    out = capsys.readouterr()  # type: ignore[attr-defined]
    assert "global list: 1 numbers" in out.out and "13800138000" not in out.out
    assert "Traceback" not in out.err
