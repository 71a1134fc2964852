"""Finalizers: deletionTimestamp, no new finalizers while deleting, removal on the last one."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from k8s_emulator.samples import widget, widgets_url

pytestmark = pytest.mark.k8s
MERGE = {"Content-Type": "application/merge-patch+json"}


def test_finalizers_hold_deletion_until_removed(
    http: httpx.Client, crd: dict[str, Any], ns: str
) -> None:
    body = widget("f")
    body["metadata"]["finalizers"] = ["wafleet.io/logout"]
    created = http.post(widgets_url(ns), json=body).json()
    with http.stream(
        "GET",
        widgets_url(ns),
        params={
            "watch": "1",
            "timeoutSeconds": "5",
            "resourceVersion": created["metadata"]["resourceVersion"],
        },
    ) as stream:
        deleting = http.delete(widgets_url(ns, "f"))
        assert deleting.status_code == 200
        meta = deleting.json()["metadata"]
        assert meta["deletionTimestamp"] and meta["deletionGracePeriodSeconds"] == 0
        assert meta["generation"] == 2  # a first deletion bumps the generation
        still = http.get(widgets_url(ns, "f"))
        assert still.status_code == 200 and still.json()["metadata"]["deletionTimestamp"]
        again = http.delete(widgets_url(ns, "f"))
        assert again.json()["metadata"]["resourceVersion"] == meta["resourceVersion"]
        refused = http.patch(
            widgets_url(ns, "f"),
            json={"metadata": {"finalizers": ["wafleet.io/logout", "x.io/y"]}},
            headers=MERGE,
        )
        assert refused.status_code == 422
        assert refused.json()["message"] == (
            'Widget.example.com "f" is invalid: metadata.finalizers: Forbidden: no new finalizers '
            'can be added if the object is being deleted, found new finalizers []string{"x.io/y"}'
        )
        spec_change = http.patch(widgets_url(ns, "f"), json={"spec": {"size": 1}}, headers=MERGE)
        assert spec_change.status_code == 200
        released = http.patch(
            widgets_url(ns, "f"), json={"metadata": {"finalizers": None}}, headers=MERGE
        )
        assert released.status_code == 200
        # the answer is the request's object: no finalizers, the last stored resourceVersion
        assert "finalizers" not in released.json()["metadata"]
        assert (
            released.json()["metadata"]["resourceVersion"]
            == spec_change.json()["metadata"]["resourceVersion"]
        )
        assert http.get(widgets_url(ns, "f")).status_code == 404
        events = []
        for line in stream.iter_lines():
            if line:
                events.append(json.loads(line))
            if events and events[-1]["type"] == "DELETED":
                break
    # the update that empties the finalizers is not written: one DELETED, no MODIFIED
    assert [e["type"] for e in events] == ["MODIFIED", "MODIFIED", "DELETED"]
    assert events[0]["object"]["metadata"]["deletionTimestamp"]
    deleted = events[-1]["object"]
    assert deleted["metadata"]["finalizers"] == ["wafleet.io/logout"]  # its last stored state
    assert deleted["spec"]["size"] == 1
    assert int(deleted["metadata"]["resourceVersion"]) > int(
        events[-2]["object"]["metadata"]["resourceVersion"]
    )


def test_namespace_deletion_waits_for_finalized_content(
    http: httpx.Client, crd: dict[str, Any], ns: str
) -> None:
    body = widget("held")
    body["metadata"]["finalizers"] = ["wafleet.io/logout"]
    http.post(widgets_url(ns), json=body)
    http.post(f"/api/v1/namespaces/{ns}/configmaps", json={"metadata": {"name": "c"}})
    terminating = http.delete(f"/api/v1/namespaces/{ns}")
    assert terminating.status_code == 200
    assert http.get(f"/api/v1/namespaces/{ns}").json()["status"]["phase"] == "Terminating"
    assert http.get(f"/api/v1/namespaces/{ns}/configmaps/c").status_code == 404
    refused = http.post(f"/api/v1/namespaces/{ns}/configmaps", json={"metadata": {"name": "d"}})
    assert refused.status_code == 403 and "is being terminated" in refused.json()["message"]
    http.patch(widgets_url(ns, "held"), json={"metadata": {"finalizers": []}}, headers=MERGE)
    assert http.get(f"/api/v1/namespaces/{ns}").status_code == 404
