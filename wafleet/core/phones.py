"""Phone numbers: parsing to E.164, WhatsApp JIDs, masking for logs."""

from __future__ import annotations

import phonenumbers

JID_SUFFIX = "@s.whatsapp.net"


class InvalidPhone(ValueError):
    """A phone number that cannot be used; the message says what to fix."""


def normalize_phone(raw: object, default_region: str | None = None) -> str:
    """Return ``raw`` as an E.164 string ("+40712345678") or raise InvalidPhone.

    A number without a leading "+" is read as a local number of ``default_region``
    (an ISO 3166 code such as "RO"); without a region it must be international.
    A WhatsApp JID ("40712345678@s.whatsapp.net") is accepted too.
    """
    if not isinstance(raw, str):
        raise InvalidPhone("phone must be a string such as '+40712345678'")
    text = raw.strip()
    if text.endswith(JID_SUFFIX):
        text = "+" + text.removesuffix(JID_SUFFIX).split(":")[0]
    if not text:
        raise InvalidPhone("phone is empty; give it in E.164 form such as '+40712345678'")
    if len(text) > 32:
        raise InvalidPhone("phone is too long; give it in E.164 form such as '+40712345678'")
    if text.startswith("00"):
        text = "+" + text[2:]
    region = None if text.startswith("+") else default_region
    if region is not None:
        region = region.upper()
    if region is None and not text.startswith("+"):
        raise InvalidPhone(
            f"phone {mask_phone(text)!r} has no country code; write it as '+<country><number>' "
            "or set WAFLEET_DEFAULT_REGION for local numbers"
        )
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"phone {mask_phone(text)!r} is not a phone number: {exc}") from exc
    if not phonenumbers.is_valid_number(parsed):
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
