"""How the webhook dispatcher delivers: timeouts, retries, concurrency, claims."""

from __future__ import annotations

from dataclasses import dataclass

from wafleet.core.settings import Settings

DEFAULT_LEASE = 60.0  # seconds a lane claim lasts (renewed by every lane write)


@dataclass(frozen=True)
class DispatchConfig:
    """Delivery settings (seconds unless said otherwise); :meth:`from_settings` reads
    the WAFLEET_EVENT_POLL and WAFLEET_WEBHOOK_* settings."""

    timeout: float = 10.0  # one attempt (address check, connect, send, answer), overall
    retry_min: float = 1.0  # the ceiling of the first retry delay (doubling per attempt)
    retry_max: float = 3600.0  # the largest retry delay
    retry_for: float = 86400.0  # an event failing this long is dead-lettered
    concurrency: int = 16  # lanes (accounts) delivered at once, per webhook
    poll: float = 0.5  # between looks for due lanes, when no local write wakes the loop
    allow_private: bool = False  # may deliveries go to private/loopback/... addresses
    lease: float = DEFAULT_LEASE  # a lane claim's lifetime; must exceed timeout + renew_margin
    renew_margin: float = 2.0  # renew a claim before an attempt if less than timeout + this left
    batch: int = 100  # events read from the log at once for one lane
    hooks_refresh: float = 5.0  # the webhooks are re-read from the store this often
    hooks_min_refresh: float = 1.0  # and on a kick, but not more often than this
    grace: float = 2.0  # close(): in-flight deliveries get this long, then are cancelled
    release_timeout: float = 2.0  # close(): how long cancelled lanes may take to release

    def __post_init__(self) -> None:
        positive = {
            "timeout": self.timeout,
            "retry_min": self.retry_min,
            "retry_max": self.retry_max,
            "retry_for": self.retry_for,
            "poll": self.poll,
            "lease": self.lease,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"DispatchConfig.{name} must be above 0, not {value}")
        if self.concurrency < 1 or self.batch < 1:
            raise ValueError("DispatchConfig.concurrency and batch must be at least 1")
        if self.retry_max < self.retry_min:
            raise ValueError("DispatchConfig.retry_max must be at least retry_min")
        if self.renew_margin < 0 or self.grace < 0 or self.release_timeout < 0:
            raise ValueError("DispatchConfig.renew_margin, grace and release_timeout are >= 0")
        if self.lease <= self.timeout + self.renew_margin:
            raise ValueError(
                f"DispatchConfig.lease ({self.lease:g} s) must exceed timeout + renew_margin "
                f"({self.timeout + self.renew_margin:g} s): a claim must outlive an attempt"
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> DispatchConfig:
        """The configuration ``settings`` ask for. The lease is the default (60 s) or,
        for a long timeout, twice what an attempt may take; a stop's grace fits in a
        quarter of the shutdown timeout."""
        margin = cls.renew_margin
        timeout = settings.webhook_timeout
        return cls(
            timeout=timeout,
            retry_min=settings.webhook_retry_min,
            retry_max=settings.webhook_retry_max,
            retry_for=settings.webhook_retry_for,
            concurrency=settings.webhook_concurrency,
            poll=settings.event_poll,
            allow_private=settings.webhook_allow_private,
            lease=max(DEFAULT_LEASE, 2 * (timeout + margin)),
            grace=min(cls.grace, settings.shutdown_timeout / 4),
            release_timeout=min(cls.release_timeout, settings.shutdown_timeout / 4),
        )
