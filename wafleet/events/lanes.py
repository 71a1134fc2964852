"""One lane task: a (webhook, account) lane delivered in seq order while it is claimed.

The task claims the lane, reads the account's events after the cursor and goes through
them in seq order. An event the webhook does not want only moves the cursor (written
with the next delivery, or at the end of the batch: one write for a run of them). A
wanted event is POSTed; delivered moves the cursor; 410 disables the webhook; a failure
either schedules a retry (the claim is given up until then, the task ends) or, once the
event has failed for the whole retry window, dead-letters it and goes on with the next.
When the log has nothing more, the lane is released.

Every lane write is conditional on the claim: a None / False back means another worker
took the lane over (this one's lease ran out), and the task ends without another write.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import httpx

from wafleet.core.models import Incident, utcnow
from wafleet.events.backoff import next_attempt_at
from wafleet.events.delivery import Attempt, deliver
from wafleet.events.dispatch_config import DispatchConfig
from wafleet.events.metrics import DeliveryCounts, FailureReason
from wafleet.events.model import Event
from wafleet.events.webhooks import Lane, LaneKey, Webhook
from wafleet.stores.base import EventLog, WebhookStore

logger = logging.getLogger(__name__)

DEAD_LETTER_INCIDENT = "webhook_dead_letter"


class LaneEnd(enum.Enum):
    """How a lane task ended."""

    NOTHING = "nothing"  # not claimed: another worker has it, or nothing is due
    RELEASED = "released"  # done for now (or stopping): the claim was given up
    WAITING = "waiting"  # an attempt failed: the lane waits for its retry, unclaimed
    GONE = "gone"  # the endpoint answered 410: the webhook is disabled
    LOST = "lost"  # the claim was lost (another worker took the lane): dropped
    ERROR = "error"  # a store failed: logged; the lane is tried again later


@dataclass
class WebhookTarget:
    """One webhook as a dispatcher delivers it: its own HTTP client (connections) and
    its running lane tasks (at most ``concurrency``)."""

    hook: Webhook
    client: httpx.AsyncClient
    running: dict[LaneKey, asyncio.Task[None]] = field(default_factory=dict)
    retired: bool = False  # deleted or disabled: no new lanes; closed once none run

    @property
    def active(self) -> bool:
        return not self.retired and self.hook.enabled

    def disabled(self, reason: str, at: datetime) -> None:
        """Seen locally (a 410): stop starting and continuing its lanes at once."""
        self.hook = replace(self.hook, disabled_at=at, disabled_reason=reason)


@dataclass(frozen=True)
class LaneDeps:
    """What a lane task uses, from its dispatcher."""

    log: EventLog
    hooks: WebhookStore
    record_incident: Callable[[Incident], Awaitable[None]]
    config: DispatchConfig
    stopping: Callable[[], bool]  # the dispatcher is closing
    generation: Callable[[], int]  # counts kicks (local writes): was one missed?
    counts: DeliveryCounts = field(default_factory=DeliveryCounts)  # the metrics


def _own_dead_letter_incident(event: Event, webhook_id: str) -> bool:
    """An incident about one of this webhook's dead letters: dead-lettering it again
    records no new incident (or an endpoint that is down would get one per window,
    forever, each about the previous)."""
    if event.type != "account.incident" or event.data.get("type") != DEAD_LETTER_INCIDENT:
        return False
    details = event.data.get("details")
    return isinstance(details, dict) and details.get("webhookId") == webhook_id


class LaneRunner:
    """Runs one lane once (see the module docstring); :meth:`run` never raises but on
    cancellation, and a cancelled run gives its claim up before it ends."""

    def __init__(self, deps: LaneDeps, target: WebhookTarget, key: LaneKey) -> None:
        self._deps = deps
        self._target = target
        self._key = key
        self._lane: Lane | None = None  # the claim held, None when none is
        self.read_generation: int | None = None  # the kick count at the last log read
        self.retry_at: datetime | None = None  # when a lane that failed is due again

    @property
    def _lease(self) -> timedelta:
        return timedelta(seconds=self._deps.config.lease)

    def _extra(self, **more: object) -> dict[str, object]:
        return {"webhookId": self._key.webhook_id, "accountId": self._key.account_id, **more}

    async def run(self) -> LaneEnd:
        try:
            return await self._run()
        except asyncio.CancelledError:
            await self._release_quietly()
            raise
        except Exception:
            logger.exception("webhook lane failed; it is tried again later", extra=self._extra())
            await self._release_quietly()
            return LaneEnd.ERROR

    async def _release_quietly(self) -> None:
        lane, self._lane = self._lane, None
        if lane is None:
            return
        try:
            async with asyncio.timeout(self._deps.config.release_timeout):
                await self._deps.hooks.release_lane(lane)
        except Exception:  # its lease ends anyway
            logger.warning("webhook lane not released", exc_info=True, extra=self._extra())

    async def _release(self) -> LaneEnd:
        lane, self._lane = self._lane, None
        if lane is not None:
            await self._deps.hooks.release_lane(lane)
        return LaneEnd.RELEASED

    def _may_go_on(self) -> bool:
        return self._target.active and not self._deps.stopping()

    async def _run(self) -> LaneEnd:
        deps = self._deps
        self._lane = await deps.hooks.claim_lane(
            self._key, self._target.hook, utcnow(), self._lease
        )
        if self._lane is None:
            return LaneEnd.NOTHING
        while self._lane is not None and self._may_go_on():
            cursor = self._lane.cursor
            self.read_generation = deps.generation()
            events = await deps.log.events_after(self._key.account_id, cursor, deps.config.batch)
            events = [event for event in events if event.seq > cursor]
            if not events:
                break
            end = await self._batch(events)
            if end is not None:
                return end
        if self._lane is None:
            return LaneEnd.LOST
        return await self._release()

    async def _batch(self, events: list[Event]) -> LaneEnd | None:
        """Go through ``events`` (seq order); a LaneEnd when the task ends here."""
        skipped: int | None = None  # the last unwanted event's seq, not yet written
        for event in events:
            if not self._may_go_on():
                break
            if not self._target.hook.wants(event):
                skipped = event.seq
                continue
            if skipped is not None:
                if not await self._advance(skipped):
                    return LaneEnd.LOST
                skipped = None
            end = await self._event(event)
            if end is not None:
                return end
        if skipped is not None and not await self._advance(skipped):
            return LaneEnd.LOST
        return None

    async def _advance(self, cursor: int) -> bool:
        """Move the cursor (and renew the claim); False when the claim was lost."""
        assert self._lane is not None
        self._lane = await self._deps.hooks.lane_delivered(
            self._lane, cursor, utcnow(), self._lease
        )
        return self._lane is not None

    async def _renew_if_short(self) -> bool:
        """Renew the claim when what is left of it may not outlast an attempt.

        ``lane_delivered`` with the cursor unchanged renews, but it also clears the
        failure state; a lane in the middle of a failing run is renewed by claiming it
        again (this worker's own claim is taken over at once), which keeps that state.
        """
        lane = self._lane
        assert lane is not None
        config = self._deps.config
        now = utcnow()
        if lane.lease_until - now >= timedelta(seconds=config.timeout + config.renew_margin):
            return True
        if lane.attempts == 0 and lane.first_failure_at is None:
            self._lane = await self._deps.hooks.lane_delivered(lane, lane.cursor, now, self._lease)
            return self._lane is not None
        renewed = await self._deps.hooks.claim_lane(lane.key, self._target.hook, now, self._lease)
        self._lane = renewed
        if renewed is None:  # another worker has it
            return False
        if renewed.cursor != lane.cursor:  # a replay moved it: the next task starts afresh
            await self._release()
            return False
        return True

    async def _event(self, event: Event) -> LaneEnd | None:
        """Deliver one wanted event: None to go on with the next, or how the task ends."""
        if not await self._renew_if_short():
            return LaneEnd.LOST
        hook = self._target.hook
        attempt = await deliver(self._target.client, hook, event, self._deps.config)
        now = utcnow()
        if attempt.outcome == "delivered":
            self._deps.counts.delivered(hook.id)
            logger.debug("webhook event delivered", extra=self._extra(eventId=event.id))
            return None if await self._advance(event.seq) else LaneEnd.LOST
        self._deps.counts.failed(hook.id, attempt.reason or FailureReason.ERROR)
        if attempt.outcome == "gone":
            await self._deps.hooks.disable_webhook(hook.id, attempt.error, now)
            self._target.disabled(attempt.error, now)
            logger.warning(
                "webhook disabled: its endpoint answered 410 Gone",
                extra=self._extra(eventId=event.id),
            )
            await self._release()
            return LaneEnd.GONE
        return await self._failed(event, attempt, now)

    async def _failed(self, event: Event, attempt: Attempt, now: datetime) -> LaneEnd | None:
        lane = self._lane
        assert lane is not None
        config = self._deps.config
        first = lane.first_failure_at or now
        attempts = lane.attempts + 1
        if now - first >= timedelta(seconds=config.retry_for):
            self._lane = await self._deps.hooks.lane_dead_letter(
                lane, event, attempt.error, now, self._lease
            )
            if self._lane is None:
                return LaneEnd.LOST
            self._deps.counts.dead_lettered(lane.webhook_id)
            logger.warning(
                "webhook event dead-lettered: not accepted within the retry window",
                extra=self._extra(eventId=event.id, attempts=attempts, error=attempt.error),
            )
            if not _own_dead_letter_incident(event, lane.webhook_id):
                await self._incident(event, attempts, attempt.error)
            return None
        retry_at = next_attempt_at(
            now,
            attempts,
            first,
            retry_min=config.retry_min,
            retry_max=config.retry_max,
            retry_for=config.retry_for,
        )
        kept = await self._deps.hooks.lane_failed(lane, attempt.error, now, retry_at)
        self.retry_at = retry_at
        self._lane = None  # lane_failed gave the claim up (until retry_at)
        logger.info(
            "webhook delivery failed; retried later",
            extra=self._extra(
                eventId=event.id,
                attempts=attempts,
                error=attempt.error,
                retryIn=round((retry_at - now).total_seconds(), 3),
            ),
        )
        return LaneEnd.WAITING if kept else LaneEnd.LOST

    async def _incident(self, event: Event, attempts: int, error: str) -> None:
        incident = Incident(
            self._key.account_id,
            DEAD_LETTER_INCIDENT,
            "medium",
            {
                "webhookId": self._key.webhook_id,
                "eventId": event.id,
                "attempts": attempts,
                "lastError": error,
            },
        )
        try:
            await self._deps.record_incident(incident)
        except Exception:  # the dead letter is kept; only the incident is missing
            logger.exception("webhook dead-letter incident not recorded", extra=self._extra())
