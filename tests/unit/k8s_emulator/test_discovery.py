"""Discovery and OpenAPI: what the kubernetes client, kopf and kubectl read first."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from support.k8s import K8sApi

pytestmark = pytest.mark.k8s


def _resources(http: httpx.Client, path: str) -> dict[str, dict[str, Any]]:
    body = http.get(path).json()
    assert body["kind"] == "APIResourceList"
    return {r["name"]: r for r in body["resources"]}


def test_version_and_legacy_api(http: httpx.Client) -> None:
    version = http.get("/version").json()
    assert (version["major"], version["minor"]) == ("1", "35")
    assert http.get("/api").json()["versions"] == ["v1"]
    core = _resources(http, "/api/v1")
    assert core["configmaps"]["shortNames"] == ["cm"]
    assert core["configmaps"]["namespaced"] is True
    assert core["namespaces"]["namespaced"] is False
    assert "watch" in core["pods"]["verbs"] and "patch" in core["pods"]["verbs"]
    assert core["namespaces/status"]["verbs"] == ["get", "patch", "update"]


def test_groups_and_subresources(http: httpx.Client) -> None:
    groups = {g["name"]: g for g in http.get("/apis").json()["groups"]}
    for name in (
        "apps",
        "coordination.k8s.io",
        "events.k8s.io",
        "rbac.authorization.k8s.io",
        "policy",
        "networking.k8s.io",
        "apiextensions.k8s.io",
    ):
        assert groups[name]["preferredVersion"]["version"] == "v1"
    apps = http.get("/apis/apps").json()
    assert apps["kind"] == "APIGroup" and apps["preferredVersion"]["groupVersion"] == "apps/v1"
    resources = _resources(http, "/apis/apps/v1")
    scale = resources["statefulsets/scale"]
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")
    assert resources["statefulsets"]["shortNames"] == ["sts"]
    assert http.get("/apis/nothing.example.com/v1").status_code == 404


def test_crd_registers_its_resource(http: httpx.Client, crd: dict[str, Any]) -> None:
    assert crd["status"]["acceptedNames"]["kind"] == "Widget"
    established = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert established["Established"] == "True"
    groups = {g["name"]: g for g in http.get("/apis").json()["groups"]}
    assert groups["example.com"]["versions"] == [
        {"groupVersion": "example.com/v1", "version": "v1"}
    ]
    resources = _resources(http, "/apis/example.com/v1")
    widgets = resources["widgets"]
    assert widgets["kind"] == "Widget" and widgets["singularName"] == "widget"
    assert widgets["shortNames"] == ["wd"] and widgets["categories"] == ["all", "gadgets"]
    assert widgets["namespaced"] is True
    assert "widgets/status" in resources and "widgets/scale" in resources


def test_kubectl_api_resources_and_openapi(
    api: K8sApi, http: httpx.Client, crd: dict[str, Any]
) -> None:
    result = api.kubectl("api-resources", "--api-group=example.com")
    assert result.returncode == 0, result.stderr
    assert "widgets" in result.stdout and "wd" in result.stdout and "Widget" in result.stdout
    root = http.get("/openapi/v3").json()["paths"]
    doc = http.get(root["apis/example.com/v1"]["serverRelativeURL"]).json()
    patch = doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"]["kind"] == "Widget"
    assert "fieldValidation" in {p["name"] for p in patch["parameters"]}
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]
    protobuf = http.get(
        "/openapi/v2",
        headers={"Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"},
    )
    assert protobuf.status_code == 200 and b"2.0" in protobuf.content


def test_unknown_paths_answer_a_status(http: httpx.Client) -> None:
    response = http.get("/api/v1/nothings")
    assert response.status_code == 404
    assert response.json()["reason"] == "NotFound"
    assert response.json()["kind"] == "Status"
