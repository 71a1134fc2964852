"""The webhook dispatcher against the real SQLite stores and a real HTTP receiver on loopback.

The receiver (Starlette under uvicorn, in the test's event loop) answers each path as told:
200, 500, 410, a hang (until the test ends) or per-event failures; it records every request,
whether its signature verifies, and which event ids were in flight at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route

from support.dispatch_receiver import Receiver
from support.process import free_port
from wafleet.core.models import Incident
from wafleet.core.settings import Settings
from wafleet.events.backoff import next_attempt_at, retry_delay
from wafleet.events.delivery import new_client
from wafleet.events.dispatch import DispatchConfig, Dispatcher
from wafleet.events.lanes import LaneDeps, LaneRunner, WebhookTarget
from wafleet.events.model import Event, EventType, new_event_id
from wafleet.events.signing import new_secret
from wafleet.events.webhooks import Lane, LaneKey, Webhook
from wafleet.stores.sqlite_messages import SqliteMessageStore
from wafleet.stores.sqlite_webhooks import SqliteWebhookStore

A, B = "wa-aaaaaaaaaaaaaaaaaaaa", "wa-bbbbbbbbbbbbbbbbbbbb"
FAST = DispatchConfig(
    timeout=0.5,
    retry_min=0.05,
    retry_max=0.2,
    retry_for=60.0,
    concurrency=4,
    poll=0.05,
    allow_private=True,  # the receiver is on 127.0.0.1
    renew_margin=0.2,
    hooks_refresh=0.2,
    hooks_min_refresh=0.0,
    grace=0.3,
    release_timeout=1.0,
)


# ----- the receiver ------------------------------------------------------------------
@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = Starlette(routes=[Route("/{path}", found.handle, methods=["POST"])])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    found.port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await until(lambda: server.started, "the receiver to start")
    try:
        yield found
    finally:
        found.released.set()
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


def closed_port_url() -> str:
    """A loopback URL nothing listens on: connections are refused."""
    return f"http://127.0.0.1:{free_port()}/dead"


# ----- stores, webhooks, events --------------------------------------------------------
@dataclass
class Env:
    path: Path
    log: SqliteMessageStore
    hooks: SqliteWebhookStore
    receiver: Receiver
    dispatchers: list[Dispatcher] = field(default_factory=list)
    extra_stores: list[SqliteWebhookStore] = field(default_factory=list)

    async def webhook(
        self,
        path: str,
        *,
        url: str | None = None,
        events: tuple[str, ...] | None = None,
        account_ids: tuple[str, ...] | None = None,
    ) -> Webhook:
        hook = Webhook(
            id="wh_" + secrets.token_hex(8),
            url=url or self.receiver.url(path),
            secret=new_secret(),
            events=events,
            account_ids=account_ids,
        )
        self.receiver.secrets[path] = hook.secret
        await self.hooks.create_webhook(hook)
        return hook

    def dispatcher(
        self, config: DispatchConfig = FAST, hooks: SqliteWebhookStore | None = None
    ) -> Dispatcher:
        dispatcher = Dispatcher(self.log, hooks or self.hooks, self.log.record_incident, config)
        dispatcher.start()
        self.dispatchers.append(dispatcher)
        return dispatcher

    async def other_worker(self, worker_id: str) -> SqliteWebhookStore:
        store = await SqliteWebhookStore(self.path, worker_id=worker_id).open()
        self.extra_stores.append(store)
        return store

    async def log_events(
        self, account: str, count: int, kind: EventType = "account.phase"
    ) -> list[Event]:
        built = [
            Event(id=new_event_id(), type=kind, account_id=account, data={"n": n})
            for n in range(count)
        ]
        return await self.log.append_events(built)


@pytest.fixture
async def env(tmp_path: Path, receiver: Receiver) -> AsyncIterator[Env]:
    path = tmp_path / "messages.db"
    log = await SqliteMessageStore(path).open()
    hooks = await SqliteWebhookStore(path, worker_id="w1").open()
    found = Env(path, log, hooks, receiver)
    try:
        yield found
    finally:
        for dispatcher in found.dispatchers:
            await asyncio.wait_for(dispatcher.close(), 10)
        for store in found.extra_stores:
            await store.close()
        await hooks.close()
        await log.close()


async def until(
    condition: Callable[[], bool | Awaitable[bool]], what: str, timeout: float = 15.0
) -> None:
    """Wait for ``condition`` (polled), failing after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = condition()
        if not isinstance(value, bool):
            value = await value
        if value:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def compact(event: Event) -> str:
    return json.dumps(event.body(), separators=(",", ":"))


# ----- the tests -------------------------------------------------------------------------
async def test_every_event_is_delivered_once_in_seq_order_signed(env: Env) -> None:
    hook = await env.webhook("a")
    logged = await env.log_events(A, 3) + await env.log_events(B, 2)
    env.dispatcher()
    logged += await env.log_events(A, 3) + await env.log_events(B, 4)  # woken by the writes
    await until(lambda: len(env.receiver.at("a", accepted=True)) == len(logged), "every event")

    await env.dispatchers[0].close()
    arrivals = env.receiver.at("a")
    assert len(arrivals) == len(logged) == 12  # once each
    assert all(a.verified for a in arrivals)
    by_id = {event.id: event for event in logged}
    for arrival in arrivals:
        assert arrival.body == compact(by_id[arrival.event_id])  # the exact body, signed
        assert arrival.headers["content-type"] == "application/json"
        assert "wafleet" in arrival.headers["user-agent"]
    for account, count in ((A, 6), (B, 6)):
        seqs = [a.event["seq"] for a in arrivals if a.event["accountId"] == account]
        assert seqs == list(range(1, count + 1))
    assert await env.hooks.due_lanes([hook], datetime.now(UTC), 10) == []


async def test_a_webhook_created_later_gets_what_happens_from_then_on(env: Env) -> None:
    env.dispatcher()
    earlier = await env.log_events(A, 2)
    # The store keeps milliseconds: create the webhook in a later one than the events.
    await until(
        lambda: datetime.now(UTC) - earlier[-1].at >= timedelta(milliseconds=2), "a later ms"
    )
    await env.webhook("late")  # seen at the next re-read of the webhooks
    later = await env.log_events(A, 2)
    await until(lambda: len(env.receiver.at("late", accepted=True)) == 2, "the later events")
    assert [a.event_id for a in env.receiver.at("late")] == [e.id for e in later]


async def test_a_500_is_retried_with_the_same_webhook_id(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="wafleet.events")
    hook = await env.webhook("flaky")
    env.receiver.scripts["flaky"] = ["500", "500"]
    env.dispatcher()
    [event] = await env.log_events(A, 1)
    await until(lambda: env.receiver.at("flaky", accepted=True) != [], "the delivery")
    arrivals = env.receiver.at("flaky")
    assert [a.answer for a in arrivals] == ["500", "500", "200"]
    assert {a.event_id for a in arrivals} == {event.id}
    assert all(a.verified and a.body == compact(event) for a in arrivals)
    assert await env.hooks.list_failures(hook.id, 5) == []
    assert "webhook delivery failed; retried later" in caplog.text
    assert hook.secret.removeprefix("whsec_") not in caplog.text  # no secret in a log line
    assert all(hook.secret.removeprefix("whsec_") not in str(r.__dict__) for r in caplog.records)


async def test_a_retry_comes_when_due_not_at_the_next_poll(env: Env) -> None:
    """Nothing else happens (no write wakes the dispatcher) and it polls once an hour: the
    failed lane is tried again when its retry is due all the same."""
    await env.webhook("later")
    env.receiver.scripts["later"] = ["500", "500", "500"]
    env.dispatcher(replace(FAST, poll=3600.0))
    [event] = await env.log_events(A, 1)  # its write wakes the first attempt
    await until(lambda: env.receiver.at("later", accepted=True) != [], "the fourth attempt")
    assert [a.answer for a in env.receiver.at("later")] == ["500", "500", "500", "200"]
    assert {a.event_id for a in env.receiver.at("later")} == {event.id}


async def test_410_disables_the_webhook_and_stops_its_deliveries(env: Env) -> None:
    gone = await env.webhook("gone")
    witness = await env.webhook("witness")
    env.receiver.modes["gone"] = "410"
    env.dispatcher()
    await env.log_events(A, 2)

    async def disabled() -> bool:
        found = await env.hooks.get_webhook(gone.id)
        return found is not None and not found.enabled

    await until(disabled, "the webhook to be disabled")
    stored = await env.hooks.get_webhook(gone.id)
    assert stored is not None
    assert stored.disabled_reason is not None
    assert "410" in stored.disabled_reason
    [last] = await env.log_events(A, 1)
    await until(lambda: last.id in {a.event_id for a in env.receiver.at("witness")}, "the witness")
    await env.dispatchers[0].close()
    assert len(env.receiver.at("gone")) == 1  # the first event only, answered 410
    assert len(env.receiver.at("witness", accepted=True)) == 3
    assert witness.enabled


async def test_a_hang_past_the_timeout_is_retried(env: Env) -> None:
    await env.webhook("slow")
    env.receiver.scripts["slow"] = ["hang"]
    env.dispatcher(replace(FAST, timeout=0.3))
    [event] = await env.log_events(A, 1)
    await until(lambda: env.receiver.at("slow", accepted=True) != [], "the retry")
    answers = [(a.event_id, a.answer) for a in env.receiver.at("slow")]
    assert answers == [(event.id, "hang"), (event.id, "200")]


async def test_the_end_of_the_retry_window_dead_letters_and_the_lane_goes_on(env: Env) -> None:
    hook = await env.webhook("picky")
    env.dispatcher(replace(FAST, retry_for=0.3))
    first, second = await env.log_events(A, 2)
    env.receiver.failing.add(first.id)

    def incident_arrived() -> bool:
        return any(a.event["type"] == "account.incident" for a in env.receiver.at("picky"))

    await until(incident_arrived, "the dead-letter incident's own delivery")
    failures = await env.hooks.list_failures(hook.id, 10)
    assert [f.event.id for f in failures] == [first.id]
    assert failures[0].last_error == "HTTP 500 Internal Server Error"
    assert failures[0].attempts >= 1
    accepted = [a.event for a in env.receiver.at("picky", accepted=True)]
    assert accepted[0]["id"] == second.id  # the lane went on with the next event
    incident = accepted[1]
    assert incident["type"] == "account.incident"
    assert incident["accountId"] == A
    assert incident["data"]["type"] == "webhook_dead_letter"
    details = incident["data"]["details"]
    assert details["webhookId"] == hook.id
    assert details["eventId"] == first.id
    assert details["lastError"] == "HTTP 500 Internal Server Error"
    assert details["attempts"] >= 2
    assert {a.event_id for a in env.receiver.at("picky", accepted=False)} == {first.id}


async def test_a_dead_lettered_dead_letter_incident_records_no_other(env: Env) -> None:
    hook = await env.webhook("down")
    env.receiver.modes["down"] = "500"
    env.dispatcher(replace(FAST, retry_for=0.1))
    [first] = await env.log_events(A, 1)

    async def failures(count: int) -> bool:
        return len(await env.hooks.list_failures(hook.id, 10)) >= count

    await until(lambda: failures(2), "the event and its incident dead-lettered")
    [witness] = await env.log_events(A, 1)
    await until(lambda: failures(4), "the witness and its incident dead-lettered")
    # Lanes go in seq order: the incident's own dead letter was done before the witness's.
    events = await env.log.events_after(A, 0, 100)
    incidents = [e for e in events if e.type == "account.incident"]
    about = [e.data["details"]["eventId"] for e in incidents]
    assert about == [first.id, witness.id]  # none about an incident


async def dead_letters(env: Env, hook: Webhook) -> list[str]:
    await until(lambda: _has_failures(env, hook), f"a dead letter of {hook.id}")
    return [f.last_error for f in await env.hooks.list_failures(hook.id, 10)]


async def _has_failures(env: Env, hook: Webhook) -> bool:
    return bool(await env.hooks.list_failures(hook.id, 1))


async def test_a_refused_connection_is_a_failed_attempt(env: Env) -> None:
    dead = await env.webhook("dead", url=closed_port_url())
    env.dispatcher(replace(FAST, retry_for=0.2))
    await env.log_events(A, 1)
    [error] = await dead_letters(env, dead)
    assert "ConnectError" in error


async def test_a_private_address_is_refused_at_delivery_as_a_failed_attempt(env: Env) -> None:
    private = await env.webhook("private")  # 127.0.0.1, with private addresses refused
    env.dispatcher(replace(FAST, retry_for=0.2, allow_private=False))
    await env.log_events(A, 1)
    [error] = await dead_letters(env, private)
    assert "a loopback address (127.0.0.1)" in error
    assert env.receiver.at("private") == []  # never sent


async def test_a_dead_endpoint_does_not_delay_another_webhook(env: Env) -> None:
    await env.webhook("stuck")
    await env.webhook("healthy")
    env.receiver.modes["stuck"] = "hang"
    env.dispatcher(replace(FAST, timeout=5.0, concurrency=2))
    accounts = [f"wa-{n:020d}" for n in range(4)]
    for account in accounts:
        await env.log_events(account, 1)
    await until(lambda: env.receiver.in_flight_paths["stuck"] == 2, "two hanging attempts")
    for account in accounts:
        await env.log_events(account, 2)
    await until(lambda: len(env.receiver.at("healthy")) == 12, "the healthy webhook's events")
    # Every healthy delivery arrived while the stuck webhook's first attempts still hung,
    # at its concurrency: its lanes and connections held nothing of the other webhook's.
    assert env.receiver.at("healthy")[-1].in_flight.get("stuck") == 2
    assert len(env.receiver.at("stuck")) == 2
    assert all(a.answer == "200" for a in env.receiver.at("healthy"))


async def test_a_failing_webhook_waits_unclaimed_while_another_delivers(env: Env) -> None:
    dead = await env.webhook("dead", url=closed_port_url())
    await env.webhook("healthy")
    env.dispatcher(replace(FAST, retry_min=0.2, retry_max=1.0))
    await env.log_events(A, 1)
    await until(lambda: len(env.receiver.at("healthy")) == 1, "the first healthy delivery")
    later = await env.log_events(A, 5)
    await until(lambda: len(env.receiver.at("healthy")) == 6, "the later healthy deliveries")
    assert [a.event_id for a in env.receiver.at("healthy")[1:]] == [e.id for e in later]
    assert await env.hooks.list_failures(dead.id, 1) == []  # still retrying, not dead


class CountingStore(SqliteWebhookStore):
    """A worker's store that counts the lanes it claimed."""

    claims = 0

    async def claim_lane(
        self, key: LaneKey, hook: Webhook, now: datetime, lease: timedelta
    ) -> Lane | None:
        lane = await super().claim_lane(key, hook, now, lease)
        self.claims += lane is not None
        return lane


async def test_two_dispatchers_never_deliver_one_event_at_once(env: Env) -> None:
    await env.webhook("shared")
    env.receiver.delay = 0.02
    first = await CountingStore(env.path, worker_id="pod-0").open()
    second = await CountingStore(env.path, worker_id="pod-1").open()
    env.extra_stores += [first, second]
    # A short lease: claims are renewed before attempts, never lost while in use.
    config = replace(FAST, concurrency=2, timeout=0.3, lease=1.0, renew_margin=0.3)
    env.dispatcher(config, first)
    env.dispatcher(config, second)
    accounts = [f"wa-{n:020d}" for n in range(6)]
    logged: list[Event] = []
    for _ in range(5):
        for account in accounts:
            logged += await env.log_events(account, 1)
    await until(
        lambda: (
            {a.event_id for a in env.receiver.at("shared", accepted=True)} == {e.id for e in logged}
        ),
        "every event",
    )
    assert env.receiver.overlaps == []
    arrivals = env.receiver.at("shared")
    assert len(arrivals) == len(logged)  # once each: no lease ran out
    for account in accounts:
        seqs = [a.event["seq"] for a in arrivals if a.event["accountId"] == account]
        assert seqs == [1, 2, 3, 4, 5]
    assert first.claims > 0
    assert second.claims > 0


async def test_event_type_and_account_filters(env: Env) -> None:
    picky = await env.webhook("picky", events=("account.incident",), account_ids=(A,))
    await env.webhook("all")
    dispatcher = env.dispatcher()
    expected: list[str] = []
    for account in (A, B):
        await env.log_events(account, 2)
        await env.log.record_incident(Incident(account, "qr_timeout", "low"))
        await env.log_events(account, 1)
        await env.log.record_incident(Incident(account, "logged_out", "high"))
    wanted = [e for e in await env.log.events_after(A, 0, 100) if e.type == "account.incident"]
    expected = [e.id for e in wanted]
    await until(lambda: len(env.receiver.at("all")) == 10, "the unfiltered webhook's events")
    await until(lambda: len(env.receiver.at("picky")) == 2, "the filtered webhook's events")
    await dispatcher.close()
    assert [a.event_id for a in env.receiver.at("picky")] == expected
    assert {a.event["data"]["type"] for a in env.receiver.at("picky")} == {
        "qr_timeout",
        "logged_out",
    }
    other = await env.other_worker("checker")
    assert await other.due_lanes([picky], datetime.now(UTC), 10) == []  # cursor at the head


async def test_a_deleted_webhook_is_no_longer_delivered(env: Env) -> None:
    doomed = await env.webhook("doomed")
    await env.webhook("witness")
    env.dispatcher()
    await env.log_events(A, 1)
    await until(lambda: len(env.receiver.at("doomed")) == 1, "the first delivery")
    assert await env.hooks.delete_webhook(doomed.id)
    await until(lambda: env.dispatchers[0]._targets.get(doomed.id) is None, "the re-read")
    [last] = await env.log_events(A, 1)
    await until(lambda: last.id in {a.event_id for a in env.receiver.at("witness")}, "the witness")
    await env.dispatchers[0].close()
    assert len(env.receiver.at("doomed")) == 1


async def test_close_is_bounded_and_releases_the_lanes(env: Env) -> None:
    hook = await env.webhook("stuck")
    env.receiver.modes["stuck"] = "hang"
    dispatcher = env.dispatcher(replace(FAST, timeout=20.0, grace=0.2))
    await env.log_events(A, 1)
    await until(lambda: len(env.receiver.at("stuck")) == 1, "the hanging attempt")
    await asyncio.wait_for(dispatcher.close(), 10)
    other = await env.other_worker("pod-2")
    lane = await other.claim_lane(LaneKey(hook.id, A), hook, datetime.now(UTC), timedelta(60))
    assert lane is not None  # released: no 60 s lease to wait out
    assert lane.attempts == 0  # a cancelled attempt is not a failed one
    await dispatcher.close()  # a second close does nothing


async def test_a_lost_claim_is_dropped_without_writes(env: Env) -> None:
    hook = await env.webhook("a")
    env.receiver.scripts["a"] = ["hang"]
    dispatcher = env.dispatcher(replace(FAST, timeout=1.0))
    [first] = await env.log_events(A, 1)
    await until(lambda: len(env.receiver.at("a")) == 1, "the hanging attempt")
    # As if the first worker stalled past its lease: another worker takes the lane over.
    other = await env.other_worker("pod-9")
    later = datetime.now(UTC) + timedelta(seconds=FAST.lease + 1)
    lane = await other.claim_lane(LaneKey(hook.id, A), hook, later, timedelta(seconds=60))
    assert lane is not None
    target = dispatcher._targets[hook.id]
    await until(lambda: not target.running, "the first worker's attempt to time out")
    # Its failure was not written over the other worker's claim.
    renewed = await other.lane_delivered(lane, lane.cursor, later, timedelta(seconds=60))
    assert renewed is not None
    assert renewed.attempts == 0
    assert renewed.first_failure_at is None
    assert first.seq == renewed.cursor + 1
    assert len(env.receiver.at("a")) == 1


async def test_a_short_claim_is_renewed_before_an_attempt_keeping_its_failures(env: Env) -> None:
    hook = await env.webhook("a")
    await env.log_events(A, 1)
    key = LaneKey(hook.id, A)
    lease = timedelta(seconds=FAST.lease)
    target = WebhookTarget(hook, new_client(FAST))
    deps = LaneDeps(env.log, env.hooks, env.log.record_incident, FAST, lambda: False, lambda: 0)
    try:
        # A claim with 0.3 s left (less than timeout + margin): renewed for a whole lease.
        now = datetime.now(UTC)
        lane = await env.hooks.claim_lane(key, hook, now - lease + timedelta(seconds=0.3), lease)
        assert lane is not None
        runner = LaneRunner(deps, target, key)
        runner._lane = lane
        assert await runner._renew_if_short()
        assert runner._lane is not None
        assert runner._lane.lease_until >= now + lease - timedelta(seconds=1)
        # A failing lane is renewed too, and keeps its failing run.
        past = now - lease
        assert await env.hooks.lane_failed(runner._lane, "HTTP 500", past, past)
        lane = await env.hooks.claim_lane(key, hook, now - lease + timedelta(seconds=0.3), lease)
        assert lane is not None
        assert lane.attempts == 1
        runner._lane = lane
        assert await runner._renew_if_short()
        assert runner._lane is not None
        assert runner._lane.attempts == 1
        assert runner._lane.first_failure_at is not None
        assert runner._lane.lease_until >= now + lease - timedelta(seconds=1)
        # A claim with time left is left alone (no write).
        kept = runner._lane
        assert await runner._renew_if_short()
        assert runner._lane is kept
    finally:
        await target.client.aclose()


# ----- backoff and configuration ---------------------------------------------------------
def test_retry_delay_doubles_with_equal_jitter_up_to_the_cap() -> None:
    rand = random.Random(7)
    for attempts, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (12, 60.0), (5000, 60.0)):
        for _ in range(50):
            delay = retry_delay(attempts, 1.0, 60.0, rand)
            assert ceiling / 2 <= delay <= ceiling


def test_next_attempt_never_passes_the_end_of_the_window() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    first = now - timedelta(seconds=95)
    at = next_attempt_at(now, 10, first, retry_min=1, retry_max=3600, retry_for=100)
    assert at == first + timedelta(seconds=100)
    early = next_attempt_at(now, 1, now, retry_min=1, retry_max=3600, retry_for=100)
    assert now + timedelta(seconds=0.5) <= early <= now + timedelta(seconds=1)


def test_config_from_settings() -> None:
    settings = Settings(
        webhook_timeout=45.0,
        webhook_retry_min=2.0,
        webhook_retry_max=600.0,
        webhook_retry_for=7200.0,
        webhook_concurrency=3,
        event_poll=0.25,
        webhook_allow_private=True,
    )
    config = DispatchConfig.from_settings(settings)
    assert (config.timeout, config.retry_min, config.retry_max) == (45.0, 2.0, 600.0)
    assert (config.retry_for, config.concurrency, config.poll) == (7200.0, 3, 0.25)
    assert config.allow_private
    assert config.lease > config.timeout + config.renew_margin
    assert DispatchConfig.from_settings(Settings()).lease == 60.0


@pytest.mark.parametrize(
    "changes",
    [{"lease": 10.0}, {"retry_max": 0.5}, {"concurrency": 0}, {"timeout": 0.0}],
)
def test_config_refuses_what_cannot_work(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="DispatchConfig"):
        replace(DispatchConfig(), **changes)
