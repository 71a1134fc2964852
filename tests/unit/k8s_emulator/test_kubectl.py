"""The real kubectl against the emulator: apply, get with printer columns, errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from k8s_emulator.samples import WIDGET_CRD, widgets_url

from support.k8s import K8sApi

pytestmark = pytest.mark.k8s

CR = """\
apiVersion: example.com/v1
kind: Widget
metadata:
  name: {name}
  labels: {{wafleet.io/shard: "0"}}
spec:
  phone: "{phone}"
  size: {size}
"""


def _ok(api: K8sApi, *args: str) -> str:
    result = api.kubectl(*args)
    assert result.returncode == 0, f"kubectl {' '.join(args)}:\n{result.stderr}"
    return result.stdout


@pytest.fixture
def crd_file(tmp_path: Path, k8s_api: K8sApi) -> Path:
    path = tmp_path / "crd.yaml"
    path.write_text(yaml.safe_dump(WIDGET_CRD))
    assert "created" in _ok(k8s_api, "apply", "-f", str(path))
    return path


def test_apply_creates_then_updates(k8s_api: K8sApi, crd_file: Path, tmp_path: Path) -> None:
    cr = tmp_path / "cr.yaml"
    cr.write_text(CR.format(name="one", phone="+40712345678", size=1))
    assert _ok(k8s_api, "apply", "-f", str(cr)).strip() == "widget.example.com/one created"
    cr.write_text(CR.format(name="one", phone="+40712345678", size=2))
    assert _ok(k8s_api, "apply", "-f", str(cr)).strip() == "widget.example.com/one configured"
    assert _ok(k8s_api, "apply", "-f", str(cr)).strip() == "widget.example.com/one unchanged"
    got = _ok(k8s_api, "get", "widget", "one", "-o", "jsonpath={.spec.size} {.metadata.generation}")
    assert got == "2 2"
    assert "CREATED AT" in _ok(k8s_api, "get", "crd")


def test_get_prints_the_crd_printer_columns(
    k8s_api: K8sApi, crd_file: Path, tmp_path: Path
) -> None:
    cr = tmp_path / "cr.yaml"
    cr.write_text(
        CR.format(name="two", phone="+40712345678", size=3)
        + "---\n"
        + CR.format(name="three", phone="+40712345679", size=4)
    )
    _ok(k8s_api, "apply", "-f", str(cr))
    with k8s_api.client() as http:
        http.patch(
            widgets_url("default", "two", "status"),
            json={"status": {"phase": "Connected"}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
    lines = _ok(k8s_api, "get", "wd").splitlines()
    assert lines[0].split() == ["NAME", "PHASE", "SIZE", "AGE"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert rows["two"][:2] == ["Connected", "3"] and re.fullmatch(r"\d+s", rows["two"][2])
    assert rows["three"][0] == "4"  # no phase yet: an empty cell
    labelled = _ok(k8s_api, "get", "widgets", "-l", "wafleet.io/shard=0", "-o", "name").split()
    assert labelled == ["widget.example.com/three", "widget.example.com/two"]
    assert "Connected" in _ok(k8s_api, "get", "gadgets")  # the CRD's category


def test_errors_read_like_the_api_server(k8s_api: K8sApi, crd_file: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(CR.format(name="bad", phone="abc", size=1))
    result = k8s_api.kubectl("apply", "-f", str(bad))
    assert result.returncode == 1
    assert (
        'The Widget "bad" is invalid: spec.phone: Invalid value: "abc": '
        "spec.phone in body should match" in result.stderr
    )
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(CR.format(name="unknown", phone="+40712345678", size=1) + "  bogus: 1\n")
    result = k8s_api.kubectl("apply", "-f", str(unknown))
    assert result.returncode == 1
    assert 'strict decoding error: unknown field "spec.bogus"' in result.stderr
    result = k8s_api.kubectl("apply", "--validate=false", "-f", str(unknown))
    assert result.returncode == 0, result.stderr
    assert _ok(k8s_api, "get", "wd", "unknown", "-o", "jsonpath={.spec}") == (
        '{"login":"qr","phone":"+40712345678","size":1}'
    )
    missing = k8s_api.kubectl("get", "wd", "nothing")
    assert missing.returncode == 1
    assert 'Error from server (NotFound): widgets.example.com "nothing" not found' in missing.stderr


def test_built_ins_namespaces_and_deletion(k8s_api: K8sApi, crd_file: Path, tmp_path: Path) -> None:
    namespaces = _ok(k8s_api, "get", "namespaces").split()
    assert {"default", "kube-system", "STATUS", "Active"} <= set(namespaces)
    manifest = tmp_path / "cm.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: '1'}\n"
    )
    _ok(k8s_api, "apply", "-f", str(manifest))
    manifest.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {b: '2'}\n"
    )
    _ok(k8s_api, "apply", "-f", str(manifest))
    assert _ok(k8s_api, "get", "cm", "settings", "-o", "jsonpath={.data}") == '{"b":"2"}'
    assert "deleted" in _ok(k8s_api, "delete", "-f", str(manifest))
    assert "condition met" in _ok(
        k8s_api, "wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=5s"
    )


def test_kubectl_create_sends_protobuf_for_built_ins(k8s_api: K8sApi) -> None:
    assert "created" in _ok(k8s_api, "create", "namespace", "wafleet")
    _ok(k8s_api, "create", "configmap", "settings", "--from-literal=shards=2", "-n", "wafleet")
    _ok(k8s_api, "create", "secret", "generic", "token", "--from-literal=k=v", "-n", "wafleet")
    _ok(k8s_api, "create", "serviceaccount", "operator", "-n", "wafleet")
    assert _ok(k8s_api, "get", "cm", "settings", "-n", "wafleet", "-o", "jsonpath={.data}") == (
        '{"shards":"2"}'
    )
    assert (
        _ok(k8s_api, "get", "secret", "token", "-n", "wafleet", "-o", "jsonpath={.data.k}")
        == "dg=="
    )
    labels = _ok(k8s_api, "get", "ns", "wafleet", "-o", "jsonpath={.metadata.labels}")
    assert labels == '{"kubernetes.io/metadata.name":"wafleet"}'
    refused = k8s_api.kubectl("create", "deployment", "d", "--image=x")
    assert refused.returncode == 1 and "use kubectl apply -f" in refused.stderr
