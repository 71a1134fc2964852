"""The webhook dispatcher's metrics: deliveries, failed attempts by reason, dead letters.

Counted by the lane tasks (:mod:`wafleet.events.lanes`) into the dispatcher's own
:class:`DeliveryCounts` (one per dispatcher: see :mod:`wafleet.core.metrics` for why no
module-level metrics), and exposed by :class:`DeliveryCollector`, which shows only the
webhooks the dispatcher delivers now: a deleted webhook's series go with it.

The label ``webhook`` is the webhook id; ``reason`` comes from a small closed set
(:class:`FailureReason`), never from an error text.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from prometheus_client.metrics_core import Metric

from wafleet.core.metrics import counter, gauge


class FailureReason(StrEnum):
    """Why a delivery attempt failed, as a label."""

    STATUS_3XX = "3xx"  # a redirect (never followed)
    STATUS_4XX = "4xx"  # 410 Gone included: it also disables the webhook
    STATUS_5XX = "5xx"
    TIMEOUT = "timeout"  # no answer within the timeout (connecting included)
    CONNECT = "connect_error"  # refused, unreachable, DNS, TLS handshake
    REFUSED = "refused"  # the URL's address is not allowed (private, loopback, ...)
    ERROR = "error"  # anything else (a protocol error, an unexpected status)


def status_reason(status: int) -> FailureReason:
    """The reason of an answer that was not a 2xx."""
    return {
        3: FailureReason.STATUS_3XX,
        4: FailureReason.STATUS_4XX,
        5: FailureReason.STATUS_5XX,
    }.get(status // 100, FailureReason.ERROR)


@dataclass
class WebhookCounts:
    delivered: int = 0
    dead_letters: int = 0
    failures: Counter[FailureReason] = field(default_factory=Counter)


@dataclass
class DeliveryCounts:
    """What one dispatcher's lane tasks counted, per webhook id."""

    hooks: dict[str, WebhookCounts] = field(default_factory=dict)

    def _of(self, webhook_id: str) -> WebhookCounts:
        return self.hooks.setdefault(webhook_id, WebhookCounts())

    def delivered(self, webhook_id: str) -> None:
        self._of(webhook_id).delivered += 1

    def failed(self, webhook_id: str, reason: FailureReason) -> None:
        self._of(webhook_id).failures[reason] += 1

    def dead_lettered(self, webhook_id: str) -> None:
        self._of(webhook_id).dead_letters += 1

    def forget(self, webhook_id: str) -> None:
        """The webhook is no longer delivered here (deleted or disabled)."""
        self.hooks.pop(webhook_id, None)


class DeliveryView(Protocol):
    """What the collector reads of a dispatcher."""

    @property
    def counts(self) -> DeliveryCounts: ...

    def running_lanes(self) -> Mapping[str, int]:
        """Webhook id -> lane tasks running now, for every webhook delivered here."""
        ...


class DeliveryCollector:
    """The webhook families of one dispatcher (``None``: not started yet, nothing shown)."""

    def __init__(self, dispatcher: DeliveryView | None = None) -> None:
        self.dispatcher = dispatcher

    def collect(self) -> Iterable[Metric]:
        delivered = counter(
            "wafleet_webhook_deliveries",
            "Events delivered to the webhook (its endpoint answered 2xx).",
            ["webhook"],
        )
        failures = counter(
            "wafleet_webhook_failures",
            "Failed delivery attempts, by reason: 3xx, 4xx, 5xx (the status class), timeout, "
            "connect_error, refused (address not allowed), error.",
            ["webhook", "reason"],
        )
        dead = counter(
            "wafleet_webhook_dead_letters",
            "Events given up after the retry window (put on the webhook's dead-letter list).",
            ["webhook"],
        )
        lanes = gauge(
            "wafleet_webhook_lanes_running",
            "Lanes (one per account) delivering to the webhook from this process now.",
            ["webhook"],
        )
        if self.dispatcher is not None:
            counts = self.dispatcher.counts.hooks
            for webhook_id, running in sorted(self.dispatcher.running_lanes().items()):
                lanes.add_metric([webhook_id], running)
                found = counts.get(webhook_id, WebhookCounts())
                delivered.add_metric([webhook_id], found.delivered)
                dead.add_metric([webhook_id], found.dead_letters)
                for reason in FailureReason:
                    failures.add_metric([webhook_id, reason.value], found.failures[reason])
        return [delivered, failures, dead, lanes]
