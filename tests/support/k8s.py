"""Start the Kubernetes API emulator (tests/k8s_emulator) for a test.

``k8s_api`` yields a running emulator with ``.url``, ``.kubeconfig`` (a file
usable through KUBECONFIG by kubectl, the kubernetes client and kopf) and
``.kubectl(*args)``. Import the fixture into a conftest:
``from support.k8s import k8s_api  # noqa: F401``.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from support.process import free_port, wait_until

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / ".venv" / "tools"
KUBECTL = TOOLS / "kubectl"  # the newest kubectl scripts/k8s_tools.py extracts


def kubectl_versions() -> tuple[str, ...]:
    """The kubectl minors ``make setup`` extracts as ``kubectl-<minor>``, oldest first
    (scripts/k8s_tools.py is the one list of them)."""
    module = sys.modules.get("k8s_tools")
    if module is None:
        script = REPO / "scripts" / "k8s_tools.py"
        spec = importlib.util.spec_from_file_location("k8s_tools", script)
        assert spec is not None and spec.loader is not None
        module = sys.modules["k8s_tools"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    versions: tuple[str, ...] = module.KUBECTL_VERSIONS
    return versions


def kubectl_path(version: str | None = None) -> Path:
    """``.venv/tools/kubectl-<version>``, or the default (newest) kubectl."""
    return TOOLS / (f"kubectl-{version}" if version else "kubectl")


ADMIN_TOKEN = "emulator-admin-token"


def write_kubeconfig(
    path: Path,
    url: str,
    token: str | None = ADMIN_TOKEN,
    namespace: str = "default",
    impersonate: str | None = None,
) -> Path:
    """A kubeconfig for the emulator. The kubernetes client and kopf send the bearer
    token; kubectl (client-go) sends none over plain HTTP, so a non-admin user is
    also given as ``as:`` (impersonation), which kubectl does send."""
    user: dict[str, Any] = {"token": token} if token else {}
    if impersonate:
        user["as"] = impersonate
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emulator", "cluster": {"server": url}}],
        "users": [{"name": "emulator-user", "user": user}],
        "contexts": [
            {
                "name": "emulator",
                "context": {"cluster": "emulator", "user": "emulator-user", "namespace": namespace},
            }
        ],
        "current-context": "emulator",
        "preferences": {},
    }
    path.write_text(yaml.safe_dump(config))
    return path


@dataclass
class K8sApi:
    workdir: Path
    port: int = field(default_factory=free_port)
    args: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def log_path(self) -> Path:
        return self.workdir / "emulator.log"

    def env(self, kubeconfig: Path | None = None) -> dict[str, str]:
        """Environment for a client process: KUBECONFIG and a private kubectl cache."""
        return {
            **os.environ,
            "KUBECONFIG": str(kubeconfig or self.kubeconfig),
            "KUBECACHEDIR": str(self.workdir / "kube-cache"),
        }

    def start(self, ready_timeout: float = 20) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                [str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]
            ).rstrip(os.pathsep),
        }
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "k8s_emulator", "--port", str(self.port), *self.args],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        write_kubeconfig(self.kubeconfig, self.url)

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"the emulator exited early:\n{self.log()}")
            try:
                return httpx.get(self.url + "/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until("the Kubernetes API emulator", ready, ready_timeout, interval=0.05)

    def stop(self, timeout: float = 10) -> int:
        if self.proc is None:
            return 0
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                return proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise AssertionError(f"the emulator ignored SIGTERM:\n{self.log()}") from None
        return proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path.exists() else ""

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        timeout: float = 30,
        kubeconfig: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against the emulator (never raises on a non-zero exit)."""
        return subprocess.run(
            [str(KUBECTL), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env(kubeconfig),
            check=False,
        )

    def kubeconfig_for(
        self, user: str, token: str | None = None, namespace: str = "default"
    ) -> Path:
        """A kubeconfig acting as ``user`` (e.g. system:serviceaccount:NS:SA) for kubectl,
        the kubernetes client and kopf. ``token`` defaults to the user name, which the
        emulator takes for that service account; another one must be registered
        (``--token TOKEN=USER``)."""
        safe = "".join(c if c.isalnum() else "-" for c in user)
        return write_kubeconfig(
            self.workdir / f"kubeconfig-{safe}",
            self.url,
            token or user,
            namespace,
            impersonate=user,
        )

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, timeout=10, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )

    def audit(self, user: str | None = None) -> list[dict[str, Any]]:
        params = {"user": user} if user else {}
        items: list[dict[str, Any]] = httpx.get(
            self.url + "/_emulator/audit", params=params, timeout=10
        ).json()["items"]
        return items

    def clear_audit(self) -> None:
        httpx.delete(self.url + "/_emulator/audit", timeout=10).raise_for_status()


def start_emulator(workdir: Path, *args: str, ready_timeout: float = 20) -> K8sApi:
    """Start an emulator process on a free loopback port and wait until it answers."""
    api = K8sApi(workdir, args=args)
    try:
        api.start(ready_timeout)
    except BaseException:
        api.stop()
        raise
    return api


@pytest.fixture
def k8s_api(tmp_path: Path) -> Iterator[K8sApi]:
    api = start_emulator(tmp_path / "k8s")
    try:
        yield api
    finally:
        api.stop()
