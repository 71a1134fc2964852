"""Webhooks as the stores keep them: the registration, its delivery lanes, its dead letters.

A webhook is delivered in **lanes**, one per (webhook, account): a lane delivers the
account's events in ``seq`` order, one at a time, and remembers the last seq it is done
with (``cursor``: delivered, skipped by the webhook's filter, or dead-lettered). Lanes are
claimed by one worker at a time (``claimed_by``, ``claim``, ``lease_until``), as outbox
items are: two workers never deliver one lane at once, and the claim of a worker that died
ends with its lease, so another takes the lane over.

A lane that failed waits until ``next_attempt_at`` unclaimed; ``attempts`` and
``first_failure_at`` describe the failing run of its current event (the one after
``cursor``). Once that run is older than the retry window, the event is dead-lettered
(a :class:`Failure`) and the lane moves on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from wafleet.core.models import iso, utcnow
from wafleet.events.model import Event


@dataclass(frozen=True)
class Webhook:
    id: str  # "wh_" + random
    url: str
    secret: str  # "whsec_" + base64: kept to sign, shown once at creation
    events: tuple[str, ...] | None = None  # event types; None: every type
    account_ids: tuple[str, ...] | None = None  # None: every account
    created_at: datetime = field(default_factory=utcnow)
    disabled_at: datetime | None = None
    disabled_reason: str | None = None

    def wants_account(self, account_id: str) -> bool:
        return self.account_ids is None or account_id in self.account_ids

    def wants(self, event: Event) -> bool:
        return self.wants_account(event.account_id) and (
            self.events is None or event.type in self.events
        )

    @property
    def enabled(self) -> bool:
        return self.disabled_at is None

    def public(self) -> dict[str, Any]:
        """What the API shows: never the secret."""
        shown: dict[str, Any] = {
            "id": self.id,
            "url": self.url,
            "events": list(self.events) if self.events is not None else None,
            "accountIds": list(self.account_ids) if self.account_ids is not None else None,
            "createdAt": iso(self.created_at),
            "enabled": self.enabled,
        }
        if self.disabled_at is not None:
            shown["disabledAt"] = iso(self.disabled_at)
            shown["disabledReason"] = self.disabled_reason
        return shown


@dataclass(frozen=True)
class LaneKey:
    webhook_id: str
    account_id: str


@dataclass(frozen=True)
class Lane:
    webhook_id: str
    account_id: str
    cursor: int  # the last seq this lane is done with
    claim: str  # the claim this worker holds (every lane write is conditional on it)
    lease_until: datetime
    attempts: int = 0  # failed attempts of the event after ``cursor``
    first_failure_at: datetime | None = None
    last_error: str | None = None

    @property
    def key(self) -> LaneKey:
        return LaneKey(self.webhook_id, self.account_id)


@dataclass(frozen=True)
class Failure:
    """An event a webhook never accepted within the retry window (its dead-letter list)."""

    webhook_id: str
    event: Event
    attempts: int
    first_failure_at: datetime
    last_error: str
    at: datetime = field(default_factory=utcnow)  # when it was dead-lettered

    def public(self) -> dict[str, Any]:
        return {
            "event": self.event.body(),
            "attempts": self.attempts,
            "firstFailureAt": iso(self.first_failure_at),
            "lastError": self.last_error,
            "deadLetteredAt": iso(self.at),
        }


def normalized(values: Sequence[str] | None) -> tuple[str, ...] | None:
    """A filter as stored: sorted, without repeats; None (no filter) stays None."""
    return None if values is None else tuple(sorted(set(values)))
