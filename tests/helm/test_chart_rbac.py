"""The chart's RBAC is what the components need, no more: the rendered CRDs, service
accounts, Roles, bindings and workloads are applied to the Kubernetes API emulator with
RBAC enforced, and the real operator (its peering init step too), API and connectors run
as the chart's service accounts, with the environment the chart gives their containers.

The rendered values are the multi-shard (Firestore) configuration with the in-cluster
simulator; the processes use SQLite locally (no Firestore here): the store does not touch
the Kubernetes API.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from helm.chartkit import NAMESPACE, HelmChart, Manifest, Rendered, pod_spec, values_file

from support.cluster import Proc, StatefulSetFollower, python_command, wait_http
from support.k8s import K8sApi, start_emulator
from support.process import free_port, wait_until
from wafleet.core.ids import account_id_for

pytestmark = [pytest.mark.helm, pytest.mark.k8s]

SETS = [
    "sharding.sessionsPerShard=1",  # two accounts, two shards: the operator scales
    "sharding.minShards=0",
    "sharding.maxShards=3",
    "config.transport=sim",
    "sim.enabled=true",
    "api.adminToken.existingSecret=",
    "api.adminToken.create=true",
    "tests.enabled=false",
]
COMPONENTS = ("operator", "api", "connector")
ACCOUNTS_PATH = f"/apis/wafleet.io/v1alpha1/namespaces/{NAMESPACE}/whatsappaccounts"
FLEETS_PATH = f"/apis/wafleet.io/v1alpha1/namespaces/{NAMESPACE}/whatsappfleets"
# Dropped from the rendered environment: Firestore and its key files do not exist here.
NOT_LOCAL = (
    "WAFLEET_FIRESTORE_PROJECT",
    "WAFLEET_FIRESTORE_DATABASE",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "WAFLEET_BACKUP_KEY_FILE",
    "WAFLEET_BACKUP_KEY_ID",
)


def user_of(component: str) -> str:
    return f"system:serviceaccount:{NAMESPACE}:wafleet-{component}"


def container_env(out: Rendered, container: Manifest, pod_name: str) -> dict[str, str]:
    """The environment a container gets from the manifests (ConfigMaps, fields, Secrets)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(out.one("ConfigMap", source["configMapRef"]["name"])["data"])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        ref = item["valueFrom"]
        if "fieldRef" in ref:
            fields = {"metadata.namespace": NAMESPACE, "metadata.name": pod_name}
            env[item["name"]] = fields[ref["fieldRef"]["fieldPath"]]
        else:
            key = ref["secretKeyRef"]
            secret = out.one("Secret", key["name"])
            env[item["name"]] = base64.b64decode(secret["data"][key["key"]]).decode()
    for name in NOT_LOCAL:
        env.pop(name, None)
    return {**env, "WAFLEET_STORE": "sqlite", "WAFLEET_HOST": "127.0.0.1"}


@dataclass
class ChartRun:
    """The chart's objects on the emulator and its components running as their accounts."""

    workdir: Path
    out: Rendered
    api: K8sApi
    procs: list[Proc] = field(default_factory=list)
    follower: StatefulSetFollower | None = None
    operator_readyz: str = ""
    api_url: str = ""
    token: str = ""

    def kubeconfig(self, component: str) -> Path:
        return self.api.kubeconfig_for(user_of(component), namespace=NAMESPACE)

    def workload(self, kind: str, component: str) -> Manifest:
        return self.out.one(kind, f"wafleet-{component}")

    def install(self) -> None:
        manifests = self.workdir / "chart.json"
        docs = [d for d in self.out.docs if d["kind"] != "Pod"]  # the helm test hook
        manifests.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        for args in (["create", "-f", "-"], ["apply", "-f", str(manifests)]):
            result = self.api.kubectl(*args, input=json.dumps(namespace))
            assert result.returncode == 0, result.stderr

    def bootstrap(self, out: Rendered | None = None) -> str:
        """The operator pod's init container (of ``out``: an upgrade's rendering), run as
        the operator's service account."""
        out = out or self.out
        init = pod_spec(out.one("Deployment", "wafleet-operator"))["initContainers"][0]
        env = container_env(out, init, "wafleet-operator-0")
        env["KUBECONFIG"] = str(self.kubeconfig("operator"))
        result = subprocess.run(
            [sys.executable, *init["command"][1:], *init["args"]],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def start(self) -> None:
        sim_port = free_port()
        sim_url = f"http://127.0.0.1:{sim_port}"
        self._spawn("sim", python_command("sim", "--port", str(sim_port)), {})
        wait_http(sim_url + "/health")

        operator = pod_spec(self.workload("Deployment", "operator"))["containers"][0]
        env = container_env(self.out, operator, "wafleet-operator-0")
        env["KUBECONFIG"] = str(self.kubeconfig("operator"))
        ports = {"8081": str(free_port()), "8082": str(free_port())}  # liveness, readiness
        args = [ports.get(a, a) for a in operator["args"]]
        assert args != operator["args"]
        self.operator_readyz = f"http://127.0.0.1:{ports['8082']}/readyz"
        self._spawn("operator", python_command(*args), env)

        api = pod_spec(self.workload("Deployment", "api"))["containers"][0]
        env = container_env(self.out, api, "wafleet-api-0")
        self.token = env["WAFLEET_ADMIN_TOKEN"]
        port = free_port()
        env |= {
            "KUBECONFIG": str(self.kubeconfig("api")),
            "WAFLEET_PORT": str(port),
            "WAFLEET_DATA_DIR": str(self.workdir / "api-data"),
        }
        self._spawn("api", python_command(*api["args"]), env)
        self.api_url = f"http://127.0.0.1:{port}"
        wait_http(self.api_url + "/readyz")

        connector = pod_spec(self.workload("StatefulSet", "connector"))["containers"][0]
        env = container_env(self.out, connector, "wafleet-connector-0")
        for name in ("WAFLEET_POD_NAME", "WAFLEET_DATA_DIR", "WAFLEET_PORT", "WAFLEET_SIM_URL"):
            env.pop(name)  # the follower gives each connector its own
        assert connector["args"] == ["connector"]
        self.follower = StatefulSetFollower(
            api_url=self.api.url,
            kubeconfig=self.kubeconfig("connector"),
            workdir=self.workdir,
            sim_url=sim_url,
            extra_env=env,
        )
        self.follower.start()

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> None:
        proc = Proc(name, command, env, self.workdir / f"{name}.log")
        proc.start()
        self.procs.append(proc)

    def stop(self) -> None:
        if self.follower is not None:
            self.follower.stop()
        for proc in reversed(self.procs):
            proc.stop()

    def logs(self) -> str:
        parts = [f"--- {p.name}\n{p.log(2500)}" for p in self.procs]
        if self.follower is not None:
            parts += [f"--- {p.name}\n{p.log(1500)}" for p in self.follower.pods.values()]
        return "\n".join(parts)

    def client(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.Client(base_url=self.api_url, headers=headers, timeout=30)

    def account(self, name: str) -> Manifest | None:
        response = httpx.get(f"{self.api.url}{ACCOUNTS_PATH}/{name}", timeout=10)
        return None if response.status_code == 404 else dict(response.json())

    def replicas(self) -> int:
        assert self.follower is not None
        return self.follower.replicas()


@pytest.fixture(scope="module")
def run(chart: HelmChart, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChartRun]:
    out = chart.render(values_file("firestore"), sets=SETS)
    workdir = tmp_path_factory.mktemp("chart-on-emulator")
    api = start_emulator(workdir / "k8s", "--rbac")
    running = ChartRun(workdir, out, api)
    try:
        running.install()
        yield running
    finally:
        running.stop()
        api.stop()


def test_components_run_within_the_chart_roles(chart: HelmChart, run: ChartRun) -> None:
    first = run.bootstrap()
    assert "KopfPeering wafleet/wafleet created" in first
    assert "WhatsAppFleet wafleet/wafleet created" in first
    again = run.bootstrap()  # a restarted pod finds both
    assert "KopfPeering wafleet/wafleet exists" in again
    assert "WhatsAppFleet wafleet/wafleet is up to date" in again
    upgrade = chart.render(values_file("firestore"), sets=[*SETS, "sharding.minShards=1"])
    assert "updated from the chart: minShards 0 -> 1" in run.bootstrap(upgrade)
    run.start()
    phones = ["+40712000001", "+40712000002"]
    ids = [account_id_for(p) for p in phones]
    try:
        # Ready as its own service account: started, indexes filled, the active peer.
        wait_http(run.operator_readyz, 45)
        with run.client() as client:
            for phone in phones:
                response = client.post("/api/whatsapp/add-account", json={"phone": phone})
                assert response.status_code == 200, response.text
            again = client.post("/api/whatsapp/add-account", json={"phone": phones[0]})
            assert again.status_code == 200, again.text  # idempotent: the API reads it back

            def placed() -> dict[str, str] | None:
                crs = [run.account(i) for i in ids]
                labels = [(cr or {}).get("metadata", {}).get("labels", {}) for cr in crs]
                shards = {
                    i: lab.get("wafleet.io/shard", "") for i, lab in zip(ids, labels, strict=True)
                }
                return shards if all(shards.values()) else None

            shards = wait_until("both accounts placed by the operator", placed, 45)
            assert sorted(shards.values()) == ["0", "1"]
            wait_until("the connector StatefulSet scaled to 2", lambda: run.replicas() == 2, 20)

            def phase(account_id: str) -> str:
                cr = run.account(account_id) or {}
                return str((cr.get("status") or {}).get("phase", ""))

            def all_qr_ready() -> bool:
                return all(phase(account_id) == "QRReady" for account_id in ids)

            wait_until("both accounts QRReady (connectors hold their Leases)", all_qr_ready, 45)

            def fleet_ready() -> bool:
                fleet = httpx.get(f"{run.api.url}{FLEETS_PATH}/wafleet", timeout=10).json()
                status = fleet.get("status") or {}
                ready = {c["type"]: c["status"] for c in status.get("conditions", [])}
                return status.get("accounts") == 2 and ready.get("Ready") == "True"

            wait_until("the fleet's status written by the operator", fleet_ready, 30)
            response = client.post(f"/api/whatsapp/disconnect/{ids[0]}")
            assert response.status_code == 200, response.text
            wait_until("suspended", lambda: phase(ids[0]) == "Suspended", 30)

            last = next(i for i in ids if shards[i] == "1")  # then shard 1 is empty
            assert client.delete(f"/api/whatsapp/accounts/{last}").status_code == 200
            wait_until("the connector logged it out", lambda: run.account(last) is None, 30)
            wait_until("scaled back to one shard", lambda: run.replicas() == 1, 30)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{run.logs()}") from None
    run.stop()  # a stopping connector releases its Lease, kopf leaves the peering

    calls: dict[str, set[tuple[str, str, str]]] = {}
    for component in COMPONENTS:
        entries = run.api.audit(user_of(component))
        assert len(entries) > 3, f"{component} made no call as its service account"
        denied = [
            f"{e['verb']} {e['resource']}/{e.get('subresource') or ''} {e['path']}"
            for e in entries
            if e["code"] == 403
        ]
        assert not denied, f"{component} was refused:\n" + "\n".join(denied)
        calls[component] = {
            (e["apiGroup"], "/".join(filter(None, (e["resource"], e["subresource"]))), e["verb"])
            for e in entries
            if not e["nonResourceURL"]
        }
    # Least privilege the other way round: no verb in a Role that no component called.
    unused = []
    for component in COMPONENTS:
        rules = list(run.workload("Role", component)["rules"])
        for rule in rules:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        if (group, resource, verb) not in calls[component]:
                            unused.append(f"{component}: {verb} {group}/{resource}")
    assert not unused, "rules no call needed:\n" + "\n".join(unused)


def _as(run: ChartRun, component: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {user_of(component)}"}
    return httpx.Client(base_url=run.api.url, headers=headers, timeout=10)


def test_roles_refuse_what_a_component_must_not_do(run: ChartRun) -> None:
    account = {
        "apiVersion": "wafleet.io/v1alpha1",
        "kind": "WhatsAppAccount",
        "metadata": {"name": "intruder", "namespace": NAMESPACE},
        "spec": {"phone": "+40712999999"},
    }
    sts = f"/apis/apps/v1/namespaces/{NAMESPACE}/statefulsets/wafleet-connector"
    merge = {"Content-Type": "application/merge-patch+json"}
    nine = b'{"spec":{"replicas":9}}'
    with _as(run, "connector") as connector:
        assert connector.post(ACCOUNTS_PATH, json=account).status_code == 403
        assert connector.delete(f"{ACCOUNTS_PATH}/anything").status_code == 403
        assert connector.patch(sts, content=nine, headers=merge).status_code == 403
        lease = f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/someone-else"
        assert connector.get(lease).status_code == 403  # only its shards' Leases
    with _as(run, "api") as api:
        assert api.patch(sts, content=nine, headers=merge).status_code == 403
        assert api.get(f"/api/v1/namespaces/{NAMESPACE}/secrets").status_code == 403
    with _as(run, "operator") as operator:
        assert operator.post(ACCOUNTS_PATH, json=account).status_code == 403
        other = f"/apis/apps/v1/namespaces/{NAMESPACE}/statefulsets/another"
        assert operator.patch(other, content=b"{}", headers=merge).status_code == 403
        # The chart's fleet object only (its spec; the status of any, which it reports).
        another = f"{FLEETS_PATH}/another"
        assert operator.patch(another, content=b"{}", headers=merge).status_code == 403
        assert operator.get(another).status_code == 403
        assert operator.delete(f"{FLEETS_PATH}/wafleet").status_code == 403
    for component in ("connector", "api"):
        with _as(run, component) as client:
            assert client.get(FLEETS_PATH).status_code == 403, component
