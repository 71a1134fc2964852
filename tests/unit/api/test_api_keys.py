"""Scoped API keys: created by the admin, stored hashed, limited to scopes and accounts,
revoked without a restart; a request outside its key's scope is a 403 naming the scope."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from support.firestore import FirestoreEmulator, firestore_emulator
from wafleet.core.ids import account_id_for

from .conftest import wait_until
from .test_errors_auth import PROTECTED

__all__ = ["firestore_emulator"]

AddAccount = Callable[..., dict[str, Any]]


def create_key(client: TestClient, **body: Any) -> tuple[dict[str, Any], str]:
    response = client.post("/api/keys", json={"name": "test key", **body})
    assert response.status_code == 201, response.text
    answer = response.json()
    return answer["key"], answer["secret"]


def as_key(client: TestClient, secret: str, method: str, url: str, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {secret}"}
    return client.request(method, url, headers=headers, **kw)


def error(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    assert body["success"] is False
    return response.status_code, body["error"]["code"], body["error"]["message"]


def test_a_read_key_reads_and_is_refused_the_rest_naming_the_scope(
    client: TestClient, account: dict[str, Any]
) -> None:
    key, secret = create_key(client, scopes=["read"])
    assert key["scopes"] == ["read"] and key["accountIds"] is None
    assert (
        as_key(client, secret, "GET", "/api/whatsapp/accounts").json()["accounts"][0]["id"]
        == (account["id"])
    )
    assert as_key(client, secret, "GET", f"/api/whatsapp/accounts/{account['id']}").is_success
    refused = as_key(client, secret, "POST", f"/api/whatsapp/disconnect/{account['id']}")
    status, code, message = error(refused)
    assert (status, code) == (403, "missing_scope") and "'manage'" in message
    send = {"accountId": account["id"], "to": "+40799999999", "message": "hi"}
    status, code, message = error(
        as_key(client, secret, "POST", "/api/whatsapp/send-message", json=send)
    )
    assert (status, code) == (403, "missing_scope") and "'send'" in message
    added = as_key(
        client, secret, "POST", "/api/whatsapp/add-account", json={"phone": "+40711111111"}
    )
    assert error(added)[:2] == (403, "missing_scope")
    assert (
        client.get(f"/api/whatsapp/accounts/{account['id']}").json()["account"]["suspended"]
        is False
    )


def test_a_key_limited_to_accounts_sees_and_acts_on_those_only(
    client: TestClient, add_account: AddAccount
) -> None:
    mine = add_account(client, "+40712000001")
    other = add_account(client, "+40712000002")
    _, secret = create_key(client, scopes=["read", "manage"], accountIds=[mine["id"]])
    listed = as_key(client, secret, "GET", "/api/whatsapp/accounts").json()["accounts"]
    assert [a["id"] for a in listed] == [mine["id"]]
    paged = as_key(client, secret, "GET", "/api/whatsapp/accounts?limit=10").json()
    assert [a["id"] for a in paged["accounts"]] == [mine["id"]] and paged["nextCursor"] is None
    board = as_key(client, secret, "GET", "/api/status/dashboard").json()
    assert [a["accountId"] for a in board["accounts"]] == [mine["id"]]
    assert board["summary"]["total"] == 1
    status, code, _ = error(as_key(client, secret, "GET", f"/api/whatsapp/accounts/{other['id']}"))
    assert (status, code) == (403, "account_not_allowed")
    # Not allowed comes before not found: a key cannot probe which accounts exist.
    assert error(as_key(client, secret, "GET", "/api/whatsapp/accounts/wa-nope"))[:2] == (
        403,
        "account_not_allowed",
    )
    assert as_key(client, secret, "POST", f"/api/whatsapp/disconnect/{mine['id']}").is_success
    new_phone = "+40712000003"
    refused = as_key(client, secret, "POST", "/api/whatsapp/add-account", json={"phone": new_phone})
    assert error(refused)[:2] == (403, "account_not_allowed")
    assert client.get(f"/api/whatsapp/accounts/{account_id_for(new_phone, '')}").status_code in (
        404,
        200,
    )
    assert all(
        a["phone"] != new_phone for a in client.get("/api/whatsapp/accounts").json()["accounts"]
    )
    assert error(as_key(client, secret, "GET", "/metrics"))[:2] == (403, "account_not_allowed")
    visual = as_key(client, secret, "POST", "/api/whatsapp/qr-visual/link")
    assert error(visual)[:2] == (403, "account_not_allowed")
    assert as_key(client, secret, "POST", f"/api/whatsapp/qr/{mine['id']}/link").is_success


def test_only_the_admin_manages_keys(client: TestClient) -> None:
    _, secret = create_key(client, scopes=["read", "send", "manage"])
    for method, url in (
        ("GET", "/api/keys"),
        ("POST", "/api/keys"),
        ("DELETE", "/api/keys/0123456789ab"),
    ):
        kwargs: dict[str, Any] = (
            {"json": {"name": "x", "scopes": ["read"]}} if method == "POST" else {}
        )
        assert error(as_key(client, secret, method, url, **kwargs))[:2] == (403, "admin_only")


def test_revoked_keys_stop_at_once_and_stay_listed(client: TestClient) -> None:
    key, secret = create_key(client, scopes=["read"])
    assert as_key(client, secret, "GET", "/api/whatsapp/accounts").is_success
    revoked = client.delete(f"/api/keys/{key['id']}")
    assert revoked.status_code == 200 and revoked.json()["key"]["revokedAt"]
    status, code, message = error(as_key(client, secret, "GET", "/api/whatsapp/accounts"))
    assert (status, code) == (401, "unauthorized") and "revoked" in message
    listed = client.get("/api/keys").json()["keys"]
    assert [(k["id"], bool(k["revokedAt"])) for k in listed] == [(key["id"], True)]
    assert secret not in client.get("/api/keys").text
    assert error(client.delete("/api/keys/ffffffffffff"))[:2] == (404, "key_not_found")


def test_a_forged_or_changed_key_is_refused(client: TestClient) -> None:
    _, secret = create_key(client, scopes=["read"])
    changed = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    assert error(as_key(client, changed, "GET", "/api/whatsapp/accounts"))[:2] == (
        401,
        "unauthorized",
    )
    unknown = "wfk_000000000000_" + secret.split("_", 2)[2]
    assert error(as_key(client, unknown, "GET", "/api/whatsapp/accounts"))[:2] == (
        401,
        "unauthorized",
    )


def test_keys_are_stored_hashed_and_survive_a_restart(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    with make_client(data_dir=data_dir, start=False) as first:
        key, secret = create_key(first, scopes=["read"])
    rows = sqlite3.connect(data_dir / "keys.db").execute("SELECT * FROM apiKeys").fetchall()
    assert rows and all(secret not in str(value) for row in rows for value in row)
    assert all(secret.split("_", 2)[2] not in str(value) for row in rows for value in row)
    with make_client(data_dir=data_dir, start=False) as second:
        assert as_key(second, secret, "GET", "/api/whatsapp/accounts").is_success
        assert second.get("/api/keys").json()["keys"][0]["id"] == key["id"]


def test_bad_key_requests_are_400_naming_the_field(client: TestClient) -> None:
    cases = [
        ({"scopes": ["read"]}, "name"),
        ({"name": "k"}, "scopes"),
        ({"name": "k", "scopes": []}, "scopes"),
        ({"name": "k", "scopes": ["admin"]}, "scopes"),
        ({"name": "k", "scopes": ["read"], "accountIds": []}, "accountIds"),
        ({"name": "k", "scopes": ["read"], "accountIds": ["Not An Id"]}, "accountIds"),
        ({"name": "k\u202e", "scopes": ["read"]}, "name"),
    ]
    for body, field in cases:
        response = client.post("/api/keys", json=body)
        status, _, message = error(response)
        assert status == 400 and f"'{field}'" in message, (body, response.text)


@pytest.mark.firestore
def test_in_the_cluster_store_every_api_pod_sees_a_key_and_its_revocation(
    make_client: Callable[..., TestClient], firestore_emulator: FirestoreEmulator
) -> None:
    """Two API processes on one Firestore: keys are in the store, not in a pod's memory."""
    firestore_emulator.clear()
    shared = {"store": "firestore", "firestore_project": firestore_emulator.project}
    one, two = make_client(**shared), make_client(**shared)
    key, secret = create_key(one, scopes=["read"])
    assert as_key(two, secret, "GET", "/api/whatsapp/accounts").is_success
    assert [k["id"] for k in two.get("/api/keys").json()["keys"]] == [key["id"]]
    assert one.delete(f"/api/keys/{key['id']}").status_code == 200
    assert as_key(one, secret, "GET", "/api/whatsapp/accounts").status_code == 401  # at once

    def refused_on_the_other() -> bool:
        return as_key(two, secret, "GET", "/api/whatsapp/accounts").status_code == 401

    wait_until("the other API pod to refuse the revoked key", refused_on_the_other, 15, 0.2)


# What each protected route needs: a scope, the admin token, or any valid credential.
NEEDS: dict[tuple[str, str], str] = {
    ("POST", "/api/whatsapp/add-account"): "manage",
    ("GET", "/api/whatsapp/accounts"): "read",
    ("GET", "/api/whatsapp/accounts/{account_id}"): "read",
    ("DELETE", "/api/whatsapp/accounts/{account_id}"): "manage",
    ("GET", "/api/status/dashboard"): "read",
    ("GET", "/api/whatsapp/qr/{account_id}"): "read",
    ("GET", "/api/whatsapp/qr-visual"): "read",
    ("POST", "/api/whatsapp/qr/{account_id}/link"): "read",
    ("POST", "/api/whatsapp/qr-visual/link"): "read",
    ("POST", "/api/whatsapp/regenerate-qr/{account_id}"): "manage",
    ("POST", "/api/whatsapp/disconnect/{account_id}"): "manage",
    ("POST", "/api/whatsapp/send-message"): "send",
    ("GET", "/api/whatsapp/messages"): "read",
    ("GET", "/api/whatsapp/outbox/{item_id}"): "read",
    ("POST", "/api/keys"): "admin",
    ("GET", "/api/keys"): "admin",
    ("DELETE", "/api/keys/{key_id}"): "admin",
    ("GET", "/api/events"): "read",
    ("GET", "/api/events/stream"): "read",
    ("POST", "/api/webhooks"): "manage",
    ("GET", "/api/webhooks"): "manage",
    ("GET", "/api/webhooks/{webhook_id}"): "manage",
    ("DELETE", "/api/webhooks/{webhook_id}"): "manage",
    ("POST", "/api/webhooks/{webhook_id}/replay"): "manage",
    ("GET", "/api/webhooks/{webhook_id}/failures"): "manage",
    ("GET", "/metrics"): "read",
    ("GET", "/openapi.json"): "any",
}
BODIES: dict[str, Any] = {
    "/api/whatsapp/add-account": {"phone": "+40712345678"},
    "/api/whatsapp/send-message": {"accountId": "ACCOUNT", "to": "+40799999999", "message": "x"},
    "/api/keys": {"name": "k", "scopes": ["read"]},
    # Only inbound messages (none comes here): no delivery leaves the machine.
    "/api/webhooks": {"url": "https://93.184.216.34/hook", "events": ["message.inbound"]},
    "/api/webhooks/{webhook_id}/replay": {"after": "evt_unknown0000"},
}
# A stream that is allowed never ends: an unknown start ends it with a 404 after the check.
QUERIES = {"/api/events/stream": "?after=evt_unknown0000"}


def test_every_protected_route_checks_its_scope(
    client: TestClient, account: dict[str, Any]
) -> None:
    assert set(NEEDS) == set(PROTECTED), "classify the new route in NEEDS"
    keys = {scope: create_key(client, scopes=[scope])[1] for scope in ("read", "send", "manage")}
    for (method, template), needed in NEEDS.items():
        url = template.format(
            account_id=account["id"],
            item_id="ob-x",
            key_id="0123456789ab",
            webhook_id="wh_0123456789abcdef",
        ) + QUERIES.get(template, "")
        body = BODIES.get(template)
        if body is not None:
            body = {k: (account["id"] if v == "ACCOUNT" else v) for k, v in body.items()}
        for scope, secret in keys.items():
            response = as_key(client, secret, method, url, json=body)
            refused = response.status_code == 403
            expected = needed not in ("any", scope)
            assert refused == expected, (method, template, scope, response.text)
            if refused:
                code = response.json()["error"]["code"]
                assert code == ("admin_only" if needed == "admin" else "missing_scope")
