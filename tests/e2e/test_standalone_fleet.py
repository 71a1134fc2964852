"""30 accounts through a real ``wafleet standalone --transport sim`` process, HTTP only."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.process import Standalone, accounts_by_id, onboard, phones, summary, wait_until

pytestmark = pytest.mark.e2e

FLEET = 30
CONTACT = "+40799000001"
INBOUND_PER_ACCOUNT = 3
OUTBOUND_PER_ACCOUNT = 2


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[Standalone]:
    proc = Standalone(data_dir=tmp_path / "data", env={"WAFLEET_START_RATE": "10"})
    yield proc
    proc.kill()


def inbound_ids(client: httpx.Client) -> Counter[str]:
    response = client.get("/api/whatsapp/messages", params={"limit": 500})
    response.raise_for_status()
    return Counter(
        m["waMessageId"]
        for thread in response.json()["threads"]
        for m in thread["messages"]
        if m["direction"] == "inbound"
    )


def contact_inbox(client: httpx.Client) -> list[dict[str, str]]:
    response = client.get("/sim/messages", params={"phone": CONTACT})
    response.raise_for_status()
    inbox: list[dict[str, str]] = response.json()["messages"]
    return inbox


def test_fleet_onboards_messages_and_survives_restart(standalone: Standalone) -> None:
    numbers = phones(FLEET)
    standalone.start()
    with standalone.client() as client:
        ids = onboard(client, numbers)
        wait_until("30 connected", lambda: summary(client)["connected"] == FLEET, 60)
        jids_before = {i: a["jid"] for i, a in accounts_by_id(client).items()}

        # Inbound: delivered by simulated contacts, read back through the API.
        delivered: list[str] = []
        for phone in numbers:
            for n in range(INBOUND_PER_ACCOUNT):
                sent = client.post(
                    "/sim/messages", json={"from": CONTACT, "to": phone, "text": f"in {n}"}
                )
                assert sent.status_code == 200, sent.text
                delivered.append(sent.json()["id"])
        wait_until(
            "inbound messages stored",
            lambda: set(inbound_ids(client)) >= set(delivered),
            30,
        )
        thread = client.get("/api/whatsapp/messages", params={"accountId": ids[numbers[0]]})
        assert [m["body"] for m in thread.json()["threads"][0]["messages"]] == [
            f"in {n}" for n in range(INBOUND_PER_ACCOUNT)
        ]

        # Outbound: through the outbox to the simulated phone.
        for phone in numbers:
            for n in range(OUTBOUND_PER_ACCOUNT):
                response = client.post(
                    "/api/whatsapp/send-message",
                    json={
                        "accountId": ids[phone],
                        "to": CONTACT,
                        "message": f"out {n} from {ids[phone]}",
                        "idempotencyKey": f"{ids[phone]}-{n}",
                    },
                )
                assert response.status_code == 200, response.text
        expected_out = FLEET * OUTBOUND_PER_ACCOUNT
        wait_until("outbound delivered", lambda: len(contact_inbox(client)) >= expected_out, 30)

        # A burst right before the stop: journaled or redelivered, never lost.
        for phone in numbers[:10]:
            sent = client.post("/sim/messages", json={"from": CONTACT, "to": phone, "text": "late"})
            delivered.append(sent.json()["id"])

    code, took = standalone.stop()
    assert code == 0, standalone.log()
    assert took < 10, f"graceful stop took {took:.1f} s"

    restarted = time.monotonic()
    standalone.start()
    with standalone.client() as client:

        def all_back() -> bool:
            counts = summary(client)
            assert counts["needs_qr"] == 0, f"an account asked for a new scan: {counts}"
            return counts["connected"] == FLEET

        wait_until("30 reconnected without a scan", all_back, 60, interval=0.1)
        reconnect_seconds = time.monotonic() - restarted
        assert {i: a["jid"] for i, a in accounts_by_id(client).items()} == jids_before

        wait_until(
            "every inbound message stored",
            lambda: set(inbound_ids(client)) >= set(delivered),
            30,
        )
        counts = inbound_ids(client)
        assert sorted(counts) == sorted(delivered), "lost or extra inbound messages"
        assert max(counts.values()) == 1, "an inbound message was stored twice"

        # Same idempotency keys again: nothing is sent twice.
        response = client.post(
            "/api/whatsapp/send-message",
            json={
                "accountId": ids[numbers[0]],
                "to": CONTACT,
                "message": f"out 0 from {ids[numbers[0]]}",
                "idempotencyKey": f"{ids[numbers[0]]}-0",
            },
        )
        assert response.json()["duplicate"] is True
        time.sleep(0.5)
        bodies = Counter(m["text"] for m in contact_inbox(client))
        assert len(bodies) == expected_out and max(bodies.values()) == 1
    print(f"30 accounts reconnected {reconnect_seconds:.2f} s after the restart began")
