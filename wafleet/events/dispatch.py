"""The webhook dispatcher: delivers the event log to the registered webhooks.

Every process that delivers runs one (the standalone process; each connector pod in a
cluster, all on the same store). Its loop looks for due lanes (see
:mod:`wafleet.events.webhooks`) and starts a lane task (:mod:`wafleet.events.lanes`)
for each one not already running here; claims keep two workers off one lane.

- Woken at once by a local write (``log.on_logged(self.kick)``), else every ``poll``
  seconds (events logged by other processes, retries coming due).
- Each webhook has its own HTTP client and at most ``concurrency`` lane tasks, and its
  due lanes are looked up on their own: a slow or dead endpoint never delays another
  webhook's deliveries (a failing lane waits for its retry unclaimed, holding nothing).
- The webhooks are re-read every ``hooks_refresh`` seconds (and after a kick, at most
  every ``hooks_min_refresh``), so ones created, deleted or disabled elsewhere are seen.
- Nothing stops the loop: a failed pass is logged and the next one comes after a
  growing pause; a lane whose store writes failed rests before it is tried again.
- Its metrics (:mod:`wafleet.events.metrics`): the lanes count into ``counts``; a
  :class:`~wafleet.events.metrics.DeliveryCollector` over the dispatcher shows them for the
  webhooks it delivers now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from wafleet.core.logs import redact_secret
from wafleet.core.models import Incident, utcnow
from wafleet.events.delivery import new_client
from wafleet.events.dispatch_config import DispatchConfig
from wafleet.events.lanes import LaneDeps, LaneEnd, LaneRunner, WebhookTarget
from wafleet.events.metrics import DeliveryCounts
from wafleet.events.webhooks import LaneKey, Webhook
from wafleet.stores.base import EventLog, WebhookStore

__all__ = ["DispatchConfig", "Dispatcher"]

logger = logging.getLogger(__name__)

MAX_PAUSE = 30.0  # seconds: the longest rest after failures (of the loop, of one lane)
MIN_PASS_GAP = 0.02  # seconds between two passes, however often local writes wake it


class Dispatcher:
    """Delivers webhooks from this process until :meth:`close`."""

    def __init__(
        self,
        log: EventLog,
        hooks: WebhookStore,
        record_incident: Callable[[Incident], Awaitable[None]],
        config: DispatchConfig | None = None,
    ) -> None:
        self._log = log
        self._hooks = hooks
        self._config = config or DispatchConfig()
        self.counts = DeliveryCounts()
        self._deps = LaneDeps(
            log=log,
            hooks=hooks,
            record_incident=record_incident,
            config=self._config,
            stopping=lambda: self._closing,
            generation=lambda: self._generation,
            counts=self.counts,
        )
        self._targets: dict[str, WebhookTarget] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = False
        self._generation = 0  # kicks so far
        self._hooks_read_at: float | None = None  # time.monotonic() of the last read
        self._hooks_wanted = False  # a kick asked for a re-read
        self._rest: dict[LaneKey, tuple[float, int]] = {}  # lane -> (until, failures)
        self._timers: set[asyncio.TimerHandle] = set()  # wake-ups for retries coming due

    # ----- control -------------------------------------------------------------------
    def start(self) -> None:
        """Start the loop (in the running event loop); a second call does nothing."""
        if self._task is not None or self._closing:
            return
        self._log.on_logged(self.kick)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="webhooks")

    def kick(self) -> None:
        """Look for due lanes now (an event was logged, a webhook created or replayed);
        the webhooks are re-read too, at most every ``hooks_min_refresh`` seconds."""
        self._generation += 1
        self._hooks_wanted = True
        self._wake.set()

    def running_lanes(self) -> Mapping[str, int]:
        """Webhook id -> lane tasks running here now, for every webhook delivered here."""
        return {
            webhook_id: len(target.running)
            for webhook_id, target in self._targets.items()
            if target.active
        }

    def reload(self) -> None:
        """Re-read the webhooks at the next pass, and make it now."""
        self._hooks_read_at = None
        self.kick()

    async def close(self) -> None:
        """Stop, within ``grace + release_timeout`` seconds and the clients' closing.

        Lanes stop after their current attempt; attempts still running after ``grace``
        are cancelled (the event is delivered again later: receivers see the same
        ``webhook-id``). Every lane is released, so another worker takes it at once.
        """
        if self._closed:
            return
        self._closing = True
        self._wake.set()
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        tasks = [task for target in self._targets.values() for task in target.running.values()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self._config.grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=self._config.release_timeout)
        for target in self._targets.values():
            await target.client.aclose()
        self._targets.clear()
        self._closed = True

    # ----- the loop ----------------------------------------------------------------
    async def _run(self) -> None:
        failures = 0
        while not self._closing:
            self._wake.clear()
            started = time.monotonic()
            try:
                await self._pass()
                failures = 0
                pause = self._config.poll
            except Exception:
                failures += 1
                pause = min(self._config.poll * 2**failures, MAX_PAUSE)
                logger.exception(
                    "webhook dispatch pass failed; trying again", extra={"retryIn": pause}
                )
            await self._sleep(pause, started)

    async def _sleep(self, pause: float, started: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), pause)
        gap = started + MIN_PASS_GAP - time.monotonic()
        if gap > 0:
            await asyncio.sleep(gap)

    async def _pass(self) -> None:
        if self._hooks_due():
            await self._read_hooks()
        now = utcnow()
        for target in list(self._targets.values()):
            if self._closing:
                return
            free = self._config.concurrency - len(target.running)
            if not target.active or free <= 0:
                continue
            # Lanes running here may be among the answers: ask for that many more.
            limit = free + len(target.running)
            keys = await self._hooks.due_lanes([target.hook], now, limit)
            for key in keys:
                if free <= 0:
                    break
                if key in target.running or self._resting(key):
                    continue
                self._start_lane(target, key)
                free -= 1

    def _hooks_due(self) -> bool:
        if self._hooks_read_at is None:
            return True
        age = time.monotonic() - self._hooks_read_at
        if age >= self._config.hooks_refresh:
            return True
        return self._hooks_wanted and age >= self._config.hooks_min_refresh

    async def _read_hooks(self) -> None:
        """Bring the targets in line with the store: new webhooks get a client, deleted or
        disabled ones are retired (their lanes stop before their next attempt)."""
        self._hooks_wanted = False
        hooks = await self._hooks.list_webhooks()
        self._hooks_read_at = time.monotonic()
        enabled: dict[str, Webhook] = {hook.id: hook for hook in hooks if hook.enabled}
        for webhook_id, target in list(self._targets.items()):
            hook = enabled.get(webhook_id)
            if hook is None:
                del self._targets[webhook_id]
                self.counts.forget(webhook_id)
                await self._retire(target)
            elif target.active:
                target.hook = hook
        for webhook_id, hook in enabled.items():
            if webhook_id not in self._targets:
                redact_secret(hook.secret)  # defence in depth: never in a log line
                self._targets[webhook_id] = WebhookTarget(hook, new_client(self._config))
                logger.info("webhook delivering", extra={"webhookId": webhook_id})

    async def _retire(self, target: WebhookTarget) -> None:
        target.retired = True
        logger.info("webhook no longer delivered here", extra={"webhookId": target.hook.id})
        if not target.running:
            await target.client.aclose()

    # ----- lanes -------------------------------------------------------------------
    def _resting(self, key: LaneKey) -> bool:
        rest = self._rest.get(key)
        return rest is not None and time.monotonic() < rest[0]

    def _start_lane(self, target: WebhookTarget, key: LaneKey) -> None:
        name = f"webhook-lane {key.webhook_id} {key.account_id}"
        target.running[key] = asyncio.get_running_loop().create_task(
            self._lane(target, key), name=name
        )

    async def _lane(self, target: WebhookTarget, key: LaneKey) -> None:
        runner = LaneRunner(self._deps, target, key)
        try:
            end = await runner.run()
        finally:
            target.running.pop(key, None)
        if target.retired and not target.running and not self._closing:
            await target.client.aclose()
        self._after(key, runner, end)

    def _after(self, key: LaneKey, runner: LaneRunner, end: LaneEnd) -> None:
        if end is LaneEnd.ERROR:
            failures = self._rest.get(key, (0.0, 0))[1] + 1
            pause = min(self._config.poll * 2**failures, MAX_PAUSE)
            self._rest[key] = (time.monotonic() + pause, failures)
            return
        self._rest.pop(key, None)
        if end is LaneEnd.WAITING and runner.retry_at is not None and not self._closing:
            # Look again when the retry is due, not at the next poll after it (a lane
            # failing often would wait a poll interval more each time).
            delay = max(0.0, (runner.retry_at - utcnow()).total_seconds())
            loop = asyncio.get_running_loop()
            self._timers = {t for t in self._timers if t.when() > loop.time()}  # to come
            self._timers.add(loop.call_later(delay, self._wake.set))
        if end is LaneEnd.GONE:
            self._hooks_read_at = None  # re-read: the store has it disabled now
        # An event logged after the lane's last read of the log, and before it gave the
        # claim up, was seen by no one: look again now rather than at the next poll.
        if end is LaneEnd.RELEASED and runner.read_generation not in (None, self._generation):
            self._wake.set()
