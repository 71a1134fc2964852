"""Happy paths and legacy shapes, part 3: disconnect, regenerate, delete, system routes."""

from __future__ import annotations

import time
from pathlib import Path

from starlette.routing import Route
from starlette.testclient import TestClient

from support.api_flows import (
    OTHER_PHONE,
    PHONE,
    AddAccount,
    ClientFactory,
    Onboard,
    WaitQr,
    WaitStatus,
    WaitUntil,
    jid,
    sim_status,
)
from wafleet import __version__
from wafleet.core.phases import Phase


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


def test_a_phone_that_asks_for_a_passkey_shows_why_and_what_to_do(
    client: TestClient, add_account: AddAccount, wait_qr: WaitQr, wait_until: WaitUntil
) -> None:
    asks = client.post("/sim/passkeys", json={"phone": PHONE, "required": True})
    assert asks.status_code == 200, asks.text
    account = add_account(client, PHONE)
    shown = wait_qr(client, account["id"])
    scanned = client.post("/sim/scan", json={"qr": shown["qr"], "phone": PHONE})
    assert scanned.status_code == 409 and scanned.json()["error"]["code"] == "passkey_required"

    def asked() -> dict[str, object] | None:
        view = client.get(f"/api/whatsapp/accounts/{account['id']}").json()["account"]
        return view if view["phase"] == "PasskeyRequired" else None

    waiting = wait_until("the passkey phase", asked)
    assert waiting["status"] == "needs_qr"  # the legacy clients' word for "link it again"
    reason = str(waiting["reason"])
    assert "passkey" in reason and "migrate-legacy" in reason and "regenerate-qr" in reason
    assert waiting["qr"] is None and waiting["pairingCode"] is None
    dashboard = client.get("/api/status/dashboard").json()
    assert dashboard["summary"]["needs_qr"] == 1
    [card] = dashboard["accounts"]
    assert card["phase"] == "PasskeyRequired" and card["needsQR"] is True
    assert card["reason"] == reason
    page = client.get("/api/whatsapp/qr-visual").text  # the QR page says what to do
    assert "1 of 1 accounts waiting" in page and "migrate-legacy" in page
    metrics = client.get("/metrics").text
    assert 'wafleet_accounts{phase="PasskeyRequired"} 1' in metrics
    assert sim_status(client)["linking"] == 0  # no more codes

    # The phone no longer asks for one: regenerate-qr links it.
    assert client.post("/sim/passkeys", json={"phone": PHONE, "required": False}).status_code == 200
    assert client.post(f"/api/whatsapp/regenerate-qr/{account['id']}").status_code == 200
    again = wait_qr(client, account["id"])
    assert client.post("/sim/scan", json={"qr": again["qr"], "phone": PHONE}).status_code == 200
    wait_until("connected", lambda: asked() is None and sim_status(client)["live"] == 1)


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
    assert again.status_code == 200
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
