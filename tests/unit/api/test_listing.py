"""The account list at scale: QR forms, pages with an opaque cursor, gzip."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

PHONES = [f"+4071200{n:04d}" for n in range(1, 8)]


def accounts(client: TestClient, **query: Any) -> dict[str, Any]:
    response = client.get("/api/whatsapp/accounts", params=query)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_qr_forms(client: TestClient, add_account: Any, wait_qr: Any) -> None:
    account = add_account(client, PHONES[0])
    shown = wait_qr(client, account["id"])
    assert shown["qrCode"].startswith("data:image/png;base64,")  # the legacy default
    [raw] = accounts(client, qr="raw")["accounts"]
    assert raw["qr"] == shown["qr"] and raw["qrCode"] is None
    [bare] = accounts(client, qr="none")["accounts"]
    assert bare["qr"] is None and bare["qrCode"] is None
    [legacy] = accounts(client)["accounts"]
    assert legacy["qrCode"] == shown["qrCode"]
    assert "nextCursor" not in accounts(client)  # the legacy answer is unchanged


def test_pages_walk_every_account_once_in_creation_order(
    client: TestClient, add_account: Any
) -> None:
    ids = [add_account(client, phone)["id"] for phone in PHONES]
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        query: dict[str, Any] = {"limit": 3, "qr": "none"}
        if cursor is not None:
            query["cursor"] = cursor
        body = accounts(client, **query)
        assert len(body["accounts"]) <= 3
        seen.extend(a["id"] for a in body["accounts"])
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert seen == ids  # creation order, none twice, none left out
    assert accounts(client, limit=1000)["nextCursor"] is None
    # A cursor alone answers the next page of the default size (100): all after the first.
    first = accounts(client, limit=1)
    rest = accounts(client, cursor=first["nextCursor"])
    assert [a["id"] for a in rest["accounts"]] == ids[1:] and rest["nextCursor"] is None


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"qr": "jpeg"}, "query parameter 'qr' must be png, raw or none"),
        ({"limit": "0"}, "query parameter 'limit' must be 1..1000"),
        ({"limit": "1001"}, "query parameter 'limit' must be 1..1000"),
        ({"limit": "٣"}, "query parameter 'limit' must be 1..1000"),  # a non-ASCII digit
        ({"limit": "ten"}, "query parameter 'limit' must be 1..1000"),
        ({"limit": "2", "cursor": "!!not base64!!"}, "is not one this server gave"),
    ],
)
def test_bad_list_options_are_400(client: TestClient, query: dict[str, str], message: str) -> None:
    response = client.get("/api/whatsapp/accounts", params=query)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_query"
    assert message in response.json()["error"]["message"]


def test_large_answers_are_gzipped(client: TestClient, add_account: Any) -> None:
    for phone in PHONES:
        add_account(client, phone)
    response = client.get("/api/whatsapp/accounts", headers={"Accept-Encoding": "gzip"})
    assert response.headers.get("content-encoding") == "gzip"
    assert len(response.json()["accounts"]) == len(PHONES)  # decoded transparently
    raw = client.get("/api/whatsapp/accounts", headers={"Accept-Encoding": "identity"})
    assert raw.headers.get("content-encoding") is None


def test_one_account_takes_the_same_qr_forms(
    client: TestClient, add_account: Any, wait_qr: Any
) -> None:
    account = add_account(client, PHONES[0])
    shown = wait_qr(client, account["id"])

    def one(**query: Any) -> dict[str, Any]:
        response = client.get(f"/api/whatsapp/accounts/{account['id']}", params=query)
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()["account"]
        return found

    assert one()["qrCode"] == shown["qrCode"]  # png: the default, as before
    raw = one(qr="raw")
    assert raw["qr"] == shown["qr"] and raw["qrCode"] is None
    assert one(qr="none")["qr"] is None
    refused = client.get(f"/api/whatsapp/accounts/{account['id']}", params={"qr": "jpeg"})
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == "query parameter 'qr' must be png, raw or none"
    assert one()["shard"] is None  # one process: no shards
