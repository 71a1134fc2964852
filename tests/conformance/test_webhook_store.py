"""One WebhookStore contract, two stores: every test runs on SQLite and on Firestore (emulator).

The contract is the docstrings of ``wafleet.stores.base.WebhookStore`` and of
``wafleet.events.webhooks``: registrations, lanes (one per webhook and account) claimed by
one worker at a time with a lease, conditional lane writes, retries, dead letters and
replays. Claims and leases are driven by explicit ``now`` values (no sleeping); the only
real clock is the events' own time, against which a webhook's ``created_at`` is set.

``replay`` returns how many lanes it moved back: an existing lane whose cursor went back,
or a missing lane created before where it would have started (after the last event
logged before the webhook's creation). A missing lane is never created past that start
(it would skip events never delivered).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from wafleet.core.models import AccountStatus
from wafleet.core.phases import Phase
from wafleet.events.model import Event, phase_event
from wafleet.events.webhooks import Failure, Lane, LaneKey, Webhook
from wafleet.stores.base import WebhookStore

T0 = datetime(2025, 3, 1, 12, 0, 0, 500000, tzinfo=UTC)  # before every event logged here
NOW = datetime(2025, 6, 1, 8, 0, 0, 0, tzinfo=UTC)  # the claims' clock
LEASE = timedelta(seconds=30)
A, B, C = "wa-aaaaaaaaaaaaaaaaaaaa", "wa-bbbbbbbbbbbbbbbbbbbb", "wa-cccccccccccccccccccc"


def webhook(
    n: int = 1,
    *,
    created: datetime = T0,
    events: tuple[str, ...] | None = None,
    accounts: tuple[str, ...] | None = None,
) -> Webhook:
    return Webhook(
        id=f"wh_test{n}",
        url=f"https://hooks.example.com/{n}",
        secret=f"whsec_c2VjcmV0LXt{n}",
        events=events,
        account_ids=accounts,
        created_at=created,
    )


async def log(store: Any, account: str, count: int = 1) -> list[Event]:
    """``count`` events for ``account``, one write each."""
    logged: list[Event] = []
    for n in range(count):
        status = AccountStatus(phase=Phase.CONNECTED, reason=f"event {n}")
        logged += await store.append_events([phase_event(account, status)])
    return logged


async def created_after(events: list[Event]) -> datetime:
    """A creation time just after ``events`` were logged, by the log's own clock; the
    next event logged is logged after it."""
    at = max(e.at for e in events) + timedelta(milliseconds=1)
    await asyncio.sleep(0.02)
    return at


async def claimed(hooks: Any, hook: Webhook, account: str, now: datetime = NOW) -> Lane:
    lane = await hooks.claim_lane(LaneKey(hook.id, account), hook, now, LEASE)
    assert lane is not None
    assert isinstance(lane, Lane)
    return lane


async def test_both_implement_the_protocol(backend: Any) -> None:
    typed: WebhookStore = await backend.open_webhooks("pod-7")
    assert typed.worker_id == "pod-7"


# --- registrations ----------------------------------------------------------------------


async def test_create_get_list_disable_delete(backend: Any) -> None:
    hooks = await backend.open_webhooks()
    first = webhook(1, events=("message.inbound", "message.status"))
    second = webhook(2, created=T0 + timedelta(seconds=1), accounts=(A, B))
    await hooks.create_webhook(second)
    await hooks.create_webhook(first)
    assert await hooks.get_webhook(first.id) == first
    assert await hooks.get_webhook(second.id) == second
    assert await hooks.get_webhook("wh_missing") is None
    assert await hooks.list_webhooks() == [first, second]  # oldest first

    gone_at = T0 + timedelta(hours=1)
    await hooks.disable_webhook(first.id, "410 Gone", gone_at)
    disabled = await hooks.get_webhook(first.id)
    assert disabled is not None
    assert (disabled.enabled, disabled.disabled_at, disabled.disabled_reason) == (
        False,
        gone_at,
        "410 Gone",
    )
    assert [h.id for h in await hooks.list_webhooks()] == [first.id, second.id]

    assert await hooks.delete_webhook(first.id) is True
    assert await hooks.get_webhook(first.id) is None
    assert await hooks.delete_webhook(first.id) is False
    assert await hooks.list_webhooks() == [second]


async def test_delete_removes_lanes_and_dead_letters(backend: Any, store: Any) -> None:
    hooks = await backend.open_webhooks()
    hook = webhook()
    await hooks.create_webhook(hook)
    events = await log(store, A, 3)
    lane = await claimed(hooks, hook, A)
    lane = await hooks.lane_dead_letter(lane, events[0], "HTTP 500", NOW, LEASE)
    assert lane is not None and lane.cursor == 1
    lane = await hooks.lane_delivered(lane, 3, NOW, LEASE)
    assert lane is not None
    await hooks.release_lane(lane)
    assert len(await hooks.list_failures(hook.id, 10)) == 1

    assert await hooks.delete_webhook(hook.id)
    await hooks.create_webhook(hook)  # the same id again: a new registration
    assert await hooks.list_failures(hook.id, 10) == []
    fresh = await claimed(hooks, hook, A)
    assert fresh.cursor == 0  # a new lane, not the old one at 3


# --- due lanes --------------------------------------------------------------------------


async def test_due_lanes_hints(backend: Any, store: Any) -> None:
    hooks = await backend.open_webhooks()
    every, only_a = webhook(1), webhook(2, accounts=(A,))
    for hook in (every, only_a):
        await hooks.create_webhook(hook)
    assert await hooks.due_lanes([every, only_a], NOW, 10) == []  # nothing logged yet

    await log(store, A)
    await log(store, B, 2)
    due = await hooks.due_lanes([every, only_a], NOW, 10)
    assert sorted(due, key=repr) == sorted(
        [LaneKey(every.id, A), LaneKey(every.id, B), LaneKey(only_a.id, A)], key=repr
    )
    assert sorted(await hooks.due_lanes([only_a], NOW, 10), key=repr) == [LaneKey(only_a.id, A)]
    assert len(await hooks.due_lanes([every, only_a], NOW, 2)) == 2
    assert await hooks.due_lanes([], NOW, 10) == []

    # a lane done with everything is not due; a new event makes it due again
    lane = await claimed(hooks, only_a, A)
    lane = await hooks.lane_delivered(lane, 1, NOW, LEASE)
    assert lane is not None
    await hooks.release_lane(lane)
    assert await hooks.due_lanes([only_a], NOW, 10) == []
    await log(store, A)
    assert await hooks.due_lanes([only_a], NOW, 10) == [LaneKey(only_a.id, A)]


async def test_a_webhook_is_due_only_for_what_happens_from_its_creation(
    backend: Any, store: Any
) -> None:
    hooks = await backend.open_webhooks()
    before = await log(store, A, 2) + await log(store, B)
    hook = webhook(created=await created_after(before))
    await hooks.create_webhook(hook)
    assert await hooks.due_lanes([hook], NOW, 10) == []
    assert await hooks.claim_lane(LaneKey(hook.id, B), hook, NOW, LEASE) is None

    (after,) = await log(store, A)
    assert await hooks.due_lanes([hook], NOW, 10) == [LaneKey(hook.id, A)]
    lane = await claimed(hooks, hook, A)
    assert lane.cursor == 2  # after the last event logged before the webhook was created
    assert after.seq == 3


# --- claims -----------------------------------------------------------------------------


async def test_a_claim(backend: Any, store: Any) -> None:
    hooks = await backend.open_webhooks("w1")
    hook = webhook()
    await hooks.create_webhook(hook)
    await log(store, A, 2)
    lane = await claimed(hooks, hook, A)
    assert (lane.webhook_id, lane.account_id, lane.cursor) == (hook.id, A, 0)
    assert lane.key == LaneKey(hook.id, A)
    assert (lane.lease_until, lane.attempts, lane.first_failure_at, lane.last_error) == (
        NOW + LEASE,
        0,
        None,
        None,
    )
    assert lane.claim


async def test_a_live_claim_of_another_worker_refuses_an_expired_one_is_taken_over(
    backend: Any, store: Any
) -> None:
    one, two = await backend.open_webhooks("w1"), await backend.open_webhooks("w2")
    hook = webhook()
    await one.create_webhook(hook)
    await log(store, A, 3)
    key = LaneKey(hook.id, A)
    first = await claimed(one, hook, A)
    assert await two.claim_lane(key, hook, NOW + timedelta(seconds=10), LEASE) is None
    assert await two.due_lanes([hook], NOW + timedelta(seconds=10), 10) == []
    assert await one.due_lanes([hook], NOW + timedelta(seconds=10), 10) == [key]  # its own

    later = NOW + LEASE + timedelta(seconds=1)  # the first claim's lease is over
    assert await two.due_lanes([hook], later, 10) == [key]
    second = await claimed(two, hook, A, later)
    assert second.claim != first.claim
    assert second.lease_until == later + LEASE

    # every write with the lost claim is refused and changes nothing
    assert await one.lane_delivered(first, 2, later, LEASE) is None
    assert await one.lane_failed(first, "HTTP 500", later, later + timedelta(hours=1)) is False
    events = await store.events_after(A, 0, 10)
    assert await one.lane_dead_letter(first, events[0], "HTTP 500", later, LEASE) is None
    await one.release_lane(first)
    assert await one.list_failures(hook.id, 10) == []
    assert await one.claim_lane(key, hook, later, LEASE) is None  # still two's
    renewed = await two.lane_delivered(second, 1, later, LEASE)
    assert renewed is not None and renewed.cursor == 1


async def test_two_workers_claiming_at_once_get_one_claim(backend: Any, store: Any) -> None:
    workers = [await backend.open_webhooks(f"w{n}") for n in range(4)]
    hook = webhook()
    await workers[0].create_webhook(hook)
    await log(store, A)
    key = LaneKey(hook.id, A)
    lanes = await asyncio.gather(*(w.claim_lane(key, hook, NOW, LEASE) for w in workers))
    assert len([lane for lane in lanes if lane is not None]) == 1


async def test_a_restarted_worker_takes_its_own_claim_over_at_once(
    backend: Any, store: Any
) -> None:
    before = await backend.open_webhooks("pod-0")
    hook = webhook()
    await before.create_webhook(hook)
    await log(store, A, 2)
    old = await claimed(before, hook, A)
    restarted = await backend.open_webhooks("pod-0")  # same worker id, new store
    soon = NOW + timedelta(seconds=1)
    assert await restarted.due_lanes([hook], soon, 10) == [LaneKey(hook.id, A)]
    new = await claimed(restarted, hook, A, soon)
    assert new.claim != old.claim and new.cursor == old.cursor
    assert await before.lane_delivered(old, 1, soon, LEASE) is None  # the old claim is dead
    assert await restarted.lane_delivered(new, 1, soon, LEASE) is not None


async def test_nothing_past_the_cursor_refuses(backend: Any, store: Any) -> None:
    hooks = await backend.open_webhooks()
    hook = webhook()
    await hooks.create_webhook(hook)
    key = LaneKey(hook.id, A)
    assert await hooks.claim_lane(key, hook, NOW, LEASE) is None  # no event at all
    await log(store, A, 2)
    lane = await claimed(hooks, hook, A)
    lane = await hooks.lane_delivered(lane, 2, NOW, LEASE)
    assert lane is not None
    await hooks.release_lane(lane)
    assert await hooks.claim_lane(key, hook, NOW, LEASE) is None
    await log(store, B)  # another account's event changes nothing here
    assert await hooks.claim_lane(key, hook, NOW, LEASE) is None
    await log(store, A)
    again = await claimed(hooks, hook, A)
    assert again.cursor == 2


async def test_a_released_lane_is_free_for_any_worker(backend: Any, store: Any) -> None:
    one, two = await backend.open_webhooks("w1"), await backend.open_webhooks("w2")
    hook = webhook()
    await one.create_webhook(hook)
    await log(store, A, 2)
    lane = await claimed(one, hook, A)
    lane = await one.lane_delivered(lane, 1, NOW, LEASE)
    assert lane is not None
    await one.release_lane(lane)
    assert await two.due_lanes([hook], NOW, 10) == [LaneKey(hook.id, A)]
    taken = await claimed(two, hook, A)
    assert taken.cursor == 1


# --- delivery, retries, dead letters ----------------------------------------------------


async def test_delivered_moves_the_cursor_and_renews_the_claim(backend: Any, store: Any) -> None:
    hooks = await backend.open_webhooks()
    hook = webhook()
    await hooks.create_webhook(hook)
    await log(store, A, 3)
    lane = await claimed(hooks, hook, A)
    later = NOW + timedelta(seconds=20)
    moved = await hooks.lane_delivered(lane, 2, later, LEASE)
    assert moved is not None
    assert (moved.cursor, moved.claim, moved.lease_until) == (2, lane.claim, later + LEASE)
    # the renewed lease holds past the first one's end
    other = await backend.open_webhooks("w-other")
    one_second = timedelta(seconds=1)
    assert await other.claim_lane(lane.key, hook, NOW + LEASE + one_second, LEASE) is None
    assert await other.claim_lane(lane.key, hook, later + LEASE + one_second, LEASE) is not None


async def test_a_failed_lane_waits_for_its_retry(backend: Any, store: Any) -> None:
    hooks = await backend.open_webhooks()
    hook = webhook()
    await hooks.create_webhook(hook)
    events = await log(store, A, 2)
    key = LaneKey(hook.id, A)
    lane = await claimed(hooks, hook, A)
    retry_at = NOW + timedelta(minutes=1)
    assert await hooks.lane_failed(lane, "HTTP 500", NOW, retry_at) is True

    early = NOW + timedelta(seconds=30)
    assert await hooks.due_lanes([hook], early, 10) == []
    assert await hooks.claim_lane(key, hook, early, LEASE) is None  # waiting, unclaimed
    assert await hooks.due_lanes([hook], retry_at, 10) == [key]
    retried = await claimed(hooks, hook, A, retry_at)
    assert retried.claim != lane.claim
    assert (retried.cursor, retried.attempts, retried.first_failure_at, retried.last_error) == (
        0,
        1,
        NOW,
        "HTTP 500",
    )

    again_at = retry_at + timedelta(seconds=1)
    assert await hooks.lane_failed(retried, "timeout", again_at, again_at + timedelta(minutes=2))
    third = await claimed(hooks, hook, A, again_at + timedelta(minutes=2))
    assert (third.attempts, third.first_failure_at, third.last_error) == (2, NOW, "timeout")

    done_at = again_at + timedelta(minutes=3)
    delivered = await hooks.lane_delivered(third, events[0].seq, done_at, LEASE)
    assert delivered is not None
    assert (delivered.cursor, delivered.attempts, delivered.first_failure_at) == (1, 0, None)
    assert delivered.last_error is None
    await hooks.release_lane(delivered)
    fresh = await claimed(hooks, hook, A, done_at)  # the failure state went with it
    assert (fresh.cursor, fresh.attempts, fresh.first_failure_at, fresh.last_error) == (
        1,
        0,
        None,
        None,
    )


async def test_dead_letter_moves_past_the_event_and_keeps_it(backend: Any, store: Any) -> None:
    hooks = await backend.open_webhooks()
    hook = webhook()
    await hooks.create_webhook(hook)
    events = await log(store, A, 3)
    lane = await claimed(hooks, hook, A)
    assert await hooks.lane_failed(lane, "HTTP 500", NOW, NOW + timedelta(seconds=1))
    lane = await claimed(hooks, hook, A, NOW + timedelta(seconds=1))
    assert await hooks.lane_failed(lane, "HTTP 502", NOW, NOW + timedelta(seconds=2))
    lane = await claimed(hooks, hook, A, NOW + timedelta(seconds=2))

    dead_at = NOW + timedelta(days=1)
    moved = await hooks.lane_dead_letter(lane, events[0], "HTTP 503", dead_at, LEASE)
    assert moved is not None
    assert (moved.cursor, moved.attempts, moved.first_failure_at, moved.last_error) == (
        1,
        0,
        None,
        None,
    )
    assert (moved.claim, moved.lease_until) == (lane.claim, dead_at + LEASE)
    # the failing run: two recorded failures and the one that ended it
    assert await hooks.list_failures(hook.id, 10) == [
        Failure(hook.id, events[0], 3, NOW, "HTTP 503", dead_at)
    ]
    # an event that fails at once on its first attempt
    second = await hooks.lane_dead_letter(moved, events[1], "HTTP 400", dead_at, LEASE)
    assert second is not None and second.cursor == 2
    failures = await hooks.list_failures(hook.id, 10)
    assert [f.event.id for f in failures] == [events[1].id, events[0].id]  # newest first
    assert (failures[0].attempts, failures[0].first_failure_at) == (1, dead_at)
    assert failures[0].public()["event"] == events[1].body()
    assert await hooks.list_failures(hook.id, 1) == failures[:1]
    assert await hooks.list_failures("wh_other", 10) == []


# --- replay -----------------------------------------------------------------------------


async def test_replay_rewinds_and_creates_lanes(backend: Any, store: Any) -> None:
    hooks = await backend.open_webhooks()
    a1, b1, a2 = (await log(store, A))[0], (await log(store, B))[0], (await log(store, A))[0]
    hook = webhook(created=await created_after([a1, b1, a2]))
    await hooks.create_webhook(hook)
    await log(store, A)
    await log(store, B)
    lane = await claimed(hooks, hook, A)
    assert lane.cursor == 2
    lane = await hooks.lane_delivered(lane, 3, NOW, LEASE)
    assert lane is not None
    await hooks.release_lane(lane)

    # A's lane back to a1; B's (never claimed, would start at 1) to just before b1
    assert await hooks.replay(hook.id, a1) == 2
    a_lane = await claimed(hooks, hook, A)
    b_lane = await claimed(hooks, hook, B)
    assert (a_lane.cursor, b_lane.cursor) == (1, 0)
    assert await hooks.replay(hook.id, a1) == 0  # already there: nothing moves


async def test_replay_never_moves_a_lane_forward(backend: Any, store: Any) -> None:
    hooks = await backend.open_webhooks()
    before = await log(store, A)
    hook = webhook(created=await created_after(before))
    await hooks.create_webhook(hook)
    after = await log(store, A, 3)  # seqs 2, 3, 4
    # A's lane does not exist yet: it would start at 1; a replay after seq 3 keeps that
    # (and a lane that starts where it would have is not counted as rewound)
    assert await hooks.replay(hook.id, after[1]) == 0
    lane = await claimed(hooks, hook, A)
    assert lane.cursor == 1
    # an existing lane behind the replay point stays where it is
    assert await hooks.replay(hook.id, after[1]) == 0
    await hooks.release_lane(lane)
    assert (await claimed(hooks, hook, A)).cursor == 1


async def test_replay_clears_the_failure_state(backend: Any, store: Any) -> None:
    hooks = await backend.open_webhooks()
    hook = webhook()
    await hooks.create_webhook(hook)
    events = await log(store, A, 3)
    lane = await claimed(hooks, hook, A)
    lane = await hooks.lane_delivered(lane, 2, NOW, LEASE)
    assert lane is not None
    assert await hooks.lane_failed(lane, "HTTP 500", NOW, NOW + timedelta(hours=6))
    assert await hooks.replay(hook.id, events[0]) == 1
    replayed = await claimed(hooks, hook, A)  # no wait for the retry any more
    assert (replayed.cursor, replayed.attempts, replayed.first_failure_at) == (1, 0, None)
    assert replayed.last_error is None


async def test_a_replay_under_a_claim_makes_its_delivery_fail(backend: Any, store: Any) -> None:
    hooks = await backend.open_webhooks()
    hook = webhook()
    await hooks.create_webhook(hook)
    events = await log(store, A, 3)
    lane = await claimed(hooks, hook, A)
    lane = await hooks.lane_delivered(lane, 2, NOW, LEASE)
    assert lane is not None
    assert await hooks.replay(hook.id, events[0]) == 1
    assert await hooks.lane_delivered(lane, 3, NOW, LEASE) is None  # the cursor moved
    again = await claimed(hooks, hook, A)  # its own claim: taken over at once
    assert again.cursor == 1


async def test_replay_creates_lanes_only_for_wanted_accounts(backend: Any, store: Any) -> None:
    hooks = await backend.open_webhooks()
    a1, b1, c1 = [(await log(store, account))[0] for account in (A, B, C)]
    hook = webhook(accounts=(A, C), created=await created_after([a1, b1, c1]))
    await hooks.create_webhook(hook)
    for account in (B, C, A):
        await log(store, account)
    # A: its lane would start at 1, as replayed; C: back to 0, before its start at 1;
    # B: not wanted, no lane
    assert await hooks.replay(hook.id, a1) == 1
    assert sorted(await hooks.due_lanes([hook], NOW, 10), key=repr) == [
        LaneKey(hook.id, A),
        LaneKey(hook.id, C),
    ]
    assert await hooks.claim_lane(LaneKey(hook.id, B), hook, NOW, LEASE) is None
    assert (await claimed(hooks, hook, A)).cursor == 1
    assert (await claimed(hooks, hook, C)).cursor == 0
