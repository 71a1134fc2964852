"""When a failed webhook delivery is tried again.

The delay after the n-th failed attempt of an event is "equal jitter" exponential
backoff: ``ceiling = min(retry_max, retry_min * 2 ** (n - 1))`` and the delay is drawn
uniformly from ``[ceiling / 2, ceiling]``. Half the ceiling is kept, so delays still grow
with every failure (an endpoint that is down is not hammered); the random half spreads
the retries of the many lanes that failed together (an endpoint that was down for
everyone) so they do not all come back at the same instant.

The retry is never scheduled after the end of the retry window (``first failure +
retry_for``): the last attempt happens when the window ends, and if it fails the event
is dead-lettered then, not up to ``retry_max`` later.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

_MAX_DOUBLINGS = 60  # 2 ** 60 times retry_min is past any cap: no float overflow


def retry_delay(
    attempts: int, retry_min: float, retry_max: float, rand: random.Random | None = None
) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt (1 for the first)."""
    doublings = min(max(attempts, 1) - 1, _MAX_DOUBLINGS)
    ceiling = min(retry_max, retry_min * 2.0**doublings)
    draw = (rand or random).random()
    return ceiling / 2 + draw * ceiling / 2


def next_attempt_at(
    now: datetime,
    attempts: int,
    first_failure_at: datetime,
    *,
    retry_min: float,
    retry_max: float,
    retry_for: float,
    rand: random.Random | None = None,
) -> datetime:
    """When to try again after the ``attempts``-th failure (see the module docstring)."""
    wanted = now + timedelta(seconds=retry_delay(attempts, retry_min, retry_max, rand))
    window_end = first_failure_at + timedelta(seconds=retry_for)
    return max(now, min(wanted, window_end))
