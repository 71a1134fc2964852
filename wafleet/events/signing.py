"""Webhook secrets and signed delivery headers (the Standard Webhooks scheme).

A delivery carries ``webhook-id`` (the event id: the same on every retry, so a receiver
can drop a repeat), ``webhook-timestamp`` (integer seconds, fresh per attempt: receivers
refuse old ones, which stops replays) and ``webhook-signature`` (``v1,`` + base64 of
HMAC-SHA256 over ``"{id}.{timestamp}.{body}"`` with the secret's bytes). Any Standard
Webhooks library verifies it with the secret shown at creation (``whsec_...``).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import secrets
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook as StandardWebhook

from wafleet import __version__

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
SECRET_BYTES = 32  # what new_secret() draws
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
USER_AGENT = f"wafleet-webhooks/{__version__}"
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _secret_bytes(secret: str) -> bytes | None:
    """The bytes of ``whsec_<base64>`` (padding optional), or None if it is not that."""
    if not secret.startswith(SECRET_PREFIX):
        return None
    text = secret[len(SECRET_PREFIX) :]
    if not _BASE64.fullmatch(text):
        return None
    unpadded = text.rstrip("=")
    if len(unpadded) % 4 == 1:  # no base64 string has this length
        return None
    try:
        return base64.b64decode(unpadded + "=" * (-len(unpadded) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def check_secret(secret: str) -> str:
    """A secret a caller chose, checked: ``whsec_`` + base64 of 24 to 64 bytes.

    Returns it unchanged; raises ValueError saying what to fix (never echoing the secret).
    """
    hint = (
        f"use '{SECRET_PREFIX}' followed by the base64 of {MIN_SECRET_BYTES} to "
        f"{MAX_SECRET_BYTES} random bytes (e.g. '{SECRET_PREFIX}' + the output of "
        "'openssl rand -base64 32'), or leave the secret out to have one generated"
    )
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"the webhook secret does not start with '{SECRET_PREFIX}'; {hint}")
    raw = _secret_bytes(secret)
    if raw is None:
        raise ValueError(
            f"the webhook secret after '{SECRET_PREFIX}' is not base64 "
            f"(letters, digits, '+', '/', then up to two '='); {hint}"
        )
    if not MIN_SECRET_BYTES <= len(raw) <= MAX_SECRET_BYTES:
        raise ValueError(f"the webhook secret holds {len(raw)} bytes; {hint}")
    return secret


def signed_headers(secret: str, event_id: str, body: str, at: datetime) -> dict[str, str]:
    """The headers of one delivery attempt of ``body`` (the event's JSON, exactly as sent).

    ``at`` is the attempt's time (an aware datetime): the timestamp header and the
    signature are made from it, so each attempt of an event gets a fresh pair while its
    ``webhook-id`` stays the event id.
    """
    if at.tzinfo is None:
        raise ValueError("signed_headers needs an aware datetime (e.g. datetime.now(UTC))")
    # The library replaces the tzinfo with UTC (it does not convert): hand it UTC.
    at_utc = at.astimezone(UTC)
    signature = StandardWebhook(secret).sign(event_id, at_utc, body)
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(math.floor(at_utc.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }
