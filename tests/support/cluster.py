"""A wafleet "cluster" on the Kubernetes API emulator: real processes, a StatefulSet follower.

The harness plays kubelet for the connector StatefulSet: it follows the
StatefulSet's ``spec.replicas`` on the emulator and starts or stops
``wafleet connector`` processes named like its pods, each with its own data
directory that survives restarts (its persistent volume). A connector that dies
is started again, as a pod's container would be.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from support.process import TOKEN, free_port, wait_until

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "wafleet"
STATEFULSET = "wafleet-connector"


def python_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "wafleet_app", *args]


@dataclass
class Proc:
    """One process with its log file."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.command,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        log.close()

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.popen = None

    def log(self, tail: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:] if self.log_path.exists() else ""


@dataclass
class StatefulSetFollower:
    """Starts and stops connector processes to match the StatefulSet's replicas."""

    api_url: str
    kubeconfig: Path
    workdir: Path
    sim_url: str
    extra_env: dict[str, str] = field(default_factory=dict)
    pods: dict[int, Proc] = field(default_factory=dict)
    restarts: dict[int, int] = field(default_factory=dict)
    paused: set[int] = field(default_factory=set)  # ordinals not to restart (a test kills them)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def replicas(self) -> int:
        url = f"{self.api_url}/apis/apps/v1/namespaces/{NAMESPACE}/statefulsets/{STATEFULSET}"
        response = httpx.get(url, timeout=5)
        if response.status_code != 200:
            return 0
        return int(response.json().get("spec", {}).get("replicas") or 0)

    def _pod(self, ordinal: int) -> Proc:
        name = f"{STATEFULSET}-{ordinal}"
        data_dir = self.workdir / "volumes" / f"data-{name}"  # the PVC, kept across restarts
        data_dir.mkdir(parents=True, exist_ok=True)
        env = {
            "KUBECONFIG": str(self.kubeconfig),
            "WAFLEET_NAMESPACE": NAMESPACE,
            "WAFLEET_POD_NAME": name,
            "WAFLEET_DATA_DIR": str(data_dir),
            "WAFLEET_TRANSPORT": "sim",
            "WAFLEET_SIM_URL": self.sim_url,
            "WAFLEET_PORT": str(free_port()),
            "WAFLEET_START_RATE": "20",
            "WAFLEET_START_BURST": "10",
            "WAFLEET_LEASE_SECONDS": "6",
            **self.extra_env,
        }
        return Proc(name, python_command("connector"), env, self.workdir / f"{name}.log")

    def sync_once(self) -> None:
        with self._lock:
            wanted = self.replicas()
            for ordinal in range(wanted):
                pod = self.pods.get(ordinal)
                if ordinal in self.paused:
                    continue
                if pod is None:
                    pod = self.pods[ordinal] = self._pod(ordinal)
                    pod.start()
                elif not pod.alive():
                    self.restarts[ordinal] = self.restarts.get(ordinal, 0) + 1
                    pod.start()
            for ordinal in sorted(o for o in self.pods if o >= wanted):
                self.pods.pop(ordinal).stop()  # scale down: highest ordinals go

    def _loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(httpx.HTTPError):
                self.sync_once()
            self._stop.wait(0.3)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="sts-follower", daemon=True)
        self._thread.start()

    def kill(self, ordinal: int) -> None:
        """SIGKILL a connector, as a node failure would; the loop starts it again."""
        with self._lock:
            pod = self.pods[ordinal]
            assert pod.popen is not None
            pod.popen.kill()
            pod.popen.wait()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        for pod in list(self.pods.values()):
            pod.stop()
        self.pods.clear()


def statefulset_manifest(replicas: int = 0) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": "wafleet", "app.kubernetes.io/component": "connector"}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": STATEFULSET, "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "replicas": replicas,
            "serviceName": STATEFULSET,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "connector", "image": "wafleet:dev"}]},
            },
        },
    }


def account_manifest(name: str, phone: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "wafleet.io/v1alpha1",
        "kind": "WhatsAppAccount",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"phone": phone, "displayName": name, **spec},
    }


def api_client(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)


def wait_http(url: str, timeout: float = 30) -> None:
    def up() -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(f"{url} to answer", up, timeout)


@dataclass
class Cluster:
    """The emulator, CRDs, sim, operator, API and connector follower, all real processes."""

    workdir: Path
    sessions_per_shard: int = 10
    max_shards: int = 20
    cleanup_timeout: float = 5
    extra_env: dict[str, str] = field(default_factory=dict)  # for the API and the connectors
    operator_env: dict[str, str] = field(default_factory=dict)  # more for the operator
    api: Any = None  # support.k8s.K8sApi
    sim: Proc | None = None
    operator: Proc | None = None
    api_server: Proc | None = None
    follower: StatefulSetFollower | None = None
    sim_url: str = ""
    api_url: str = ""

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result: subprocess.CompletedProcess[str] = self.api.kubectl(*args)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
        return result

    def apply(self, manifest: dict[str, Any]) -> None:
        path = self.workdir / f"manifest-{time.monotonic_ns()}.json"
        path.write_text(json.dumps(manifest))
        self.kubectl("apply", "-f", str(path))

    def operator_environment(self) -> dict[str, str]:
        """What the operator process is started with (the fleet policy, the emulator)."""
        return {
            "KUBECONFIG": str(self.api.kubeconfig),
            "WAFLEET_NAMESPACE": NAMESPACE,
            "WAFLEET_SESSIONS_PER_SHARD": str(self.sessions_per_shard),
            "WAFLEET_MAX_SHARDS": str(self.max_shards),
            "WAFLEET_CLEANUP_TIMEOUT": str(self.cleanup_timeout),
            **self.operator_env,
        }

    def operator_proc(self) -> Proc:
        env = self.operator_environment()
        command = [sys.executable, "-m", "kopf", "run", "-m", "wafleet_operator.handlers"]
        command += [
            "--namespace",
            NAMESPACE,
            "--liveness",
            f"http://127.0.0.1:{free_port()}/healthz",
        ]
        return Proc("operator", command, env, self.workdir / "operator.log")

    def start(self) -> None:
        from support.k8s import K8sApi  # noqa: PLC0415

        self.workdir.mkdir(parents=True, exist_ok=True)
        self.api = K8sApi(self.workdir / "k8s")
        self.api.start()
        self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        self.kubectl("apply", "-f", str(REPO / "crds"))
        self.apply(
            {
                "apiVersion": "kopf.dev/v1",
                "kind": "KopfPeering",
                "metadata": {"name": "wafleet", "namespace": NAMESPACE},
            }
        )
        self.apply(statefulset_manifest(0))
        sim_port = free_port()
        self.sim_url = f"http://127.0.0.1:{sim_port}"
        self.sim = Proc(
            "sim",
            python_command("sim", "--port", str(sim_port)),
            {},
            self.workdir / "sim.log",
        )
        self.sim.start()
        wait_http(self.sim_url + "/health")
        self.operator = self.operator_proc()
        self.operator.start()
        api_port = free_port()
        self.api_url = f"http://127.0.0.1:{api_port}"
        self.api_server = Proc(
            "api",
            python_command("api", "--port", str(api_port)),
            {
                "KUBECONFIG": str(self.api.kubeconfig),
                "WAFLEET_NAMESPACE": NAMESPACE,
                "WAFLEET_ADMIN_TOKEN": TOKEN,
                "WAFLEET_DATA_DIR": str(self.workdir / "api-data"),
                **self.extra_env,
            },
            self.workdir / "api.log",
        )
        self.api_server.start()
        wait_http(self.api_url + "/readyz")
        self.follower = StatefulSetFollower(
            api_url=self.api.url,
            kubeconfig=self.api.kubeconfig,
            workdir=self.workdir,
            sim_url=self.sim_url,
            extra_env=self.extra_env,
        )
        self.follower.start()

    def kill_operator(self) -> None:
        """SIGKILL the operator and start it again, as its Deployment would."""
        assert self.operator is not None
        self.operator.stop(signal.SIGKILL)
        self.operator.start()

    def stop(self) -> None:
        if self.follower is not None:
            self.follower.stop()
        for proc in (self.api_server, self.operator, self.sim):
            if proc is not None:
                proc.stop()
        if self.api is not None:
            self.api.stop()

    def accounts(self) -> list[dict[str, Any]]:
        url = f"{self.api.url}/apis/wafleet.io/v1alpha1/namespaces/{NAMESPACE}/whatsappaccounts"
        items: list[dict[str, Any]] = httpx.get(url, timeout=10).json()["items"]
        return items

    def create_account(self, name: str, phone: str, **spec: Any) -> dict[str, Any]:
        url = f"{self.api.url}/apis/wafleet.io/v1alpha1/namespaces/{NAMESPACE}/whatsappaccounts"
        response = httpx.post(url, json=account_manifest(name, phone, **spec), timeout=10)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def logs(self) -> str:
        parts = []
        for proc in (self.operator, self.api_server, self.sim):
            if proc is not None:
                parts.append(f"--- {proc.name}\n{proc.log(3000)}")
        return "\n".join(parts)
