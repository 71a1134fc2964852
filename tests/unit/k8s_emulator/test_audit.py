"""The audit log of every request, and the optional RBAC enforcement."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from k8s_emulator.samples import WIDGET_CRD, widget, widgets_url
from kubernetes import client, config, watch

from support.k8s import K8sApi, start_emulator

pytestmark = pytest.mark.k8s
OPERATOR = "system:serviceaccount:wafleet:operator"


def test_audit_log_records_verbs_users_and_subresources(k8s_api: K8sApi) -> None:
    kube = config.new_client_from_config(config_file=str(k8s_api.kubeconfig))
    core = client.CoreV1Api(kube)
    k8s_api.clear_audit()
    core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c"))
    )
    core.read_namespaced_config_map("c", "default")
    core.list_namespaced_config_map("default")
    list(watch.Watch().stream(core.list_namespaced_config_map, "default", timeout_seconds=1))
    core.patch_namespaced_config_map("c", "default", {"data": {"a": "b"}})
    current = core.read_namespaced_config_map("c", "default")
    core.replace_namespaced_config_map("c", "default", current)
    core.delete_namespaced_config_map("c", "default")
    entries = [e for e in k8s_api.audit() if e["resource"] == "configmaps"]
    assert [e["verb"] for e in entries] == [
        "create",
        "get",
        "list",
        "watch",
        "patch",
        "get",
        "update",
        "delete",
    ]
    assert {(e["user"], e["namespace"], e["apiGroup"]) for e in entries} == {
        ("kubernetes-admin", "default", "")
    }
    assert entries[0]["code"] == 201 and entries[1]["name"] == "c"
    with k8s_api.client() as http:
        http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=WIDGET_CRD)
        http.post(widgets_url("default"), json=widget("w"))
        http.patch(
            widgets_url("default", "w", "status"),
            json={"status": {"phase": "Up"}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
    status = [e for e in k8s_api.audit() if e["subresource"] == "status"]
    assert [(e["verb"], e["apiGroup"], e["resource"], e["name"]) for e in status] == [
        ("patch", "example.com", "widgets", "w")
    ]
    operator = k8s_api.kubeconfig_for(OPERATOR, namespace="wafleet")
    assert k8s_api.kubectl("get", "configmaps", kubeconfig=operator).returncode == 0
    mine = k8s_api.audit(user=OPERATOR)
    assert ("list", "configmaps", "wafleet") in {
        (e["verb"], e["resource"], e["namespace"]) for e in mine
    }
    assert any(e["nonResourceURL"] and e["path"] == "/api" for e in k8s_api.audit())
    k8s_api.clear_audit()
    assert [e["path"] for e in k8s_api.audit()] == []


@pytest.fixture
def rbac_api(tmp_path: Path) -> Iterator[K8sApi]:
    api = start_emulator(tmp_path / "rbac", "--rbac", "--token", "op-token=" + OPERATOR)
    try:
        yield api
    finally:
        api.stop()


def test_rbac_enforcement(rbac_api: K8sApi) -> None:
    operator = rbac_api.kubeconfig_for(OPERATOR, "op-token", namespace="wafleet")
    denied = rbac_api.kubectl("get", "configmaps", kubeconfig=operator)
    assert denied.returncode == 1
    assert (
        "Error from server (Forbidden): configmaps is forbidden: User "
        '"system:serviceaccount:wafleet:operator" cannot list resource "configmaps" in API group '
        '"" in the namespace "wafleet"'
    ) in denied.stderr
    with rbac_api.client() as admin:
        admin.post(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/wafleet/roles",
            json={
                "metadata": {"name": "reader"},
                "rules": [
                    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}
                ],
            },
        )
        admin.post(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/wafleet/rolebindings",
            json={
                "metadata": {"name": "reader"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "reader",
                },
                "subjects": [
                    {"kind": "ServiceAccount", "name": "operator", "namespace": "wafleet"}
                ],
            },
        )
    assert rbac_api.kubectl("get", "configmaps", kubeconfig=operator).returncode == 0
    other = rbac_api.kubectl("get", "configmaps", "-n", "default", kubeconfig=operator)
    assert (
        'cannot list resource "configmaps" in API group "" in the namespace "default"'
        in other.stderr
    )
    with httpx.Client(base_url=rbac_api.url, headers={"Authorization": "Bearer op-token"}) as http:
        create = http.post(
            "/api/v1/namespaces/wafleet/configmaps", json={"metadata": {"name": "x"}}
        )
        assert create.status_code == 403 and create.json()["reason"] == "Forbidden"
        assert http.get("/apis").status_code == 200  # discovery is open to any authenticated user
    unknown = httpx.get(
        rbac_api.url + "/api/v1/namespaces", headers={"Authorization": "Bearer nope"}
    )
    assert unknown.status_code == 401 and unknown.json()["reason"] == "Unauthorized"
    kube = config.new_client_from_config(config_file=str(operator))
    assert client.CoreV1Api(kube).list_namespaced_config_map("wafleet").items == []
    assert [e["user"] for e in rbac_api.audit()][-1] == OPERATOR
