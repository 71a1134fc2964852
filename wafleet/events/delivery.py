"""One delivery attempt: an event POSTed to a webhook's URL, signed, within a timeout.

The body is the event's JSON (:meth:`Event.body`, compact); the headers are the
Standard Webhooks ones (:func:`signed_headers`), signed afresh for every attempt. The
answer decides: any 2xx is delivered, 410 Gone asks for no more deliveries, anything
else (another status, a redirect, a timeout, a refused connection, an address the
URL may not reach) is a failed attempt, retried later.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Literal

import httpx

from wafleet.core.models import utcnow
from wafleet.events.dispatch_config import DispatchConfig
from wafleet.events.metrics import FailureReason, status_reason
from wafleet.events.model import Event
from wafleet.events.signing import signed_headers
from wafleet.events.urls import address_allowed
from wafleet.events.webhooks import Webhook

logger = logging.getLogger(__name__)

MAX_ERROR_CHARS = 500  # an error kept with the lane and its dead letter
HTTP_GONE = 410


@dataclass(frozen=True)
class Attempt:
    """What one attempt came to; ``error`` says why it failed, for people, ``reason`` for
    the metrics (a closed set)."""

    outcome: Literal["delivered", "gone", "failed"]
    error: str = ""
    status: int | None = None  # the HTTP status, when there was an answer
    reason: FailureReason | None = None  # None when delivered

    @classmethod
    def failed(cls, error: str, reason: FailureReason, status: int | None = None) -> Attempt:
        return cls("failed", error[:MAX_ERROR_CHARS], status, reason)


def event_json(event: Event) -> str:
    """The exact text a webhook receives (and the signature covers)."""
    return json.dumps(event.body(), separators=(",", ":"))


def new_client(config: DispatchConfig) -> httpx.AsyncClient:
    """The HTTP client of one webhook (its own connections: a slow endpoint never holds
    another's). Redirects are not followed (a redirect could lead to a private address
    the check never saw); proxy variables are ignored, so the address check is about
    where the request really goes."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(config.timeout),
        limits=httpx.Limits(
            max_connections=config.concurrency, max_keepalive_connections=config.concurrency
        ),
        follow_redirects=False,
        trust_env=False,
    )


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def deliver(
    client: httpx.AsyncClient, hook: Webhook, event: Event, config: DispatchConfig
) -> Attempt:
    """POST ``event`` to ``hook`` once. Never raises but on cancellation."""
    body = event_json(event)
    try:
        async with asyncio.timeout(config.timeout):
            refusal = await address_allowed(hook.url, config.allow_private)
            if refusal is not None:
                return Attempt.failed(f"refused: {refusal}", FailureReason.REFUSED)
            headers = signed_headers(hook.secret, event.id, body, utcnow())
            async with client.stream(
                "POST", hook.url, content=body.encode(), headers=headers
            ) as response:
                status = response.status_code
    except TimeoutError:
        return Attempt.failed(f"no answer within {config.timeout:g} s", FailureReason.TIMEOUT)
    except httpx.HTTPError as exc:
        if isinstance(exc, httpx.TimeoutException):
            text = f"no answer within {config.timeout:g} s ({_describe(exc)})"
            return Attempt.failed(text, FailureReason.TIMEOUT)
        if isinstance(exc, httpx.ConnectError):
            return Attempt.failed(_describe(exc), FailureReason.CONNECT)
        return Attempt.failed(_describe(exc), FailureReason.ERROR)
    except Exception as exc:  # an unexpected failure still counts as a failed attempt
        logger.warning(
            "webhook delivery failed unexpectedly",
            exc_info=True,
            extra={"webhookId": hook.id, "eventId": event.id},
        )
        return Attempt.failed(_describe(exc), FailureReason.ERROR)
    if 200 <= status < 300:
        return Attempt("delivered", status=status)
    if status == HTTP_GONE:
        return Attempt("gone", "the endpoint answered 410 Gone", status, FailureReason.STATUS_4XX)
    reason = httpx.codes.get_reason_phrase(status)
    text = f"HTTP {status} {reason}".rstrip()
    if 300 <= status < 400:
        text += " (redirects are not followed)"
    return Attempt.failed(text, status_reason(status), status)
