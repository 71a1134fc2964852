"""Watches: initial state, resuming from a resourceVersion, 410 Gone, selectors, bookmarks."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from k8s_emulator.samples import GROUP, PLURAL, VERSION, WIDGET_CRD, widget, widgets_url
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from support.k8s import K8sApi, start_emulator

pytestmark = pytest.mark.k8s
MERGE = {"Content-Type": "application/merge-patch+json"}


class Stream:
    """One watch request read line by line, with a deadline."""

    def __init__(self, http: httpx.Client, url: str, **params: str) -> None:
        params = {"watch": "true", "timeoutSeconds": "10", **params}
        self._context = http.stream("GET", url, params=params, timeout=10)
        self.response = self._context.__enter__()
        assert self.response.status_code == 200
        self._lines = self.response.iter_lines()

    def next(self) -> dict[str, Any]:
        for line in self._lines:
            if line:
                event: dict[str, Any] = json.loads(line)
                return event
        raise AssertionError("the watch ended")

    def take(self, count: int) -> list[tuple[str, str]]:
        events = [self.next() for _ in range(count)]
        return [(e["type"], e["object"]["metadata"].get("name", "")) for e in events]

    def rest(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self._lines if line]

    def close(self) -> None:
        self._context.__exit__(None, None, None)


@pytest.fixture
def streams() -> Iterator[list[Stream]]:
    opened: list[Stream] = []
    yield opened
    for stream in opened:
        stream.close()


def test_initial_state_then_live_events(
    http: httpx.Client, crd: dict[str, Any], ns: str, streams: list[Stream]
) -> None:
    http.post(widgets_url(ns), json=widget("a"))
    stream = Stream(http, widgets_url(ns))
    streams.append(stream)
    assert stream.take(1) == [("ADDED", "a")]
    http.post(widgets_url(ns), json=widget("b"))
    http.patch(widgets_url(ns, "a"), json={"spec": {"size": 1}}, headers=MERGE)
    http.delete(widgets_url(ns, "b"))
    events = [stream.next() for _ in range(3)]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "b"),
        ("MODIFIED", "a"),
        ("DELETED", "b"),
    ]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions)
    assert events[1]["object"]["spec"]["size"] == 1


def test_resume_from_resource_version(
    http: httpx.Client, crd: dict[str, Any], ns: str, streams: list[Stream]
) -> None:
    created = http.post(widgets_url(ns), json=widget("r")).json()
    http.patch(widgets_url(ns, "r"), json={"spec": {"size": 1}}, headers=MERGE)
    http.patch(widgets_url(ns, "r"), json={"spec": {"size": 2}}, headers=MERGE)
    stream = Stream(http, widgets_url(ns), resourceVersion=created["metadata"]["resourceVersion"])
    streams.append(stream)
    first, second = stream.next(), stream.next()
    assert (first["type"], first["object"]["spec"]["size"]) == ("MODIFIED", 1)
    assert (second["type"], second["object"]["spec"]["size"]) == ("MODIFIED", 2)


def test_label_selector_watch_sees_objects_leave_and_return(
    http: httpx.Client, crd: dict[str, Any], ns: str, streams: list[Stream]
) -> None:
    stream = Stream(http, widgets_url(ns), labelSelector="wafleet.io/shard=1")
    streams.append(stream)
    body = widget("s")
    body["metadata"]["labels"] = {"wafleet.io/shard": "1"}
    http.post(widgets_url(ns), json=body)
    other = widget("o")
    other["metadata"]["labels"] = {"wafleet.io/shard": "2"}
    http.post(widgets_url(ns), json=other)
    moved = http.patch(
        widgets_url(ns, "s"),
        json={"metadata": {"labels": {"wafleet.io/shard": "2"}}},
        headers=MERGE,
    ).json()
    http.patch(
        widgets_url(ns, "s"),
        json={"metadata": {"labels": {"wafleet.io/shard": "1"}}},
        headers=MERGE,
    )
    assert stream.take(2) == [("ADDED", "s"), ("DELETED", "s")]
    back = stream.next()
    assert (back["type"], back["object"]["metadata"]["name"]) == ("ADDED", "s")
    http.get(widgets_url(ns))
    assert moved["metadata"]["labels"] == {"wafleet.io/shard": "2"}


def test_python_client_watch(kube: client.ApiClient, crd: dict[str, Any], ns: str) -> None:
    custom = client.CustomObjectsApi(kube)
    custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, widget("p"))
    seen = []
    for event in watch.Watch().stream(
        custom.list_namespaced_custom_object, GROUP, VERSION, ns, PLURAL, timeout_seconds=1
    ):
        seen.append((event["type"], event["object"]["metadata"]["name"]))
    assert seen == [("ADDED", "p")]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[K8sApi]:
    api = start_emulator(
        tmp_path_factory.mktemp("small"), "--history", "3", "--bookmark-interval", "0.2"
    )
    try:
        with api.client() as http:
            http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=WIDGET_CRD)
        yield api
    finally:
        api.stop()


def test_too_old_resource_version_is_410_gone(small: K8sApi) -> None:
    with small.client() as http:
        created = http.post(widgets_url("default"), json=widget("old")).json()
        for size in range(1, 5):
            http.patch(widgets_url("default", "old"), json={"spec": {"size": size}}, headers=MERGE)
        stream = Stream(
            http, widgets_url("default"), resourceVersion=created["metadata"]["resourceVersion"]
        )
        try:
            events = stream.rest()
        finally:
            stream.close()
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")
    assert status["message"].startswith(
        f"too old resource version: {created['metadata']['resourceVersion']} ("
    )
    custom = client.CustomObjectsApi(
        config.new_client_from_config(config_file=str(small.kubeconfig))
    )
    with pytest.raises(ApiException) as caught:
        list(
            watch.Watch().stream(
                custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                "default",
                PLURAL,
                resource_version=created["metadata"]["resourceVersion"],
                timeout_seconds=2,
            )
        )
    assert caught.value.status == 410


def test_bookmarks_initial_events_and_timeout(small: K8sApi) -> None:
    with small.client() as http:
        http.post(widgets_url("default"), json=widget("bm"))
        started = time.monotonic()
        stream = Stream(
            http,
            widgets_url("default"),
            allowWatchBookmarks="true",
            timeoutSeconds="3",  # periodic bookmarks stop 2 s before the deadline, as the cacher's
            sendInitialEvents="true",
            resourceVersionMatch="NotOlderThan",
        )
        try:
            events = stream.rest()
        finally:
            stream.close()
        elapsed = time.monotonic() - started
    kinds = [e["type"] for e in events]
    added = kinds.index("BOOKMARK")
    assert added >= 1 and set(kinds[:added]) == {"ADDED"}
    assert events[added]["object"]["metadata"]["annotations"] == {
        "k8s.io/initial-events-end": "true"
    }
    assert kinds.count("BOOKMARK") >= 3  # and periodic ones after it
    assert (
        events[-1]["object"]["kind"] == "Widget"
        and events[-1]["object"]["metadata"]["resourceVersion"]
    )
    assert 2.9 <= elapsed < 6


def test_stopping_the_server_ends_watches_cleanly(tmp_path: Path) -> None:
    api = start_emulator(tmp_path / "k8s")
    try:
        with api.client() as http:
            stream = Stream(http, "/api/v1/namespaces", timeoutSeconds="60")
            try:
                assert stream.take(1)[0][0] == "ADDED"
                started = time.monotonic()
                assert api.stop() == 0
                remaining = stream.rest()  # ends without a protocol error
            finally:
                stream.close()
        assert [e["type"] for e in remaining] == ["ADDED"] * 3
        assert time.monotonic() - started < 5
    finally:
        api.stop()
