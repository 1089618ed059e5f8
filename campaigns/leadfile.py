"""Reading a lead list: its encoding, delimiter and columns, then each row as a lead or an error.

No database here: `campaigns.importer` stores what this yields. The file is streamed (one row
in memory at a time), so a list of a million rows costs no more memory than one of ten.

- Encoding: a byte-order mark wins (UTF-8, UTF-16, UTF-32); else UTF-8 if the whole file is
  valid UTF-8; else GB18030 (a superset of GBK and GB2312) or Big5, whichever decodes the whole
  file (charset-normalizer settles a tie); else charset-normalizer's guess if it decodes the
  whole file. A file nothing decodes (a workbook, a binary) is refused before anything is read.
- Delimiter: the one of , TAB ; | and the full-width comma found most in the header line.
- Columns: `phone` is required; `name`, `timezone`, `source` and `consent` (是/否, yes/no) are
  optional; common Chinese and English headers are recognised (`ALIASES`), `--map
  field=column` overrides. Every other column is kept, under its header, in the lead's
  `extra` (for personalisation).
- Rows: line numbers are the file's (header = 1). Blank rows are skipped; a row with bad data
  becomes a `RowError` naming the column; every stored value that a spreadsheet would run as a
  formula is neutralised with a leading apostrophe.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from types import TracebackType

import charset_normalizer

from core.text import to_simplified

from .compliance import zone
from .phones import DEFAULT_REGION, PhoneError, check_region, normalize

MAX_FIELD_CHARS = 4096
"""A longer cell is a row error: no lead field needs more, and it keeps rows small."""
MAX_NAME_CHARS = 200  # models.Lead.name is String(200)
MAX_SOURCE_CHARS = 200  # models.Lead.source is String(200)
CONSENT_YES = frozenset({"是", "同意", "已同意", "有", "y", "yes", "true", "1", "√", "✓"})
CONSENT_NO = frozenset({"否", "不同意", "未同意", "拒绝", "无", "n", "no", "false", "0", "×", "✗"})
FIELDS = ("phone", "name", "timezone", "source", "consent")
ALIASES: dict[str, tuple[str, ...]] = {  # by preference; compared by `_key` (traditional too)
    "phone": (
        "手机号码", "手机号", "手机", "移动电话", "mobile", "mobilephone", "mobilenumber",
        "cellphone", "cell", "行动电话", "联系电话", "联络电话", "电话号码", "电话", "联系方式",
        "联络方式", "号码", "固定电话", "座机", "phone", "phonenumber", "telephone", "tel",
    ),
    "name": (
        "客户姓名", "姓名", "客户名称", "联系人", "联系人姓名", "联络人", "名字", "客户", "name",
        "fullname", "customername", "customer", "contactname", "contact",
    ),
    "timezone": ("时区", "timezone", "tz"),
    "source": ("来源", "客户来源", "线索来源", "渠道", "source", "leadsource", "channel"),
    "consent": ("同意", "是否同意", "同意外呼", "授权", "consent", "optin"),
}  # fmt: skip
DELIMITERS = (",", "\t", ";", "|", "，")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
HEAD_BYTES = 64 * 1024  # what charset-normalizer looks at
_CHUNK = 1 << 20
_BOMS = (  # UTF-32 first: its little-endian mark begins with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_WORKBOOKS = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")  # .xlsx (zip), .xls (OLE)
_BRACKETED = re.compile(r"[(\[【].*?[)\]】]")
_NOISE = re.compile(r"[\s_\-:*.#/]")


class LeadFileError(ValueError):
    """The file cannot be a lead list (unreadable, undecodable, no phone column); one line."""


class _BadCell(ValueError):
    """A row's cell that cannot be stored: its column and why."""

    def __init__(self, column: str, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason


@dataclass(frozen=True, slots=True)
class LeadRow:
    """One valid row: phone in E.164, the rest as it will be stored."""

    line: int
    phone: str
    name: str
    timezone: str | None
    extra: dict[str, str]
    source: str | None = None
    consent: bool | None = None


@dataclass(frozen=True, slots=True)
class RowError:
    """A row skipped for bad data: its line, the column at fault and why (never the phone)."""

    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Columns:
    """Which column holds which lead field; every other column goes to `extra` by its key."""

    names: tuple[str, ...]  # display name of each column, unique
    fields: dict[str, int]  # lead field -> column index
    extras: tuple[tuple[int, str], ...]  # (column index, extra key)

    def describe(self) -> str:
        return ", ".join(f"{f}={self.names[i]}" for f, i in self.fields.items())


def neutralise(value: str) -> str:
    """`value`, with an apostrophe in front if a spreadsheet would read it as a formula."""
    return "'" + value if value.startswith(FORMULA_START) else value


def parse_consent(text: str) -> bool | None:
    """是/同意/yes/1 -> True, 否/不同意/no/0 -> False, anything else (or blank) -> None."""
    value = text.strip().lower()
    if value in CONSENT_YES:
        return True
    if value in CONSENT_NO:
        return False
    return None


def parse_map(text: str) -> dict[str, str]:
    """`phone=联系电话,name=客户名称` -> {"phone": "联系电话", "name": "客户名称"}."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        field, sep, column = (x.strip() for x in part.partition("="))
        if not sep or not column:
            raise LeadFileError(f"--map: {part!r} is not field=column")
        if field not in FIELDS:
            raise LeadFileError(f"--map: unknown field {field!r} (fields: {', '.join(FIELDS)})")
        if field in out:
            raise LeadFileError(f"--map: {field} given twice")
        out[field] = column
    return out


def map_columns(header: list[str], explicit: dict[str, str] | None = None) -> Columns:
    """The columns of `header`: `explicit` (field -> header text) first, then the aliases."""
    names = _unique_names(header)
    keys = [_key(h) for h in header]
    fields: dict[str, int] = {}
    for field, column in (explicit or {}).items():
        fields[field] = _find_explicit(field, column, header, keys)
    for field in FIELDS:
        if field not in fields:
            found = _find_alias(field, keys, taken=set(fields.values()))
            if found is not None:
                fields[field] = found
    if "phone" not in fields:
        raise LeadFileError(
            "no phone column in the header (its first non-blank line): name it 手机号码, "
            "联系电话, phone, ... or give --map phone=COLUMN"
        )
    if len(set(fields.values())) < len(fields):
        raise LeadFileError("--map: one column given for two fields")
    used = set(fields.values())
    extras = tuple((i, neutralise(n)) for i, n in enumerate(names) if i not in used)
    return Columns(tuple(names), fields, extras)


def detect_encoding(path: Path) -> str:
    """The codec the whole file decodes with (see the module's notes), or LeadFileError."""
    with path.open("rb") as f:
        head = f.read(HEAD_BYTES)
    if not head.strip():
        raise LeadFileError("empty file")
    if head.startswith(_WORKBOOKS):
        raise LeadFileError("an Excel workbook, not CSV: save it as CSV (UTF-8) and import that")
    for bom, codec in _BOMS:
        if head.startswith(bom):
            if _decodes(path, codec):
                return codec
            raise LeadFileError(f"starts with a {codec.upper()} byte-order mark but is not {codec}")
    if _decodes(path, "utf-8"):
        return "utf-8"
    chinese = [c for c in ("gb18030", "big5") if _decodes(path, c)]
    if len(chinese) == 2:
        best = charset_normalizer.from_bytes(head, cp_isolation=chinese).best()
        return best.encoding if best is not None else "gb18030"
    if chinese:
        return chinese[0]
    guess = charset_normalizer.from_bytes(head).best()
    if guess is not None and _decodes(path, guess.encoding):
        return guess.encoding
    raise LeadFileError("not text in a known encoding (UTF-8, UTF-16, GBK/GB18030, ...)")


class LeadFile:
    """An open lead list: `encoding`, `delimiter`, `columns`, then `rows()` once.

    Raises LeadFileError on opening when the file cannot be a lead list; nothing after that
    raises for bad data (each bad row is a RowError).
    """

    def __init__(
        self,
        path: Path,
        *,
        column_map: dict[str, str] | None = None,
        region: str = DEFAULT_REGION,
    ) -> None:
        self.path = path
        self.region = region
        try:
            check_region(region)
        except PhoneError as exc:
            raise LeadFileError(str(exc)) from None
        try:
            self.size = path.stat().st_size
            self.encoding = detect_encoding(path)
            self._binary = path.open("rb")
        except OSError as exc:
            raise LeadFileError(f"cannot read ({exc.strerror})") from None
        self._text = io.TextIOWrapper(self._binary, encoding=self.encoding, newline="")
        try:
            self._open_header(column_map)
        except BaseException:
            self.close()
            raise

    def _open_header(self, column_map: dict[str, str] | None) -> None:
        self._skipped = 0  # blank lines before the header
        first = self._text.readline()
        while first and not first.strip():
            self._skipped += 1
            first = self._text.readline()
        if not first:
            raise LeadFileError("no header line")
        self.delimiter = _sniff(first)
        self._reader = csv.reader(chain([first], self._text), delimiter=self.delimiter)
        try:
            header = next(self._reader)
        except csv.Error as exc:
            raise LeadFileError(f"header line: {exc}") from None
        self.columns = map_columns([h.strip() for h in header], column_map)
        self.blank_rows = 0

    @property
    def bytes_read(self) -> int:
        """About how far into the file reading has got (for a progress bar)."""
        return self._binary.tell()

    def rows(self) -> Iterator[LeadRow | RowError]:
        """Each non-blank row after the header, in file order."""
        while True:
            line = self._skipped + self._reader.line_num + 1
            try:
                cells = next(self._reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield RowError(line, "row", _csv_reason(exc))
                continue
            row = self._row(line, cells)
            if row is None:
                self.blank_rows += 1
            else:
                yield row

    def _row(self, line: int, cells: list[str]) -> LeadRow | RowError | None:
        """The row as a lead, a RowError, or None when it is blank."""
        cells = [c.strip() for c in cells]
        if not any(cells):
            return None
        try:
            return self._lead(line, self._fitted(cells))
        except _BadCell as bad:
            return RowError(line, bad.column, bad.reason)

    def _fitted(self, cells: list[str]) -> list[str]:
        """The cells, one per column; _BadCell for a value past the header, too long, or NUL."""
        names = self.columns.names
        width = len(names)
        if any(cells[width:]):
            raise _BadCell(f"column {width + 1}", f"a value beyond the header's {width} columns")
        cells = cells[:width] + [""] * (width - len(cells))
        for name, cell in zip(names, cells, strict=True):
            if len(cell) > MAX_FIELD_CHARS:
                raise _BadCell(name, f"longer than {MAX_FIELD_CHARS} characters")
            if "\x00" in cell:  # PostgreSQL text cannot hold it
                raise _BadCell(name, "contains a NUL character")
        return cells

    def _lead(self, line: int, cells: list[str]) -> LeadRow:
        phone_text = self._cell(cells, "phone")
        try:
            phone = normalize(phone_text, self.region)
        except PhoneError as exc:
            raise _BadCell(self._column("phone"), str(exc)) from None
        tz = self._cell(cells, "timezone")
        if tz:
            try:
                zone(tz)
            except ValueError:
                raise _BadCell(self._column("timezone"), "unknown timezone") from None
        consent_text = self._cell(cells, "consent")
        consent = parse_consent(consent_text)
        if consent_text and consent is None:
            raise _BadCell(self._column("consent"), "not a yes or no (是/否)")
        extra = {key: neutralise(cells[i]) for i, key in self.columns.extras if cells[i]}
        return LeadRow(
            line=line,
            phone=phone,
            name=self._short(cells, "name", MAX_NAME_CHARS),
            timezone=tz or None,
            extra=extra,
            source=self._short(cells, "source", MAX_SOURCE_CHARS) or None,
            consent=consent,
        )

    def _short(self, cells: list[str], field: str, limit: int) -> str:
        """A text field, neutralised; _BadCell when longer than its database column."""
        value = self._cell(cells, field)
        if len(value) > limit:
            raise _BadCell(self._column(field), f"longer than {limit} characters")
        return neutralise(value)

    def _cell(self, cells: list[str], field: str) -> str:
        i = self.columns.fields.get(field)
        return "" if i is None else cells[i]

    def _column(self, field: str) -> str:
        return self.columns.names[self.columns.fields[field]]

    def close(self) -> None:
        self._text.close()

    def __enter__(self) -> LeadFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _decodes(path: Path, codec: str) -> bool:
    """True if the whole file decodes with `codec` into text.

    NULs at the start mean binary (or UTF-16 read as something else); one later on is a row
    error, not a reason to refuse the file.
    """
    try:
        decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    except LookupError:
        return False
    with path.open("rb") as f:
        try:
            if "\x00" in decoder.decode(f.read(_CHUNK)):
                return False
            while chunk := f.read(_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def _sniff(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])  # ties: the earlier one
    return best if counts[best] else ","


def _key(header: str) -> str:
    """A header as aliases are compared: width-folded, simplified characters (手機 = 手机),
    lower case, no brackets or spaces."""
    text = to_simplified(unicodedata.normalize("NFKC", header))
    return _NOISE.sub("", _BRACKETED.sub("", text)).lower()


def _unique_names(header: list[str]) -> list[str]:
    names: list[str] = []
    for i, h in enumerate(header):
        name = h or f"column {i + 1}"
        n = 2
        while name in names:
            name = f"{h or f'column {i + 1}'} ({n})"
            n += 1
        names.append(name)
    return names


def _find_explicit(field: str, column: str, header: list[str], keys: list[str]) -> int:
    if column in header:
        return header.index(column)
    if _key(column) in keys:
        return keys.index(_key(column))
    raise LeadFileError(f"--map {field}={column}: no such column in the header")


def _find_alias(field: str, keys: list[str], *, taken: set[int]) -> int | None:
    for alias in ALIASES[field]:
        for i, k in enumerate(keys):
            if k == alias and i not in taken:
                return i
    return None


def _csv_reason(exc: csv.Error) -> str:
    text = str(exc)
    if "field larger than field limit" in text:
        return f"a field longer than {MAX_FIELD_CHARS} characters"
    if "NUL" in text:
        return "contains a NUL character"
    return f"not readable as CSV ({text})"
