"""A 100k-row GBK lead list: the report is exact and every valid lead is stored, once."""

from __future__ import annotations

import csv
import random
from pathlib import Path

from sqlalchemy import select

from campaigns.importer import import_leads
from models import Lead, init_db

ROWS = 100_000
FORMATS = ("{}", "{} ", "+86 {}", "0086{}", "{}-{}-{}", "{} {} {}")


def _written(mobile: str, style: str) -> str:
    if "{}-" in style or "{} {}" in style:
        return style.format(mobile[:3], mobile[3:7], mobile[7:])
    return style.format(mobile)


def test_a_100k_row_file_loses_nothing(tmp_path: Path) -> None:
    rng = random.Random(11)
    path = tmp_path / "big.csv"
    expected: set[str] = set()
    seen: list[str] = []
    bad_lines: list[int] = []
    duplicates = blank = 0
    with path.open("w", encoding="gbk", newline="") as f:
        out = csv.writer(f)
        out.writerow(["手机号码", "客户姓名"])
        for i in range(ROWS):
            line = i + 2
            roll = rng.random()
            if roll < 0.004:
                out.writerow([])
                blank += 1
                continue
            if roll < 0.014:
                out.writerow([rng.choice(["1.38001E+10", "138abc0013", "1380013800"]), "x"])
                bad_lines.append(line)
                continue
            if roll < 0.024 and seen:
                mobile = rng.choice(seen)  # written again, perhaps another way
                duplicates += 1
            else:
                mobile = f"13{i % 10}{i:08d}"
                seen.append(mobile)
                expected.add("+86" + mobile)
            out.writerow([_written(mobile, rng.choice(FORMATS)), f"客户{i}"])
    db = init_db(f"sqlite:///{tmp_path}/big.db")
    rep = import_leads(db, "big", path, script="s.yaml", timezone="Asia/Shanghai")
    assert [r.row for r in rep.rejected] == bad_lines
    assert (rep.accepted, rep.duplicates, rep.blank_rows) == (len(expected), duplicates, blank)
    with db() as s:
        stored = list(s.scalars(select(Lead.phone)))
    assert len(stored) == len(expected) and set(stored) == expected
