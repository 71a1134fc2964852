"""A connector shard's metrics: its sessions (per account), its Lease, its outbox sends.

Read at scrape time from the live objects (see :mod:`wafleet.core.metrics` for why there
are no module-level metrics): the session manager's runners, its journal and outbox
counts (:meth:`SessionManager.session_stats`), the shard Lease's counters. An account the
shard no longer runs (deleted, moved away) has no series. The one histogram, the send
latency, is a ``Histogram`` of the manager's own (:class:`SendMetrics`), unregistered.

Per account (label ``account``: the account id, never a phone number): connected,
suspended, reconnects, messages in and out, outbox and journal depth. Per shard (label
``shard``: the ordinal; ``0`` in standalone mode): sessions by phase, the Lease.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from prometheus_client import Histogram
from prometheus_client.metrics_core import Metric

from wafleet.core.metrics import counter, gauge
from wafleet.core.phases import Phase

SendResult = Literal["sent", "retried", "failed", "ambiguous"]
SEND_RESULTS: tuple[SendResult, ...] = ("sent", "retried", "failed", "ambiguous")
# Seconds from queued to sent: a send paced at 1/s behind a few others takes seconds, one
# that waited for a reconnect or a retry minutes.
SEND_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600)


class SendMetrics:
    """What the outbox sender measures: how long sends waited, how they ended."""

    def __init__(self) -> None:
        self.latency = Histogram(
            "wafleet_outbox_send_latency_seconds",
            "Seconds from an outbound message being queued to its send being accepted by "
            "WhatsApp (pacing, reconnects and retries included).",
            buckets=SEND_BUCKETS,
            registry=None,
        )
        self.results: Counter[SendResult] = Counter()

    def sent(self, queued_at: datetime, sent_at: datetime) -> None:
        self.latency.observe(max(0.0, (sent_at - queued_at).total_seconds()))
        self.results["sent"] += 1

    def ended(self, result: SendResult) -> None:
        self.results[result] += 1


@dataclass
class MessageCounts:
    """One account's messages since this shard started running it."""

    received: int = 0  # inbound, journaled (a redelivered duplicate is not counted)
    sent: int = 0  # outbound, accepted by WhatsApp


@dataclass(frozen=True)
class SessionStats:
    """One account as the shard runs it now."""

    account_id: str
    phase: Phase
    suspended: bool
    reconnects: int
    messages: MessageCounts = field(default_factory=MessageCounts)
    journal_depth: int = 0
    outbox_depth: int | None = None  # None: the store cannot count it


class ShardView(Protocol):
    """What the collector reads of a session manager."""

    @property
    def sends(self) -> SendMetrics: ...

    def session_stats(self) -> list[SessionStats]: ...

    async def refresh_metrics(self) -> None: ...


class LeaseView(Protocol):
    """What the collector reads of a shard Lease (cluster mode only)."""

    @property
    def held(self) -> asyncio.Event: ...

    @property
    def renew_failures(self) -> int: ...

    @property
    def losses(self) -> int: ...


def _lease_families(shard: str, lease: LeaseView) -> list[Metric]:
    held = gauge("wafleet_shard_lease_held", "1 while this pod holds its shard's Lease.", ["shard"])
    held.add_metric([shard], 1 if lease.held.is_set() else 0)
    failures = counter(
        "wafleet_shard_lease_renew_failures",
        "Lease renewals (or acquisitions) the API server failed or refused.",
        ["shard"],
    )
    failures.add_metric([shard], lease.renew_failures)
    losses = counter(
        "wafleet_shard_lease_losses",
        "Times the pod lost its shard's Lease (renewals failed past the deadline) and "
        "stopped every session.",
        ["shard"],
    )
    losses.add_metric([shard], lease.losses)
    return [held, failures, losses]


def _send_families(sends: SendMetrics) -> list[Metric]:
    results = counter(
        "wafleet_outbox_sends",
        "Outbound sends by result: sent, retried (never reached WhatsApp, queued again), "
        "failed (out of attempts), ambiguous (may have reached WhatsApp; not re-sent).",
        ["result"],
    )
    for result in SEND_RESULTS:
        results.add_metric([result], sends.results[result])
    return [*sends.latency.collect(), results]


def _session_families(shard: str, stats: list[SessionStats]) -> list[Metric]:
    connected = gauge(
        "wafleet_session_connected", "1 while the account is Connected, else 0.", ["account"]
    )
    suspended = gauge(
        "wafleet_session_suspended", "1 while the account is suspended on request.", ["account"]
    )
    phase_of = gauge(
        "wafleet_session_phase",
        "The account's phase: one series per account, 1, labelled with its phase now (a "
        "change of phase replaces the series, so no series is left at 0).",
        ["account", "phase"],
    )
    reconnects = counter(
        "wafleet_session_reconnects",
        "Reconnects of the account (its status.reconnects).",
        ["account"],
    )
    messages = counter(
        "wafleet_session_messages",
        "Messages of the account since this shard runs it: direction in (received, "
        "journaled) or out (sent).",
        ["account", "direction"],
    )
    outbox = gauge(
        "wafleet_session_outbox_depth",
        "Outbound messages of the account queued or being sent, not yet sent.",
        ["account"],
    )
    journal = gauge(
        "wafleet_session_journal_depth",
        "Inbound messages of the account journaled on the shard's volume, not yet in the "
        "message store.",
        ["account"],
    )
    by_phase = gauge(
        "wafleet_shard_sessions", "Accounts this shard runs, by phase.", ["shard", "phase"]
    )
    phases: Counter[Phase] = Counter()
    for stat in stats:
        account = [stat.account_id]
        phases[stat.phase] += 1
        connected.add_metric(account, 1 if stat.phase == Phase.CONNECTED else 0)
        phase_of.add_metric([stat.account_id, stat.phase.value], 1)
        suspended.add_metric(account, 1 if stat.suspended else 0)
        reconnects.add_metric(account, stat.reconnects)
        messages.add_metric([stat.account_id, "in"], stat.messages.received)
        messages.add_metric([stat.account_id, "out"], stat.messages.sent)
        journal.add_metric(account, stat.journal_depth)
        if stat.outbox_depth is not None:
            outbox.add_metric(account, stat.outbox_depth)
    for phase in Phase:
        by_phase.add_metric([shard, phase.value], phases[phase])
    return [connected, suspended, phase_of, reconnects, messages, outbox, journal, by_phase]


class ShardCollector:
    """The families of one shard. ``manager`` and ``lease`` are read at each scrape (they
    exist once the process started; before, nothing is shown)."""

    def __init__(
        self,
        shard: str,
        manager: Callable[[], ShardView | None],
        lease: Callable[[], LeaseView | None] = lambda: None,
    ) -> None:
        self._shard = shard
        self._manager = manager
        self._lease = lease

    async def refresh(self) -> None:
        manager = self._manager()
        if manager is not None:
            await manager.refresh_metrics()

    def collect(self) -> Iterable[Metric]:
        families: list[Metric] = []
        manager = self._manager()
        if manager is not None:
            families += _session_families(self._shard, manager.session_stats())
            families += _send_families(manager.sends)
        lease = self._lease()
        if lease is not None:
            families += _lease_families(self._shard, lease)
        return families
