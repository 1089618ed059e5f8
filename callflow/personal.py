"""Personal lines: a script's placeholders for lead fields and remembered slots.

A line may name a lead field or a slot; the machine renders it when it says the line (pure:
from ``DialogState.lead`` and ``DialogState.slots``)::

    {lead.title|您}好，我是…            王先生好 / 您好
    {lead.company|贵公司}               a lead-file column (company, 公司, 公司名称 …)
    那我们{slot.time|改天}再联系您       what the callee said ("明天下午"), else 改天

Every placeholder needs a fallback, said when the field is missing: after ``|`` in place, or
once for the script under ``fallbacks:`` (``fallbacks: {lead.company: 贵公司}``); an empty one
(``{lead.title|}``) says nothing. A placeholder without either is a ScriptError at load, so a
literal ``{name}`` is never said aloud.

Lead fields (``lead_fields``): ``name``, ``surname`` (compound surnames such as 欧阳 kept
whole), ``gender`` (male | female, from a 性别/gender column), ``honorific`` (先生 | 女士,
only when the gender is known), ``title`` (surname + honorific: only when both are known, so
an unknown gender takes the neutral fallback, never a guess), ``company``, ``city``,
``product``, and every other lead-file column under its header (``{lead.行业|}``).

A line with a placeholder is not a fixed line: ``Script.lines()`` pre-renders only its neutral
form (every field missing, so no PII), and a lead's own words (names: PII) go to the speech
engine only in the call, synthesised clause by clause as it plays and never cached
(``render_marked`` says so; the machine marks the ``Say`` personal and the playback speaks it
with ``PromptSource.speak(text, cache=False)``).
Lead fields never go to log text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

PLACEHOLDER: Final = re.compile(r"\{(lead|slot)\.([^{}|\s]+)(?:\|([^{}]*))?\}")
_BRACED: Final = re.compile(r"\{([^{}]*)\}")
_CJK: Final = re.compile(r"^[\u3400-\u9fff·]{2,6}$")
_COMPOUND: Final = (
    "欧阳司马诸葛上官东方皇甫尉迟公孙慕容令狐长孙宇文司徒夏侯轩辕端木独孤南宫西门百里呼延澹台"
    "太史申屠万俟闻人钟离宗政濮阳公冶赫连东郭仲孙单于拓跋第五司空乐正鲜于闾丘亓官司寇子车颛孙"
    "壤驷公良漆雕谷梁宰父巫马"
)
COMPOUND_SURNAMES: Final = frozenset(_COMPOUND[i : i + 2] for i in range(0, len(_COMPOUND), 2))
_MALE: Final = frozenset({"男", "男士", "男性", "先生", "m", "male", "man", "mr", "mr."})
_FEMALE: Final = frozenset(
    {"女", "女士", "女性", "小姐", "f", "female", "woman", "mrs", "ms", "miss", "mrs.", "ms."}
)
# lead-file columns read as a field (headers compared lower-cased, spaces removed)
ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "gender": ("gender", "sex", "性别", "称谓", "称呼"),
    "company": ("company", "companyname", "公司", "公司名称", "企业", "企业名称", "单位"),
    "city": ("city", "城市", "所在城市", "地区", "所在地"),
    "product": ("product", "产品", "意向产品", "产品名称", "interest"),
}
LEAD_FIELDS: Final = frozenset(
    {"name", "surname", "gender", "honorific", "title", *ALIASES}
)  # fmt: skip


class TemplateError(ValueError):
    """A placeholder that names an undefined variable or has no fallback."""


def surname(name: str) -> str | None:
    """The family name of a Chinese name (王小明 -> 王, 欧阳娜娜 -> 欧阳); a Latin name's last
    word (John Smith -> Smith); None for anything else (one Latin word, digits)."""
    name = name.strip()
    if _CJK.match(name):
        return name[:2] if name[:2] in COMPOUND_SURNAMES and len(name) > 2 else name[0]
    words = name.split()
    if len(words) >= 2 and all(w.replace("-", "").replace("'", "").isalpha() for w in words):
        return words[-1].capitalize()
    return None


def gender(value: str) -> str | None:
    text = value.strip().lower()
    if text in _MALE:
        return "male"
    if text in _FEMALE:
        return "female"
    return None


def _column_key(header: str) -> str:
    return "".join(str(header).split()).lower()


def lead_fields(name: str | None, extra: Mapping[str, Any] | None) -> dict[str, str]:
    """The fields a script may say, from a lead's name and its other columns (`extra`)."""
    out: dict[str, str] = {}
    columns = {
        _column_key(k): str(v).strip()
        for k, v in (extra or {}).items()
        if isinstance(v, str | int | float) and not isinstance(v, bool) and str(v).strip()
    }
    for key, value in columns.items():
        if re.fullmatch(r"\w+", key):
            out[key] = value
    for field, keys in ALIASES.items():
        found = next((columns[k] for k in keys if k in columns), None)
        if found:
            out[field] = found
    if name and name.strip():
        out["name"] = name.strip()
        if family := surname(name):
            out["surname"] = family
    sex = gender(out.pop("gender", ""))
    if sex:
        out["gender"] = sex
        out["honorific"] = "先生" if sex == "male" else "女士"
        if "surname" in out:
            out["title"] = out["surname"] + out["honorific"]
    return out


def is_template(text: str) -> bool:
    """Whether `text` has a lead or slot placeholder (rendered per call, never pre-rendered)."""
    return PLACEHOLDER.search(text) is not None


def placeholders(text: str) -> list[tuple[str, str, str | None]]:
    """(space, name, fallback or None) of each placeholder in `text`, in order."""
    return [(m.group(1), m.group(2), m.group(3)) for m in PLACEHOLDER.finditer(text)]


def fill_vars(text: str, variables: Mapping[str, str]) -> str:
    """`text` with the script's ``vars`` put in (``{company}``); lead and slot placeholders
    stay for the call. An unknown ``{name}`` is a TemplateError."""

    def one(m: re.Match[str]) -> str:
        if PLACEHOLDER.fullmatch(m.group(0)):
            return m.group(0)
        key = m.group(1)
        if key in variables:
            return variables[key]
        if key.startswith(("lead.", "slot.")):
            raise TemplateError(f"bad placeholder {m.group(0)!r}")
        raise TemplateError(f"undefined variable {key!r}")

    rest = _BRACED.sub("", text)
    if "{" in rest or "}" in rest:
        raise TemplateError("an unmatched { or }")
    return _BRACED.sub(one, text)


def check_fallbacks(text: str, fallbacks: Mapping[str, str]) -> None:
    """Every placeholder in `text` has a fallback in place or in the script's ``fallbacks``."""
    for space, name, fallback in placeholders(text):
        if fallback is None and f"{space}.{name}" not in fallbacks:
            raise TemplateError(
                f"{{{space}.{name}}} has no fallback: write {{{space}.{name}|…}} or add "
                f"{space}.{name} under fallbacks:"
            )


def spoken(value: Any) -> str | None:
    """A slot's value as words to say, or None when it is not sayable (a flag, empty)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Mapping):
        text = value.get("text")
        return str(text) if text else None
    if isinstance(value, list | tuple):
        return "、".join(str(x) for x in value) or None
    if isinstance(value, str):
        try:
            at = datetime.fromisoformat(value) if "T" in value else None
        except ValueError:
            at = None
        if at is not None:
            minutes = f"{at.minute}分" if at.minute else ""
            return f"{at.month}月{at.day}日{at.hour}点{minutes}"
        return value or None
    return str(value)


def render(
    text: str,
    *,
    lead: Mapping[str, str],
    slots: Mapping[str, Any],
    fallbacks: Mapping[str, str] | None = None,
) -> str:
    """`text` with each placeholder replaced by the field's value, else its fallback."""
    return render_marked(text, lead=lead, slots=slots, fallbacks=fallbacks)[0]


def render_marked(
    text: str,
    *,
    lead: Mapping[str, str],
    slots: Mapping[str, Any],
    fallbacks: Mapping[str, str] | None = None,
) -> tuple[str, bool]:
    """`render`, and whether a lead field's or a slot's own value went in (the line is then
    personal: PII that must never reach the prompt cache); only fallbacks said: False."""
    if "{" not in text:
        return text, False
    filled = False

    def one(m: re.Match[str]) -> str:
        nonlocal filled
        space, name, fallback = m.group(1), m.group(2), m.group(3)
        value = lead.get(name) if space == "lead" else spoken(slots.get(name))
        if value:
            filled = True
            return value
        if fallback is not None:
            return fallback
        return (fallbacks or {}).get(f"{space}.{name}", "")

    return PLACEHOLDER.sub(one, text), filled
