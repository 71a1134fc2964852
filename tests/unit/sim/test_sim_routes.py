"""The sim's control routes: what each answers, and a named JSON 400 for every bad input.

The routes run in the test's own event loop (httpx over ASGI), so a test can drive a
device over a pipe and the simulated phones over HTTP at once.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.routing import Route
from unit.sim.harness import (
    CONTACT,
    CONTACT_JID,
    JID,
    OTHER_JID,
    OTHER_PHONE,
    PHONE,
    QR_HELLO,
    Harness,
    running,
)

from wafleet.sim.lids import lid_of
from wafleet.sim.routes import create_sim_app, sim_routes
from wafleet.sim.service import SimConfig, SimWhatsApp

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient


@dataclass
class Api:
    h: Harness
    http: httpx.AsyncClient

    async def post(self, path: str, body: dict[str, Any] | str) -> httpx.Response:
        content = body if isinstance(body, str) else json.dumps(body)
        return await self.http.post(path, content=content)

    async def get(self, path: str, **params: str) -> httpx.Response:
        return await self.http.get(path, params=params)


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    async with running(SimConfig(qr_first_ttl=30, qr_ttl=30)) as harness:
        transport = httpx.ASGITransport(app=create_sim_app(harness.sim), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as http:
            yield Api(harness, http)


def assert_bad(response: httpx.Response, field: str, code: str = "invalid_field") -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert f"'{field}'" in error["message"], error


def test_the_new_routes_are_served() -> None:
    served = {
        (method, route.path)
        for route in sim_routes()
        if isinstance(route, Route)
        for method in route.methods or ()
    }
    assert {("POST", "/sim/read"), ("POST", "/sim/numbers"), ("GET", "/sim/lid")} <= served
    assert ("POST", "/sim/passkeys") in served


@pytest.mark.parametrize(
    "path",
    [
        "/sim/scan",
        "/sim/pair",
        "/sim/messages",
        "/sim/faults",
        "/sim/read",
        "/sim/numbers",
        "/sim/passkeys",
    ],
)
@pytest.mark.parametrize("body", ["[" * 30000 + "]" * 30000, "", "{", "[]", '"x"'])
async def test_a_body_that_is_no_json_object_is_a_400(api: Api, path: str, body: str) -> None:
    response = await api.post(path, body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_json"


# ----- scan and pair -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        '{"qr": "2@é", "phone": "+40712000001"}',
        '{"qr": "2@\\ud800", "phone": "+40712000001"}',
        '{"qr": "2@\\u0000", "phone": "+40712000001"}',
        '{"qr": 7, "phone": "+40712000001"}',
    ],
)
async def test_scan_refuses_a_qr_that_no_device_could_show(api: Api, body: str) -> None:
    assert_bad(await api.post("/sim/scan", body), "qr")


async def test_scan_without_qr_names_it(api: Api) -> None:
    assert_bad(await api.post("/sim/scan", {"phone": PHONE}), "qr", "missing_field")


async def test_scan_links_to_the_phone_that_scanned(api: Api) -> None:
    client = await api.h.connect({**QR_HELLO, "phone": PHONE})
    qr = await client.expect("qr")
    response = await api.post("/sim/scan", {"qr": qr["code"], "phone": OTHER_PHONE})
    assert response.status_code == 200
    assert response.json()["jid"] == OTHER_JID
    assert (await client.expect("paired"))["jid"] == OTHER_JID
    assert (await client.expect("connected"))["jid"] == OTHER_JID


async def test_scan_by_a_number_not_on_whatsapp_is_a_409(api: Api) -> None:
    client = await api.h.connect(QR_HELLO)
    qr = await client.expect("qr")
    await api.post("/sim/numbers", {"phone": PHONE, "registered": False})
    response = await api.post("/sim/scan", {"qr": qr["code"], "phone": PHONE})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_on_whatsapp"


@pytest.mark.parametrize("code", ["ÄBCD-EFGH", "\ud800"])
async def test_pair_refuses_a_code_that_is_not_ascii(api: Api, code: str) -> None:
    assert_bad(await api.post("/sim/pair", {"code": code, "phone": PHONE}), "code")


async def test_pair_on_another_phone_is_a_409(api: Api) -> None:
    hello = {"type": "hello", "device": None, "login": "pairingCode", "phone": PHONE}
    client = await api.h.connect(hello)
    code = (await client.expect("pairing_code"))["code"]
    response = await api.post("/sim/pair", {"code": code, "phone": OTHER_PHONE})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "wrong_phone"
    assert api.h.sim.devices == {}


async def test_post_passkeys_makes_a_phone_ask_for_a_passkey_when_it_links(api: Api) -> None:
    on = await api.post("/sim/passkeys", {"phone": PHONE, "required": True})
    assert on.status_code == 200, on.text
    assert on.json() == {"success": True, "phone": PHONE, "required": True}
    client = await api.h.connect(QR_HELLO)
    qr = await client.expect("qr")
    response = await api.post("/sim/scan", {"qr": qr["code"], "phone": PHONE})
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "passkey_required" and "passkey" in error["message"]
    assert await client.expect("passkey_request") == {"type": "passkey_request"}
    off = await api.post("/sim/passkeys", {"phone": PHONE, "required": False})
    assert off.json()["required"] is False
    assert not api.h.sim.requires_passkey(PHONE)


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"phone": PHONE}, "required", "missing_field"),
        ({"phone": PHONE, "required": "yes"}, "required", "invalid_field"),
        ({"required": True}, "phone", "missing_field"),
        ({"phone": "12", "required": True}, "phone", "invalid_phone"),
    ],
)
async def test_post_passkeys_names_the_bad_field(
    api: Api, body: dict[str, Any], field: str, code: str
) -> None:
    assert_bad(await api.post("/sim/passkeys", body), field, code)


# ----- messages ------------------------------------------------------------------------------
async def test_post_message_with_lid_addressing(api: Api) -> None:
    client, _ = await api.h.link_by_qr()
    body = {"from": CONTACT, "to": PHONE, "text": "hi", "addressing": "lid"}
    response = await api.post("/sim/messages", body)
    assert response.status_code == 200
    frame = await client.expect("message")
    assert frame["id"] == response.json()["id"]
    assert (frame["from"], frame["fromPn"]) == (lid_of(CONTACT) + "@lid", CONTACT_JID)


@pytest.mark.parametrize("addressing", ["LID", "phone", "", 3, ["pn"]])
async def test_post_message_refuses_an_unknown_addressing(api: Api, addressing: object) -> None:
    await api.h.link_by_qr()
    body = {"from": CONTACT, "to": PHONE, "text": "hi", "addressing": addressing}
    response = await api.post("/sim/messages", body)
    assert response.status_code == 400, response.text
    assert "'addressing'" in response.json()["error"]["message"]
    assert api.h.sim.summary()["pendingMessages"] == 0


async def test_post_message_addressing_defaults_to_pn(api: Api) -> None:
    client, _ = await api.h.link_by_qr()
    body = {"from": CONTACT, "to": PHONE, "text": "hi", "addressing": None}
    assert (await api.post("/sim/messages", body)).status_code == 200
    assert (await client.expect("message"))["from"] == CONTACT_JID


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"from": "+40799000001", "to": "+40712000001", "text": "\\udc00"}', "text"),
        ('{"from": "\\ud800\\ud800\\ud800\\ud800\\ud800", "to": "+40712000001"}', "from"),
        ('{"from": "+40799000001", "to": "+4\\udfff0712000001", "text": "x"}', "to"),
    ],
)
async def test_post_message_refuses_text_that_is_not_unicode(
    api: Api, body: str, field: str
) -> None:
    response = await api.post("/sim/messages", body)
    assert response.status_code == 400, response.text
    assert f"'{field}'" in response.json()["error"]["message"]


async def test_post_message_from_a_number_not_on_whatsapp_is_a_409(api: Api) -> None:
    await api.h.link_by_qr()
    await api.post("/sim/numbers", {"phone": CONTACT, "registered": False})
    response = await api.post("/sim/messages", {"from": CONTACT, "to": PHONE, "text": "x"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_on_whatsapp"


# ----- LID lookup ----------------------------------------------------------------------------
async def test_get_lid(api: Api) -> None:
    response = await api.get("/sim/lid", phone=CONTACT)
    assert response.status_code == 200
    assert response.json() == {"success": True, "phone": CONTACT, "lid": lid_of(CONTACT) + "@lid"}
    unescaped = await api.http.get("/sim/lid?phone=+40799000001")  # "+" arrives as a space
    assert unescaped.json()["lid"] == response.json()["lid"]


async def test_get_lid_needs_a_valid_phone(api: Api) -> None:
    assert_bad(await api.get("/sim/lid"), "phone", "missing_field")
    response = await api.get("/sim/lid", phone="12")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_phone"
    assert "'phone'" in response.json()["error"]["message"]


async def test_get_lid_of_a_number_not_on_whatsapp_is_a_409(api: Api) -> None:
    await api.post("/sim/numbers", {"phone": CONTACT, "registered": False})
    assert (await api.get("/sim/lid", phone=CONTACT)).status_code == 409


# ----- read receipts -------------------------------------------------------------------------
async def test_post_read_answers_the_count_and_sends_receipts(api: Api) -> None:
    client, _ = await api.h.link_by_qr()
    sent, _ = await client.send_text(CONTACT_JID, "read me")
    response = await api.post("/sim/read", {"phone": CONTACT, "from": PHONE})
    assert response.json() == {"success": True, "read": 1}
    assert await client.expect("receipt") == {"type": "receipt", "id": sent["id"], "status": "read"}
    again = await api.post("/sim/read", {"phone": CONTACT})
    assert again.json() == {"success": True, "read": 0}
    await client.expect_quiet()


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({}, "phone", "missing_field"),
        ({"phone": 40799000001}, "phone", "invalid_field"),
        ({"phone": CONTACT, "from": "nobody"}, "from", "invalid_phone"),
        ({"phone": CONTACT, "from": 5}, "from", "invalid_field"),
    ],
)
async def test_post_read_names_the_bad_field(
    api: Api, body: dict[str, Any], field: str, code: str
) -> None:
    assert_bad(await api.post("/sim/read", body), field, code)


# ----- numbers -------------------------------------------------------------------------------
async def test_post_numbers_marks_a_number_off_and_on_whatsapp(api: Api) -> None:
    client, _ = await api.h.link_by_qr()
    off = await api.post("/sim/numbers", {"phone": CONTACT, "registered": False})
    assert off.json() == {"success": True, "phone": CONTACT, "registered": False}
    [error] = await client.send_text(CONTACT_JID, "x")
    assert (error["error"], error["reached"]) == ("not on WhatsApp", False)
    on = await api.post("/sim/numbers", {"phone": CONTACT, "registered": True})
    assert on.json()["registered"] is True
    assert (await client.send_text(CONTACT_JID, "y"))[0]["type"] == "sent"


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"phone": CONTACT}, "registered", "missing_field"),
        ({"phone": CONTACT, "registered": "false"}, "registered", "invalid_field"),
        ({"phone": CONTACT, "registered": 0}, "registered", "invalid_field"),
        ({"registered": False}, "phone", "missing_field"),
    ],
)
async def test_post_numbers_names_the_bad_field(
    api: Api, body: dict[str, Any], field: str, code: str
) -> None:
    assert_bad(await api.post("/sim/numbers", body), field, code)


async def test_a_linked_phone_cannot_be_marked_off_whatsapp(api: Api) -> None:
    await api.h.link_by_qr()
    response = await api.post("/sim/numbers", {"phone": PHONE, "registered": False})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "phone_has_devices"


# ----- faults --------------------------------------------------------------------------------
async def test_post_faults_takes_the_new_kinds(api: Api) -> None:
    client, device = await api.h.link_by_qr()
    for kind, frame in [
        ("keepalive_timeout", {"type": "keepalive_timeout", "errorCount": 1}),
        ("keepalive_restored", {"type": "keepalive_restored"}),
    ]:
        response = await api.post("/sim/faults", {"phone": PHONE, "kind": kind})
        assert response.json() == {"success": True, "devices": 1}
        assert await client.expect(frame["type"]) == frame
    await api.post("/sim/faults", {"phone": PHONE, "kind": "logout_fails", "seconds": 30})
    await client.send({"type": "logout"})
    await client.expect("logout_failed")
    await api.post("/sim/faults", {"phone": PHONE, "kind": "client_outdated", "seconds": 30})
    await client.expect("client_outdated")
    await client.expect_closed()
    refused = await api.h.resume(device)
    await refused.expect("client_outdated")


@pytest.mark.parametrize("kind", ["meteor", "", "Logout", 3])
async def test_post_faults_refuses_an_unknown_kind(api: Api, kind: object) -> None:
    await api.h.link_by_qr()
    response = await api.post("/sim/faults", {"phone": PHONE, "kind": kind})
    assert response.status_code == 400
    assert "'kind'" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "seconds", ["-1", "0", "true", '"5"', "NaN", "Infinity", "-Infinity", "1e9", "[1]"]
)
async def test_post_faults_refuses_bad_seconds(api: Api, seconds: str) -> None:
    await api.h.link_by_qr()
    body = f'{{"phone": "{PHONE}", "kind": "temp_ban", "seconds": {seconds}}}'
    assert_bad(await api.post("/sim/faults", body), "seconds")
    assert api.h.sim.summary()["live"] == 1


async def test_post_faults_refuses_seconds_for_a_kind_that_does_not_last(api: Api) -> None:
    client, _ = await api.h.link_by_qr()
    body = {"phone": PHONE, "kind": "disconnect", "seconds": 5}
    assert_bad(await api.post("/sim/faults", body), "seconds")
    await client.expect_quiet()


async def test_post_faults_on_an_unlinked_phone_is_a_404(api: Api) -> None:
    response = await api.post("/sim/faults", {"phone": PHONE, "kind": "keepalive_timeout"})
    assert response.status_code == 404


# ----- the device stream over a WebSocket ----------------------------------------------------
def test_a_session_over_the_websocket_links_and_stops() -> None:
    with TestClient(create_sim_app(SimWhatsApp())) as http:
        with http.websocket_connect("/sim/ws") as ws:
            ws.send_json(QR_HELLO)
            qr = ws.receive_json()
            assert qr["type"] == "qr"
            scanned = http.post("/sim/scan", json={"qr": qr["code"], "phone": PHONE})
            assert scanned.status_code == 200
            assert ws.receive_json()["type"] == "paired"
            assert ws.receive_json() == {"type": "connected", "jid": JID}
            ws.send_json({"type": "stop"})
            assert ws.receive_json() == {"type": "stopped"}
            assert ws.receive()["type"] == "websocket.close"
        devices = http.get("/sim/devices", params={"phone": PHONE}).json()["devices"]
        assert [d["jid"] for d in devices] == [JID]
