"""Hypothesis strategies shared by the property tests and the schemathesis hooks.

Valid values are built with independent oracles (phonenumbers, unicodedata), never with
the server's own checks, so a test of the server against them means something.
"""

from __future__ import annotations

import base64
import json
import unicodedata
from typing import Any

import phonenumbers
from hypothesis import strategies as st

# ----- phones ------------------------------------------------------------------------------
# (country code, leading digits, choices of the next digit, how many digits follow): mobile
# ranges every number of which is valid, as their numbering plans say (RO, GB, DE).
_RANGES = [("40", "7", "234567", 7), ("44", "7", "123", 8), ("49", "17", "0123456789", 7)]
SPELLINGS = ("e164", "international", "parenthesised", "00", "jid", "padded")


@st.composite
def numbers(draw: st.DrawFn) -> str:
    """A valid number, in E.164."""
    country, lead, nexts, rest = draw(st.sampled_from(_RANGES))
    after = draw(st.sampled_from(nexts))
    digits = draw(st.text(alphabet="0123456789", min_size=rest, max_size=rest))
    e164 = f"+{country}{lead}{after}{digits}"
    if not phonenumbers.is_valid_number(phonenumbers.parse(e164)):  # the ranges are valid
        raise AssertionError(f"{e164} is not valid")
    return e164


def spell(e164: str, how: str) -> str:
    """``e164`` written one of the ways a person or a WhatsApp client writes it."""
    number = phonenumbers.parse(e164)
    if how == "international":
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    if how == "parenthesised":
        return f"(+{number.country_code}) {number.national_number}"
    if how == "00":
        return "00" + e164[1:]
    if how == "jid":
        return e164[1:] + "@s.whatsapp.net"
    if how == "padded":
        return f"  {e164}\n"
    return e164


# (what to send, the E.164 the server must make of it)
spelled_phones = st.builds(
    lambda e164, how: (spell(e164, how), e164), numbers(), st.sampled_from(SPELLINGS)
)
phones = spelled_phones.map(lambda pair: pair[0])

# ----- text --------------------------------------------------------------------------------
# Characters that have broken or fooled servers: lone surrogates, NUL and other controls,
# bidi overrides, isolates and marks, invisible format characters, look-alike digits.
NASTY = [
    "\ud800", "\udbff", "\udc00", "\udfff", "\x00", "\x01", "\x1b", "\x7f", "\x85", "\x9f",
    "\u2028", "\u2029", "\u202a", "\u202e", "\u2066", "\u2069", "\u200e", "\u200f", "\u200b",
    "\ufeff", "\u00ad", "\u061c", "\n", "\r", "\t", " ", "\u00a0", "\u3000", "é", "Ä", "中",
    "\u0661", "\U0001d7d8", "\uff10", "\U000e0041", "\U0001f600", "+", "@", "%", "\\", '"',
]  # fmt: skip
nasty_chars = st.one_of(st.sampled_from(NASTY), st.characters(exclude_categories=()))


def nasty_text(max_size: int = 24) -> st.SearchStrategy[str]:
    return st.text(alphabet=nasty_chars, max_size=max_size)


def _allowed_in_name(char: str) -> bool:
    """unicodedata's view: no control, line or paragraph separator, surrogate, nor format
    character of the BMP but ZWNJ and ZWJ."""
    category = unicodedata.category(char)
    if category in ("Cc", "Cs", "Zl", "Zp"):
        return False
    return category != "Cf" or ord(char) > 0xFFFF or char in "\u200c\u200d"


def forbidden_in_name(char: str) -> bool:
    return not _allowed_in_name(char)


names = st.text(alphabet=nasty_chars.filter(_allowed_in_name), max_size=100)
bad_name_chars = nasty_chars.filter(forbidden_in_name)

# Free text: anything but NUL and lone surrogates; more than whitespace.
texts = st.text(
    alphabet=nasty_chars.filter(lambda c: c != "\x00" and not 0xD800 <= ord(c) <= 0xDFFF),
    min_size=1,
    max_size=200,
).filter(lambda t: t.strip() != "")
visible_ascii = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1)

# ----- JSON --------------------------------------------------------------------------------
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**20, max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    nasty_text(),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(nasty_text(6), inner, max_size=3),
    max_leaves=6,
)


def bodies(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects with any of ``fields`` (each valid or anything at all) and extra keys."""
    known = st.fixed_dictionaries(
        {}, optional={name: valid | json_values for name, valid in fields.items()}
    )
    extra = st.dictionaries(nasty_text(8), json_values, max_size=2)
    return st.builds(lambda e, k: {**e, **k}, extra, known)


def encode(body: object) -> bytes:
    """As a client sends it: lone surrogates written as \\ud800 escapes, NaN as NaN."""
    return json.dumps(body).encode()


# ----- listing cursors ---------------------------------------------------------------------
_CURSOR_TEXT = st.text(alphabet="0123456789-:.TZabcdefghijklmnopqrstuvwxyz", max_size=30)
cursors = st.builds(
    lambda created, account_id: (
        base64.urlsafe_b64encode(f"{created}|{account_id}".encode()).decode().rstrip("=")
    ),
    _CURSOR_TEXT,
    _CURSOR_TEXT,
)


# ----- webhooks ----------------------------------------------------------------------------
# Loopback URLs on a closed port: the contract run's server allows them
# (WAFLEET_WEBHOOK_ALLOW_PRIVATE) and its deliveries are refused at once, so no test
# traffic ever leaves the machine.
_URL_PATH = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_/.~", max_size=40)
webhook_urls = st.builds(
    lambda scheme, host, path: f"{scheme}://{host}:9/{path}",
    st.sampled_from(["http", "https", "HTTP"]),
    st.sampled_from(["127.0.0.1", "[::1]"]),
    _URL_PATH,
)
webhook_secrets = st.binary(min_size=24, max_size=64).map(
    lambda raw: "whsec_" + base64.b64encode(raw).decode()
)


# ----- what every answer must be -----------------------------------------------------------
def check_answer(status: int, content_type: str, text: str) -> dict[str, Any] | None:
    """Never a 5xx; a 4xx is the one JSON error shape. Returns the error (None on success)."""
    assert status < 500, f"{status}: {text[:500]}"
    if status < 400:
        return None
    assert content_type.startswith("application/json"), f"{status} {content_type}: {text[:300]}"
    body = json.loads(text)
    assert set(body) == {"success", "error"}, body
    assert body["success"] is False, body
    error = body["error"]
    assert set(error) == {"code", "message"}, body
    assert isinstance(error["code"], str) and error["code"], body
    assert isinstance(error["message"], str) and error["message"], body
    result: dict[str, Any] = error
    return result
