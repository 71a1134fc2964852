"""Merge patch, JSON patch (with ``test``), strategic merge patch and server-side apply."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from k8s_emulator.patching import merge_patch, strategic_merge_patch
from k8s_emulator.samples import widget, widgets_url

pytestmark = pytest.mark.k8s
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}
STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}


def test_merge_patch_rfc7386() -> None:
    target = {"a": {"b": 1, "c": [1, 2]}, "d": "x"}
    assert merge_patch(target, {"a": {"b": None, "c": [3]}, "e": {"f": None}}) == {
        "a": {"c": [3]},
        "d": "x",
        "e": {},
    }


def test_merge_patch_of_a_custom_resource(http: httpx.Client, crd: dict[str, Any], ns: str) -> None:
    http.post(widgets_url(ns), json=widget("m", tags=["a"], displayName="x"))
    patched = http.patch(
        widgets_url(ns, "m"),
        json={
            "spec": {"displayName": None, "tags": ["b", "c"]},
            "metadata": {"annotations": {"k": "v"}},
        },
        headers=MERGE,
    )
    assert patched.status_code == 200
    spec = patched.json()["spec"]
    assert spec["tags"] == ["b", "c"] and "displayName" not in spec
    assert patched.json()["metadata"]["annotations"] == {"k": "v"}


def test_json_patch_with_test_operation(http: httpx.Client, crd: dict[str, Any], ns: str) -> None:
    created = http.post(widgets_url(ns), json=widget("j")).json()
    version = created["metadata"]["resourceVersion"]
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": version},
        {"op": "add", "path": "/metadata/finalizers", "value": ["example.com/cleanup"]},
        {"op": "replace", "path": "/spec/login", "value": "pairingCode"},
        {"op": "add", "path": "/spec/tags", "value": []},
        {"op": "add", "path": "/spec/tags/-", "value": "t1"},
    ]
    patched = http.patch(widgets_url(ns, "j"), json=ops, headers=JSON_PATCH)
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["metadata"]["finalizers"] == ["example.com/cleanup"]
    assert body["spec"]["login"] == "pairingCode" and body["spec"]["tags"] == ["t1"]
    stale = http.patch(widgets_url(ns, "j"), json=ops[:1], headers=JSON_PATCH)
    assert stale.status_code == 422  # what kopf expects when its resourceVersion test fails
    assert stale.json()["reason"] == "Invalid"
    removed = http.patch(
        widgets_url(ns, "j"),
        json=[{"op": "remove", "path": "/metadata/finalizers"}],
        headers=JSON_PATCH,
    )
    assert "finalizers" not in removed.json()["metadata"]
    missing = http.patch(
        widgets_url(ns, "j"),
        json=[{"op": "replace", "path": "/spec/nope/x", "value": 1}],
        headers=JSON_PATCH,
    )
    assert missing.status_code == 422


def test_patch_with_resource_version_is_a_precondition(
    http: httpx.Client, crd: dict[str, Any], ns: str
) -> None:
    created = http.post(widgets_url(ns), json=widget("p")).json()
    http.patch(widgets_url(ns, "p"), json={"spec": {"size": 1}}, headers=MERGE)
    stale = {
        "metadata": {"resourceVersion": created["metadata"]["resourceVersion"]},
        "spec": {"size": 2},
    }
    response = http.patch(widgets_url(ns, "p"), json=stale, headers=MERGE)
    assert response.status_code == 409 and response.json()["reason"] == "Conflict"


def test_strategic_merge_patch_merges_named_lists(http: httpx.Client, ns: str) -> None:
    sts = {
        "metadata": {"name": "s", "finalizers": ["a/b"]},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "s"}},
            "template": {
                "metadata": {"labels": {"app": "s"}},
                "spec": {
                    "containers": [
                        {"name": "one", "image": "x", "env": [{"name": "A", "value": "1"}]},
                        {"name": "two", "image": "y"},
                    ]
                },
            },
        },
    }
    assert http.post(f"/apis/apps/v1/namespaces/{ns}/statefulsets", json=sts).status_code == 201
    patch = {
        "metadata": {"finalizers": ["c/d"]},
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "one"}, {"name": "two"}],
                    "containers": [
                        {"name": "one", "env": [{"name": "B", "value": "2"}]},
                        {"name": "two", "$patch": "delete"},
                    ],
                }
            }
        },
    }
    response = http.patch(
        f"/apis/apps/v1/namespaces/{ns}/statefulsets/s", json=patch, headers=STRATEGIC
    )
    assert response.status_code == 200, response.text
    body = response.json()
    containers = body["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["one"]
    assert containers[0]["image"] == "x"
    assert containers[0]["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert body["metadata"]["finalizers"] == ["a/b", "c/d"]
    assert body["metadata"]["generation"] == 2
    assert strategic_merge_patch({"a": {"b": 1, "c": 2}}, {"a": {"$patch": "replace", "d": 3}}) == {
        "a": {"d": 3}
    }


def test_strategic_merge_patch_is_refused_for_custom_resources(
    http: httpx.Client, crd: dict[str, Any], ns: str
) -> None:
    http.post(widgets_url(ns), json=widget("x"))
    response = http.patch(widgets_url(ns, "x"), json={"spec": {"size": 1}}, headers=STRATEGIC)
    assert response.status_code == 415
    assert response.json()["reason"] == "UnsupportedMediaType"


def test_server_side_apply_creates_then_merges(
    http: httpx.Client, crd: dict[str, Any], ns: str
) -> None:
    applied = (
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: ssa}\n"
        "spec: {phone: '+40712345678', size: 2}\n"
    )
    headers = {"Content-Type": "application/apply-patch+yaml"}
    refused = http.patch(widgets_url(ns, "ssa"), content=applied, headers=headers)
    assert refused.status_code == 422  # fieldManager is required
    first = http.patch(
        widgets_url(ns, "ssa"), content=applied, headers=headers, params={"fieldManager": "t"}
    )
    assert first.status_code == 201, first.text
    second = http.patch(
        widgets_url(ns, "ssa"),
        content=applied.replace("size: 2", "size: 3"),
        headers=headers,
        params={"fieldManager": "t"},
    )
    assert second.status_code == 200 and second.json()["spec"]["size"] == 3


BUILTIN_TYPES = (
    "application/json-patch+json, application/merge-patch+json, "
    "application/strategic-merge-patch+json, application/apply-patch+yaml"
)
CUSTOM_TYPES = (
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
)


def _unsupported(response: httpx.Response, accepted: str) -> None:
    assert response.status_code == 415, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "the body of the request was in an unknown format - accepted media types "
        f"include: {accepted}",
        "reason": "UnsupportedMediaType",
        "code": 415,
    }


def test_patch_content_types_per_resource(http: httpx.Client, crd: dict[str, Any], ns: str) -> None:
    http.post(widgets_url(ns), json=widget("ct"))
    cm = f"/api/v1/namespaces/{ns}/configmaps"
    http.post(cm, json={"metadata": {"name": "c"}, "data": {"a": "1"}})
    body = b'{"data": {"b": "2"}}'
    _unsupported(http.patch(f"{cm}/c", content=body), BUILTIN_TYPES)  # no Content-Type
    for wrong in (
        "application/json",
        "Application/Merge-Patch+json",
        "application/merge-patch+json ;x",  # not trimmed: the type is "…+json "
    ):
        _unsupported(
            http.patch(f"{cm}/c", content=body, headers={"Content-Type": wrong}), BUILTIN_TYPES
        )
    charset = {"Content-Type": "application/merge-patch+json; charset=utf-8"}
    assert http.patch(f"{cm}/c", content=body, headers=charset).status_code == 200
    for kind in (MERGE, STRATEGIC):
        assert http.patch(f"{cm}/c", content=body, headers=kind).status_code == 200
    _unsupported(
        http.patch(widgets_url(ns, "ct"), json={"spec": {"size": 1}}, headers=STRATEGIC),
        CUSTOM_TYPES,
    )
    _unsupported(http.patch(widgets_url(ns, "ct"), content=b"{}"), CUSTOM_TYPES)
    assert (
        http.patch(widgets_url(ns, "ct"), json={"spec": {"size": 1}}, headers=MERGE).status_code
        == 200
    )
