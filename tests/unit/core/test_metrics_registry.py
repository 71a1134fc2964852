"""The metrics plumbing every component uses (wafleet.core.metrics): one registry per
Metrics, refreshes awaited before a scrape and bounded, the exposition the scraper asks for."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import pytest
from prometheus_client.metrics_core import Metric

from wafleet.core import metrics as core_metrics
from wafleet.core.metrics import Metrics, counter, gauge


class Counted:
    """A collector that reads a value refreshed over "I/O" before each scrape."""

    def __init__(
        self, value: float = 0.0, fail: bool = False, hang: bool = False, name: str = "depth"
    ) -> None:
        self.name = name
        self.value = value
        self.fail = fail
        self.hang = hang
        self.refreshes = 0

    async def refresh(self) -> None:
        self.refreshes += 1
        if self.hang:
            await asyncio.Event().wait()
        if self.fail:
            raise OSError("the store is down")
        self.value += 1

    def collect(self) -> Iterable[Metric]:
        family = gauge(f"wafleet_test_{self.name}", "A depth.", ["account"])
        family.add_metric(["wa-a"], self.value)
        total = counter(f"wafleet_test_{self.name}_things", "Things.")
        total.add_metric([], 3)
        return [family, total]


async def test_a_scrape_refreshes_first_and_renders_what_the_scraper_accepts() -> None:
    metrics = Metrics(process=False)
    collector = Counted()
    metrics.add(collector)
    body, content_type = await metrics.render(None)
    assert content_type.startswith("text/plain; version=0.0.4")
    assert 'wafleet_test_depth{account="wa-a"} 1.0' in body.decode()
    assert "# TYPE wafleet_test_depth_things_total counter" in body.decode()
    body, content_type = await metrics.render("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.decode().endswith("# EOF\n")
    assert collector.refreshes == 2


async def test_a_failing_or_hanging_refresh_never_fails_the_scrape(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(core_metrics, "REFRESH_TIMEOUT", 0.05)
    metrics = Metrics(process=False)
    failing, hanging = Counted(7, fail=True), Counted(9, hang=True, name="lag")
    metrics.add(failing)
    metrics.add(hanging)
    with pytest.raises(ValueError, match="Duplicated"):  # one registry: no name twice
        metrics.add(Counted())
    body, _ = await metrics.render(None)
    text = body.decode()  # both still collect what they had
    assert 'wafleet_test_depth{account="wa-a"} 7.0' in text
    assert 'wafleet_test_lag{account="wa-a"} 9.0' in text
    assert "a metrics refresh failed" in caplog.text


def test_each_metrics_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.add(Counted(1))
    second.add(Counted(2))  # the same names, another registry: no clash
    assert first.sample("wafleet_test_depth", {"account": "wa-a"}) == 1
    assert second.sample("wafleet_test_depth", {"account": "wa-a"}) == 2
    assert first.sample("process_open_fds") is not None
    assert Metrics(process=False).sample("process_open_fds") is None
