"""campaigns.phones: every way a number is written -> one E.164 form; garbage refused, never
"fixed", with a reason that does not repeat the number."""

from __future__ import annotations

import random
import re

import phonenumbers
import pytest

from campaigns.phones import PhoneError, check_region, legacy_forms, normalize


@pytest.mark.parametrize(
    ("text", "e164"),
    [
        ("13800138000", "+8613800138000"),
        ("138 0013 8000", "+8613800138000"),
        ("138-0013-8000", "+8613800138000"),
        ("+86 138-0013-8000", "+8613800138000"),
        ("0086 13800138000", "+8613800138000"),
        ("+86(138)00138000", "+8613800138000"),
        ("１３８００１３８０００", "+8613800138000"),  # full-width digits
        (" 13800138000\t", "+8613800138000"),
        ("010-6552 9988", "+861065529988"),
        ("(010) 6552 9988", "+861065529988"),
        ("+86 10 6552 9988", "+861065529988"),
        ("0086 10 65529988", "+861065529988"),
        ("021-6123 4567", "+862161234567"),
        ("0755-8123 4567", "+8675581234567"),
        ("400-123-4567", "+864001234567"),
        ("800-820-8820", "+868008208820"),
        ("+1 650 253 0000", "+16502530000"),
    ],
)
def test_written_forms_are_one_e164_number(text: str, e164: str) -> None:
    assert normalize(text) == e164


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1.38001E+10", "scientific notation"),  # Excel: the digits are gone
        ("1.38001e10", "scientific notation"),
        ("13800138000.0", "decimal"),
        ("138abc0013def8009", "letters"),  # not 13800138009
        ("1380013800", "not a valid CN number"),  # 10 digits: not a mobile
        ("13800138000/13900139000", "characters"),
        ("12345", "not a valid CN number"),
        ("1390000000012", "too many digits"),
        ("", "empty"),
        ("   ", "empty"),
    ],
)
def test_garbage_is_refused_with_a_reason_and_never_the_number(text: str, reason: str) -> None:
    with pytest.raises(PhoneError) as err:
        normalize(text)
    assert reason in str(err.value)
    digits = re.sub(r"\D", "", text)
    if len(digits) >= 5:
        assert digits not in re.sub(r"\D", "", str(err.value))


def test_the_fast_path_agrees_with_phonenumbers() -> None:
    """Plain mobiles skip the general parser: the answer must be the library's."""
    rng = random.Random(7)
    for _ in range(3000):
        text = str(rng.randrange(10**10, 2 * 10**10))  # 11 digits starting with 1
        expected = _library_e164(text)
        try:
            got: str | None = normalize(text)
        except PhoneError:
            got = None
        assert got == expected, text


def _library_e164(text: str) -> str | None:
    try:
        number = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException:
        return None
    ok = phonenumbers.is_valid_number(number) and (
        phonenumbers.number_type(number) != phonenumbers.PhoneNumberType.PREMIUM_RATE
    )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) if ok else None


def test_region_reads_national_numbers() -> None:
    assert normalize("(650) 253-0000", "US") == "+16502530000"
    assert normalize("+86 138 0013 8000", "US") == "+8613800138000"
    with pytest.raises(PhoneError, match="unknown region"):
        check_region("XX")


def test_legacy_forms_are_the_old_stored_digits() -> None:
    assert legacy_forms("+8613800138000") == ("13800138000",)
    assert legacy_forms("+861065529988") == ("1065529988", "01065529988")
    assert legacy_forms("+16502530000") == ("16502530000",)
