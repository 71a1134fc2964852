"""Log format and trusted proxies: chart values that reach every component's ConfigMap."""

from __future__ import annotations

import pytest
from helm.chartkit import HelmChart

pytestmark = pytest.mark.helm


def test_defaults_are_text_logs_and_no_trusted_proxy_but_loopback(chart: HelmChart) -> None:
    data = chart.render().one("ConfigMap")["data"]
    assert data["WAFLEET_LOG_FORMAT"] == "text"
    assert data["WAFLEET_FORWARDED_ALLOW_IPS"] == "127.0.0.1"


def test_json_logs_and_an_ingress_network(chart: HelmChart) -> None:
    sets = ["config.logFormat=json", "config.forwardedAllowIps=10.0.0.0/8"]
    data = chart.render(sets=sets).one("ConfigMap")["data"]
    assert (data["WAFLEET_LOG_FORMAT"], data["WAFLEET_FORWARDED_ALLOW_IPS"]) == (
        "json",
        "10.0.0.0/8",
    )


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["config.logFormat=xml"], "at '/config/logFormat'"),
        (["config.forwardedAllowIps="], "at '/config/forwardedAllowIps'"),
    ],
)
def test_bad_log_values_are_refused(chart: HelmChart, sets: list[str], message: str) -> None:
    error = chart.refusal(sets=sets)
    assert message in error, error
