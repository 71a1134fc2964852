"""``/metrics`` of the cluster components as real processes on the Kubernetes API emulator:
the connector pod's (its shard, its Lease, its sessions; no credential), the operator's
(beside its /readyz, as ``wafleet operator`` serves it; no credential) and the API's (the
admin token), after one account is placed, linked and connected."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from support.cluster import Cluster, Proc, api_client
from support.process import TOKEN, free_port, wait_until

pytestmark = pytest.mark.k8s

PHONE = "+40712000901"
Families = dict[str, Any]


@dataclass
class MetricsCluster(Cluster):
    """The harness's cluster, with the operator run as the chart runs it."""

    readiness_port: int = field(default_factory=free_port)

    def operator_proc(self) -> Proc:
        env = {**self.operator_environment(), "POD_ID": "wafleet-operator-test"}
        command = [sys.executable, "-m", "wafleet_app", "operator"]
        command += ["--liveness-port", str(free_port())]
        command += ["--readiness-port", str(self.readiness_port)]
        return Proc("operator", command, env, self.workdir / "operator.log")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MetricsCluster]:
    running = MetricsCluster(tmp_path_factory.mktemp("metrics"), sessions_per_shard=5)
    try:
        running.start()
        yield running
    finally:
        running.stop()


def scrape(url: str, token: str | None = None) -> Families | None:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    try:
        response = httpx.get(url, headers=headers, timeout=5)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def value(families: Families | None, sample: str, **labels: str) -> float | None:
    for family in (families or {}).values():
        for found in family.samples:
            if found.name == sample and found.labels == labels:
                return float(found.value)
    return None


def connector_url(cluster: MetricsCluster) -> str | None:
    assert cluster.follower is not None
    pod = cluster.follower.pods.get(0)
    return None if pod is None else f"http://127.0.0.1:{pod.env['WAFLEET_PORT']}/metrics"


def test_each_component_answers_its_metrics(cluster: MetricsCluster) -> None:
    with api_client(cluster.api_url) as client, httpx.Client(base_url=cluster.sim_url) as sim:
        added = client.post("/api/whatsapp/add-account", json={"phone": PHONE})
        assert added.status_code == 200, added.text
        account_id = added.json()["account"]["id"]

        def scanned() -> bool:
            account = client.get(f"/api/whatsapp/accounts/{account_id}").json()["account"]
            if not account["qr"]:
                return False
            return sim.post("/sim/scan", json={"qr": account["qr"], "phone": PHONE}).is_success

        wait_until("the account's QR code scanned", scanned, 90, interval=0.3)
        account = {"account": account_id}

        def connector() -> Families | None:
            url = connector_url(cluster)
            families = None if url is None else scrape(url)  # no credential
            if value(families, "wafleet_session_connected", **account) != 1:
                return None
            return families

        shard = wait_until("the connector's metrics to show it connected", connector, 90)
        assert value(shard, "wafleet_shard_lease_held", shard="0") == 1
        assert value(shard, "wafleet_shard_lease_losses_total", shard="0") == 0
        assert value(shard, "wafleet_shard_sessions", shard="0", phase="Connected") == 1
        assert value(shard, "wafleet_session_journal_depth", **account) == 0
        assert "wafleet_webhook_deliveries" in (shard or {})  # this pod's dispatcher
        assert value(shard, "process_resident_memory_bytes") is not None

        operator_url = f"http://127.0.0.1:{cluster.readiness_port}/metrics"

        def operator() -> Families | None:
            families = scrape(operator_url)  # no credential
            if value(families, "wafleet_operator_shard_accounts", shard="0") != 1:
                return None
            return families

        fleet = wait_until("the operator's metrics to show the placement", operator, 90)
        assert value(fleet, "wafleet_operator_ready") == 1
        placements = value(fleet, "wafleet_operator_placements_total")
        assert placements is not None and placements >= 1
        assert value(fleet, "wafleet_operator_accounts_waiting") == 0
        assert value(fleet, "wafleet_operator_shard_lease_expired", shard="0") == 0
        assert value(fleet, "wafleet_operator_connector_replicas") == 1

        api_url = f"{cluster.api_url}/metrics"
        assert scrape(api_url) is None  # the API's needs the admin token (or a key)

        def api() -> Families | None:
            families = scrape(api_url, TOKEN)
            return families if value(families, "wafleet_accounts", phase="Connected") else None

        accounts = wait_until("the API's metrics to show it connected", api, 60)
        assert value(accounts, "wafleet_accounts", phase="Connected") == 1
        assert value(accounts, "wafleet_account_reconnects_total") == 0
