"""The chart's events settings: each reaches every component through the ConfigMap, read
back by the same Settings parser the processes use; out-of-range values are refused."""

from __future__ import annotations

import pytest
from helm.chartkit import HelmChart, values_file

from wafleet.core.settings import Settings

pytestmark = pytest.mark.helm


def test_events_settings_reach_the_components(chart: HelmChart) -> None:
    out = chart.render(
        values_file("firestore"),
        sets=[
            "events.retentionDays=30",
            "events.webhookTimeout=5",
            "events.webhookRetryFor=3600",
            "events.webhookConcurrency=64",
            "events.webhookAllowPrivate=true",
        ],
    )
    config = out.one("ConfigMap")["data"]
    settings = Settings.from_env({**config, "WAFLEET_FIRESTORE_PROJECT": "p"})
    assert settings.event_retention_days == 30
    assert settings.webhook_timeout == 5.0
    assert settings.webhook_retry_for == 3600.0
    assert settings.webhook_concurrency == 64
    assert settings.webhook_allow_private is True
    defaults = Settings.from_env(out_config(chart))
    assert defaults.webhook_allow_private is False
    assert defaults.event_retention_days == 7


def out_config(chart: HelmChart) -> dict[str, str]:
    data: dict[str, str] = chart.render(values_file("firestore")).one("ConfigMap")["data"]
    return {**data, "WAFLEET_FIRESTORE_PROJECT": "p"}


@pytest.mark.parametrize(
    "bad",
    ["events.retentionDays=0", "events.webhookTimeout=0", "events.webhookConcurrency=0"],
)
def test_out_of_range_events_settings_are_refused(chart: HelmChart, bad: str) -> None:
    assert bad.split("=", maxsplit=1)[0].split(".")[1] in chart.refusal(sets=[bad])
