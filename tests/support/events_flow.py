"""The delivery-under-kills flow shared by the standalone and the cluster tests: a steady
flood of inbound messages from simulated phones, and the checks on what a webhook got."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx

from support.process import wait_until
from support.receiver import Receiver

CONTACT = "+40799000001"
TIMEOUT = 0.5  # WAFLEET_WEBHOOK_TIMEOUT of the kill tests: the receiver's hangs last longer
# What the kill tests run with: a receiver on loopback, short timeouts and retries (the
# flaky receiver would take hours at the default schedule), many accounts at once.
DELIVERY_ENV = {
    "WAFLEET_WEBHOOK_ALLOW_PRIVATE": "true",
    "WAFLEET_WEBHOOK_TIMEOUT": str(TIMEOUT),
    "WAFLEET_WEBHOOK_RETRY_MIN": "0.05",
    "WAFLEET_WEBHOOK_RETRY_MAX": "0.25",
    "WAFLEET_WEBHOOK_CONCURRENCY": "32",
    "WAFLEET_EVENT_POLL": "0.25",
}


def link(client: httpx.Client, sim: httpx.Client, numbers: list[str]) -> list[str]:
    """Add the accounts to a standalone process, scan each QR in the (external) sim, and
    wait until all are connected; their ids."""
    ids = []
    for phone in numbers:
        response = client.post("/api/whatsapp/add-account", json={"phone": phone})
        assert response.status_code == 200, response.text
        ids.append(response.json()["account"]["id"])
    scanned: set[str] = set()

    def scan() -> bool:
        for account in client.get("/api/whatsapp/accounts").json()["accounts"]:
            if account["id"] in scanned or not account["qr"]:
                continue
            answer = sim.post("/sim/scan", json={"qr": account["qr"], "phone": account["phone"]})
            if answer.status_code == 200:
                scanned.add(account["id"])
        return len(scanned) == len(numbers)

    wait_until("every QR scanned", scan, 120, interval=0.2)
    wait_until(
        "every account connected",
        lambda: client.get("/api/status/dashboard").json()["summary"]["connected"] == len(ids),
        120,
    )
    return ids


@dataclass
class Flood:
    """``total`` messages from CONTACT to ``phones``, round robin, one every ``every``
    seconds, through the sim (which holds them for a device that is away)."""

    sim_url: str
    phones: list[str]
    total: int
    every: float = 0.002
    sent: list[tuple[str, str]] = field(default_factory=list)  # (phone, text)
    error: str | None = None
    _thread: threading.Thread | None = None

    def start(self) -> Flood:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        try:
            with httpx.Client(base_url=self.sim_url, timeout=10) as sim:
                for n in range(self.total):
                    phone = self.phones[n % len(self.phones)]
                    text = f"flood {n}"
                    response = sim.post(
                        "/sim/messages", json={"from": CONTACT, "to": phone, "text": text}
                    )
                    if response.status_code != 200:
                        self.error = f"the sim refused message {n}: {response.text[:200]}"
                        return
                    self.sent.append((phone, text))
                    time.sleep(self.every)
        except Exception as exc:  # reported by the test, not lost in a thread
            self.error = f"{type(exc).__name__}: {exc}"

    @property
    def count(self) -> int:
        return len(self.sent)

    def wait(self, timeout: float) -> None:
        assert self._thread is not None
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the flood did not end in {timeout} s"
        assert self.error is None, self.error


def wait_count(flood: Flood, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while flood.count < count:
        assert flood.error is None, flood.error
        assert time.monotonic() < deadline, f"only {flood.count} of {count} sent in {timeout} s"
        time.sleep(0.05)


def accepted_texts(receiver: Receiver) -> set[str]:
    return {
        str(event["data"]["body"])
        for event in receiver.accepted_events().values()
        if event["type"] == "message.inbound"
    }


def wait_all_accepted(receiver: Receiver, flood: Flood, timeout: float) -> None:
    wanted = {text for _, text in flood.sent}
    deadline = time.monotonic() + timeout
    while True:
        missing = wanted - accepted_texts(receiver)
        if not missing:
            return
        if time.monotonic() > deadline:
            sample = sorted(missing)[:5]
            raise AssertionError(
                f"{len(missing)} of {len(wanted)} inbound messages never reached the webhook "
                f"within {timeout} s (e.g. {sample}); {len(receiver.snapshot())} deliveries"
            )
        time.sleep(0.25)


@dataclass(frozen=True)
class Outcome:
    deliveries: int
    accepted: int
    duplicates: int  # deliveries of an event the receiver had already accepted
    retried: int  # deliveries of an event that had failed before
    cut_off: int  # requests cut off mid-body by a kill (no delivery: the receiver saw no body)


def check_deliveries(receiver: Receiver, flood: Flood) -> Outcome:
    """What the issue asks of the webhook, on every delivery the receiver saw:

    - each carries a signature the standardwebhooks package verifies (checked on arrival);
    - one id per inbound message, one message per id (a redelivery has the id already seen);
    - the body is the event, its id the ``webhook-id``;
    - per account, events are first accepted in seq order (at least once, in order);
    - every inbound message sent was accepted (the caller waited for that).
    """
    deliveries = receiver.snapshot()
    refused = [d.verified for d in deliveries if d.verified != "ok"]
    assert not refused, f"{len(refused)} signatures did not verify: {refused[:3]}"
    by_message: dict[tuple[str, str], set[str]] = defaultdict(set)
    by_id: dict[str, set[tuple[str, str]]] = defaultdict(set)
    first_accepted: dict[str, list[int]] = defaultdict(list)
    accepted_ids: set[str] = set()
    seen: set[str] = set()
    duplicates = retried = 0
    for d in deliveries:
        event: dict[str, Any] = d.event
        assert d.headers["webhook-id"] == event["id"], (d.headers, event["id"])
        assert event["type"] == "message.inbound", event["type"]
        key = (event["accountId"], event["data"]["waMessageId"])
        by_message[key].add(event["id"])
        by_id[event["id"]].add(key)
        if event["id"] in accepted_ids:
            duplicates += 1
        elif event["id"] in seen:
            retried += 1
        seen.add(event["id"])
        if d.accepted and event["id"] not in accepted_ids:
            accepted_ids.add(event["id"])
            first_accepted[event["accountId"]].append(int(event["seq"]))
    two_ids = {k: ids for k, ids in by_message.items() if len(ids) > 1}
    assert not two_ids, f"a message delivered under two event ids: {list(two_ids.items())[:3]}"
    shared = {i: keys for i, keys in by_id.items() if len(keys) > 1}
    assert not shared, f"one event id for two messages: {list(shared.items())[:3]}"
    for account, seqs in first_accepted.items():
        assert seqs == sorted(seqs), f"{account}: first accepted out of seq order: {seqs[:20]}"
    wanted = {text for _, text in flood.sent}
    assert accepted_texts(receiver) == wanted
    return Outcome(len(deliveries), len(accepted_ids), duplicates, retried, receiver.cut_off())
