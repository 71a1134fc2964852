"""A small watch cache: 410 for an expired resourceVersion (watch, exact list, continue),
snapshots within it, a resourceVersion ahead of the server, bookmarks."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from k8s_emulator.server import serve
from k8s_emulator.store import Store
from k8s_emulator.web import Settings

from support.k8s import K8sApi, start_emulator

pytestmark = pytest.mark.k8s
CACHE = 50
MERGE = {"Content-Type": "application/merge-patch+json"}
CM = "/api/v1/namespaces/default/configmaps"


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[K8sApi]:
    api = start_emulator(tmp_path_factory.mktemp("cache"), "--history", str(CACHE))
    try:
        yield api
    finally:
        api.stop()


def _churn(http: httpx.Client, name: str, times: int) -> list[str]:
    """Create a ConfigMap and change it ``times`` times; the resourceVersions, in order."""
    versions = [http.post(CM, json={"metadata": {"name": name}, "data": {"n": "0"}}).json()]
    for n in range(1, times + 1):
        versions.append(
            http.patch(f"{CM}/{name}", json={"data": {"n": str(n)}}, headers=MERGE).json()
        )
    return [v["metadata"]["resourceVersion"] for v in versions]


def _watch(http: httpx.Client, **params: str) -> list[dict[str, Any]]:
    query = {"watch": "1", "timeoutSeconds": "1", **params}
    with http.stream("GET", CM, params=query) as response:
        assert response.status_code == 200
        return [json.loads(line) for line in response.iter_lines() if line]


def test_resuming_from_an_evicted_resource_version_is_410(small: K8sApi) -> None:
    with small.client() as http:
        versions = _churn(http, "old", CACHE + 10)
        # the cache holds the last 50 events: the oldest is versions[11]
        oldest_resumable = int(versions[11]) - 1
        expired = _watch(http, resourceVersion=versions[0])
        assert len(expired) == 1 and expired[0]["type"] == "ERROR"
        assert expired[0]["object"] == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": f"too old resource version: {versions[0]} ({oldest_resumable})",
            "reason": "Expired",
            "code": 410,
        }
        replay = _watch(http, resourceVersion=versions[10])
        assert [e["object"]["data"]["n"] for e in replay] == [str(n) for n in range(11, 61)]
        assert _watch(http, resourceVersion=str(oldest_resumable - 1))[0]["type"] == "ERROR"


def test_exact_lists_read_snapshots_until_they_expire(small: K8sApi) -> None:
    with small.client() as http:
        versions = _churn(http, "snap", CACHE + 5)
        inside = http.get(
            CM, params={"resourceVersion": versions[30], "resourceVersionMatch": "Exact"}
        )
        assert inside.status_code == 200
        assert inside.json()["metadata"]["resourceVersion"] == versions[30]
        item = next(i for i in inside.json()["items"] if i["metadata"]["name"] == "snap")
        assert item["data"] == {"n": "30"} and item["metadata"]["resourceVersion"] == versions[30]
        for params in (
            {"resourceVersion": versions[1], "resourceVersionMatch": "Exact"},
            {"resourceVersion": versions[1], "limit": "1"},  # a limit makes it exact too
        ):
            gone = http.get(CM, params=params)
            assert gone.status_code == 410
            assert gone.json()["reason"] == "Expired"
            assert gone.json()["message"] == "The resourceVersion for the provided list is too old."
        latest = http.get(CM, params={"resourceVersion": versions[1]})  # NotOlderThan
        assert latest.status_code == 200
        assert latest.json()["metadata"]["resourceVersion"] == versions[-1]


def test_a_continue_token_pins_its_snapshot_and_expires(small: K8sApi) -> None:
    with small.client() as http:
        for name in ("page-a", "page-b", "page-c"):
            http.post(CM, json={"metadata": {"name": name}, "data": {"v": "1"}})
        first = http.get(CM, params={"limit": "1", "labelSelector": ""}).json()
        token = first["metadata"]["continue"]
        http.patch(f"{CM}/page-c", json={"data": {"v": "2"}}, headers=MERGE)
        second = http.get(CM, params={"limit": "10", "continue": token}).json()
        page_c = next(i for i in second["items"] if i["metadata"]["name"] == "page-c")
        assert page_c["data"] == {"v": "1"}  # as of the first page
        _churn(http, "pusher", CACHE + 1)
        expired = http.get(CM, params={"limit": "10", "continue": token})
        assert expired.status_code == 410
        body = expired.json()
        assert body["message"].startswith(
            "The provided continue parameter is too old to display a consistent list result."
        )
        fresh = http.get(CM, params={"limit": "10", "continue": body["metadata"]["continue"]})
        later = next(i for i in fresh.json()["items"] if i["metadata"]["name"] == "page-c")
        assert later["data"] == {"v": "2"}  # the new token goes on from the latest state


def test_list_options_are_validated(small: K8sApi) -> None:
    with small.client() as http:
        response = http.get(CM, params={"resourceVersionMatch": "Exact"})
    assert response.status_code == 422
    assert response.json()["message"] == (
        'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
        "resourceVersionMatch is forbidden unless resourceVersion is provided"
    )


def test_a_resource_version_ahead_of_the_server_is_a_504_after_3_seconds(small: K8sApi) -> None:
    with small.client() as http:
        current = int(http.get(CM).json()["metadata"]["resourceVersion"])
        started = time.monotonic()
        response = http.get(CM, params={"resourceVersion": str(current + 1000)})
        assert 2.9 <= time.monotonic() - started < 6
        watched = _watch(http, resourceVersion=str(current + 1000))
    assert response.status_code == 504 and response.headers["retry-after"] == "1"
    assert response.json()["message"] == (
        f"Timeout: Too large resource version: {current + 1000}, current: {current}"
    )
    assert response.json()["details"] == {
        "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
        "retryAfterSeconds": 1,
    }
    assert watched[0]["type"] == "ERROR" and watched[0]["object"]["code"] == 504


def _timed_watch(url: str, **params: str) -> list[tuple[float, dict[str, Any]]]:
    started = time.monotonic()
    out = []
    with httpx.stream("GET", url + CM, params={"watch": "1", **params}, timeout=10) as response:
        for line in response.iter_lines():
            if line:
                out.append((time.monotonic() - started, json.loads(line)))
    out.append((time.monotonic() - started, {"type": "END"}))
    return out


def test_bookmarks_are_periodic_and_stop_before_the_deadline(tmp_path: Path) -> None:
    with serve(Store(), Settings(bookmark_interval=0.25)) as running:
        httpx.post(running.url + CM, json={"metadata": {"name": "b"}})
        rv = str(running.emulator.store.rv)
        events = _timed_watch(
            running.url, resourceVersion=rv, allowWatchBookmarks="true", timeoutSeconds="3"
        )
        plain = _timed_watch(running.url, resourceVersion=rv, timeoutSeconds="1")
    marks = [(t, e) for t, e in events if e["type"] == "BOOKMARK"]
    assert len(marks) >= 3
    for _, mark in marks:
        assert mark["object"] == {
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": rv},
        }
    assert marks[-1][0] < 1.6  # none in the last 2 s (the cacher's last one is at deadline - 2 s)
    assert 2.9 <= events[-1][0] < 5  # timeoutSeconds ends the stream
    assert [e["type"] for _, e in plain] == ["END"] and plain[-1][0] >= 0.9
