"""Fault injection: 429/500/503, latency, dropped and half-open watches; scope, rate,
windows, counters; the Python API (in-process) and the HTTP control endpoint."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from k8s_emulator.control import Control
from k8s_emulator.faults import Fault, FaultSpecError
from k8s_emulator.server import Running, serve
from k8s_emulator.store import Store
from k8s_emulator.web import Settings
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from support.k8s import K8sApi

pytestmark = pytest.mark.k8s
CM = "/api/v1/namespaces/default/configmaps"
NS = "/api/v1/namespaces"


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    with serve(Store(), Settings(bookmark_interval=0.2)) as emulator:
        yield emulator


@pytest.fixture
def local(running: Running) -> Iterator[httpx.Client]:
    running.emulator.faults.clear()
    with httpx.Client(base_url=running.url, timeout=10) as session:
        yield session
    running.emulator.faults.clear()


@pytest.fixture
def control(api: K8sApi) -> Iterator[Control]:
    remote = Control(api.url)
    remote.clear_faults()
    yield remote
    remote.clear_faults()


# -- answers ----------------------------------------------------------------------


def test_429_is_priority_and_fairness_plain_text(local: httpx.Client, running: Running) -> None:
    running.emulator.faults.add(kind="status", code=429, resource="configmaps")
    response = local.get(CM)
    assert response.status_code == 429
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["retry-after"] == "1"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.text == "Too many requests, please try again later.\n"
    running.emulator.faults.clear()
    running.emulator.faults.add(kind="status", code=429, retry_after=7)
    assert local.get(CM).headers["retry-after"] == "7"


def test_500_and_503_answer_like_the_api_server(local: httpx.Client, running: Running) -> None:
    faults = running.emulator.faults
    faults.add(kind="status", code=500, verbs=("get",), message="etcdserver: leader changed")
    failed = local.get(f"{CM}/x")
    assert failed.status_code == 500 and failed.headers["content-type"] == "application/json"
    assert failed.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Internal error occurred: etcdserver: leader changed",
        "reason": "InternalError",
        "details": {"causes": [{"message": "etcdserver: leader changed"}]},
        "code": 500,
    }
    faults.clear()
    faults.add(kind="status", code=503, verbs=("list",), count=1)
    unavailable = local.get(CM)
    assert unavailable.status_code == 503
    assert unavailable.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "service unavailable",
        "reason": "ServiceUnavailable",
        "code": 503,
    }
    faults.add(kind="status", code=503, plain=True, message="no endpoints available", retry_after=2)
    text = local.get(CM)
    assert text.status_code == 503 and text.headers["content-type"] == "text/plain; charset=utf-8"
    assert (text.text, text.headers["retry-after"]) == ("no endpoints available\n", "2")


def test_the_kubernetes_client_sees_the_status(api: K8sApi, control: Control) -> None:
    control.add_fault(kind="status", code=429, resource="leases", group="coordination.k8s.io")
    kube = config.new_client_from_config(config_file=str(api.kubeconfig))
    try:
        with pytest.raises(ApiException) as caught:
            client.CoordinationV1Api(kube).list_namespaced_lease("default")
        client.CoreV1Api(kube).list_namespaced_config_map("default")  # not in scope
    finally:
        kube.close()
    assert caught.value.status == 429 and caught.value.headers["Retry-After"] == "1"
    assert [e["code"] for e in api.audit() if e["resource"] == "leases"][-1] == 429


# -- scope, rate, windows, counters ----------------------------------------------


def test_scope_by_resource_group_verb_name_namespace(local: httpx.Client, running: Running) -> None:
    fault = running.emulator.faults.add(
        kind="status",
        code=500,
        resource="events",
        group="events.k8s.io",
        verbs=("get",),
        namespace="default",
        name="target",
    )
    core = "/api/v1/namespaces/default/events/target"
    newer = "/apis/events.k8s.io/v1/namespaces/default/events"
    assert local.get(core).status_code == 404  # the core group is another scope
    assert local.get(newer).status_code == 200  # list, not get
    assert local.get(f"{newer}/other").status_code == 404  # another name
    assert (
        local.get("/apis/events.k8s.io/v1/namespaces/kube-system/events/target").status_code == 404
    )
    assert local.get(f"{newer}/target").status_code == 500
    assert (fault.matched, fault.hits) == (1, 1)
    assert local.get("/api/v1").status_code == 200  # discovery is never faulted
    assert local.get("/healthz").status_code == 200


def test_a_seeded_rate_is_reproducible(local: httpx.Client, running: Running) -> None:
    fault = running.emulator.faults.add(
        kind="status", code=503, rate=0.4, seed=11, resource="configmaps"
    )
    seen = [local.get(CM).status_code == 503 for _ in range(30)]
    rolls = random.Random(11)
    expected = [rolls.random() < 0.4 for _ in range(30)]
    assert seen == expected and any(seen) and not all(seen)
    assert (fault.matched, fault.hits) == (30, sum(expected))


def test_windows_count_and_seconds(local: httpx.Client, running: Running) -> None:
    faults = running.emulator.faults
    counted = faults.add(kind="status", code=500, count=3, verbs=("list",))
    codes = [local.get(CM).status_code for _ in range(5)]
    assert codes == [500, 500, 500, 200, 200]
    assert (counted.hits, counted.remaining, counted.active()) == (3, 0, False)
    timed = faults.add(kind="status", code=503, for_seconds=0.5, verbs=("list",))
    assert local.get(CM).status_code == 503
    deadline = time.monotonic() + 5
    while timed.active() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not timed.active()
    assert local.get(CM).status_code == 200


def test_latency_adds_up_and_several_faults_combine(local: httpx.Client, running: Running) -> None:
    faults = running.emulator.faults
    slow = faults.add(kind="latency", seconds=0.3, resource="configmaps")
    slower = faults.add(kind="latency", seconds=0.2, verbs=("list",))
    first = faults.add(kind="status", code=429, verbs=("list",), count=1)
    second = faults.add(kind="status", code=500, verbs=("list",))
    started = time.monotonic()
    answered = local.get(CM)
    assert answered.status_code == 429 and time.monotonic() - started >= 0.5
    assert local.get(CM).status_code == 500  # the first one's window is spent
    assert (slow.hits, slower.hits, first.hits, second.hits) == (2, 2, 1, 1)
    faults.clear()
    started = time.monotonic()
    assert local.get(CM).status_code == 200 and time.monotonic() - started < 0.3


def test_bad_fault_specs_are_refused() -> None:
    for spec in (
        {"kind": "explode"},
        {"kind": "status", "code": 404},
        {"kind": "latency"},
        {"kind": "status", "code": 500, "verbs": ["poke"]},
        {"kind": "drop-watch", "verbs": ["get"]},
        {"kind": "status", "code": 500, "rate": 2},
    ):
        with pytest.raises(FaultSpecError):
            Fault(**spec)


# -- watches --------------------------------------------------------------------


def _lines(response: httpx.Response) -> Iterator[dict[str, Any]]:
    for line in response.iter_lines():
        if line:
            yield json.loads(line)


def test_a_dropped_watch_is_cut_after_n_events(local: httpx.Client, running: Running) -> None:
    fault = running.emulator.faults.add(kind="drop-watch", resource="namespaces", after_events=2)
    got: list[dict[str, Any]] = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        local.stream("GET", NS, params={"watch": "1", "timeoutSeconds": "5"}) as response,
    ):
        got.extend(_lines(response))
    assert [e["type"] for e in got] == ["ADDED", "ADDED"] and fault.hits == 1
    running.emulator.faults.clear()
    running.emulator.faults.add(kind="drop-watch", after_events=1, reset=False)
    with local.stream("GET", NS, params={"watch": "1", "timeoutSeconds": "5"}) as response:
        started = time.monotonic()
        clean = list(_lines(response))  # ends without a protocol error, long before the timeout
    assert len(clean) == 1 and time.monotonic() - started < 2
    assert local.get(NS).status_code == 200  # only watches


def test_a_watch_dropped_after_a_delay(local: httpx.Client, running: Running) -> None:
    rv = str(running.emulator.store.rv)
    running.emulator.faults.add(kind="drop-watch", after_seconds=0.5)
    started = time.monotonic()
    with (
        pytest.raises(httpx.RemoteProtocolError),
        local.stream(
            "GET", CM, params={"watch": "1", "resourceVersion": rv, "timeoutSeconds": "10"}
        ) as response,
    ):
        list(_lines(response))
    assert 0.45 <= time.monotonic() - started < 3


def _half_open(local: httpx.Client, timeout_seconds: str, read: float) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    params = {"watch": "1", "allowWatchBookmarks": "true", "timeoutSeconds": timeout_seconds}
    started = time.monotonic()
    with (
        pytest.raises(httpx.ReadTimeout),
        local.stream("GET", NS, params=params, timeout=httpx.Timeout(10, read=read)) as response,
    ):
        got.extend(_lines(response))
    assert time.monotonic() - started >= read - 0.1  # only the client's read timeout ends it
    return got


def test_a_half_open_watch_sends_nothing_not_even_bookmarks(
    local: httpx.Client, running: Running
) -> None:
    fault = running.emulator.faults.add(
        kind="half-open-watch", resource="namespaces", after_events=1
    )
    # bookmarks would come every 0.2 s for the first 2 s of a 4 s watch
    silent = _half_open(local, "4", read=1.5)
    assert [e["type"] for e in silent] == ["ADDED"]
    # and the server's own timeoutSeconds does not end it either
    assert [e["type"] for e in _half_open(local, "1", read=2.0)] == ["ADDED"]
    assert fault.hits == 2
    running.emulator.faults.clear()
    params = {"watch": "1", "allowWatchBookmarks": "true", "timeoutSeconds": "3"}
    with local.stream("GET", NS, params=params) as response:
        healthy = [e["type"] for e in _lines(response)]
    assert "BOOKMARK" in healthy  # the same watch without the fault


# -- the HTTP control endpoint ------------------------------------------------------


def test_http_control_endpoint(api: K8sApi, control: Control, http: httpx.Client) -> None:
    added = control.add_fault(
        kind="status", code=503, resource="configmaps", verbs=["list"], count=2
    )
    assert added["id"] and added["remaining"] == 2 and added["active"] is True
    assert [http.get(CM).status_code for _ in range(3)] == [503, 503, 200]
    assert control.fault(added["id"])["hits"] == 2
    with control.injected(kind="latency", seconds=0.2) as slow:
        started = time.monotonic()
        http.get(CM)
        assert time.monotonic() - started >= 0.2
    assert all(f["id"] != slow["id"] for f in control.faults())
    raw = httpx.post(
        api.url + "/_emulator/faults",
        json={"faults": [{"kind": "status", "code": 500}, {"kind": "latency", "seconds": 1}]},
    )
    assert raw.status_code == 201 and len(raw.json()["items"]) == 2
    bad = httpx.post(api.url + "/_emulator/faults", json={"kind": "status", "code": 418})
    assert bad.status_code == 400 and "code must be one of" in bad.json()["message"]
    cleared = control.clear_faults()
    assert len(cleared) == 3 and control.faults() == []
    assert http.get(CM).status_code == 200
    assert httpx.delete(api.url + "/_emulator/faults/nope").status_code == 404
