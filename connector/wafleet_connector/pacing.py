"""Pacing: reconnect backoff with full jitter, and a token bucket for starts and sends."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: a delay drawn from [0, min(cap, base * 2^n))."""

    base: float = 1.0
    cap: float = 60.0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def ceiling(self, attempt: int) -> float:
        return min(self.cap, self.base * float(2 ** min(attempt, 62)))

    def delay(self, attempt: int) -> float:
        return self.rng.uniform(0.0, self.ceiling(attempt))


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; ``acquire`` waits for one.

    Waiters are served in arrival order, so a burst of 30 starts at 2/s takes
    about 15 s instead of the legacy server's 2-5 s of sleep per account.
    """

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] | None = None) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock or time.monotonic
        self._tokens = float(burst)
        self._stamp = self._clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def try_acquire(self) -> bool:
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    async def acquire(self) -> None:
        async with self._lock:
            # Sleeping exactly until the next token is due is the point here, not polling.
            while not self.try_acquire():  # noqa: ASYNC110
                await asyncio.sleep((1.0 - self._tokens) / self.rate)
