"""Happy paths and legacy shapes, part 2: sending and inbound messages."""

from __future__ import annotations

from starlette.testclient import TestClient

from support.api_flows import (
    CONTACT,
    ISO,
    OTHER_CONTACT,
    OTHER_PHONE,
    PHONE,
    AddAccount,
    Json,
    Onboard,
    WaitUntil,
    jid,
    send,
    sim_inbox,
    sim_status,
    threads,
)


# ----- sending ----------------------------------------------------------------------------
def test_send_to_connected_account(client: TestClient, onboard: Onboard) -> None:
    account = onboard(client, PHONE)
    response = send(client, account["id"], "hello there")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    assert body["queued"] is False
    assert body["status"] == "sent"
    assert body["duplicate"] is False
    assert body["messageId"].startswith("3EB0")

    [received] = sim_inbox(client, CONTACT)
    assert received["id"] == body["messageId"]
    assert received["from"] == PHONE
    assert received["text"] == "hello there"

    item = client.get(f"/api/whatsapp/outbox/{body['outboxId']}")
    assert item.status_code == 200
    assert item.json()["item"]["status"] == "sent"
    assert item.json()["item"]["providerMessageId"] == body["messageId"]
    assert item.json()["item"]["toJid"] == jid(CONTACT)

    # The sent message shows in its thread, as outbound.
    [thread] = threads(client, accountId=account["id"])
    assert thread["id"] == f"{account['id']}__{jid(CONTACT)}"
    assert [(m["direction"], m["body"]) for m in thread["messages"]] == [
        ("outbound", "hello there")
    ]


def test_send_to_a_jid(client: TestClient, onboard: Onboard) -> None:
    account = onboard(client, PHONE)
    body = {"accountId": account["id"], "to": jid(CONTACT), "message": "by jid"}
    response = client.post("/api/whatsapp/send-message", json=body)
    assert response.status_code == 200, response.text
    assert [m["text"] for m in sim_inbox(client, CONTACT)] == ["by jid"]


def test_same_idempotency_key_sends_once(client: TestClient, onboard: Onboard) -> None:
    account = onboard(client, PHONE)
    first = send(client, account["id"], "once", idempotencyKey="order-1")
    assert first.status_code == 200, first.text
    again = send(client, account["id"], "once", idempotencyKey="order-1")
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True
    assert again.json()["messageId"] == first.json()["messageId"]
    assert again.json()["outboxId"] == first.json()["outboxId"]
    assert again.json()["queued"] is False

    by_header = {"Idempotency-Key": "order-2"}
    body = {"accountId": account["id"], "to": CONTACT, "message": "twice?"}
    one = client.post("/api/whatsapp/send-message", json=body, headers=by_header)
    two = client.post("/api/whatsapp/send-message", json=body, headers=by_header)
    assert (one.status_code, two.status_code) == (200, 200)
    assert two.json()["duplicate"] is True
    assert two.json()["messageId"] == one.json()["messageId"]

    # Without a key every request is a new message.
    assert send(client, account["id"], "new").json()["duplicate"] is False
    assert send(client, account["id"], "new").json()["duplicate"] is False
    texts = [m["text"] for m in sim_inbox(client, CONTACT)]
    assert texts == ["once", "twice?", "new", "new"]


def test_send_to_account_not_connected_is_queued_then_delivered(
    client: TestClient, add_account: AddAccount, onboard: Onboard, wait_until: WaitUntil
) -> None:
    account = add_account(client, PHONE)
    response = send(client, account["id"], "while offline", idempotencyKey="k-1")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    assert body["queued"] is True
    assert body["status"] == "queued"
    assert body["messageId"] == body["outboxId"]
    assert body["outboxId"].startswith("ob-")
    repeat = send(client, account["id"], "while offline", idempotencyKey="k-1")
    assert repeat.status_code == 200
    assert repeat.json()["duplicate"] is True
    assert repeat.json()["queued"] is True
    assert sim_inbox(client, CONTACT) == []

    onboard(client, PHONE)
    [received] = wait_until("the queued message delivered", lambda: sim_inbox(client, CONTACT))
    assert received["text"] == "while offline"
    assert received["from"] == PHONE

    def sent_item() -> Json | None:
        item: Json = client.get(f"/api/whatsapp/outbox/{body['outboxId']}").json()["item"]
        return item if item["status"] == "sent" else None

    item = wait_until("the outbox item marked sent", sent_item)
    assert item["providerMessageId"] == received["id"]


# ----- inbound ----------------------------------------------------------------------------
def test_inbound_messages_and_filters(
    client: TestClient, onboard: Onboard, wait_until: WaitUntil
) -> None:
    a = onboard(client, PHONE)["id"]
    b = onboard(client, OTHER_PHONE)["id"]
    delivered: dict[str, str] = {}
    for sender, to, text in [
        (CONTACT, PHONE, "a1"),
        (CONTACT, PHONE, "a2"),
        (CONTACT, PHONE, "a3"),
        (OTHER_CONTACT, PHONE, "a-other"),
        (CONTACT, OTHER_PHONE, "b1"),
    ]:
        response = client.post("/sim/messages", json={"from": sender, "to": to, "text": text})
        assert response.status_code == 200, response.text
        delivered[text] = response.json()["id"]

    def stored() -> int:
        return sum(len(t["messages"]) for t in threads(client))

    wait_until("5 inbound messages stored", lambda: stored() == 5)
    assert sim_status(client)["pendingMessages"] == 0  # every message was acknowledged

    every = threads(client)
    assert {t["id"] for t in every} == {
        f"{a}__{jid(CONTACT)}",
        f"{a}__{jid(OTHER_CONTACT)}",
        f"{b}__{jid(CONTACT)}",
    }
    for thread in every:
        assert set(thread) == {"id", "accountId", "clientJid", "lastMessageAt", "messages"}
        assert thread["id"] == f"{thread['accountId']}__{thread['clientJid']}"
        assert ISO.match(thread["lastMessageAt"])

    of_a = threads(client, accountId=a)
    assert {t["clientJid"] for t in of_a} == {jid(CONTACT), jid(OTHER_CONTACT)}
    assert all(t["accountId"] == a for t in of_a)

    [thread] = threads(client, threadId=f"{a}__{jid(CONTACT)}")
    assert [m["body"] for m in thread["messages"]] == ["a1", "a2", "a3"]
    first = thread["messages"][0]
    assert first["direction"] == "inbound"
    assert first["waMessageId"] == first["id"] == delivered["a1"]
    assert first["clientJid"] == jid(CONTACT)
    assert first["accountId"] == a
    assert ISO.match(first["tsClient"])

    [of_b] = threads(client, accountId=b, threadId=f"{b}__{jid(CONTACT)}")
    assert [m["body"] for m in of_b["messages"]] == ["b1"]

    assert len(threads(client, limit=1)) == 1
    assert len(threads(client, limit=2)) == 2
    [newest] = threads(client, threadId=f"{a}__{jid(CONTACT)}", limit=2)
    assert [m["body"] for m in newest["messages"]] == ["a2", "a3"]
    assert threads(client, threadId=f"{a}__{jid('+40799000009')}") == []

    # lastMessageAt of the account follows the inbound messages.
    account = client.get(f"/api/whatsapp/accounts/{a}").json()["account"]
    assert ISO.match(account["lastMessageAt"])
