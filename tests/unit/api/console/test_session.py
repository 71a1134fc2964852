"""The session cookie and CSRF tokens as values: signed, expiring, bound, unforgeable;
and where a sign-in may send a person back to."""

from __future__ import annotations

import base64
import json

import pytest

from wafleet_api.console.paths import is_console_path, safe_next
from wafleet_api.console.session import SessionCodec

KEY = b"k" * 40
NOW = 1_800_000_000.0


def codec(key: bytes = KEY, ttl: int = 3600) -> SessionCodec:
    return SessionCodec(key, ttl, clock=lambda: NOW)


def test_a_cookie_reads_back_and_names_no_secret() -> None:
    made = codec()
    session = made.new("key:0123456789ab", made.binding(b"the key's stored hash"))
    cookie = made.encode(session)
    assert made.decode(cookie) == session
    assert session.signed_in and session.key_id == "0123456789ab"
    assert session.expires == NOW + 3600
    payload = json.loads(base64.urlsafe_b64decode(cookie.split(".")[0] + "=="))
    assert set(payload) == {"s", "w", "e", "b"}
    assert "the key's stored hash" not in cookie


def test_altered_forged_expired_or_foreign_cookies_read_as_none() -> None:
    made = codec()
    cookie = made.encode(made.new("admin", "b"))
    payload, signature = cookie.split(".")
    promoted = base64.urlsafe_b64encode(
        json.dumps({"s": "x", "w": "admin", "e": int(NOW) + 99, "b": "b"}).encode()
    ).decode()
    for bad in [
        f"{promoted.rstrip('=')}.{signature}",  # another payload under the same signature
        f"{payload}.{signature[:-2]}AA",
        payload,
        "",
        "a.b.c",
        "x" * 2000,
    ]:
        assert made.decode(bad) is None, bad
    assert codec(b"o" * 40).decode(cookie) is None  # another installation's link key
    later = SessionCodec(KEY, 3600, clock=lambda: NOW + 3600)
    assert later.decode(cookie) is None  # expired


def test_csrf_tokens_belong_to_one_session() -> None:
    made = codec()
    one, two = made.new(), made.new()
    assert one.sid != two.sid
    assert made.csrf_ok(one, made.csrf(one))
    assert not made.csrf_ok(one, made.csrf(two))
    assert not made.csrf_ok(one, None) and not made.csrf_ok(one, "")
    assert not codec(b"o" * 40).csrf_ok(one, made.csrf(one))


def test_signed_out_sessions_last_an_hour_at_most() -> None:
    made = codec(ttl=43200)
    assert made.new().expires == NOW + 3600
    assert made.new("admin").expires == NOW + 43200


def test_bindings_differ_by_credential_and_key() -> None:
    made = codec()
    assert made.binding(b"a") == made.binding(b"a") != made.binding(b"b")
    assert codec(b"o" * 40).binding(b"a") != made.binding(b"a")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("/", "/"),
        ("/console/accounts/wa-abc", "/console/accounts/wa-abc"),
        ("/console/accounts/wa-abc?token=x", "/console/accounts/wa-abc"),  # no query kept
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("/api/whatsapp/accounts", "/"),
        ("/console/sign-in", "/"),
        ("/console/static/htmx.min.js", "/"),
        ("", "/"),
        (None, "/"),
        ("/console/é", "/"),
    ],
)
def test_sign_in_returns_only_to_console_pages(given: str | None, expected: str) -> None:
    assert safe_next(given) == expected


def test_console_paths() -> None:
    assert is_console_path("/") and is_console_path("/console") and is_console_path("/console/x")
    assert not is_console_path("/consolex") and not is_console_path("/api/whatsapp/accounts")
