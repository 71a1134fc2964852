"""The key that signs QR page links: one for every API replica, from a Secret."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from helm.chartkit import HelmChart, pod_spec

pytestmark = pytest.mark.helm


def api_env(chart: HelmChart, *sets: str) -> dict[str, Any]:
    out = chart.render(sets=list(sets))
    container = pod_spec(out.one("Deployment", "wafleet-api"))["containers"][0]
    return {e["name"]: e for e in container["env"]}


def test_the_key_comes_from_the_admin_secret_by_default(chart: HelmChart) -> None:
    ref = api_env(chart)["WAFLEET_LINK_KEY"]["valueFrom"]["secretKeyRef"]
    # One replica may do without (it keeps its own key); more must share one.
    assert ref == {"name": "wafleet-admin", "key": "link-key", "optional": True}
    ref = api_env(chart, "api.replicas=3")["WAFLEET_LINK_KEY"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "wafleet-admin", "key": "link-key", "optional": False}


def test_a_secret_of_its_own(chart: HelmChart) -> None:
    env = api_env(chart, "api.linkKey.existingSecret=qr-links", "api.linkKey.key=hmac")
    ref = env["WAFLEET_LINK_KEY"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "qr-links", "key": "hmac", "optional": True}


def test_the_generated_admin_secret_holds_a_link_key(chart: HelmChart) -> None:
    out = chart.render(sets=["api.adminToken.create=true"])
    data = out.one("Secret", "wafleet-admin")["data"]
    assert set(data) == {"token", "link-key"}
    assert len(base64.b64decode(data["link-key"])) >= 32
    own = chart.render(sets=["api.adminToken.create=true", "api.linkKey.existingSecret=qr"])
    assert set(own.one("Secret", "wafleet-admin")["data"]) == {"token"}


def test_lifetimes_go_into_the_configmap(chart: HelmChart) -> None:
    config = chart.render(sets=["config.linkTtl=300", "config.linkMaxTtl=3600"]).one("ConfigMap")
    assert (config["data"]["WAFLEET_LINK_TTL"], config["data"]["WAFLEET_LINK_MAX_TTL"]) == (
        "300",
        "3600",
    )


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (
            ["api.linkKey.key=token"],
            "api.linkKey.key (token) is the key of the admin token in the same Secret",
        ),
        (
            ["config.linkTtl=7200", "config.linkMaxTtl=3600"],
            "config.linkTtl (7200) must not be above config.linkMaxTtl (3600)",
        ),
        (["config.linkTtl=30"], "at '/config/linkTtl': minimum: got 30, want 60"),
        (["api.linkKey.existingSecret=Bad_Name"], "at '/api/linkKey/existingSecret'"),
    ],
)
def test_bad_link_values_are_refused(chart: HelmChart, sets: list[str], message: str) -> None:
    error = chart.refusal(sets=sets)
    assert message in error, error
