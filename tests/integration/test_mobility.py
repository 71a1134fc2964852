"""Sessions that move between shards, end to end: the kopf operator, connectors, sim,
Firestore emulator and Kubernetes API emulator as real processes (docs/design/mobility.md).

Every test checks the guarantees of a move: no two connections ever drive one device
(the sim counts stream replacements: zero), the device after a move is the one before it,
every inbound message sent while sessions move is stored exactly once, and an outbound
message queued for a moving account is sent once, by its new shard.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from k8s_emulator.control import Control

from support.cluster import NAMESPACE, STATEFULSET, Cluster, api_client
from support.firestore import FirestoreEmulator, firestore_emulator
from support.mobility import (
    CONTACT,
    HANDOFF,
    MOVE_TO,
    Inbound,
    PhaseLog,
    account,
    all_connected,
    all_delivered,
    apply_fleet,
    devices,
    event_messages,
    event_reasons,
    every_message_once,
    fleet_object,
    loads,
    mobility_cluster,
    move,
    onboard,
    patch_fleet,
    settled_on,
    shard_of,
    sim_summary,
    stored_inbound,
)
from support.process import wait_until

pytestmark = [pytest.mark.k8s, pytest.mark.firestore, pytest.mark.mobility]

__all__ = ["firestore_emulator"]


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, firestore_emulator: FirestoreEmulator
) -> Iterator[Cluster]:
    running = mobility_cluster(
        tmp_path_factory.mktemp("mobility"),
        firestore_emulator.project,
        firestore_emulator.host,
        sessions_per_shard=4,
        max_shards=4,
    )
    try:
        running.start()
        yield running
    finally:
        running.stop()


def phones(first: int, count: int) -> list[str]:
    return [f"+4071255{n:04d}" for n in range(first, first + count)]


def test_one_move_keeps_the_device_and_every_message(
    cluster: Cluster, firestore_emulator: FirestoreEmulator
) -> None:
    numbers = phones(1, 2)
    ids = onboard(cluster, numbers)
    moving, staying = ids[numbers[0]], ids[numbers[1]]
    assert shard_of(account(cluster, moving)) == 0 == shard_of(account(cluster, staying))
    before = devices(cluster, numbers)
    with (
        api_client(cluster.api_url) as api,
        Inbound(cluster, numbers) as inbound,
        PhaseLog(cluster, [moving]) as phases,
    ):
        wait_until("messages flowing", lambda: inbound.count >= 10, 30)
        response = api.post(
            "/api/whatsapp/send-message",
            json={"accountId": moving, "to": CONTACT, "message": "queued around the move"},
        )
        assert response.status_code == 200, response.text
        move(cluster, moving, 1)  # shard 1 is not running yet: the fleet scales up for it
        wait_until("the move done", lambda: settled_on(cluster, moving, 1), 60, interval=0.3)
        sent_after = inbound.count
        wait_until("messages after the move", lambda: inbound.count >= sent_after + 10, 30)
    assert "Moving" in phases.seen[moving], phases.seen
    reasons = wait_until(
        "the move's events",
        lambda: "Moved" in event_reasons(cluster, moving) and event_reasons(cluster, moving),
        30,
    )
    assert {"MoveStarted", "HandedOver", "Moved"} <= set(reasons), reasons
    wait_until("every inbound message delivered", lambda: all_delivered(cluster), 30)
    wait_until(
        "every inbound message stored",
        lambda: every_message_once(firestore_emulator.project, inbound, ids),
        30,
    )
    stored = stored_inbound(firestore_emulator.project, list(ids.values()))
    for phone, texts in inbound.sent.items():
        counted = stored[ids[phone]]
        assert all(counted[text] == 1 for text in texts), "an inbound message stored twice"
    assert devices(cluster, numbers) == before, "a new device was linked"
    assert sim_summary(cluster)["replacements"] == 0, "two connections drove one device"
    assert shard_of(account(cluster, staying)) == 0
    with httpx.Client(base_url=cluster.sim_url, timeout=10) as sim:
        received = sim.get("/sim/messages", params={"phone": CONTACT}).json()["messages"]
    outbound = [m for m in received if m.get("text") == "queued around the move"]
    assert len(outbound) == 1, received[-5:]


@pytest.mark.parametrize(
    ("asked", "why"),
    [
        ("two", "must be a shard ordinal such as 1, not 'two'"),
        ("9", "shard 9 is beyond maxShards 4 (ordinals 0 to 3); raise maxShards first"),
    ],
)
def test_a_move_that_cannot_be_made_is_refused_with_the_reason(
    cluster: Cluster, asked: str, why: str
) -> None:
    cr = min(cluster.accounts(), key=lambda c: str(c["metadata"]["name"]))
    name, shard = cr["metadata"]["name"], shard_of(cr)
    cluster.kubectl("annotate", f"whatsappaccounts/{name}", "-n", NAMESPACE, f"{MOVE_TO}={asked}")
    wait_until(
        "the refusal",
        lambda: any(why in m for m in event_messages(cluster, name, "MoveRefused")),
        30,
    )
    wait_until(
        "the annotation removed",
        lambda: MOVE_TO not in (account(cluster, name)["metadata"].get("annotations") or {}),
        30,
    )
    assert shard_of(account(cluster, name)) == shard
    assert (account(cluster, name).get("status") or {}).get("phase") == "Connected"


def test_a_move_cancelled_before_the_source_lets_go_leaves_the_account_where_it_was(
    cluster: Cluster,
) -> None:
    """``kubectl annotate wa/<name> wafleet.io/move-to-`` while the move is open: the
    source runs the account again, nothing is relabelled."""
    cr = min(cluster.accounts(), key=lambda c: str(c["metadata"]["name"]))
    name, shard = cr["metadata"]["name"], shard_of(cr)
    assert shard is not None
    control = Control(cluster.api.url)
    # The source's handoff write takes 1.5 s: the cancel lands while the move is open.
    slow = control.add_fault(
        kind="latency", seconds=1.5, resource="whatsappaccounts", verbs=["patch"], name=name
    )
    try:
        move(cluster, name, 1 if shard == 0 else 0)
        wait_until("the move opened", lambda: step_of(account(cluster, name)), 30, 0.02)
        cluster.kubectl("annotate", f"whatsappaccounts/{name}", "-n", NAMESPACE, f"{MOVE_TO}-")
        wait_until(
            "the move cancelled",
            lambda: "MoveCancelled" in event_reasons(cluster, name),
            60,
        )
    finally:
        control.remove_fault(slow["id"])
    wait_until("Connected where it was", lambda: settled_on(cluster, name, shard), 60, interval=0.3)
    assert sim_summary(cluster)["replacements"] == 0


def test_rebalance_after_a_scale_up_evens_the_shards(cluster: Cluster) -> None:
    """Shards 0 and 1 full (4 each), the ninth account opens shard 2: 4, 4, 1. With
    rebalance on (maxSkew 1), accounts move to the new shard until the spread is 1."""
    apply_fleet(cluster, {})

    def no_moves() -> bool:  # the operator's view has caught up with the last move
        status = (fleet_object(cluster) or {}).get("status") or {}
        return status.get("movesInProgress") == 0

    wait_until("the fleet status with no move in progress", no_moves, 30)
    numbers = phones(10, 9 - len(cluster.accounts()))
    ids = onboard(cluster, numbers[:-1])
    assert loads(cluster) == {0: 4, 1: 4}, loads(cluster)
    ids.update(onboard(cluster, numbers[-1:]))
    assert loads(cluster) == {0: 4, 1: 4, 2: 1}
    phone_list = [str(cr["spec"]["phone"]) for cr in cluster.accounts()]
    before = devices(cluster, phone_list)
    patch_fleet(cluster, {"rebalance": {"enabled": True, "maxSkew": 1, "consolidate": False}})
    wait_until(
        "the shards evened out",
        lambda: all_connected(cluster) and sorted(loads(cluster).values()) == [3, 3, 3],
        90,
        interval=0.5,
    )
    patch_fleet(cluster, {"rebalance": {"enabled": False}})
    assert devices(cluster, phone_list) == before, "a new device was linked"
    assert sim_summary(cluster)["replacements"] == 0, "two connections drove one device"


STEPS = [
    ("source", "opened"),
    ("operator", "opened"),
    ("target", "relabelled"),
    ("operator", "relabelled"),
    ("target", "restored"),
]


def step_of(cr: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """Where the account's move is: opened (the source has it), relabelled (the target
    has not restored yet), restored (the target starts it); None: no move open."""
    raw = (cr["metadata"].get("annotations") or {}).get(HANDOFF)
    if raw is None:
        return None
    handoff: dict[str, Any] = json.loads(raw)
    if "generation" not in handoff:
        return "opened", handoff
    done = (cr.get("status") or {}).get("handoff") or {}
    if done.get("id") == handoff["id"] and done.get("restored") == handoff["generation"]:
        return "restored", handoff
    return "relabelled", handoff


def kill_during(cluster: Cluster, name: str, target: int, who: str, step: str) -> bool:
    """Ask for the move and SIGKILL ``who`` as soon as the move is at ``step``; False if
    the move went past that step before it was seen."""
    follower = cluster.follower
    assert follower is not None
    move(cluster, name, target)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        at = step_of(account(cluster, name))
        if at is not None and at[0] == step:
            handoff = at[1]
            if who == "operator":
                cluster.kill_operator()
            else:
                follower.kill(int(handoff["from"] if who == "source" else handoff["to"]))
            return True
        if settled_on(cluster, name, target):
            return False
        time.sleep(0.01)
    raise AssertionError(f"the move of {name} to {target} did not reach {step} in 60 s")


@pytest.mark.parametrize(("who", "step"), STEPS, ids=[f"{w}-at-{s}" for w, s in STEPS])
def test_a_kill_at_each_step_of_a_move_ends_connected_on_one_shard(
    cluster: Cluster, firestore_emulator: FirestoreEmulator, who: str, step: str
) -> None:
    """SIGKILL of the source, the target or the operator while a move is at a step: the
    account ends Connected on the target, as the same device, every message stored once,
    and never two connections on it."""
    cr = min(cluster.accounts(), key=lambda c: str(c["metadata"]["name"]))
    name, phone = cr["metadata"]["name"], str(cr["spec"]["phone"])
    before = devices(cluster, [phone])
    # Every write to the account takes 0.7 s longer: each step of the move lasts long
    # enough to be seen and killed in (a restore from the emulator takes milliseconds).
    control = Control(cluster.api.url)
    slow = control.add_fault(
        kind="latency", seconds=0.7, resource="whatsappaccounts", verbs=["patch"], name=name
    )
    try:
        move_with_kill(cluster, firestore_emulator, name, phone, who, step)
    finally:
        hits = control.remove_fault(slow["id"]).get("hits", 0)
    assert hits > 0, "the latency never applied"
    assert devices(cluster, [phone]) == before, "a new device was linked"
    assert sim_summary(cluster)["replacements"] == 0, "two connections drove one device"
    wait_until("every account Connected", lambda: all_connected(cluster), 90, interval=0.5)


def move_with_kill(
    cluster: Cluster,
    firestore_emulator: FirestoreEmulator,
    name: str,
    phone: str,
    who: str,
    step: str,
) -> None:
    with Inbound(cluster, [phone], every=0.03) as inbound:
        wait_until("messages flowing", lambda: inbound.count >= 5, 30)
        target, caught = 1, False
        for _ in range(4):
            here = shard_of(account(cluster, name))
            now = loads(cluster)
            target = min((o for o in range(3) if o != here), key=lambda o: (now.get(o, 0), o))
            caught = kill_during(cluster, name, target, who, step)
            wait_until(
                f"{name} Connected on shard {target}",
                lambda target=target: settled_on(cluster, name, target),
                120,
                interval=0.3,
            )
            if caught:
                break
        assert caught, f"the move never showed step {step} long enough to kill {who}"
        sent_after = inbound.count
        wait_until("messages after the kill", lambda: inbound.count >= sent_after + 5, 30)
    wait_until("every inbound message delivered", lambda: all_delivered(cluster), 60)
    ids = {phone: name}
    wait_until(
        "every inbound message stored",
        lambda: every_message_once(firestore_emulator.project, inbound, ids),
        60,
    )
    counted = stored_inbound(firestore_emulator.project, [name])[name]
    assert all(counted[text] == 1 for text in inbound.sent[phone]), "a message stored twice"


def test_a_source_that_dies_mid_move_and_stays_dead_is_fenced(cluster: Cluster) -> None:
    """The source is SIGKILLed as the move is asked for and does not come back: after the
    move timeout (10 s here) and once its Lease expired, the account is relabelled with
    generation 0 and its new shard starts it from the latest backup, as the same device."""
    follower = cluster.follower
    assert follower is not None
    cr = min(cluster.accounts(), key=lambda c: str(c["metadata"]["name"]))
    name, phone, source = cr["metadata"]["name"], str(cr["spec"]["phone"]), shard_of(cr)
    assert source is not None
    now = loads(cluster)
    target = min((o for o in range(3) if o != source), key=lambda o: (now.get(o, 0), o))
    before = devices(cluster, [phone])
    follower.paused.add(source)
    follower.kill(source)  # gone before it could see the move: it never lets go
    move(cluster, name, target)
    try:
        wait_until(
            f"{name} Connected on shard {target}",
            lambda: settled_on(cluster, name, target),
            90,
            interval=0.3,
        )
        assert "Fenced" in event_reasons(cluster, name)
        assert devices(cluster, [phone]) == before, "a new device was linked"
        assert sim_summary(cluster)["replacements"] == 0
    finally:
        follower.paused.discard(source)  # its other accounts come back with it
    wait_until("every account Connected", lambda: all_connected(cluster), 90, interval=0.5)


def test_failover_of_a_shard_whose_pod_never_comes_back(cluster: Cluster) -> None:
    """Shard 2's pod dies and is not started again: once its Lease stayed expired longer
    than failover.after, its accounts restart on other shards from their latest backup,
    as the same devices. When the pod does come back, it runs nothing for them."""
    follower = cluster.follower
    assert follower is not None
    # minShards 3: shard 2 stays in the StatefulSet, so that its pod can come back.
    patch_fleet(cluster, {"failover": {"enabled": True, "after": "3s"}, "minShards": 3})
    on_two = [c for c in cluster.accounts() if shard_of(c) == 2]
    assert on_two
    names = [c["metadata"]["name"] for c in on_two]
    phone_list = [str(c["spec"]["phone"]) for c in on_two]
    before = devices(cluster, phone_list)
    follower.paused.add(2)
    follower.kill(2)
    wait_until(
        "shard 2's accounts Connected elsewhere",
        lambda: all(
            shard_of(c) not in (None, 2) and (c.get("status") or {}).get("phase") == "Connected"
            for c in cluster.accounts()
            if c["metadata"]["name"] in names
        ),
        90,
        interval=0.5,
    )
    assert devices(cluster, phone_list) == before, "a new device was linked"
    assert sim_summary(cluster)["replacements"] == 0
    assert follower.replicas() >= 3
    for name in names:  # each says why it moved
        wait_until(
            f"{name}'s FailedOver event",
            lambda n=name: "FailedOver" in event_reasons(cluster, n),
            30,
        )

    lease_before = lease_renewed(cluster, 2)
    follower.paused.discard(2)  # the pod comes back, with its volume and their old files
    wait_until(
        "shard 2 renews its Lease again", lambda: lease_renewed(cluster, 2) != lease_before, 60
    )
    wait_until("shard 2 ready (it has listed its accounts)", lambda: pod_ready(cluster, 2), 60)
    assert sim_summary(cluster)["replacements"] == 0, "the returning pod ran a moved account"
    assert all(shard_of(account(cluster, n)) != 2 for n in names)
    patch_fleet(cluster, {"failover": {"enabled": False}})


def lease_renewed(cluster: Cluster, ordinal: int) -> str | None:
    url = (
        f"{cluster.api.url}/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/"
        f"{STATEFULSET}-shard-{ordinal}"
    )
    response = httpx.get(url, timeout=10)
    if response.status_code != 200:
        return None
    renewed: str | None = response.json().get("spec", {}).get("renewTime")
    return renewed


def pod_ready(cluster: Cluster, ordinal: int) -> bool:
    follower = cluster.follower
    assert follower is not None
    pod = follower.pods.get(ordinal)
    if pod is None or not pod.alive():
        return False
    port = pod.env["WAFLEET_PORT"]
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
