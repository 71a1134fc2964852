"""Reconnect backoff with full jitter, and the token bucket for starts and sends."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from wafleet_connector.pacing import Backoff, TokenBucket


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def take_all(bucket: TokenBucket) -> int:
    taken = 0
    while bucket.try_acquire():
        taken += 1
        assert taken < 10_000, "the bucket never runs dry"
    return taken


# ----- Backoff -------------------------------------------------------------------------------
def test_ceiling_doubles_then_caps() -> None:
    backoff = Backoff(base=1.0, cap=60.0)
    assert [backoff.ceiling(n) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert Backoff(base=0.5, cap=3.0).ceiling(0) == 0.5
    assert Backoff(base=0.5, cap=3.0).ceiling(2) == 2.0
    assert Backoff(base=0.5, cap=3.0).ceiling(3) == 3.0


def test_ceiling_never_exceeds_the_cap() -> None:
    backoff = Backoff(base=2.0, cap=300.0)
    ceilings = [backoff.ceiling(n) for n in range(200)]
    assert max(ceilings) == 300.0
    assert ceilings == sorted(ceilings)


def test_delay_is_within_zero_and_the_ceiling() -> None:
    backoff = Backoff(base=1.0, cap=30.0, rng=random.Random(42))
    for attempt in range(40):
        ceiling = backoff.ceiling(attempt)
        delays = [backoff.delay(attempt) for _ in range(50)]
        assert all(0.0 <= d <= ceiling for d in delays), (attempt, delays)


def test_delay_is_jittered_over_the_whole_range() -> None:
    backoff = Backoff(base=1.0, cap=10.0, rng=random.Random(7))
    delays = [backoff.delay(10) for _ in range(500)]
    assert min(delays) < 1.0  # full jitter reaches near zero
    assert max(delays) > 9.0  # and near the cap
    assert len(set(delays)) > 400


def test_same_seed_same_delays() -> None:
    a = Backoff(rng=random.Random(5))
    b = Backoff(rng=random.Random(5))
    assert [a.delay(n) for n in range(20)] == [b.delay(n) for n in range(20)]
    assert a == b  # the generator is not part of equality


@pytest.mark.parametrize("attempt", [63, 64, 1000, 10**6, 10**18])
def test_never_gives_up_on_large_attempts(attempt: int) -> None:
    backoff = Backoff(base=1.0, cap=60.0, rng=random.Random(1))
    assert backoff.ceiling(attempt) == 60.0
    assert 0.0 <= backoff.delay(attempt) <= 60.0


# ----- TokenBucket, fake clock ---------------------------------------------------------------
def test_burst_then_refuse() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.try_acquire() for _ in range(4)] == [True, True, True, False]
    assert not bucket.try_acquire()


def test_refills_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert take_all(bucket) == 3
    clock.advance(0.25)  # half a token
    assert not bucket.try_acquire()
    clock.advance(0.25)  # one token
    assert bucket.try_acquire()
    assert not bucket.try_acquire()
    clock.advance(1.0)  # two tokens
    assert take_all(bucket) == 2


def test_refill_never_exceeds_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=5.0, burst=4, clock=clock)
    take_all(bucket)
    clock.advance(3600)
    assert take_all(bucket) == 4


def test_many_small_steps_add_up() -> None:
    # Steps exactly representable in binary: with 0.01 s steps float rounding makes each
    # token need one poll more (90 grants in 10 s at 10/s); acquire() is not affected.
    clock = FakeClock(0.0)
    bucket = TokenBucket(rate=4.0, burst=1, clock=clock)
    take_all(bucket)
    granted = 0
    for _ in range(160):  # 10 s in 1/16 s steps
        clock.advance(0.0625)
        granted += bucket.try_acquire()
    assert granted == 40


async def test_acquire_does_not_wait_within_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=0.001, burst=3, clock=clock)
    for _ in range(3):
        await asyncio.wait_for(bucket.acquire(), 1.0)
    assert not bucket.try_acquire()


# ----- TokenBucket, real time ----------------------------------------------------------------
async def test_acquire_paces_at_the_rate() -> None:
    rate, burst, count = 20.0, 2, 12  # (12 - 2) / 20 = 0.5 s
    bucket = TokenBucket(rate=rate, burst=burst)
    started = time.monotonic()

    async def take_n() -> None:
        for _ in range(count):
            await bucket.acquire()

    await asyncio.wait_for(take_n(), 5.0)
    elapsed = time.monotonic() - started
    expected = (count - burst) / rate
    assert expected * 0.8 <= elapsed <= expected + 1.0, elapsed


async def test_concurrent_waiters_share_the_rate() -> None:
    rate, burst, count = 20.0, 1, 9  # (9 - 1) / 20 = 0.4 s for all of them together
    bucket = TokenBucket(rate=rate, burst=burst)
    done_at: list[float] = []
    started = time.monotonic()

    async def waiter() -> None:
        await bucket.acquire()
        done_at.append(time.monotonic() - started)

    await asyncio.wait_for(asyncio.gather(*(waiter() for _ in range(count))), 5.0)
    expected = (count - burst) / rate
    assert len(done_at) == count
    assert expected * 0.8 <= max(done_at) <= expected + 1.0, done_at
    assert done_at == sorted(done_at)
