"""Object semantics: create, get, update with optimistic concurrency, generation, status."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from k8s_emulator.samples import GROUP, PLURAL, VERSION, widget, widgets_url
from kubernetes import client
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.k8s


def test_create_sets_system_fields(http: httpx.Client, crd: dict[str, Any], ns: str) -> None:
    first = http.post(widgets_url(ns), json=widget("a"))
    second = http.post(widgets_url(ns), json=widget("b"))
    assert first.status_code == second.status_code == 201
    a, b = first.json(), second.json()
    assert a["metadata"]["uid"] != b["metadata"]["uid"]
    assert a["metadata"]["generation"] == 1
    assert a["metadata"]["creationTimestamp"].endswith("Z")
    assert isinstance(a["metadata"]["resourceVersion"], str)
    assert int(b["metadata"]["resourceVersion"]) > int(a["metadata"]["resourceVersion"])
    assert a["spec"]["login"] == "qr"  # the schema's default
    listed = http.get(widgets_url(ns)).json()
    assert listed["kind"] == "WidgetList"
    assert int(listed["metadata"]["resourceVersion"]) >= int(b["metadata"]["resourceVersion"])
    assert [i["metadata"]["name"] for i in listed["items"]] == ["a", "b"]
    assert listed["items"][0]["kind"] == "Widget"


def test_already_exists_and_not_found(http: httpx.Client, crd: dict[str, Any], ns: str) -> None:
    assert http.post(widgets_url(ns), json=widget("a")).status_code == 201
    again = http.post(widgets_url(ns), json=widget("a"))
    assert again.status_code == 409
    assert again.json()["reason"] == "AlreadyExists"
    assert again.json()["message"] == 'widgets.example.com "a" already exists'
    missing = http.get(widgets_url(ns, "nope"))
    assert missing.status_code == 404
    assert missing.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'widgets.example.com "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "group": "example.com", "kind": "widgets"},
        "code": 404,
    }
    core = http.get(f"/api/v1/namespaces/{ns}/configmaps/nope").json()
    assert core["message"] == 'configmaps "nope" not found'


def test_stale_update_conflicts(kube: client.ApiClient, crd: dict[str, Any], ns: str) -> None:
    custom = client.CustomObjectsApi(kube)
    created = custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, widget("w"))
    fresh = dict(created, spec={**created["spec"], "size": 2})
    updated = custom.replace_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "w", fresh)
    assert updated["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]
    stale = dict(created, spec={**created["spec"], "size": 3})
    with pytest.raises(ApiException) as caught:
        custom.replace_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "w", stale)
    assert caught.value.status == 409
    status = json.loads(caught.value.body)
    assert status["reason"] == "Conflict"
    assert status["message"] == (
        'Operation cannot be fulfilled on widgets.example.com "w": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )


def test_update_of_custom_resource_needs_resource_version(
    http: httpx.Client, crd: dict[str, Any], ns: str
) -> None:
    http.post(widgets_url(ns), json=widget("w"))
    response = http.put(widgets_url(ns, "w"), json=widget("w", size=1))
    assert response.status_code == 422
    assert response.json()["message"] == (
        'Widget.example.com "w" is invalid: metadata.resourceVersion: Invalid value: 0x0: '
        "must be specified for an update"
    )


def test_generation_bumps_only_on_spec_changes(
    http: httpx.Client, crd: dict[str, Any], ns: str
) -> None:
    obj = http.post(widgets_url(ns), json=widget("g")).json()
    labelled = http.patch(
        widgets_url(ns, "g"),
        json={"metadata": {"labels": {"a": "b"}}},
        headers={"Content-Type": "application/merge-patch+json"},
    ).json()
    assert labelled["metadata"]["generation"] == 1
    assert labelled["metadata"]["labels"] == {"a": "b"}
    status = http.patch(
        widgets_url(ns, "g", "status"),
        json={"status": {"phase": "Up"}},
        headers={"Content-Type": "application/merge-patch+json"},
    ).json()
    assert status["metadata"]["generation"] == 1
    changed = http.patch(
        widgets_url(ns, "g"),
        json={"spec": {"size": 4}},
        headers={"Content-Type": "application/merge-patch+json"},
    ).json()
    assert changed["metadata"]["generation"] == 2
    same = http.patch(
        widgets_url(ns, "g"),
        json={"spec": {"size": 4}},
        headers={"Content-Type": "application/merge-patch+json"},
    ).json()
    assert same["metadata"]["resourceVersion"] == changed["metadata"]["resourceVersion"]
    assert obj["metadata"]["uid"] == same["metadata"]["uid"]


def test_status_subresource_is_kept_apart(
    kube: client.ApiClient, crd: dict[str, Any], ns: str
) -> None:
    custom = client.CustomObjectsApi(kube)
    body = widget("s")
    body["status"] = {"phase": "Ignored"}
    created = custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)
    assert "status" not in created  # dropped on create
    patched = custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        ns,
        PLURAL,
        "s",
        {"status": {"phase": "Connected"}, "spec": {"size": 9}, "metadata": {"labels": {"x": "y"}}},
    )
    assert patched["status"] == {"phase": "Connected"}
    assert "size" not in patched["spec"] and "labels" not in patched["metadata"]
    main = custom.patch_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, "s", {"status": {"phase": "Hacked"}, "spec": {"size": 1}}
    )
    assert main["status"] == {"phase": "Connected"} and main["spec"]["size"] == 1
    current = custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "s")
    current["status"]["phase"] = "Reconnecting"
    replaced = custom.replace_namespaced_custom_object_status(
        GROUP, VERSION, ns, PLURAL, "s", current
    )
    assert replaced["status"]["phase"] == "Reconnecting"
    assert replaced["metadata"]["generation"] == 2


def test_names_must_be_dns_subdomains(http: httpx.Client, crd: dict[str, Any], ns: str) -> None:
    response = http.post(widgets_url(ns), json=widget("Not_Valid"))
    assert response.status_code == 422
    body = response.json()
    assert body["reason"] == "Invalid"
    assert body["message"].startswith(
        'Widget.example.com "Not_Valid" is invalid: metadata.name: Invalid value: "Not_Valid": '
        "a lowercase RFC 1123 subdomain must consist of"
    )
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    generated = http.post(widgets_url(ns), json={**widget(""), "metadata": {"generateName": "wa-"}})
    assert generated.status_code == 201
    assert generated.json()["metadata"]["name"].startswith("wa-")
    assert len(generated.json()["metadata"]["name"]) == 8


def test_labels_must_be_strings(http: httpx.Client, crd: dict[str, Any], ns: str) -> None:
    body = widget("l")
    body["metadata"]["labels"] = {"wafleet.io/shard": 3}
    response = http.post(widgets_url(ns), json=body)
    assert response.status_code == 400
    assert (
        "cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string"
        in response.json()["message"]
    )


def test_delete_answers_object_or_status(http: httpx.Client, crd: dict[str, Any], ns: str) -> None:
    http.post(widgets_url(ns), json=widget("d"))
    deleted = http.delete(widgets_url(ns, "d"))
    assert deleted.status_code == 200 and deleted.json()["kind"] == "Widget"
    assert http.get(widgets_url(ns, "d")).status_code == 404
    assert http.delete(widgets_url(ns, "d")).status_code == 404
    http.post(
        f"/api/v1/namespaces/{ns}/configmaps", json={"metadata": {"name": "c"}, "data": {"k": "v"}}
    )
    status = http.delete(f"/api/v1/namespaces/{ns}/configmaps/c").json()
    assert status["kind"] == "Status" and status["status"] == "Success"
    assert status["details"]["name"] == "c" and status["details"]["kind"] == "configmaps"


def test_built_in_resources_through_the_client(kube: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(kube)
    core.create_namespaced_config_map(
        ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cm"), data={"a": "1"})
    )
    core.create_namespaced_secret(
        ns, client.V1Secret(metadata=client.V1ObjectMeta(name="s"), string_data={"k": "v"})
    )
    core.create_namespaced_service_account(
        ns, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="sa"))
    )
    patched = core.patch_namespaced_config_map("cm", ns, {"data": {"b": "2"}})
    assert patched.data == {"a": "1", "b": "2"}
    assert core.read_namespaced_secret("s", ns).data == {"k": "dg=="}  # stringData folded in
    names = [c.metadata.name for c in core.list_namespaced_config_map(ns).items]
    assert names == ["cm"]
    assert core.read_namespaced_service_account("sa", ns).metadata.uid
    rbac = client.RbacAuthorizationV1Api(kube)
    role = client.V1Role(
        metadata=client.V1ObjectMeta(name="r"),
        rules=[client.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["get"])],
    )
    assert rbac.create_namespaced_role(ns, role).metadata.name == "r"
    policy = client.PolicyV1Api(kube)
    pdb = client.V1PodDisruptionBudget(
        metadata=client.V1ObjectMeta(name="p"),
        spec=client.V1PodDisruptionBudgetSpec(max_unavailable=1),
    )
    assert policy.create_namespaced_pod_disruption_budget(ns, pdb).metadata.generation == 1
