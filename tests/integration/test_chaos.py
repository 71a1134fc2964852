"""Chaos: the 100-account cluster under every fault the API server can throw, and SIGKILLs.

Each scenario runs on the same connected fleet (10 shards of 10): a fault is injected into
the Kubernetes API emulator for a window (or a process is SIGKILLed), inbound messages keep
arriving meanwhile, and once the fault is over the fleet must be whole again:

- never two connectors driving one account (the sim counts replaced streams: zero);
- no account placed twice or moved, no shard over capacity;
- every account Connected again, and every inbound message acknowledged (journaled),
  within RECOVERY_BOUND seconds after the fault ended; the measured time is printed
  (``pytest -m chaos -s``).
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from k8s_emulator.control import Control

from support.cluster import Cluster
from support.process import wait_until

pytestmark = [pytest.mark.k8s, pytest.mark.chaos]

SESSIONS_PER_SHARD = 10
FLEET = 100
WINDOW = 8.0  # seconds a fault lasts
RECOVERY_BOUND = 90.0  # seconds after the fault for the whole fleet to be back
CONTACT = "+40799000009"
RECOVERY: dict[str, float] = {}


def phone(n: int) -> str:
    return f"+40722{n:06d}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = Cluster(
        tmp_path_factory.mktemp("chaos"),
        sessions_per_shard=SESSIONS_PER_SHARD,
        max_shards=20,
        # Watches renewed every 3 s, so that watch faults meet fresh watches in the window;
        # a silent (half-open) one is replaced after 5 s.
        extra_env={"WAFLEET_KUBE_WATCH_TIMEOUT": "5", "WAFLEET_KUBE_WATCH_SECONDS": "3"},
    )
    try:
        running.start()
        link_fleet(running)
        yield running
    finally:
        running.stop()
        if RECOVERY:
            print("\nrecovery after each fault (s):", RECOVERY)


def fleet(cluster: Cluster) -> dict[str, dict[str, Any]]:
    return {
        cr["metadata"]["name"]: cr
        for cr in cluster.accounts()
        if cr["metadata"]["name"].startswith("chaos-")
    }


def shards(crs: dict[str, dict[str, Any]]) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for name, cr in crs.items():
        label = (cr["metadata"].get("labels") or {}).get("wafleet.io/shard")
        out[name] = None if label is None else int(label)
    return out


def phases(crs: dict[str, dict[str, Any]]) -> Counter[str]:
    return Counter((cr.get("status") or {}).get("phase", "") for cr in crs.values())


def sim_status(cluster: Cluster) -> dict[str, int]:
    status: dict[str, int] = httpx.get(cluster.sim_url + "/sim/status", timeout=10).json()
    return status


def link_fleet(cluster: Cluster) -> None:
    for n in range(FLEET):
        cluster.create_account(f"chaos-{n:03d}", phone(n))

    def all_qr() -> dict[str, dict[str, Any]] | None:
        crs = fleet(cluster)
        return crs if phases(crs)["QRReady"] == FLEET else None

    wait_until("100 QR codes", all_qr, 180, interval=0.5)

    def scan_what_shows() -> bool:
        """Scan every code on show (a code may rotate between the read and the scan)."""
        crs = fleet(cluster)
        with httpx.Client(base_url=cluster.sim_url, timeout=10) as sim:
            for cr in crs.values():
                status = cr.get("status") or {}
                if status.get("phase") == "QRReady" and status.get("qr"):
                    body = {"qr": status["qr"]["code"], "phone": cr["spec"]["phone"]}
                    sim.post("/sim/scan", json=body)
        return phases(crs)["Connected"] == FLEET

    wait_until("100 connected", scan_what_shows, 180, interval=1.0)


def deliver(cluster: Cluster, targets: list[int], seed: int) -> None:
    """Inbound messages from a contact to the accounts ``targets``."""
    with httpx.Client(base_url=cluster.sim_url, timeout=10) as sim:
        for n in targets:
            sent = sim.post(
                "/sim/messages", json={"from": CONTACT, "to": phone(n), "text": f"chaos {seed}"}
            )
            assert sent.status_code == 200, sent.text


def set_suspended(cluster: Cluster, numbers: list[int], suspended: bool) -> None:
    """Suspend or resume accounts through their CR, retrying while the API is faulty."""
    base = f"{cluster.api.url}/apis/wafleet.io/v1alpha1/namespaces/wafleet/whatsappaccounts"
    headers = {"Content-Type": "application/merge-patch+json"}
    for n in numbers:
        body = {"spec": {"suspended": suspended}}

        def patched(n: int = n, body: dict[str, Any] = body) -> bool:
            try:
                response = httpx.patch(
                    f"{base}/chaos-{n:03d}", json=body, headers=headers, timeout=10
                )
            except httpx.HTTPError:
                return False
            return response.status_code == 200

        wait_until(f"chaos-{n:03d} patched", patched, 30, interval=0.2)


def recovered(
    cluster: Cluster,
    name: str,
    since: float,
    before: dict[str, int | None],
    suspended: tuple[int, ...] = (),
) -> None:
    """The fleet is whole again: the assertions every scenario ends with. The sim is the
    ground truth of who is connected (a CR may still say Connected of a dead connector)."""
    names = {f"chaos-{n:03d}" for n in suspended}

    def whole() -> bool:
        try:
            crs = fleet(cluster)
            sim = sim_status(cluster)
        except httpx.HTTPError:
            return False
        counted = phases({k: v for k, v in crs.items() if k.startswith("chaos-0")})
        return (
            sim["live"] == FLEET - len(names)
            and sim["pendingMessages"] == 0
            and counted["Connected"] == FLEET - len(names)
            and phases({k: crs[k] for k in names})["Suspended"] == len(names)
        )

    wait_until(f"the fleet back after {name}", whole, RECOVERY_BOUND, interval=0.25)
    RECOVERY[name] = round(time.monotonic() - since, 1)
    print(f"\n{name}: fleet whole {RECOVERY[name]} s after the fault ended")
    assert sim_status(cluster)["replacements"] == 0, "two connectors drove one account"
    after = shards(fleet(cluster))
    assert {k: after[k] for k in before} == before, "an account was placed again or moved"
    loads = Counter(s for s in after.values() if s is not None)
    assert max(loads.values()) <= SESSIONS_PER_SHARD, loads
    api = httpx.get(cluster.api_url + "/readyz", timeout=5)
    assert api.status_code == 200, api.text
    if suspended:  # back to a whole fleet for the next scenario
        set_suspended(cluster, list(suspended), False)
        wait_until("resumed", lambda: sim_status(cluster)["live"] == FLEET, RECOVERY_BOUND, 0.25)


def fault_window(cluster: Cluster, name: str, seed: int, faults: list[dict[str, Any]]) -> None:
    """The fault for WINDOW seconds, while messages arrive and two accounts are suspended
    through their CRs (which needs the connectors' watches to work)."""
    rng = random.Random(seed)
    picked = rng.sample(range(FLEET), 22)
    suspended, targets = tuple(picked[:2]), picked[2:]
    before = shards(fleet(cluster))
    control = Control(cluster.api.url)
    for spec in faults:
        control.add_fault(forSeconds=WINDOW, seed=seed, **spec)
    began = time.monotonic()
    deliver(cluster, targets, seed)
    # Late in the window, when every watch has been renewed under the fault: the change
    # can only reach the connectors once their watches work again.
    time.sleep(max(0.0, began + WINDOW - 2 - time.monotonic()))
    set_suspended(cluster, list(suspended), True)
    time.sleep(max(0.0, began + WINDOW - time.monotonic()))
    hits = sum(int(f.get("hits", 0)) for f in control.clear_faults())
    assert hits > 0, f"{name}: the fault never fired"
    recovered(cluster, name, time.monotonic(), before, suspended)


@pytest.mark.parametrize(
    ("name", "faults"),
    [
        ("429 text/plain + Retry-After", [{"kind": "status", "code": 429, "rate": 0.5}]),
        ("500", [{"kind": "status", "code": 500, "rate": 0.4}]),
        ("503", [{"kind": "status", "code": 503, "rate": 0.4, "retryAfter": 1}]),
        ("latency 1.5 s", [{"kind": "latency", "seconds": 1.5, "rate": 0.5}]),
        (
            "dropped watches",
            [{"kind": "drop-watch", "resource": "whatsappaccounts", "afterSeconds": 1}],
        ),
        ("half-open watches", [{"kind": "half-open-watch", "resource": "whatsappaccounts"}]),
    ],
)
def test_the_fleet_recovers_from_api_faults(
    cluster: Cluster, name: str, faults: list[dict[str, Any]]
) -> None:
    fault_window(cluster, name, len(RECOVERY) + 1, faults)


def test_sigkilled_connectors_come_back_without_a_second_driver(cluster: Cluster) -> None:
    follower = cluster.follower
    assert follower is not None
    before = shards(fleet(cluster))
    victims = [2, 5, 7]
    restarts = {n: follower.restarts.get(n, 0) for n in victims}
    deliver(cluster, random.Random(101).sample(range(FLEET), 20), seed=101)
    for ordinal in victims:
        follower.kill(ordinal)  # SIGKILL
    wait_until(
        "the killed connectors restarted",
        lambda: all(follower.restarts.get(n, 0) > restarts[n] for n in victims),
        30,
    )
    recovered(cluster, "SIGKILL of 3 connectors", time.monotonic(), before)


def test_a_sigkilled_api_comes_back(cluster: Cluster) -> None:
    api = cluster.api_server
    assert api is not None and api.popen is not None
    before = shards(fleet(cluster))
    os.kill(api.popen.pid, signal.SIGKILL)
    api.popen.wait(10)
    api.popen = None
    deliver(cluster, random.Random(202).sample(range(FLEET), 10), seed=202)
    api.start()
    wait_until("the API ready", lambda: _ready(cluster.api_url), 30)
    recovered(cluster, "SIGKILL of the API", time.monotonic(), before)


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_operator_sigkilled_at_random_points_during_placement(
    cluster: Cluster, tmp_path: Path
) -> None:
    """New accounts arrive while the operator dies twice, at random moments (seeded)."""
    rng = random.Random(303)
    before = shards(fleet(cluster))
    for n in range(FLEET, FLEET + 20):
        cluster.create_account(f"chaos-{n:03d}", phone(n))
        if n in (FLEET + 3, FLEET + 11):
            time.sleep(rng.uniform(0.0, 0.5))
            operator = cluster.operator
            assert operator is not None
            operator.stop(signal.SIGKILL)
            cluster.operator = cluster.operator_proc()
            cluster.operator.start()

    def placed() -> bool:
        current = shards(fleet(cluster))
        return len(current) == FLEET + 20 and all(s is not None for s in current.values())

    wait_until("120 placed", placed, 120, interval=0.5)
    current = shards(fleet(cluster))
    assert {k: current[k] for k in before} == before, "an account moved"
    loads = Counter(s for s in current.values() if s is not None)
    assert max(loads.values()) <= SESSIONS_PER_SHARD, loads
    assert sim_status(cluster)["replacements"] == 0
