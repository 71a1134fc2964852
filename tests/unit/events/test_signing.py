"""Webhook secrets and signatures: what we send verifies with the Standard Webhooks library."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from wafleet.events.signing import check_secret, new_secret, signed_headers

BODY = json.dumps({"id": "evt_1", "type": "message.inbound", "data": {"body": "hi"}})


def test_new_secret_is_prefixed_base64_of_random_bytes() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    raw = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    assert 24 <= len(raw) <= 32
    assert check_secret(secret) == secret
    assert new_secret() != secret


def test_the_library_verifies_what_we_send() -> None:
    secret = new_secret()
    at = datetime.now(UTC)
    headers = signed_headers(secret, "evt_1", BODY, at)
    assert headers["webhook-id"] == "evt_1"
    assert headers["webhook-timestamp"] == str(int(at.timestamp()))
    assert headers["webhook-signature"].startswith("v1,")
    assert headers["content-type"] == "application/json"
    assert "wafleet" in headers["user-agent"]
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)


def test_a_non_utc_time_signs_the_same_instant() -> None:
    secret = new_secret()
    at = datetime.now(UTC)
    local = at.astimezone(timezone(timedelta(hours=3)))
    assert signed_headers(secret, "evt_1", BODY, local) == signed_headers(secret, "evt_1", BODY, at)
    Webhook(secret).verify(BODY, signed_headers(secret, "evt_1", BODY, local))


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        signed_headers(new_secret(), "evt_1", BODY, datetime.now())


@pytest.mark.parametrize(
    "tamper",
    [
        lambda body, headers: (body.replace("hi", "ho"), headers),
        lambda body, headers: (body, {**headers, "webhook-id": "evt_2"}),
        lambda body, headers: (
            body,
            {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) + 1)},
        ),
    ],
    ids=["body", "id", "timestamp"],
)
def test_tampering_fails_verification(tamper: object) -> None:
    secret = new_secret()
    headers = signed_headers(secret, "evt_1", BODY, datetime.now(UTC))
    body, changed = tamper(BODY, headers)  # type: ignore[operator]
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, changed)


def test_another_secret_fails_verification() -> None:
    headers = signed_headers(new_secret(), "evt_1", BODY, datetime.now(UTC))
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)


def test_an_old_attempt_fails_verification() -> None:
    secret = new_secret()
    headers = signed_headers(secret, "evt_1", BODY, datetime.now(UTC) - timedelta(minutes=10))
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(BODY, headers)


def _whsec(size: int) -> str:
    return "whsec_" + base64.b64encode(bytes(range(size))).decode()


@pytest.mark.parametrize("size", [24, 32, 64])
def test_check_secret_accepts_24_to_64_bytes(size: int) -> None:
    assert check_secret(_whsec(size)) == _whsec(size)


def test_check_secret_accepts_unpadded_base64() -> None:
    secret = _whsec(25).rstrip("=")
    assert check_secret(secret) == secret
    Webhook(secret).verify(BODY, signed_headers(secret, "evt_1", BODY, datetime.now(UTC)))


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        (base64.b64encode(bytes(32)).decode(), "does not start with 'whsec_'"),
        ("whsec_", "is not base64"),
        ("whsec_not base64!", "is not base64"),
        ("whsec_" + "A" * 41, "is not base64"),
        ("whsec_" + base64.urlsafe_b64encode(b"\xfb" * 30).decode(), "is not base64"),
        (_whsec(23), "holds 23 bytes"),
        (_whsec(65), "holds 65 bytes"),
    ],
)
def test_check_secret_says_what_to_fix(secret: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        check_secret(secret)
    text = str(raised.value)
    assert "openssl rand -base64 32" in text
    assert "leave the secret out" in text
    if len(secret) > 12:
        assert secret[6:] not in text  # never echoes the secret
