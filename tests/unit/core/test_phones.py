"""Phone numbers: E.164 normalisation, JIDs, masking; errors never leak the number."""

from __future__ import annotations

import re

import pytest

from wafleet.core.phones import (
    JID_SUFFIX,
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
