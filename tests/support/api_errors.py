"""Shared by the API tests: constants, types and assertions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from starlette.testclient import TestClient

PHONE = "+40712345678"
OTHER_PHONE = "+40712345679"
CONTACT = "+40799000001"
UNKNOWN_ID = "wa-aaaaaaaaaaaaaaaaaaaa"
MAX_BODY = 16 * 1024  # conftest's Settings.max_body_bytes

MISSING_TOKEN = "missing bearer token; send 'Authorization: Bearer <admin token>'"
BAD_TOKEN = "the bearer token is not valid"
NO_COUNTRY = (
    "has no country code; write it as '+<country><number>' "
    "or set WAFLEET_DEFAULT_REGION for local numbers"
)
NOT_VALID = "is not a valid number for its country; check the country code and the number of digits"
LIMIT_MESSAGE = "query parameter 'limit' must be 1..500"

Json = dict[str, Any]
Onboard = Callable[..., Json]
AddAccount = Callable[..., Json]
WaitQr = Callable[[TestClient, str], Json]
Anonymous = Callable[..., httpx.Response]


def error(code: str, message: str | None = None) -> Json:
    return {"success": False, "error": {"code": code, "message": message}}


def assert_error(
    response: httpx.Response, status: int, code: str, message: str | None = None
) -> None:
    """The exact status and body; ``message=None`` checks only that there is one."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"success", "error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert body["success"] is False
    assert body["error"]["code"] == code, body
    if message is None:
        assert isinstance(body["error"]["message"], str)
        assert body["error"]["message"]
    else:
        assert body == error(code, message)


def account_ids(client: TestClient) -> list[str]:
    response = client.get("/api/whatsapp/accounts")
    assert response.status_code == 200
    return [a["id"] for a in response.json()["accounts"]]
