"""Phone numbers: E.164 normalisation, JIDs, masking; errors never leak the number."""

from __future__ import annotations

import re

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wafleet.core.phones import (
    EXAMPLE_PHONE,
    JID_SUFFIX,
    PHONE_PATTERN,
    InvalidPhone,
    jid_to_phone,
    mask_phone,
    normalize_phone,
    normalize_recipient,
    phone_to_jid,
)

RO = "+40712345678"


def digits(text: str) -> str:
    return re.sub(r"\D", "", text)


# ----- normalisation -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw",
    [
        "+40712345678",
        "  +40712345678  ",
        "+40712345678\n",
        "+40 712 345 678",
        "+40-712-345-678",
        "+40 (712) 345-678",
        "+40.712.345.678",
        "0040712345678",
        "00 40 712 345 678",
        "40712345678@s.whatsapp.net",
        " 40712345678@s.whatsapp.net ",
        "40712345678:12@s.whatsapp.net",
        "(+40)712345678",
        "(+40) 712 345 678",
        "+(40) 712-345-678",
        "(0040) 712 345 678",
        "+40 712/345/678",
        "\t+40712345678\r\n",
    ],
)
def test_international_forms_become_e164(raw: str) -> None:
    assert normalize_phone(raw) == RO


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("0712 345 678", "RO", RO),
        ("0712-345-678", "RO", RO),
        ("030 123456", "DE", "+4930123456"),
        ("(650) 253-0000", "US", "+16502530000"),
    ],
)
def test_local_number_with_default_region(raw: str, region: str, expected: str) -> None:
    assert normalize_phone(raw, region) == expected


def test_international_number_ignores_default_region() -> None:
    assert normalize_phone(RO, "DE") == RO
    assert normalize_phone("0040712345678", "DE") == RO


def test_local_number_without_region_is_refused_with_a_hint() -> None:
    with pytest.raises(InvalidPhone, match="no country code") as info:
        normalize_phone("0712 345 678")
    assert "WAFLEET_DEFAULT_REGION" in str(info.value)


def test_unknown_region_is_refused() -> None:
    with pytest.raises(InvalidPhone):
        normalize_phone("0712345678", "XX")


@pytest.mark.parametrize(
    "raw",
    [
        "+4071234",  # too few digits for Romania
        "+40712345678901",  # too many
        "+999123456789",  # no such country code
        "+",
        "hello",
        "+abc",
        "++",
        "abc@s.whatsapp.net",
    ],
)
def test_invalid_numbers_are_refused(raw: str) -> None:
    with pytest.raises(InvalidPhone):
        normalize_phone(raw)


@pytest.mark.parametrize("raw", ["", "   ", "\t\n"])
def test_empty_is_refused(raw: str) -> None:
    with pytest.raises(InvalidPhone, match="empty"):
        normalize_phone(raw)


@pytest.mark.parametrize("raw", [None, 40712345678, 4.07e10, b"+40712345678", ["+40712345678"]])
def test_non_strings_are_refused(raw: object) -> None:
    with pytest.raises(InvalidPhone, match="must be a string"):
        normalize_phone(raw)


def test_invalid_phone_is_a_value_error() -> None:
    assert issubclass(InvalidPhone, ValueError)


@pytest.mark.parametrize("raw", ["+" + "4" * 40, "0" * 33, "+40712345678" + " " * 30 + "9"])
def test_too_long_is_refused(raw: str) -> None:
    with pytest.raises(InvalidPhone, match="too long"):
        normalize_phone(raw)


def test_32_characters_is_the_limit() -> None:
    raw = "+40" + " " * 18 + "712 345 678"  # separators pad it to exactly 32 characters
    assert len(raw) == 32
    assert normalize_phone(raw) == RO
    with pytest.raises(InvalidPhone, match="too long"):
        normalize_phone(raw.replace("+40", "+40 "))


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("+40712345678901", None),
        ("+4071234567", None),
        ("+999123456789", None),
        ("0712345678", None),
        ("0712345678901", "RO"),
        ("07123456789", "XX"),
        ("99912345678901@s.whatsapp.net", None),
        ("+40 (712) 345-67", None),
        ("+40712345678x" + "9" * 15, None),
        ("4" * 33, None),
    ],
)
def test_errors_never_contain_the_full_phone(raw: str, region: str | None) -> None:
    with pytest.raises(InvalidPhone) as info:
        normalize_phone(raw, region)
    message = str(info.value)
    number = raw.split("@", maxsplit=1)[0]
    assert number not in message
    assert digits(number) not in digits(message)


@pytest.mark.parametrize(
    ("raw", "found"),
    [
        ("+40712ABCDEF", "a letter 'A'"),  # not +40712222333, as a keypad would read it
        ("+40 712 FLOWERS", "a letter 'F'"),
        ("+40712345678 ext. 12", "a letter 'e'"),
        ("+40712345678x9", "a letter 'x'"),
        ("+4O7I2345678", "a letter 'O'"),
        ("+40\u00a0712345678", "a character U+00A0"),  # non-ASCII space
        ("\uff0b\uff14\uff10\uff17\uff11\uff12\uff13\uff14\uff15", "a character U+FF0B"),
        ("+\u0664\u0660712345678", "a character U+0664"),  # Arabic-Indic digits
        ("+40712345678\u202e", "a character U+202E"),
        ("+40712\x00345678", "a character U+0000"),
        ("+40712\ud800345678", "a character U+D800"),
        ("+40#712345678", "a character '#'"),
        ("+40*712345678", "a character '*'"),
        ("+40 712\t345 678", "a character U+0009"),  # tabs only around it
    ],
)
def test_anything_but_digits_and_separators_is_refused_naming_it(raw: str, found: str) -> None:
    with pytest.raises(InvalidPhone, match="letters are not read as keypad digits") as info:
        normalize_phone(raw)
    assert f"phone holds {found};" in str(info.value)


def test_a_jid_with_letters_is_refused() -> None:
    with pytest.raises(InvalidPhone, match=re.escape("only digits before '@s.whatsapp.net'")):
        normalize_phone("4071a345678@s.whatsapp.net")


def test_the_example_phone_is_valid() -> None:
    assert normalize_phone(EXAMPLE_PHONE) == EXAMPLE_PHONE


# ----- PHONE_PATTERN, the spelling the OpenAPI document publishes -------------------------
_PHONE_RE = re.compile(PHONE_PATTERN.replace("$", r"\Z"))


@settings(max_examples=300, deadline=None)
@given(raw=st.from_regex(_PHONE_RE, fullmatch=True).filter(lambda t: len(t.strip()) <= 32))
def test_a_phone_matching_the_pattern_is_judged_as_a_number_only(raw: str) -> None:
    """Matching the pattern, a phone is refused only for what the number is, never for
    how it is written."""
    try:
        normalize_phone(raw)
    except InvalidPhone as exc:
        assert "phone holds" not in str(exc), exc


@settings(max_examples=300, deadline=None)
@given(raw=st.text(max_size=32).filter(lambda t: _PHONE_RE.match(t) is None))
def test_a_phone_not_matching_the_pattern_is_refused(raw: str) -> None:
    with pytest.raises(InvalidPhone):
        normalize_phone(raw)


@settings(max_examples=200, deadline=None)
@given(
    country=st.sampled_from(["RO", "GB", "DE", "US", "FR", "BR", "IN", "NG"]),
    kind=st.sampled_from(
        [phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]
    ),
    spelling=st.sampled_from(
        [
            phonenumbers.PhoneNumberFormat.E164,
            phonenumbers.PhoneNumberFormat.INTERNATIONAL,
        ]
    ),
)
def test_every_country_s_example_numbers_are_read(
    country: str, kind: phonenumbers.PhoneNumberType, spelling: int
) -> None:
    number = phonenumbers.example_number_for_type(country, kind)
    assert number is not None
    written = phonenumbers.format_number(number, spelling)
    assert _PHONE_RE.match(written)
    expected = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    assert normalize_phone(written) == expected


# ----- masking -----------------------------------------------------------------------------
def test_mask_phone_keeps_only_prefix_and_last_two() -> None:
    assert mask_phone(RO) == "+407****78"
    masked = mask_phone(RO)
    assert digits(RO) not in digits(masked)


def test_mask_phone_of_a_jid_drops_the_server() -> None:
    masked = mask_phone("40712345678@s.whatsapp.net")
    assert masked == "4071****78"
    assert "whatsapp" not in masked


@pytest.mark.parametrize("short", ["", "1", "+1234", "123456"])
def test_mask_phone_hides_short_values_entirely(short: str) -> None:
    assert mask_phone(short) == "*" * len(short)


# ----- JIDs ----------------------------------------------------------------------------------
def test_phone_to_jid_and_back() -> None:
    assert phone_to_jid(RO) == "40712345678@s.whatsapp.net"
    assert phone_to_jid(RO).endswith(JID_SUFFIX)
    assert jid_to_phone(phone_to_jid(RO)) == RO


def test_jid_to_phone_drops_the_device_part() -> None:
    assert jid_to_phone("40712345678:5@s.whatsapp.net") == RO
    assert jid_to_phone("40712345678:5") == RO


@pytest.mark.parametrize("phone", [RO, "+4930123456", "+16502530000", "+447911123456"])
def test_round_trips_through_normalisation(phone: str) -> None:
    jid = phone_to_jid(phone)
    assert normalize_phone(jid) == phone
    assert phone_to_jid(jid_to_phone(jid)) == jid
    assert normalize_phone(jid_to_phone(jid)) == phone


# ----- recipients ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "region"),
    [
        (RO, None),
        ("+40 712 345 678", None),
        ("0040712345678", None),
        ("40712345678@s.whatsapp.net", None),
        ("40712345678:3@s.whatsapp.net", None),
        ("0712 345 678", "RO"),
    ],
)
def test_normalize_recipient_gives_a_user_jid(raw: str, region: str | None) -> None:
    assert normalize_recipient(raw, region) == "40712345678@s.whatsapp.net"


@pytest.mark.parametrize("raw", ["0712345678", "+4071234", "", None, 42])
def test_normalize_recipient_refuses_what_normalize_phone_refuses(raw: object) -> None:
    with pytest.raises(InvalidPhone):
        normalize_recipient(raw)
