"""Phone numbers: parsing to E.164, WhatsApp JIDs, masking for logs.

A phone is read in two steps. Its spelling must match ``PHONE_PATTERN`` (ASCII digits,
a "+", spaces and the separators ``( ) - . /``, or a WhatsApp JID); this is the pattern
the OpenAPI document publishes, so a client can check it before sending. Letters are
refused there: they are never read as keypad digits. Then the number must be valid for
its country, as ``phonenumbers`` knows the numbering plans.
"""

from __future__ import annotations

import re

import phonenumbers

JID_SUFFIX = "@s.whatsapp.net"
MAX_PHONE_LENGTH = 32  # characters, once the surrounding whitespace is stripped
# Whitespace around a phone (a pasted line end) is dropped; inside, only spaces separate.
SURROUNDING_SPACE = " \t\n\r"
_NUMBER = r"[0-9+()./ -]*[0-9][0-9+()./ -]*"
_JID = r"[0-9]+(?::[0-9]+)?@s\.whatsapp\.net"
# ECMA 262 and Python read this pattern alike (the OpenAPI document publishes it).
PHONE_PATTERN = rf"^[ \t\n\r]*(?:{_NUMBER}|{_JID})[ \t\n\r]*$"
_PHONE_RE = re.compile(PHONE_PATTERN)
_SEPARATORS = "0123456789+()./ -"
EXAMPLE_PHONE = "+40712345678"


class InvalidPhone(ValueError):
    """A phone number that cannot be used; the message says what to fix."""


def _char_name(char: str) -> str:
    return repr(char) if char.isascii() and char.isprintable() else f"U+{ord(char):04X}"


def _spelling_error(text: str) -> InvalidPhone:
    """Why ``text`` does not match PHONE_PATTERN, without repeating the number."""
    jid = text.endswith(JID_SUFFIX)
    allowed = "0123456789:" if jid else _SEPARATORS
    bad = next((c for c in text.removesuffix(JID_SUFFIX) if c not in allowed), None)
    if bad is not None:
        what = "a letter" if bad.isalpha() else "a character"
        how = (
            "a WhatsApp JID has only digits before '@s.whatsapp.net'"
            if jid
            else "write it with the digits 0-9, a leading '+', spaces and ( ) - . / only, "
            "such as '+40712345678' (letters are not read as keypad digits)"
        )
        return InvalidPhone(f"phone holds {what} {_char_name(bad)}; {how}")
    return InvalidPhone(
        f"phone {mask_phone(text)!r} is not a phone number; write it in E.164 form such as "
        "'+40712345678', or as a WhatsApp JID such as '40712345678@s.whatsapp.net'"
    )


def _international(text: str) -> str | None:
    """``text`` with a "00" international prefix as "+"; None for a local number."""
    lead = text.lstrip("( ")
    start = len(text) - len(lead)
    if lead.startswith("+"):
        return text
    if lead.startswith("00"):
        return text[:start] + "+" + lead[2:]
    return None


def normalize_phone(raw: object, default_region: str | None = None) -> str:
    """Return ``raw`` as an E.164 string ("+40712345678") or raise InvalidPhone.

    A number without a leading "+" (or "00") is read as a local number of
    ``default_region`` (an ISO 3166 code such as "RO"); without a region it must be
    international. "(+40) 712 345 678" is international too. A WhatsApp JID
    ("40712345678@s.whatsapp.net") is accepted.
    """
    if not isinstance(raw, str):
        raise InvalidPhone("phone must be a string such as '+40712345678'")
    text = raw.strip(SURROUNDING_SPACE)
    if not text:
        raise InvalidPhone("phone is empty; give it in E.164 form such as '+40712345678'")
    if len(text) > MAX_PHONE_LENGTH:
        raise InvalidPhone("phone is too long; give it in E.164 form such as '+40712345678'")
    if not _PHONE_RE.fullmatch(text):
        raise _spelling_error(text)
    if text.endswith(JID_SUFFIX):
        text = "+" + text.removesuffix(JID_SUFFIX).split(":")[0]
    international = _international(text)
    region = None if international is not None else default_region
    if region is None and international is None:
        raise InvalidPhone(
            f"phone {mask_phone(text)!r} has no country code; write it as '+<country><number>' "
            "or set WAFLEET_DEFAULT_REGION for local numbers"
        )
    try:
        parsed = phonenumbers.parse(international or text, region and region.upper())
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"phone {mask_phone(text)!r} is not a phone number: {exc}") from exc
    if parsed.extension or not phonenumbers.is_valid_number(parsed):
        raise InvalidPhone(
            f"phone {mask_phone(text)!r} is not a valid number for its country; "
            "check the country code and the number of digits"
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def phone_to_jid(e164: str) -> str:
    """ "+40712345678" -> "40712345678@s.whatsapp.net"."""
    return e164.lstrip("+") + JID_SUFFIX


def jid_to_phone(jid: str) -> str:
    """ "40712345678@s.whatsapp.net" (or with a ":device" part) -> "+40712345678"."""
    user = jid.split("@", 1)[0].split(":", 1)[0]
    return "+" + user


def normalize_recipient(raw: object, default_region: str | None = None) -> str:
    """A send target as a user JID: accepts a phone or a JID ("...@s.whatsapp.net")."""
    return phone_to_jid(normalize_phone(raw, default_region))


def mask_phone(value: str) -> str:
    """Mask a phone or JID for logs and dashboards: "+40712345678" -> "+407****78"."""
    text = value.split("@", 1)[0]
    if len(text) <= 6:
        return "*" * len(text)
    return text[:4] + "****" + text[-2:]
