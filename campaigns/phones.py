"""Phone numbers in one form: E.164 ("+8613800138000"), parsed and validated by `phonenumbers`.

Every number the system stores or compares (a lead's phone, a do-not-call entry) goes through
`normalize`, so "138 0013 8000", "+86 138-0013-8000" and "0086 13800138000" are one number and
"010-6552 9988" and "+86 10 6552 9988" are one landline. Input a person did not mean as a phone
number is refused with a reason, never "fixed": Excel's `1.38001E+10` (the digits are gone),
letters mixed in (`138abc0013def8009`), a 10-digit "mobile" (`1380013800`).

Reasons never contain the number itself (no PII in messages).
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import (
    NumberParseException,
    PhoneNumber,
    PhoneNumberFormat,
    PhoneNumberType,
    ValidationResult,
)

DEFAULT_REGION = "CN"
"""Numbers written without a country code are read as this region's (ISO 3166 code)."""

_EXCEL_SCIENTIFIC = re.compile(r"^[+-]?\d+(?:\.\d+)?[eE][+-]?\d+$")
_EXCEL_DECIMAL = re.compile(r"^\d+\.0+$")
_SHAPE = re.compile(r"^\+?[\d\s\-().\u3000]+$")  # digits, separators, one leading +
_SEPARATORS = str.maketrans("", "", " \t-().\u3000")
_CN_MOBILE = re.compile(r"^1\d{10}$")
_CN_COUNTRY_PREFIXES = ("+86", "0086")
_LENGTH_REASONS = {
    ValidationResult.TOO_SHORT: "too few digits",
    ValidationResult.TOO_LONG: "too many digits",
    ValidationResult.INVALID_LENGTH: "wrong number of digits",
    ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
}


class PhoneError(ValueError):
    """Not a phone number that can be dialled; the message says why (without the number)."""


def normalize(text: str, region: str = DEFAULT_REGION) -> str:
    """The number in `text` as E.164, or PhoneError with the reason it is refused.

    Accepts mobiles, landlines with their area code (010…, +86 10…, 0086 10…), 400/800
    numbers and other countries' numbers with their +country code, written with spaces,
    dashes, dots or brackets.
    """
    raw = text.strip()
    if not raw:
        raise PhoneError("empty")
    if _EXCEL_SCIENTIFIC.match(raw):
        raise PhoneError(
            "a number Excel turned into scientific notation (digits are lost): format the "
            "column as text in the spreadsheet and export it again"
        )
    if _EXCEL_DECIMAL.match(raw):
        raise PhoneError("a decimal number (Excel?): format the column as text and export again")
    if not _SHAPE.match(raw):
        what = "letters" if any(c.isalpha() for c in raw) else "characters"
        raise PhoneError(f"has {what} a phone number cannot have")
    fast = _cn_mobile(raw.translate(_SEPARATORS), region)
    number = fast if fast is not None else _parse(raw, region)
    kind = phonenumbers.number_type(number)  # UNKNOWN exactly when is_valid_number is False
    if kind == PhoneNumberType.UNKNOWN:
        raise PhoneError(_invalid_reason(number))
    if kind == PhoneNumberType.PREMIUM_RATE:
        raise PhoneError("a premium-rate number")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def check_region(region: str) -> None:
    """PhoneError unless `region` is a region code phonenumbers knows ("CN", "US", ...)."""
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise PhoneError(f"unknown region {region!r} (an ISO 3166 code such as CN)")


def legacy_forms(e164: str) -> tuple[str, ...]:
    """Forms an older version stored for this number (digits, Chinese country code dropped).

    Leads and do-not-call entries stored before E.164 hold "13800138000" or "01065529988";
    a check against stored rows that may predate E.164 looks for these too.
    """
    if e164.startswith("+86"):
        national = e164[3:]
        return (national,) if _CN_MOBILE.match(national) else (national, "0" + national)
    return (e164.lstrip("+"),)


def _cn_mobile(digits: str, region: str) -> PhoneNumber | None:
    """A Chinese mobile built without the general parser (6x faster), or None if not one.

    Bulk imports are mostly plain 11-digit mobiles; everything else goes through `parse`.
    """
    prefixes = _CN_COUNTRY_PREFIXES if region == "CN" else ("+86",)  # 00 dials out from CN
    for prefix in prefixes:
        if digits.startswith(prefix):
            digits = digits[len(prefix) :]
            break
    else:
        if region != "CN":
            return None
    if not (digits.isascii() and _CN_MOBILE.match(digits)):
        return None
    return PhoneNumber(country_code=86, national_number=int(digits))


def _parse(raw: str, region: str) -> PhoneNumber:
    try:
        return phonenumbers.parse(raw, region)
    except NumberParseException:
        raise PhoneError("not a phone number") from None


def _invalid_reason(number: PhoneNumber) -> str:
    region = phonenumbers.region_code_for_number(number) or "its country"
    length = phonenumbers.is_possible_number_with_reason(number)
    if length in _LENGTH_REASONS:
        return f"{_LENGTH_REASONS[length]} for a {region} number"
    if region == "CN":
        return (
            "not a valid CN number (a mobile has 11 digits; a landline needs its area code, "
            "e.g. 010)"
        )
    return f"not a valid {region} number"
