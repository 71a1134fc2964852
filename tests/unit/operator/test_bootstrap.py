"""The operator pod's init step: the chart's WhatsAppFleet object, created once, then
updated only where the chart's values changed (runtime changes survive restarts and
upgrades that leave a value alone); against the API emulator with the real CRD."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from k8s_emulator.server import Running, serve
from kubernetes_asyncio.client import Configuration

from wafleet.core.envconfig import ConfigError
from wafleet.kube.client import KubeClient
from wafleet_operator.bootstrap import (
    APPLIED_ANNOTATION,
    ChartFleet,
    chart_update,
    ensure_fleet,
    ensure_peering,
)

REPO = Path(__file__).resolve().parents[3]
NS = "wafleet"
FLEET_PATH = f"/apis/wafleet.io/v1alpha1/namespaces/{NS}/whatsappfleets/wafleet"
CHART = {
    "statefulSet": "wafleet-connector",
    "sessionsPerShard": 25,
    "minShards": 1,
    "maxShards": 20,
}


def live(spec: dict[str, Any], applied: dict[str, Any] | None) -> dict[str, Any]:
    annotations = {} if applied is None else {APPLIED_ANNOTATION: json.dumps(applied)}
    return {"metadata": {"resourceVersion": "7", "annotations": annotations}, "spec": spec}


def test_an_object_as_the_chart_left_it_is_not_written() -> None:
    assert chart_update(live(dict(CHART), CHART), CHART).patch is None


def test_a_value_changed_in_the_chart_is_written() -> None:
    upgrade = {**CHART, "maxShards": 30}
    update = chart_update(live(dict(CHART), CHART), upgrade)
    assert update.changed == {"maxShards": (20, 30)}
    assert update.patch is not None
    assert update.patch["spec"] == {"maxShards": 30}
    meta = update.patch["metadata"]
    assert meta["resourceVersion"] == "7"  # fails if the object changed since it was read
    assert json.loads(meta["annotations"][APPLIED_ANNOTATION]) == upgrade


def test_a_runtime_change_survives_while_the_chart_value_stays() -> None:
    edited = {**CHART, "sessionsPerShard": 40}  # kubectl edit waf
    update = chart_update(live(edited, CHART), CHART)
    assert update.patch is None
    assert update.kept == {"sessionsPerShard": (40, 25)}
    # ...also through an upgrade that changes another value
    upgrade = {**CHART, "maxShards": 30}
    update = chart_update(live(edited, CHART), upgrade)
    assert update.patch is not None and update.patch["spec"] == {"maxShards": 30}
    assert update.kept == {"sessionsPerShard": (40, 25)}
    # ...until the chart's value changes: the latest intent wins
    update = chart_update(live(edited, CHART), {**CHART, "sessionsPerShard": 50})
    assert update.patch is not None and update.patch["spec"] == {"sessionsPerShard": 50}


def test_an_object_the_chart_never_wrote_takes_the_chart_values() -> None:
    update = chart_update(live({"maxShards": 3}, None), CHART)
    assert update.patch is not None and update.patch["spec"] == CHART
    broken = live({**CHART}, None)
    broken["metadata"]["annotations"][APPLIED_ANNOTATION] = "not json"
    assert chart_update(broken, CHART).patch is not None  # only the annotation is written


def test_the_chart_fleet_from_the_init_container_environment() -> None:
    env = {
        "WAFLEET_NAMESPACE": NS,
        "WAFLEET_FLEET_NAME": "wafleet",
        "WAFLEET_CONNECTOR_STATEFULSET": "wafleet-connector",
        "WAFLEET_SESSIONS_PER_SHARD": "25",
        "WAFLEET_MIN_SHARDS": "1",
        "WAFLEET_MAX_SHARDS": "20",
    }
    chart = ChartFleet.from_env(env)
    assert chart is not None and dict(chart.spec) == CHART
    assert ChartFleet.from_env({"WAFLEET_NAMESPACE": NS}) is None  # fleet.create: false
    with pytest.raises(ConfigError):
        ChartFleet.from_env({**env, "WAFLEET_MIN_SHARDS": "21"})


@pytest.fixture(scope="module")
def emulator() -> Iterator[Running]:
    with serve() as running:
        crd = yaml.safe_load((REPO / "crds" / "wafleet.io_whatsappfleets.yaml").read_text())
        peering = yaml.safe_load((REPO / "crds" / "kopf.dev_kopfpeerings.yaml").read_text())
        for body in (crd, peering):
            response = httpx.post(
                f"{running.url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=body
            )
            assert response.status_code == 201, response.text
        yield running


@pytest.fixture
async def kube(emulator: Running) -> AsyncIterator[KubeClient]:
    httpx.delete(f"{emulator.url}{FLEET_PATH}")
    client = KubeClient(Configuration(host=emulator.url))
    yield client
    await client.close()


def chart_fleet(**values: Any) -> ChartFleet:
    return ChartFleet(namespace=NS, name="wafleet", spec={**CHART, **values})


async def test_the_init_step_creates_then_updates_what_the_chart_changed(
    emulator: Running, kube: KubeClient
) -> None:
    said = await ensure_fleet(kube, chart_fleet())
    assert said == (
        f"WhatsAppFleet {NS}/wafleet created: statefulSet wafleet-connector, "
        "sessionsPerShard 25, minShards 1, maxShards 20"
    )
    assert await ensure_fleet(kube, chart_fleet()) == f"WhatsAppFleet {NS}/wafleet is up to date"

    merge = {"Content-Type": "application/merge-patch+json"}
    edit = json.dumps({"spec": {"sessionsPerShard": 40}})
    assert httpx.patch(f"{emulator.url}{FLEET_PATH}", content=edit, headers=merge).is_success
    said = await ensure_fleet(kube, chart_fleet(maxShards=30))  # helm upgrade
    assert said == (
        f"WhatsAppFleet {NS}/wafleet updated from the chart: maxShards 20 -> 30; kept as "
        "changed at runtime (the chart's value did not change): sessionsPerShard 40"
    )
    spec = httpx.get(f"{emulator.url}{FLEET_PATH}").json()["spec"]
    assert spec == {**CHART, "maxShards": 30, "sessionsPerShard": 40}


async def test_the_init_step_creates_the_peering_once(kube: KubeClient) -> None:
    first = await ensure_peering(kube, NS, "wafleet")
    assert first in (f"KopfPeering {NS}/wafleet created", f"KopfPeering {NS}/wafleet exists")
    assert await ensure_peering(kube, NS, "wafleet") == f"KopfPeering {NS}/wafleet exists"
