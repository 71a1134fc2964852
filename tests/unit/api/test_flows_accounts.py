"""Happy paths and legacy shapes, part 1: add-account, dashboard, QR pages."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from support.api_flows import (
    ISO,
    LEGACY_FIELDS,
    OTHER_PHONE,
    PHONE,
    PNG_URL,
    REFRESH,
    THIRD_PHONE,
    AddAccount,
    Anonymous,
    ClientFactory,
    Onboard,
    WaitAccount,
    WaitQr,
    WaitStatus,
    assert_png_data_url,
    jid,
)
from wafleet import __version__
from wafleet.core.ids import account_id_for
from wafleet.core.phases import Phase


# ----- add-account ------------------------------------------------------------------------
def test_add_account_is_idempotent(client: TestClient) -> None:
    first = client.post("/api/whatsapp/add-account", json={"phone": PHONE, "name": " Ana "})
    assert first.status_code == 200, first.text
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
    assert created.status_code == 200
    response = client.post("/api/whatsapp/add-account", json={"phone": form})
    assert response.status_code == 200, response.text
    assert response.json()["account"]["id"] == created.json()["account"]["id"]
    assert response.json()["account"]["phone"] == PHONE


def test_local_phone_with_default_region(make_client: ClientFactory) -> None:
    client = make_client(default_region="RO")
    local = client.post("/api/whatsapp/add-account", json={"phone": "0712 345 678"})
    assert local.status_code == 200, local.text
    assert local.json()["account"]["phone"] == PHONE
    e164 = client.post("/api/whatsapp/add-account", json={"phone": PHONE})
    assert e164.status_code == 200, e164.text
    assert e164.json()["account"]["id"] == local.json()["account"]["id"] == account_id_for(PHONE)
    # An international number still wins over the region.
    german = client.post("/api/whatsapp/add-account", json={"phone": "+4915123456789"})
    assert german.status_code == 200, german.text
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

    link = client.post(f"/api/whatsapp/qr/{account['id']}/link").json()["path"]
    by_link = anonymous("GET", link)
    assert by_link.status_code == 200
    assert REFRESH in by_link.text

    client.post("/sim/scan", json={"qr": shown["qr"], "phone": PHONE})
    wait_status(client, account["id"], "connected")
    done = anonymous("GET", link)
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
