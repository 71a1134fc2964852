"""Happy paths of the legacy API over the standalone backend and the in-process sim."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from wafleet import __version__
from wafleet.core.ids import account_id_for
from wafleet.core.phases import Phase

PHONE = "+40712345678"
OTHER_PHONE = "+40712345679"
THIRD_PHONE = "+40712345670"
CONTACT = "+40799000001"
OTHER_CONTACT = "+40799000002"
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
PNG_URL = "data:image/png;base64,"
REFRESH = '<meta http-equiv="refresh" content="5">'
LEGACY_FIELDS = {
    "id",
    "name",
    "phone",
    "status",
    "qrCode",
    "pairingCode",
    "createdAt",
    "lastUpdate",
}

Json = dict[str, Any]
ClientFactory = Callable[..., TestClient]
AddAccount = Callable[..., Json]
Onboard = Callable[..., Json]
WaitUntil = Callable[..., Any]
WaitAccount = Callable[..., Json]
WaitStatus = Callable[[TestClient, str, str], Json]
WaitQr = Callable[[TestClient, str], Json]
Anonymous = Callable[..., httpx.Response]


def jid(phone: str) -> str:
    return phone.lstrip("+") + "@s.whatsapp.net"


def sim_status(client: TestClient) -> Json:
    response = client.get("/sim/status")
    assert response.status_code == 200
    status: Json = response.json()
    return status


def sim_inbox(client: TestClient, phone: str) -> list[Json]:
    response = client.get("/sim/messages", params={"phone": phone})
    assert response.status_code == 200, response.text
    inbox: list[Json] = response.json()["messages"]
    return inbox


def threads(client: TestClient, **params: Any) -> list[Json]:
    response = client.get("/api/whatsapp/messages", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"success", "threads"}
    assert body["success"] is True
    found: list[Json] = body["threads"]
    return found


def send(client: TestClient, account_id: str, text: str, **extra: Any) -> httpx.Response:
    body = {"accountId": account_id, "to": CONTACT, "message": text, **extra}
    return client.post("/api/whatsapp/send-message", json=body)


def assert_png_data_url(value: str) -> None:
    assert value.startswith(PNG_URL), value[:40]
    png = base64.b64decode(value.removeprefix(PNG_URL), validate=True)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


# ----- add-account ------------------------------------------------------------------------
def test_add_account_is_idempotent(client: TestClient) -> None:
    first = client.post("/api/whatsapp/add-account", json={"phone": PHONE, "name": " Ana "})
    assert first.status_code == 201, first.text
    assert first.json()["success"] is True
    assert first.json()["created"] is True
    account = first.json()["account"]
    assert account["id"] == account_id_for(PHONE)
    assert re.fullmatch(r"wa-[a-p]{20}", account["id"])
    assert account["name"] == "Ana"

    again = client.post("/api/whatsapp/add-account", json={"phone": PHONE, "name": "Other"})
    assert again.status_code == 200, again.text
    assert again.json()["created"] is False
    assert again.json()["account"]["id"] == account["id"]
    assert again.json()["account"]["name"] == "Ana"  # the existing account, unchanged
    assert again.json()["account"]["createdAt"] == account["createdAt"]
    assert [a["id"] for a in client.get("/api/whatsapp/accounts").json()["accounts"]] == [
        account["id"]
    ]


@pytest.mark.parametrize(
    "form", ["+40 712 345 678", "+40-712-345-678", "0040712345678", "40712345678@s.whatsapp.net"]
)
def test_other_forms_of_a_phone_are_the_same_account(client: TestClient, form: str) -> None:
    created = client.post("/api/whatsapp/add-account", json={"phone": PHONE})
    assert created.status_code == 201
    response = client.post("/api/whatsapp/add-account", json={"phone": form})
    assert response.status_code == 200, response.text
    assert response.json()["account"]["id"] == created.json()["account"]["id"]
    assert response.json()["account"]["phone"] == PHONE


def test_local_phone_with_default_region(make_client: ClientFactory) -> None:
    client = make_client(default_region="RO")
    local = client.post("/api/whatsapp/add-account", json={"phone": "0712 345 678"})
    assert local.status_code == 201, local.text
    assert local.json()["account"]["phone"] == PHONE
    e164 = client.post("/api/whatsapp/add-account", json={"phone": PHONE})
    assert e164.status_code == 200, e164.text
    assert e164.json()["account"]["id"] == local.json()["account"]["id"] == account_id_for(PHONE)
    # An international number still wins over the region.
    german = client.post("/api/whatsapp/add-account", json={"phone": "+4915123456789"})
    assert german.status_code == 201, german.text
    assert german.json()["account"]["phone"] == "+4915123456789"


def test_default_name_uses_only_the_last_digits(client: TestClient) -> None:
    response = client.post("/api/whatsapp/add-account", json={"phone": PHONE, "name": "   "})
    assert response.json()["account"]["name"] == "Account 5678"


def test_account_has_every_legacy_field(client: TestClient, wait_qr: WaitQr) -> None:
    response = client.post("/api/whatsapp/add-account", json={"phone": PHONE, "name": "Ana"})
    account = response.json()["account"]
    assert LEGACY_FIELDS | {"qr"} <= set(account)
    assert account["phone"] == PHONE
    assert account["status"] == "connecting"
    assert account["qrCode"] is None
    assert account["qr"] is None
    assert account["pairingCode"] is None
    assert ISO.match(account["createdAt"])
    assert ISO.match(account["lastUpdate"])

    shown = wait_qr(client, account["id"])
    assert shown["status"] == "qr_ready"
    assert shown["phase"] == Phase.QR_READY.value
    assert shown["qr"].startswith("2@")
    assert_png_data_url(shown["qrCode"])
    assert shown["pairingCode"] is None
    assert ISO.match(shown["qrExpiresAt"])
    assert shown["createdAt"] == account["createdAt"]
    assert shown["lastUpdate"] >= account["lastUpdate"]

    listed = client.get("/api/whatsapp/accounts")
    assert listed.status_code == 200
    body = listed.json()
    assert body["success"] is True
    assert body["cached"] is False
    [entry] = body["accounts"]
    assert LEGACY_FIELDS | {"qr"} <= set(entry)
    assert entry["id"] == account["id"]
    assert entry["status"] in ("qr_ready", "connecting")  # a QR may rotate in between


def test_pairing_code_login(
    client: TestClient, add_account: AddAccount, wait_account: WaitAccount, wait_status: WaitStatus
) -> None:
    account = add_account(client, PHONE, login="pairingCode")
    assert account["login"] == "pairingCode"
    shown = wait_account(client, account["id"], lambda a: bool(a["pairingCode"]), "a code")
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", shown["pairingCode"])
    assert shown["status"] == "qr_ready"
    assert shown["phase"] == Phase.PAIRING_CODE_READY.value
    assert shown["qr"] is None
    assert shown["qrCode"] is None
    page = client.get(f"/api/whatsapp/qr/{account['id']}")
    assert shown["pairingCode"] in page.text

    # The phone may type the code in lower case.
    paired = client.post("/sim/pair", json={"code": shown["pairingCode"].lower(), "phone": PHONE})
    assert paired.status_code == 200, paired.text
    assert paired.json()["jid"] == jid(PHONE)
    connected = wait_status(client, account["id"], "connected")
    assert connected["pairingCode"] is None
    assert connected["jid"] == jid(PHONE)
    assert ISO.match(connected["connectedAt"])


# ----- dashboard and pages ----------------------------------------------------------------
def test_dashboard_shape_and_masked_phones(
    client: TestClient,
    onboard: Onboard,
    add_account: AddAccount,
    wait_qr: WaitQr,
    wait_status: WaitStatus,
) -> None:
    connected = onboard(client, PHONE)
    waiting = add_account(client, OTHER_PHONE)
    wait_qr(client, waiting["id"])
    stopped = onboard(client, THIRD_PHONE)
    assert client.post(f"/api/whatsapp/disconnect/{stopped['id']}").status_code == 200
    wait_status(client, stopped["id"], "disconnected")

    response = client.get("/api/status/dashboard")
    assert response.status_code == 200
    for phone in (PHONE, OTHER_PHONE, THIRD_PHONE):
        assert phone not in response.text
        assert phone.lstrip("+") not in response.text
    body = response.json()
    assert set(body) == {"timestamp", "service", "storage", "accounts", "summary"}
    assert ISO.match(body["timestamp"])
    assert body["service"]["status"] == "healthy"
    assert isinstance(body["service"]["uptime"], int)
    assert body["service"]["uptime"] >= 0
    assert body["service"]["version"] == __version__
    settings = client.app.state.settings
    assert body["storage"] == {
        "path": str(settings.sessions_dir),
        "writable": True,
        "totalAccounts": 3,
    }
    assert body["summary"] == {
        "connected": 1,
        "connecting": 0,
        "disconnected": 1,
        "needs_qr": 1,
        "total": 3,
    }

    by_id = {a["accountId"]: a for a in body["accounts"]}
    assert set(by_id) == {connected["id"], waiting["id"], stopped["id"]}
    for entry in by_id.values():
        assert {
            "accountId",
            "phone",
            "status",
            "lastEventAt",
            "lastMessageAt",
            "lastSeen",
            "reconnectCount",
            "reconnectAttempts",
            "needsQR",
        } <= set(entry)
        assert re.fullmatch(r"\+407\*{4}\d\d", entry["phone"])
    assert by_id[connected["id"]]["phone"] == "+407****78"
    assert by_id[connected["id"]]["status"] == "connected"
    assert by_id[connected["id"]]["needsQR"] is False
    assert "qrCode" not in by_id[connected["id"]]
    assert by_id[waiting["id"]]["status"] == "qr_ready"
    assert by_id[waiting["id"]]["needsQR"] is True
    assert_png_data_url(by_id[waiting["id"]]["qrCode"])
    assert by_id[stopped["id"]]["status"] == "disconnected"
    assert by_id[stopped["id"]]["needsQR"] is False


def test_qr_page_refreshes_until_connected(
    client: TestClient,
    anonymous: Anonymous,
    admin_token: str,
    add_account: AddAccount,
    wait_qr: WaitQr,
    wait_status: WaitStatus,
) -> None:
    account = add_account(client, PHONE, name="Ana")
    shown = wait_qr(client, account["id"])
    page = client.get(f"/api/whatsapp/qr/{account['id']}")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert REFRESH in page.text
    assert f'src="{PNG_URL}' in page.text
    assert "+407****78" in page.text
    assert PHONE not in page.text
    assert "<title>QR - Ana</title>" in page.text

    by_query = anonymous("GET", f"/api/whatsapp/qr/{account['id']}", params={"token": admin_token})
    assert by_query.status_code == 200
    assert REFRESH in by_query.text

    client.post("/sim/scan", json={"qr": shown["qr"], "phone": PHONE})
    wait_status(client, account["id"], "connected")
    done = anonymous("GET", f"/api/whatsapp/qr/{account['id']}", params={"token": admin_token})
    assert done.status_code == 200
    assert REFRESH not in done.text
    assert PNG_URL not in done.text
    assert 'data-phase="Connected"' in done.text


def test_qr_visual_page(
    client: TestClient,
    onboard: Onboard,
    add_account: AddAccount,
    wait_qr: WaitQr,
    wait_status: WaitStatus,
) -> None:
    empty = client.get("/api/whatsapp/qr-visual")
    assert empty.status_code == 200
    assert "No account is waiting for a QR scan." in empty.text
    assert REFRESH not in empty.text

    onboard(client, PHONE)
    waiting = add_account(client, OTHER_PHONE, name="<b>Ana & Co</b>")
    shown = wait_qr(client, waiting["id"])
    page = client.get("/api/whatsapp/qr-visual")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "QR codes (1 of 2 accounts waiting)" in page.text
    assert page.text.count(f'src="{PNG_URL}') == 1
    assert REFRESH in page.text
    assert "&lt;b&gt;Ana &amp; Co&lt;/b&gt;" in page.text
    assert "<b>Ana" not in page.text
    assert OTHER_PHONE not in page.text
    assert "+407****79" in page.text

    client.post("/sim/scan", json={"qr": shown["qr"], "phone": OTHER_PHONE})
    wait_status(client, waiting["id"], "connected")
    after = client.get("/api/whatsapp/qr-visual")
    assert "No account is waiting for a QR scan." in after.text
    assert REFRESH not in after.text


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
    assert response.status_code == 202, response.text
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


# ----- actions ----------------------------------------------------------------------------
def test_disconnect_then_regenerate_qr_resumes_without_scan(
    client: TestClient, onboard: Onboard, wait_status: WaitStatus, wait_until: WaitUntil
) -> None:
    account = onboard(client, PHONE)
    before = time.time() * 1000
    response = client.post(f"/api/whatsapp/disconnect/{account['id']}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"success", "accountId", "tsDisconnect", "reason"}
    assert body["success"] is True
    assert body["accountId"] == account["id"]
    assert body["reason"] == "user_disconnect"
    assert isinstance(body["tsDisconnect"], int)
    assert before - 1000 <= body["tsDisconnect"] <= time.time() * 1000 + 1000

    stopped = wait_status(client, account["id"], "disconnected")
    assert stopped["phase"] == Phase.SUSPENDED.value
    assert stopped["qr"] is None
    wait_until("the device stream closed", lambda: sim_status(client)["live"] == 0)
    assert sim_status(client)["devices"] == 1  # the link is kept
    # A second disconnect changes nothing.
    assert client.post(f"/api/whatsapp/disconnect/{account['id']}").status_code == 200

    resumed = client.post(f"/api/whatsapp/regenerate-qr/{account['id']}")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["success"] is True
    assert resumed.json()["accountId"] == account["id"]
    again = wait_status(client, account["id"], "connected")
    assert again["jid"] == jid(PHONE)
    assert sim_status(client)["devices"] == 1
    assert sim_status(client)["live"] == 1


def test_logout_from_phone_then_regenerate_qr_links_again(
    client: TestClient,
    onboard: Onboard,
    wait_status: WaitStatus,
    wait_qr: WaitQr,
) -> None:
    account = onboard(client, PHONE)
    fault = client.post("/sim/faults", json={"phone": PHONE, "kind": "logout"})
    assert fault.status_code == 200, fault.text
    assert fault.json() == {"success": True, "devices": 1}
    out = wait_status(client, account["id"], "logged_out")
    assert out["lastDisconnect"]["reason"] == "logged_out_from_phone"
    dashboard = client.get("/api/status/dashboard").json()
    assert dashboard["summary"]["needs_qr"] == 1
    assert dashboard["accounts"][0]["needsQR"] is True

    assert client.post(f"/api/whatsapp/regenerate-qr/{account['id']}").status_code == 200
    shown = wait_qr(client, account["id"])
    assert client.post("/sim/scan", json={"qr": shown["qr"], "phone": PHONE}).status_code == 200
    wait_status(client, account["id"], "connected")


def test_unscanned_qr_codes_stop_then_regenerate_qr(
    make_client: ClientFactory,
    add_account: AddAccount,
    wait_status: WaitStatus,
    wait_qr: WaitQr,
) -> None:
    client = make_client(qr_first_ttl=0.5, qr_ttl=0.1, qr_max_cycles=2)
    account = add_account(client, PHONE)
    stopped = wait_status(client, account["id"], "needs_qr")
    assert stopped["phase"] == Phase.QR_TIMEOUT.value
    assert stopped["qr"] is None
    assert stopped["qrCode"] is None
    assert client.get("/api/status/dashboard").json()["summary"]["needs_qr"] == 1

    assert client.post(f"/api/whatsapp/regenerate-qr/{account['id']}").status_code == 200
    shown = wait_qr(client, account["id"])
    assert client.post("/sim/scan", json={"qr": shown["qr"], "phone": PHONE}).status_code == 200
    wait_status(client, account["id"], "connected")


def test_delete_removes_the_account_and_logs_the_device_out(
    client: TestClient, onboard: Onboard, wait_until: WaitUntil
) -> None:
    account = onboard(client, PHONE)
    assert sim_status(client)["devices"] == 1
    response = client.delete(f"/api/whatsapp/accounts/{account['id']}")
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "accountId": account["id"], "deleted": True}
    assert client.get(f"/api/whatsapp/accounts/{account['id']}").status_code == 404
    assert client.get("/api/whatsapp/accounts").json()["accounts"] == []
    wait_until("the device logged out", lambda: sim_status(client)["devices"] == 0)
    assert sim_status(client)["live"] == 0
    session = client.app.state.settings.sessions_dir / f"{account['id']}.db"
    assert not session.exists()

    # The phone can be added again, as a new account.
    again = client.post("/api/whatsapp/add-account", json={"phone": PHONE})
    assert again.status_code == 201
    assert again.json()["account"]["id"] == account["id"]


def test_delete_of_disconnected_account_logs_the_device_out(
    client: TestClient, onboard: Onboard, wait_status: WaitStatus, wait_until: WaitUntil
) -> None:
    account = onboard(client, PHONE)
    client.post(f"/api/whatsapp/disconnect/{account['id']}")
    wait_status(client, account["id"], "disconnected")
    assert client.delete(f"/api/whatsapp/accounts/{account['id']}").status_code == 200
    wait_until("the device logged out", lambda: sim_status(client)["devices"] == 0)


def test_restart_resumes_without_a_new_scan(
    make_client: ClientFactory,
    tmp_path: Path,
    onboard: Onboard,
    wait_status: WaitStatus,
) -> None:
    data_dir = tmp_path / "kept"
    first = make_client(data_dir=data_dir, start=False)
    with first:
        account = onboard(first, PHONE)
    second = make_client(data_dir=data_dir, start=False)
    with second:
        back = wait_status(second, account["id"], "connected")
        assert back["createdAt"] == account["createdAt"]
        assert sim_status(second)["devices"] == 1


# ----- system routes ----------------------------------------------------------------------
def test_openapi_lists_every_route_including_the_sim(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert document["info"]["version"] == __version__
    paths = document["paths"]
    served: set[tuple[str, str]] = set()
    for route in client.app.routes:
        if not isinstance(route, Route):
            continue
        for method in route.methods - {"HEAD"}:
            served.add((method.lower(), route.path))
            operation = paths.get(route.path, {}).get(method.lower())
            assert operation is not None, f"{method} {route.path} is not in /openapi.json"
            assert operation["responses"], f"{method} {route.path} has no responses"
    documented = {(m, p) for p, ops in paths.items() for m in ops}
    assert documented == served  # nothing documented that is not served


def test_metrics(client: TestClient, onboard: Onboard, add_account: AddAccount) -> None:
    onboard(client, PHONE)
    add_account(client, OTHER_PHONE, login="pairingCode")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = response.text.splitlines()
    assert "# TYPE wafleet_accounts gauge" in lines
    assert "# TYPE wafleet_account_reconnects_total counter" in lines
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in lines
        if line and not line.startswith("#")
    }
    for phase in Phase:
        assert f'wafleet_accounts{{phase="{phase.value}"}}' in samples
    assert samples['wafleet_accounts{phase="Connected"}'] == 1
    assert sum(v for k, v in samples.items() if k.startswith("wafleet_accounts{")) == 2
    assert samples["wafleet_account_reconnects_total"] == 0
    assert response.text.endswith("\n")


def test_readyz_is_503_until_the_backend_started(make_client: ClientFactory) -> None:
    client = make_client(start=False)
    # Without the lifespan the backend never starts: the probe says so.
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "starting"}
    with client:
        assert client.get("/readyz").json() == {"status": "ready"}
