"""Lead lists shaped like real exports: encodings, delimiters, headers, mixed phone formats,
blank and duplicate rows, formula cells, huge fields, files that are not lead lists."""

from __future__ import annotations

import io
import os
import tracemalloc
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from campaigns import importer
from campaigns.importer import ImportReport, LeadImportError, Rejection, import_leads
from campaigns.leadfile import LeadFileError, map_columns, parse_map
from models import Campaign, Lead, init_db

CHINESE = "手机号码,客户名称,公司,备注\n13800000001,张三,北京餐饮有限公司,老客户\n"


@pytest.fixture
def db(tmp_path: Path) -> sessionmaker[Session]:
    return init_db(f"sqlite:///{tmp_path}/i.db")


def write(tmp_path: Path, data: str | bytes, enc: str = "utf-8", name: str = "a.csv") -> Path:
    p = tmp_path / name
    p.write_bytes(data if isinstance(data, bytes) else data.encode(enc))
    return p


def imp(
    db: sessionmaker[Session], p: Path, column_map: dict[str, str] | None = None
) -> ImportReport:
    return import_leads(
        db, "c1", p, script="s.yaml", timezone="Asia/Shanghai", column_map=column_map
    )


def leads(db: sessionmaker[Session]) -> dict[str, Lead]:
    with db() as s:
        return {x.phone: x for x in s.query(Lead)}


def nothing_stored(db: sessionmaker[Session]) -> bool:
    with db() as s:
        return s.query(Campaign).count() == 0 and s.query(Lead).count() == 0


@pytest.mark.parametrize(
    ("enc", "detected"),
    [
        ("gbk", "gb18030"),  # no BOM: what Excel saves a Chinese sheet as
        ("gb18030", "gb18030"),
        ("utf-8", "utf-8"),
        ("utf-8-sig", "utf-8-sig"),  # Excel's "CSV UTF-8": the BOM is not part of the header
        ("utf-16", "utf-16"),  # with a BOM
    ],
)
def test_encodings_are_detected(
    tmp_path: Path, db: sessionmaker[Session], enc: str, detected: str
) -> None:
    rep = imp(db, write(tmp_path, CHINESE, enc))
    assert (rep.encoding, rep.accepted, rep.rejected) == (detected, 1, [])
    lead = leads(db)["+8613800000001"]
    assert lead.name == "张三"
    assert lead.extra == {"公司": "北京餐饮有限公司", "备注": "老客户"}


def test_gbk_that_is_also_valid_big5_is_read_as_gbk(
    tmp_path: Path, db: sessionmaker[Session]
) -> None:
    rep = imp(db, write(tmp_path, "电话,姓名\n13800000001,王\n", "gbk"))
    assert rep.encoding == "gb18030" and leads(db)["+8613800000001"].name == "王"


@pytest.mark.parametrize(
    ("text", "enc", "detected"),
    [
        ("聯絡電話,客戶名稱\n13800000001,陳大文\n", "big5", "big5"),  # traditional headers
        ("手機號碼,姓名\n13800000001,陳大文\n", "utf-8", "utf-8"),
        ("手机,姓名\n13800000001,陳大文\n", "utf-16-le", "utf_16_le"),  # no BOM
    ],
)
def test_big5_traditional_headers_and_utf16_without_bom(
    tmp_path: Path, db: sessionmaker[Session], text: str, enc: str, detected: str
) -> None:
    rep = imp(db, write(tmp_path, text, enc))
    assert (rep.encoding, rep.accepted) == (detected, 1)
    assert leads(db)["+8613800000001"].name == "陳大文"


def test_progress_bar_on_request(tmp_path: Path, db: sessionmaker[Session]) -> None:
    out = io.StringIO()
    p = write(tmp_path, "phone\n" + "".join(f"1380000{i:04d}\n" for i in range(3000)))
    import_leads(db, "c1", p, script="s.yaml", timezone="UTC", progress=True, progress_file=out)
    assert "import" in out.getvalue() and "B/s" in out.getvalue()


@pytest.mark.parametrize("sep", ["\t", ";", "|"])
def test_delimiter_is_sniffed(tmp_path: Path, db: sessionmaker[Session], sep: str) -> None:
    text = f"phone{sep}name{sep}city\n13800000001{sep}Li, Wei{sep}Beijing\n"
    rep = imp(db, write(tmp_path, text, "utf-16" if sep == "\t" else "utf-8"))
    assert (rep.delimiter, rep.accepted) == (sep, 1)
    assert leads(db)["+8613800000001"].extra == {"city": "Beijing"}


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("联系电话,客户名称", "phone=联系电话, name=客户名称"),
        ("电话号码,客户姓名", "phone=电话号码, name=客户姓名"),
        ("手机,联系人", "phone=手机, name=联系人"),
        ("Mobile Phone,Customer Name", "phone=Mobile Phone, name=Customer Name"),
        ("TEL,Name", "phone=TEL, name=Name"),
        ("手机号码（必填）,姓名", "phone=手机号码（必填）, name=姓名"),
    ],
)
def test_common_headers_are_mapped(
    tmp_path: Path, db: sessionmaker[Session], header: str, field: str
) -> None:
    rep = imp(db, write(tmp_path, f"{header}\n13800000001,张三\n"))
    assert (rep.columns, rep.accepted) == (field, 1)


def test_mobile_is_preferred_and_the_other_phone_kept(
    tmp_path: Path, db: sessionmaker[Session]
) -> None:
    rep = imp(db, write(tmp_path, "电话,手机号码,姓名\n010-65529988,13800000001,张三\n"))
    assert rep.columns.startswith("phone=手机号码")
    assert leads(db)["+8613800000001"].extra == {"电话": "010-65529988"}


def test_explicit_map_wins(tmp_path: Path, db: sessionmaker[Session]) -> None:
    p = write(tmp_path, "手机,备用号码,称呼,时区\n13800000001,13900000002,王总,Asia/Urumqi\n")
    rep = imp(db, p, parse_map("phone=备用号码, name=称呼"))
    assert rep.accepted == 1
    lead = leads(db)["+8613900000002"]
    assert (lead.name, lead.timezone, lead.extra) == (
        "王总",
        "Asia/Urumqi",
        {"手机": "13800000001"},
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("phone", "not field=column"),
        ("mobile=x", "unknown field 'mobile'"),
        ("phone=a,phone=b", "phone given twice"),
    ],
)
def test_bad_map_is_refused(text: str, message: str) -> None:
    with pytest.raises(LeadFileError, match=message):
        parse_map(text)


def test_map_to_a_missing_column_stores_nothing(tmp_path: Path, db: sessionmaker[Session]) -> None:
    with pytest.raises(LeadImportError, match="--map phone=联系电话: no such column"):
        imp(db, write(tmp_path, "手机,姓名\n13800000001,a\n"), {"phone": "联系电话"})
    with pytest.raises(LeadFileError, match="one column given for two fields"):
        map_columns(["手机", "姓名"], {"phone": "手机", "name": "手机"})
    assert nothing_stored(db)


def test_mixed_phone_formats(tmp_path: Path, db: sessionmaker[Session]) -> None:
    rows = [
        "13800138000",
        "+86 139-0013-9000",
        "0086 137 0013 7000",
        "010-6552 9988",
        "+86 21 6123 4567",
        "0086 755 8123 4567",
        "400-123-4567",
        "800-820-8820",
        "1.38001E+10",
        "138abc0013def8009",
        "1380013800",
        "+86 138 0013 8000",  # the first row again
    ]
    rep = imp(db, write(tmp_path, "phone\n" + "\n".join(rows) + "\n"))
    assert sorted(leads(db)) == sorted(
        [
            "+8613800138000",
            "+8613900139000",
            "+8613700137000",
            "+861065529988",
            "+862161234567",
            "+8675581234567",
            "+864001234567",
            "+868008208820",
        ]
    )
    assert (rep.accepted, rep.duplicates) == (8, 1)
    assert [(r.row, r.reason.split(":")[1].split("(")[0].strip()) for r in rep.rejected] == [
        (10, "a number Excel turned into scientific notation"),
        (11, "has letters a phone number cannot have"),
        (12, "not a valid CN number"),
    ]


@pytest.mark.parametrize("eol", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_blank_and_duplicate_rows_and_line_numbers(
    tmp_path: Path, db: sessionmaker[Session], eol: str
) -> None:
    text = (
        "\n"  # line 1: blank before the header
        "phone,name,note\n"  # 2
        "13800000001,a,x\n"  # 3
        "\n"  # 4
        ",,\n"  # 5: blank cells only
        '13800000002,b,"two\nlines"\n'  # 6-7
        "13800000001,a again,\n"  # 8: duplicate of line 3
        "bad,c,\n"  # 9
        "13800000003,d,,\n"  # 10: a trailing empty field is fine
        "13800000004,e,f,g\n"  # 11: a value past the header
    )
    rep = imp(db, write(tmp_path, text.replace("\n", eol)))
    assert (rep.accepted, rep.duplicates, rep.blank_rows) == (3, 1, 2)
    assert rep.rejected == [
        Rejection(9, "phone: has letters a phone number cannot have"),
        Rejection(11, "column 4: a value beyond the header's 3 columns"),
    ]
    assert leads(db)["+8613800000002"].extra == {"note": f"two{eol}lines"}
    assert leads(db)["+8613800000001"].name == "a"  # the first row wins


def test_formula_cells_are_neutralised(tmp_path: Path, db: sessionmaker[Session]) -> None:
    text = (
        "phone,name,note,=cmd\n"
        '13800000001,=HYPERLINK("http://x"),+1+1,a\n'
        "13800000002,@SUM(A1),-2+3,\n"
        '13800000003,"\tplain", safe ,\n'
    )
    rep = imp(db, write(tmp_path, text))
    assert rep.accepted == 3
    got = leads(db)
    assert got["+8613800000001"].name == '\'=HYPERLINK("http://x")'
    assert got["+8613800000001"].extra == {"note": "'+1+1", "'=cmd": "a"}
    assert got["+8613800000002"].name == "'@SUM(A1)"
    assert got["+8613800000002"].extra == {"note": "'-2+3"}
    assert got["+8613800000003"].name == "plain"
    assert got["+8613800000003"].extra == {"note": "safe"}


@pytest.mark.parametrize("size", [5_000, 200_000])  # over our limit; over csv's own too
def test_a_huge_field_is_a_row_error(tmp_path: Path, db: sessionmaker[Session], size: int) -> None:
    text = f"phone,note\n13800000001,a\n13800000002,{'x' * size}\n13800000003,c\n"
    rep = imp(db, write(tmp_path, text))
    assert rep.accepted == 2 and [r.row for r in rep.rejected] == [3]
    assert "longer than 4096 characters" in rep.rejected[0].reason
    assert sorted(leads(db)) == ["+8613800000001", "+8613800000003"]


def test_name_source_consent_and_timezone(tmp_path: Path, db: sessionmaker[Session]) -> None:
    text = (
        "手机,姓名,来源,是否同意,时区\n"
        "13800000001,a,展会,是,\n"
        "13800000002,b,,否,Asia/Urumqi\n"
        "13800000003,c,,也许,\n"
        f"13800000004,{'长' * 201},,,\n"
        "13800000005,=x,=HYPERLINK(1),,\n"
    )
    rep = imp(db, write(tmp_path, text))
    assert rep.rejected == [
        Rejection(4, "是否同意: not a yes or no (是/否)"),
        Rejection(5, "姓名: longer than 200 characters"),
    ]
    got = leads(db)
    assert (got["+8613800000001"].source, got["+8613800000001"].consent) == ("展会", True)
    assert (got["+8613800000002"].source, got["+8613800000002"].consent) == (None, False)
    assert got["+8613800000002"].timezone == "Asia/Urumqi"
    assert got["+8613800000005"].source == "'=HYPERLINK(1)"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (os.urandom(4096), "not text in a known encoding"),
        (b"PK\x03\x04" + os.urandom(200), "an Excel workbook"),
        (b"\xd0\xcf\x11\xe0" + os.urandom(200), "an Excel workbook"),
        (b"", "empty file"),
        ("\ufeffphone\n13800000001\n".encode("utf-16-le")[:-1], "byte-order mark"),
        (b"\xff\xfe" + b"p\x00h\xd8", "byte-order mark but is not utf-16"),
    ],
)
def test_undecodable_files_store_nothing(
    tmp_path: Path, db: sessionmaker[Session], data: bytes, message: str
) -> None:
    with pytest.raises(LeadImportError, match=message) as err:
        imp(db, write(tmp_path, data))
    assert len(err.value.errors) == 1 and "\n" not in str(err.value)
    assert nothing_stored(db)


def test_undecodable_bytes_late_in_a_file_store_nothing(
    tmp_path: Path, db: sessionmaker[Session]
) -> None:
    """The whole file is checked before a row is stored, not only its first kilobytes."""
    good = "phone\n" + "".join(f"1380000{i:04d}\n" for i in range(5000))
    with pytest.raises(LeadImportError, match="not text"):
        imp(db, write(tmp_path, good.encode() + b"\x81\xff\xfe\x00\x01garbage\n"))
    assert nothing_stored(db)


def test_a_missing_file_stores_nothing(tmp_path: Path, db: sessionmaker[Session]) -> None:
    with pytest.raises(LeadImportError, match="cannot read"):
        imp(db, tmp_path / "nope.csv")
    assert nothing_stored(db)


def _heap_peak(db: sessionmaker[Session], p: Path, campaign: str) -> int:
    tracemalloc.start()
    try:
        import_leads(db, campaign, p, script="s.yaml", timezone="Asia/Shanghai")
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_file(
    tmp_path: Path, db: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five times the rows (in five times the batches) take no more memory."""
    monkeypatch.setattr(importer, "BATCH_ROWS", 200)

    def make(rows: int, name: str) -> Path:
        body = "".join(f"1380{i:07d},客户{i},北京市朝阳区建国路{i}号\n" for i in range(rows))
        return write(tmp_path, "手机,姓名,地址\n" + body, "gbk", name)

    import_leads(db, "warm", make(10, "warm.csv"), script="s.yaml", timezone="UTC")  # caches
    small = _heap_peak(db, make(800, "small.csv"), "s")
    large = _heap_peak(db, make(4_000, "large.csv"), "l")
    assert large < small * 1.5 + 512 * 1024, (small, large)
