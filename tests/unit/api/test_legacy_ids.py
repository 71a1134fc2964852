"""Legacy ids: an account named account_{env}_{hash} in every answer and document.

WAFLEET_ACCOUNT_IDS=legacy gives new accounts the legacy server's ids; the API finds an
account by its id or by its wafleet name; messages, threads and the outbox carry the id.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from starlette.testclient import TestClient

from support.api_flows import (
    CONTACT,
    PHONE,
    ClientFactory,
    Onboard,
    WaitStatus,
    WaitUntil,
    jid,
    send,
    sim_inbox,
    threads,
)
from wafleet.core.ids import account_id_for, is_legacy_id, legacy_account_id


def test_the_legacy_id_is_the_legacy_servers_for_the_same_phone() -> None:
    # generateAccountId: account_{env}_ + the first 32 hex digits of SHA-256 of the phone.
    expected = "account_prod_" + hashlib.sha256(PHONE.encode()).hexdigest()[:32]
    assert legacy_account_id(PHONE) == expected
    assert legacy_account_id(PHONE, "dev").startswith("account_dev_")
    assert is_legacy_id(expected)
    assert not is_legacy_id(expected.upper())
    assert not is_legacy_id(account_id_for(PHONE))


def test_new_accounts_get_legacy_ids_and_are_found_by_either(
    make_client: ClientFactory, onboard: Onboard, wait_until: WaitUntil
) -> None:
    client = make_client(account_ids="legacy", legacy_env="prod")
    account = onboard(client, PHONE)
    legacy = legacy_account_id(PHONE, "prod")
    assert account["id"] == legacy
    by_name = client.get(f"/api/whatsapp/accounts/{account_id_for(PHONE)}")
    assert by_name.status_code == 200
    assert by_name.json()["account"]["id"] == legacy
    assert [a["id"] for a in client.get("/api/whatsapp/accounts").json()["accounts"]] == [legacy]

    again = client.post("/api/whatsapp/add-account", json={"phone": PHONE})
    assert again.json()["created"] is False
    assert again.json()["account"]["id"] == legacy

    sent = send(client, account_id_for(PHONE), "by the wafleet name")  # either id is taken
    assert sent.status_code == 200, sent.text
    assert [m["text"] for m in sim_inbox(client, CONTACT)] == ["by the wafleet name"]
    item = client.get(f"/api/whatsapp/outbox/{sent.json()['outboxId']}").json()["item"]
    assert item["accountId"] == legacy

    received = client.post("/sim/messages", json={"from": CONTACT, "to": PHONE, "text": "hi"})
    assert received.status_code == 200
    wait_until("the inbound message", lambda: len(threads(client)[0]["messages"]) == 2)
    [thread] = threads(client, accountId=account_id_for(PHONE))
    assert thread["id"] == f"{legacy}__{jid(CONTACT)}"  # the legacy thread document id
    assert {m["accountId"] for m in thread["messages"]} == {legacy}


def test_switching_the_id_style_keeps_existing_accounts_as_they_are(
    make_client: ClientFactory, onboard: Onboard, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    with make_client(data_dir=data, start=False) as first:
        wafleet_id = onboard(first, PHONE)["id"]
    assert wafleet_id == account_id_for(PHONE)
    with make_client(data_dir=data, account_ids="legacy", start=False) as second:
        again = second.post("/api/whatsapp/add-account", json={"phone": PHONE})
        assert again.status_code == 200, again.text
        assert again.json()["created"] is False
        assert again.json()["account"]["id"] == wafleet_id  # its threads stay where they are
        other = second.post("/api/whatsapp/add-account", json={"phone": "+40712345600"})
        assert other.json()["account"]["id"] == legacy_account_id("+40712345600")


def test_a_legacy_id_survives_a_restart_and_its_session_file_is_named_by_it(
    make_client: ClientFactory, onboard: Onboard, wait_status: WaitStatus, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    with make_client(data_dir=data, account_ids="legacy", start=False) as first:
        legacy = onboard(first, PHONE)["id"]
    assert (data / "sessions" / f"{legacy}.db").exists()
    with sqlite3.connect(data / "registry.db") as db:
        row = db.execute("SELECT accountId, resourceName FROM accounts").fetchone()
    assert row == (legacy, account_id_for(PHONE))
    with make_client(data_dir=data, start=False) as second:  # the style is off now
        shown = second.get(f"/api/whatsapp/accounts/{account_id_for(PHONE)}")
        assert shown.status_code == 200
        assert shown.json()["account"]["id"] == legacy
        wait_status(second, legacy, "connected")  # the same session file: no new scan


def test_api_keys_may_be_limited_to_legacy_ids(client: TestClient) -> None:
    legacy = legacy_account_id(PHONE)
    created = client.post(
        "/api/keys", json={"name": "legacy", "scopes": ["read"], "accountIds": [legacy]}
    )
    assert created.status_code == 201, created.text
    assert created.json()["key"]["accountIds"] == [legacy]
