"""Lists: label selectors (every operator), field selectors, limit and continue."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from k8s_emulator.samples import GROUP, PLURAL, VERSION, widget, widgets_url
from kubernetes import client

pytestmark = pytest.mark.k8s


@pytest.fixture
def labelled(http: httpx.Client, crd: dict[str, Any], ns: str) -> str:
    for name, labels in (
        ("a", {"shard": "0", "tier": "gold"}),
        ("b", {"shard": "1"}),
        ("c", {"shard": "2", "tier": "silver"}),
        ("d", {}),
    ):
        body = widget(name)
        body["metadata"]["labels"] = labels
        assert http.post(widgets_url(ns), json=body).status_code == 201
    return ns


def _names(http: httpx.Client, ns: str, **params: str) -> list[str]:
    response = http.get(widgets_url(ns), params=params)
    assert response.status_code == 200, response.text
    return [i["metadata"]["name"] for i in response.json()["items"]]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("shard=1", ["b"]),
        ("shard==1", ["b"]),
        ("shard!=1", ["a", "c", "d"]),
        ("shard in (0, 2)", ["a", "c"]),
        ("shard notin (0,2)", ["b", "d"]),
        ("tier", ["a", "c"]),
        ("!tier", ["b", "d"]),
        ("shard,!tier", ["b"]),
        ("shard>0", ["b", "c"]),
        ("tier=gold,shard=0", ["a"]),
        ("", ["a", "b", "c", "d"]),
    ],
)
def test_label_selectors(
    http: httpx.Client, labelled: str, selector: str, expected: list[str]
) -> None:
    assert _names(http, labelled, labelSelector=selector) == expected


def test_bad_selectors_are_400(http: httpx.Client, labelled: str) -> None:
    response = http.get(widgets_url(labelled), params={"labelSelector": "shard in (a"})
    assert response.status_code == 400 and response.json()["reason"] == "BadRequest"
    response = http.get(widgets_url(labelled), params={"fieldSelector": "spec.phone=1"})
    assert response.status_code == 400
    assert response.json()["message"] == (
        '"spec.phone" is not a known field selector: only "metadata.name", "metadata.namespace"'
    )


def test_field_selectors(http: httpx.Client, labelled: str) -> None:
    assert _names(http, labelled, fieldSelector="metadata.name=c") == ["c"]
    assert _names(http, labelled, fieldSelector="metadata.name!=c") == ["a", "b", "d"]
    everywhere = http.get(
        f"/apis/{GROUP}/{VERSION}/{PLURAL}",
        params={"fieldSelector": f"metadata.namespace={labelled}"},
    )
    assert len(everywhere.json()["items"]) == 4


def test_limit_and_continue(http: httpx.Client, labelled: str) -> None:
    first = http.get(widgets_url(labelled), params={"limit": "3"}).json()
    assert [i["metadata"]["name"] for i in first["items"]] == ["a", "b", "c"]
    assert first["metadata"]["remainingItemCount"] == 1
    token = first["metadata"]["continue"]
    rest = http.get(widgets_url(labelled), params={"limit": "3", "continue": token}).json()
    assert [i["metadata"]["name"] for i in rest["items"]] == ["d"]
    assert "continue" not in rest["metadata"]


def test_python_client_list_with_selector(kube: client.ApiClient, labelled: str) -> None:
    custom = client.CustomObjectsApi(kube)
    found = custom.list_namespaced_custom_object(
        GROUP, VERSION, labelled, PLURAL, label_selector="shard in (1,2)"
    )
    assert [i["metadata"]["name"] for i in found["items"]] == ["b", "c"]
