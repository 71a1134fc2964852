"""Webhooks from a cluster survive SIGKILLs: two connector pods deliver (claiming lanes in
Firestore as they claim outbox items); each is SIGKILLed in turn while 3,000 inbound
messages arrive and the receiver fails 30% of requests and hangs on 5%. Afterwards every
message reached it, signed, and every redelivery carried an id already seen."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.cluster import Cluster, api_client
from support.events_flow import (
    DELIVERY_ENV,
    TIMEOUT,
    Flood,
    check_deliveries,
    wait_all_accepted,
    wait_count,
)
from support.firestore import FirestoreEmulator, firestore_emulator
from support.mobility import loads, mobility_cluster, onboard
from support.process import phones, wait_until
from support.receiver import Receiver, running

pytestmark = [pytest.mark.k8s, pytest.mark.firestore, pytest.mark.events]

__all__ = ["firestore_emulator"]

ACCOUNTS = 10
MESSAGES = 3000
KILLS = ((700, 0), (1500, 1), (2300, 0))  # (messages sent, the pod to SIGKILL)


@pytest.fixture
def cluster(
    tmp_path_factory: pytest.TempPathFactory, firestore_emulator: FirestoreEmulator
) -> Iterator[Cluster]:
    firestore_emulator.clear()
    running_cluster = mobility_cluster(
        tmp_path_factory.mktemp("events"),
        firestore_emulator.project,
        firestore_emulator.host,
        sessions_per_shard=ACCOUNTS // 2,
        max_shards=2,
    )
    running_cluster.extra_env.update(DELIVERY_ENV)
    try:
        running_cluster.start()
        yield running_cluster
    finally:
        running_cluster.stop()


def test_two_pods_sigkilled_in_turn_while_3000_messages_arrive_lose_no_webhook(
    cluster: Cluster,
) -> None:
    numbers = phones(ACCOUNTS, base=40_723_000_000)
    onboard(cluster, numbers)
    wait_until("both shards running accounts", lambda: sorted(loads(cluster)) == [0, 1], 30)
    receiver = Receiver(fail=0.30, hang=0.05, hang_seconds=TIMEOUT + 0.5, seed=777)
    assert cluster.follower is not None
    with running(receiver), api_client(cluster.api_url) as api:
        made = api.post("/api/webhooks", json={"url": receiver.url, "events": ["message.inbound"]})
        assert made.status_code == 201, made.text
        receiver.secret = made.json()["secret"]
        flood = Flood(cluster.sim_url, numbers, MESSAGES).start()
        for at, ordinal in KILLS:
            wait_count(flood, at, 180)
            cluster.follower.kill(ordinal)  # SIGKILL; the follower starts it again
        flood.wait(240)
        wait_all_accepted(receiver, flood, 300)
        outcome = check_deliveries(receiver, flood)
    assert outcome.accepted == MESSAGES
    assert outcome.retried > 0.2 * MESSAGES, outcome
    assert sum(cluster.follower.restarts.values()) >= len(KILLS)
