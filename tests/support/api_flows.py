"""Shared by the API tests: constants, types and assertions."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

import httpx
from starlette.testclient import TestClient

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
