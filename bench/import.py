"""Lead import throughput and memory: a realistic lead list into a fresh SQLite database.

    .venv/bin/python bench/import.py [--rows 100000] [--encoding gbk] [--tracemalloc]

Writes a lead list shaped like a real export (GBK by default, as Excel saves Chinese sheets:
mobiles written five ways, landlines with area codes, 400 numbers, names, companies, cities,
notes, a source column; about 2% repeated numbers, 1% bad numbers, some blank lines) in a
temporary folder, imports it with `campaigns.importer.import_leads` into a temporary SQLite
database and prints one JSON object: rows, seconds, rows_per_s (wall clock), cpu_seconds and
rows_per_cpu_s (this process's CPU time: the figure to compare on a shared machine), the
report's counts and the expected ones (`exact`), the file size, and peak memory.
`peak_rss_mb` is the process's high-water resident size (resource.getrusage) and
`rss_before_mb` its size just before the import;
`--tracemalloc` adds the Python heap's peak during the import (slower: a separate measure,
not a throughput figure).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from campaigns.importer import import_leads  # noqa: E402
from models import init_db  # noqa: E402

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英"
CITIES = ("北京", "上海", "广州", "深圳", "杭州", "成都", "武汉", "南京", "西安", "重庆")
TRADES = ("餐饮", "零售", "教育", "制造", "物流", "医疗", "地产", "科技")
SOURCES = ("展会", "官网表单", "老客户推荐", "电话黄页", "")
AREA_CODES = ("010", "021", "020", "0755", "0571", "028")  # 8-digit local numbers
BAD = ("1.38001E+10", "138abc0013def8009", "1380013800", "12345", "电话待补")


def _phone(rng: random.Random, n: int) -> str:
    """The n-th distinct number, written the way a person might."""
    style = rng.random()
    if style < 0.06:
        area = AREA_CODES[n % len(AREA_CODES)]
        local = f"{6 + n % 3}{n % 10**7:07d}"
        return f"{area}-{local}" if rng.random() < 0.5 else f"+86 {area[1:]} {local}"
    if style < 0.08:
        return f"400-{n // 10000 % 1000:03d}-{n % 10000:04d}"
    mobile = f"13{n % 10}{n % 10**8:08d}"
    if style < 0.70:
        return mobile
    if style < 0.80:
        return f"{mobile[:3]} {mobile[3:7]} {mobile[7:]}"
    if style < 0.90:
        return f"+86 {mobile[:3]}-{mobile[3:7]}-{mobile[7:]}"
    if style < 0.95:
        return f"0086{mobile}"
    return f"{mobile[:3]}-{mobile[3:7]}-{mobile[7:]}"


def write_leads(path: Path, rows: int, encoding: str, seed: int = 11) -> dict[str, int]:
    """A lead list of `rows` data lines; the counts an exact import must report."""
    rng = random.Random(seed)
    expect = {"accepted": 0, "duplicates": 0, "rejected": 0, "blank": 0}
    seen: list[str] = []
    with path.open("w", encoding=encoding, newline="") as f:
        out = csv.writer(f)
        out.writerow(["手机号码", "客户姓名", "公司名称", "城市", "行业", "来源", "备注"])
        for i in range(rows):
            roll = rng.random()
            if roll < 0.005:
                out.writerow([])
                expect["blank"] += 1
                continue
            if roll < 0.015:
                phone = rng.choice(BAD)
                expect["rejected"] += 1
            elif roll < 0.035 and seen:
                phone = rng.choice(seen)
                expect["duplicates"] += 1
            else:
                phone = _phone(rng, i)
                if len(seen) < 5000:
                    seen.append(phone)
                expect["accepted"] += 1
            name = rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.randint(1, 2)))
            city = rng.choice(CITIES)
            out.writerow(
                [
                    phone,
                    name,
                    f"{city}{rng.choice(TRADES)}有限公司{i % 997}",
                    city,
                    rng.choice(TRADES),
                    rng.choice(SOURCES),
                    "上次询价，需回访" if rng.random() < 0.1 else "",
                ]
            )
    return expect


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--encoding", default="gbk")
    ap.add_argument("--tracemalloc", action="store_true", help="also measure the heap's peak")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        path = Path(tmp) / "leads.csv"
        expect = write_leads(path, args.rows, args.encoding)
        db = init_db(f"sqlite:///{tmp}/bench.db")
        before = _rss_mb()
        t0, c0 = time.perf_counter(), time.process_time()
        rep = import_leads(db, "bench", path, script="s.yaml", timezone="Asia/Shanghai")
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        result: dict[str, object] = {
            "rows": args.rows,
            "encoding": args.encoding,
            "file_mb": round(path.stat().st_size / 1e6, 2),
            "seconds": round(seconds, 2),
            "rows_per_s": round(args.rows / seconds),
            "cpu_seconds": round(cpu, 2),
            "rows_per_cpu_s": round(args.rows / cpu),
            "accepted": rep.accepted,
            "duplicates": rep.duplicates,
            "rejected": len(rep.rejected),
            "blank": rep.blank_rows,
            "expected": expect,
            "exact": (rep.accepted, rep.duplicates, len(rep.rejected), rep.blank_rows)
            == (expect["accepted"], expect["duplicates"], expect["rejected"], expect["blank"]),
            "rss_before_mb": round(before, 1),
            "peak_rss_mb": round(_rss_mb(), 1),
        }
        if args.tracemalloc:
            tracemalloc.start()
            import_leads(db, "bench-heap", path, script="s.yaml", timezone="Asia/Shanghai")
            result["heap_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 1e6, 1)
            tracemalloc.stop()
    print(json.dumps(result, ensure_ascii=False))
    return 0 if result["exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
