"""Helpers of the mobility tests and bench/move.py: a cluster whose sessions can move
(Firestore for messages and session backups), onboarding through the sim, a stream of
inbound messages, and what a move leaves behind."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from google.cloud.firestore import Client

from support.cluster import NAMESPACE, Cluster, api_client
from support.process import wait_until

KEY = base64.b64encode(bytes(range(32))).decode()
CONTACT = "+40799000555"
MOVE_TO = "wafleet.io/move-to"
HANDOFF = "wafleet.io/handoff"
FLEETS = f"/apis/wafleet.io/v1alpha1/namespaces/{NAMESPACE}/whatsappfleets"


def mobility_cluster(
    workdir: Path,
    project: str,
    emulator_host: str,
    *,
    sessions_per_shard: int = 4,
    max_shards: int = 3,
    operator_env: dict[str, str] | None = None,
) -> Cluster:
    return Cluster(
        workdir,
        sessions_per_shard=sessions_per_shard,
        max_shards=max_shards,
        extra_env={
            "WAFLEET_STORE": "firestore",
            "WAFLEET_FIRESTORE_PROJECT": project,
            "WAFLEET_BACKUP_KEY": KEY,
            "FIRESTORE_EMULATOR_HOST": emulator_host,
        },
        # A killed operator's successor waits out its peering record: 15 s, not 60.
        operator_env={
            "WAFLEET_MOVE_TIMEOUT": "10",
            "WAFLEET_PEERING_LIFETIME": "15",
            **(operator_env or {}),
        },
    )


def account(cluster: Cluster, name: str) -> dict[str, Any]:
    url = f"{cluster.api.url}/apis/wafleet.io/v1alpha1/namespaces/{NAMESPACE}/whatsappaccounts"
    found: dict[str, Any] = httpx.get(f"{url}/{name}", timeout=10).json()
    return found


def shard_of(cr: dict[str, Any]) -> int | None:
    label = (cr["metadata"].get("labels") or {}).get("wafleet.io/shard")
    return None if label is None else int(label)


def onboard(cluster: Cluster, phones: list[str], timeout: float = 90) -> dict[str, str]:
    """Add the accounts through the API and link each by scanning its QR in the sim;
    phone -> account id (the resource name)."""
    ids: dict[str, str] = {}
    with api_client(cluster.api_url) as api, httpx.Client(base_url=cluster.sim_url) as sim:
        for phone in phones:
            response = api.post("/api/whatsapp/add-account", json={"phone": phone})
            assert response.status_code == 200, response.text
            ids[phone] = response.json()["account"]["id"]
        waiting = dict(ids)

        def linked() -> bool:
            for phone, account_id in list(waiting.items()):
                found = api.get(f"/api/whatsapp/accounts/{account_id}").json()["account"]
                if found["status"] == "connected":
                    del waiting[phone]
                elif found["qr"]:
                    sim.post("/sim/scan", json={"qr": found["qr"], "phone": phone})
            return not waiting

        wait_until(f"{len(phones)} accounts connected", linked, timeout, interval=0.3)
    return ids


def devices(cluster: Cluster, phones: list[str]) -> dict[str, list[str]]:
    """The linked device ids of each phone, as WhatsApp (the sim) knows them."""
    with httpx.Client(base_url=cluster.sim_url, timeout=10) as sim:
        return {
            phone: sorted(
                d["id"] for d in sim.get("/sim/devices", params={"phone": phone}).json()["devices"]
            )
            for phone in phones
        }


def sim_summary(cluster: Cluster) -> dict[str, Any]:
    summary: dict[str, Any] = httpx.get(f"{cluster.sim_url}/sim/status", timeout=10).json()
    return summary


def move(cluster: Cluster, name: str, ordinal: int) -> None:
    cluster.kubectl("annotate", f"whatsappaccounts/{name}", "-n", NAMESPACE, f"{MOVE_TO}={ordinal}")


def settled_on(cluster: Cluster, name: str, ordinal: int) -> bool:
    """On the shard, Connected, and the move closed."""
    cr = account(cluster, name)
    annotations = cr["metadata"].get("annotations") or {}
    return (
        shard_of(cr) == ordinal
        and (cr.get("status") or {}).get("phase") == "Connected"
        and MOVE_TO not in annotations
        and HANDOFF not in annotations
    )


def apply_fleet(cluster: Cluster, spec: dict[str, Any], name: str = "wafleet") -> None:
    cluster.apply(
        {
            "apiVersion": "wafleet.io/v1alpha1",
            "kind": "WhatsAppFleet",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": spec,
        }
    )


def patch_fleet(cluster: Cluster, spec: dict[str, Any], name: str = "wafleet") -> None:
    cluster.kubectl(
        "patch", "waf", name, "-n", NAMESPACE, "--type", "merge", "-p", json.dumps({"spec": spec})
    )


@dataclass
class PhaseLog:
    """Every phase an account showed, polled from the API server in a thread."""

    cluster: Cluster
    names: list[str]
    seen: dict[str, list[str]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> PhaseLog:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for name in self.names:
                try:
                    phase = (account(self.cluster, name).get("status") or {}).get("phase")
                except (httpx.HTTPError, ValueError):
                    continue
                shown = self.seen.setdefault(name, [])
                if not shown or shown[-1] != phase:
                    shown.append(str(phase))
            self._stop.wait(0.05)


@dataclass
class Inbound:
    """Messages from a contact to the phones, round robin, until stopped; their texts."""

    cluster: Cluster
    phones: list[str]
    every: float = 0.05
    sent: dict[str, list[str]] = field(default_factory=dict)  # phone -> texts
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Inbound:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _loop(self) -> None:
        n = 0
        with httpx.Client(base_url=self.cluster.sim_url, timeout=10) as sim:
            while not self._stop.is_set():
                phone = self.phones[n % len(self.phones)]
                text = f"inbound {n} at {time.monotonic():.3f}"
                response = sim.post(
                    "/sim/messages", json={"from": CONTACT, "to": phone, "text": text}
                )
                assert response.status_code == 200, response.text
                self.sent.setdefault(phone, []).append(text)
                n += 1
                self._stop.wait(self.every)

    @property
    def count(self) -> int:
        return sum(len(texts) for texts in self.sent.values())


def stored_inbound(project: str, account_ids: list[str]) -> dict[str, Counter[str]]:
    """Inbound texts stored in Firestore per account, with how many times each is."""
    client = Client(project=project)
    try:
        found: dict[str, Counter[str]] = {a: Counter() for a in account_ids}
        for doc in client.collection_group("messages").stream():
            data = doc.to_dict() or {}
            if data.get("direction") == "inbound" and data.get("accountId") in found:
                found[data["accountId"]][str(data.get("body"))] += 1
        return found
    finally:
        client.close()


def all_delivered(cluster: Cluster) -> bool:
    return int(sim_summary(cluster)["pendingMessages"]) == 0


def every_message_once(project: str, inbound: Inbound, ids: dict[str, str]) -> bool:
    stored = stored_inbound(project, list(ids.values()))
    return all(set(stored[ids[phone]]) >= set(texts) for phone, texts in inbound.sent.items())


def event_reasons(cluster: Cluster, name: str) -> list[str]:
    """The reasons of the Events about account ``name``, oldest first."""
    url = f"{cluster.api.url}/api/v1/namespaces/{NAMESPACE}/events"
    items = httpx.get(url, timeout=10).json()["items"]
    about = [e for e in items if (e.get("involvedObject") or {}).get("name") == name]
    about.sort(key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
    return [str(e.get("reason")) for e in about]


def event_messages(cluster: Cluster, name: str, reason: str) -> list[str]:
    url = f"{cluster.api.url}/api/v1/namespaces/{NAMESPACE}/events"
    items = httpx.get(url, timeout=10).json()["items"]
    return [
        str(e.get("message"))
        for e in items
        if (e.get("involvedObject") or {}).get("name") == name and e.get("reason") == reason
    ]


def loads(cluster: Cluster) -> dict[int, int]:
    """Accounts per shard label."""
    counted: dict[int, int] = {}
    for cr in cluster.accounts():
        shard = shard_of(cr)
        if shard is not None:
            counted[shard] = counted.get(shard, 0) + 1
    return counted


def all_connected(cluster: Cluster) -> bool:
    """Every account Connected, and no move asked for or open."""
    return all(
        (cr.get("status") or {}).get("phase") == "Connected"
        and not ({MOVE_TO, HANDOFF} & set(cr["metadata"].get("annotations") or {}))
        for cr in cluster.accounts()
    )


def fleet_object(cluster: Cluster, name: str = "wafleet") -> dict[str, Any] | None:
    response = httpx.get(f"{cluster.api.url}{FLEETS}/{name}", timeout=10)
    return None if response.status_code != 200 else dict(response.json())
