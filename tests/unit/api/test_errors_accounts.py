"""Bad input, part 3: unknown accounts, messages queries, sends, actions and the sim."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from support.api_errors import (
    CONTACT,
    LIMIT_MESSAGE,
    MAX_BODY,
    NO_COUNTRY,
    NOT_VALID,
    OTHER_PHONE,
    PHONE,
    UNKNOWN_ID,
    AddAccount,
    Anonymous,
    Json,
    Onboard,
    WaitQr,
    account_ids,
    assert_error,
)

SPELLING = (
    "write it with the digits 0-9, a leading '+', spaces and ( ) - . / only, "
    "such as '+40712345678' (letters are not read as keypad digits)"
)


# ----- unknown accounts -------------------------------------------------------------------
def not_found(account_id: str) -> str:
    return f"no account with id '{account_id[:64]}'"


ACCOUNT_ROUTES = [
    ("GET", "/api/whatsapp/accounts/{}"),
    ("DELETE", "/api/whatsapp/accounts/{}"),
    ("GET", "/api/whatsapp/qr/{}"),
    ("POST", "/api/whatsapp/qr/{}/link"),
    ("POST", "/api/whatsapp/regenerate-qr/{}"),
    ("POST", "/api/whatsapp/disconnect/{}"),
]


@pytest.mark.parametrize(("method", "template"), ACCOUNT_ROUTES)
@pytest.mark.parametrize(
    "account_id", [UNKNOWN_ID, "account_prod_abc123", "x" * 100, "wa-AAAAAAAAAAAAAAAAAAAA"]
)
def test_unknown_account_is_404(
    client: TestClient, account: Json, method: str, template: str, account_id: str
) -> None:
    response = client.request(method, template.format(account_id))
    assert_error(response, 404, "account_not_found", not_found(account_id))
    assert account_ids(client) == [account["id"]]


def test_qr_page_of_an_account_deleted_after_its_link_was_minted_is_404_json(
    client: TestClient, anonymous: Anonymous, account: Json
) -> None:
    link = client.post(f"/api/whatsapp/qr/{account['id']}/link").json()["path"]
    assert client.delete(f"/api/whatsapp/accounts/{account['id']}").status_code == 200
    response = anonymous("GET", link)
    assert_error(response, 404, "account_not_found", not_found(account["id"]))


def test_send_message_to_unknown_account_is_404(client: TestClient) -> None:
    body = {"accountId": UNKNOWN_ID, "to": CONTACT, "message": "hi"}
    response = client.post("/api/whatsapp/send-message", json=body)
    assert_error(response, 404, "account_not_found", not_found(UNKNOWN_ID))


def test_messages_of_unknown_account_is_404(client: TestClient) -> None:
    response = client.get("/api/whatsapp/messages", params={"accountId": UNKNOWN_ID})
    assert_error(response, 404, "account_not_found", not_found(UNKNOWN_ID))


def test_unknown_outbox_item_is_404(client: TestClient) -> None:
    response = client.get("/api/whatsapp/outbox/ob-0000")
    assert_error(response, 404, "outbox_not_found", "no outbox item with that id")


def test_deleted_account_is_404_everywhere(client: TestClient, account: Json) -> None:
    account_id = account["id"]
    assert client.delete(f"/api/whatsapp/accounts/{account_id}").status_code == 200
    for method, template in ACCOUNT_ROUTES:
        response = client.request(method, template.format(account_id))
        assert_error(response, 404, "account_not_found", not_found(account_id))
    response = client.get("/api/whatsapp/messages", params={"accountId": account_id})
    assert_error(response, 404, "account_not_found", not_found(account_id))


# ----- send-message fields ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"to": CONTACT, "message": "hi"}, "missing_field", "field 'accountId' is required"),
        ({"accountId": "{id}", "message": "hi"}, "missing_field", "field 'to' is required"),
        ({"accountId": "{id}", "to": CONTACT}, "missing_field", "field 'message' is required"),
        (
            {"accountId": "{id}", "to": CONTACT, "text": "hi"},
            "missing_field",
            "field 'message' is required",
        ),
        (
            {"accountId": "", "to": CONTACT, "message": "hi"},
            "missing_field",
            "field 'accountId' must not be empty",
        ),
        (
            {"accountId": "{id}", "to": CONTACT, "message": ""},
            "missing_field",
            "field 'message' must not be empty",
        ),
        (
            {"accountId": "{id}", "to": CONTACT, "message": " \n\t"},
            "missing_field",
            "field 'message' must not be empty",
        ),
        (
            {"accountId": "{id}", "to": "", "message": "hi"},
            "missing_field",
            "field 'to' must not be empty",
        ),
        (
            {"accountId": 12, "to": CONTACT, "message": "hi"},
            "invalid_field",
            "field 'accountId' must be a string",
        ),
        (
            {"accountId": "{id}", "to": 40799000001, "message": "hi"},
            "invalid_field",
            "field 'to' must be a string",
        ),
        (
            {"accountId": "{id}", "to": CONTACT, "message": 5},
            "invalid_field",
            "field 'message' must be a string",
        ),
        (
            {"accountId": "{id}", "to": CONTACT, "message": ["hi"]},
            "invalid_field",
            "field 'message' must be a string",
        ),
        (
            {"accountId": "{id}", "to": CONTACT, "message": "hi", "idempotencyKey": 7},
            "invalid_field",
            "field 'idempotencyKey' must be a string",
        ),
        (
            {"accountId": "{id}", "to": CONTACT, "message": "hi", "idempotencyKey": "k" * 129},
            "invalid_field",
            "field 'idempotencyKey' is longer than 128 characters",
        ),
        (
            {"accountId": "a" * 65, "to": CONTACT, "message": "hi"},
            "invalid_field",
            "field 'accountId' is longer than 64 characters",
        ),
        (
            {"accountId": "{id}", "to": "+4" + "0" * 63, "message": "hi"},
            "invalid_field",
            "field 'to' is longer than 64 characters",
        ),
        (
            {"accountId": "{id}", "to": "0799000001", "message": "hi"},
            "invalid_phone",
            f"field 'to': phone '0799****01' {NO_COUNTRY}",
        ),
        (
            {"accountId": "{id}", "to": "hello", "message": "hi"},
            "invalid_phone",
            f"field 'to': phone holds a letter 'h'; {SPELLING}",
        ),
        (
            {"accountId": "{id}", "to": "+4079", "message": "hi"},
            "invalid_phone",
            f"field 'to': phone '*****' {NOT_VALID}",
        ),
        (
            {"accountId": "{id}", "to": "120363000000000000@g.us", "message": "hi"},
            "invalid_phone",
            f"field 'to': phone holds a character '@'; {SPELLING}",
        ),
        (
            {"accountId": UNKNOWN_ID, "to": "abc", "message": "hi"},
            "invalid_phone",
            f"field 'to': phone holds a letter 'a'; {SPELLING}",
        ),
    ],
)
def test_send_message_bad_fields(
    client: TestClient, account: Json, body: Json, code: str, message: str
) -> None:
    body = {k: account["id"] if v == "{id}" else v for k, v in body.items()}
    response = client.post("/api/whatsapp/send-message", json=body)
    assert_error(response, 400, code, message)
    assert client.get("/api/whatsapp/messages").json()["threads"] == []


def test_send_message_over_the_body_limit_is_413_not_a_field_error(
    client: TestClient, account: Json
) -> None:
    body = {"accountId": account["id"], "to": CONTACT, "message": "m" * MAX_BODY}
    response = client.post("/api/whatsapp/send-message", json=body)
    assert_error(response, 413, "body_too_large", f"request body is over {MAX_BODY} bytes")


# ----- messages query ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "limit", ["0", "501", "-1", "abc", "1.5", "", " 5", "+5", "1e3", "0x10", "99999999999999999999"]
)
def test_messages_bad_limit(client: TestClient, limit: str) -> None:
    response = client.get("/api/whatsapp/messages", params={"limit": limit})
    assert_error(response, 400, "invalid_query", LIMIT_MESSAGE)


@pytest.mark.parametrize("limit", ["1", "50", "500", "007"])
def test_messages_good_limit(client: TestClient, limit: str) -> None:
    response = client.get("/api/whatsapp/messages", params={"limit": limit})
    assert response.status_code == 200
    assert response.json() == {"success": True, "threads": []}


def test_messages_limit_with_a_unicode_digit_is_400(make_client: Callable[..., TestClient]) -> None:
    client = make_client(raise_server_exceptions=False)
    response = client.get("/api/whatsapp/messages", params={"limit": "²"})
    assert_error(response, 400, "invalid_query", LIMIT_MESSAGE)


def test_messages_bad_limit_is_checked_before_the_account(client: TestClient) -> None:
    response = client.get("/api/whatsapp/messages", params={"limit": "0", "accountId": UNKNOWN_ID})
    assert_error(response, 400, "invalid_query", LIMIT_MESSAGE)


@pytest.mark.parametrize("thread_id", ["x", "40799000001@s.whatsapp.net", "wa-abc_40799000001"])
def test_messages_malformed_thread_id(client: TestClient, thread_id: str) -> None:
    response = client.get("/api/whatsapp/messages", params={"threadId": thread_id})
    assert_error(
        response,
        400,
        "invalid_query",
        "query parameter 'threadId' must look like '<accountId>__<jid>'",
    )


def test_messages_thread_of_another_account_is_none_of_its_threads(
    client: TestClient, account: Json, add_account: AddAccount
) -> None:
    other = add_account(client, OTHER_PHONE)
    params = {
        "accountId": account["id"],
        "threadId": f"{other['id']}__{CONTACT[1:]}@s.whatsapp.net",
    }
    response = client.get("/api/whatsapp/messages", params=params)
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "threads": []}  # none of that account's


# ----- actions that do not apply ----------------------------------------------------------
def test_regenerate_qr_of_connected_account_is_409(client: TestClient, onboard: Onboard) -> None:
    account = onboard(client, PHONE)
    response = client.post(f"/api/whatsapp/regenerate-qr/{account['id']}")
    assert_error(response, 409, "conflict", "the account is connected; there is no QR code to show")
    after = client.get(f"/api/whatsapp/accounts/{account['id']}").json()["account"]
    assert after["status"] == "connected"


def test_add_account_with_phone_taken_under_another_id_is_409(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    data_dir = tmp_path / "shared"
    first = make_client(data_dir=data_dir, id_salt="first", start=False)
    with first:
        assert first.post("/api/whatsapp/add-account", json={"phone": PHONE}).status_code == 200
    second = make_client(
        data_dir=data_dir, id_salt="second", start=False, raise_server_exceptions=False
    )
    with second:
        response = second.post("/api/whatsapp/add-account", json={"phone": PHONE})
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "conflict"


# ----- the sim's control routes -----------------------------------------------------------
def test_sim_scan_unknown_qr(client: TestClient, account: Json, wait_qr: WaitQr) -> None:
    wait_qr(client, account["id"])
    response = client.post("/sim/scan", json={"qr": "2@nope,nope,nope,nope", "phone": PHONE})
    assert_error(
        response, 404, "qr_not_found", "no device is showing this QR code (expired or wrong)"
    )
    assert client.get("/sim/status").json()["devices"] == 0


def test_sim_scan_expired_qr(
    make_client: Callable[..., TestClient], add_account: AddAccount, wait_account: Any
) -> None:
    client = make_client(qr_first_ttl=0.2, qr_ttl=0.2)
    account = add_account(client, PHONE)
    first = wait_account(client, account["id"], lambda a: bool(a["qr"]), "a first QR")["qr"]
    wait_account(client, account["id"], lambda a: a["qr"] not in (None, first), "a new QR")
    response = client.post("/sim/scan", json={"qr": first, "phone": PHONE})
    assert_error(
        response, 404, "qr_not_found", "no device is showing this QR code (expired or wrong)"
    )


@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        ({"phone": PHONE}, 400, "missing_field", "field 'qr' is required"),
        ({"qr": "2@x"}, 400, "missing_field", "field 'phone' is required"),
        ({"qr": 5, "phone": PHONE}, 400, "invalid_field", "field 'qr' must be a string"),
        (
            {"qr": "2@x", "phone": 40712345678},
            400,
            "invalid_field",
            "field 'phone' must be a string",
        ),
        (
            {"qr": "q" * 1025, "phone": PHONE},
            400,
            "invalid_field",
            "field 'qr' is longer than 1024 characters",
        ),
        (
            {"qr": "2@x", "phone": "0712345678"},
            400,
            "invalid_phone",
            f"field 'phone': phone '0712****78' {NO_COUNTRY}",
        ),
        (
            {"qr": "2@x", "phone": "+4071"},
            400,
            "invalid_phone",
            f"field 'phone': phone '*****' {NOT_VALID}",
        ),
    ],
)
def test_sim_scan_bad_fields(
    client: TestClient, body: Json, status: int, code: str, message: str
) -> None:
    assert_error(client.post("/sim/scan", json=body), status, code, message)


def test_sim_pair_unknown_code(client: TestClient) -> None:
    response = client.post("/sim/pair", json={"code": "ABCD-EFGH", "phone": PHONE})
    assert_error(response, 404, "code_not_found", "no device is showing this pairing code")


def test_sim_pair_wrong_phone(
    client: TestClient, add_account: AddAccount, wait_account: Any
) -> None:
    account = add_account(client, PHONE, login="pairingCode")
    shown = wait_account(client, account["id"], lambda a: bool(a["pairingCode"]), "a code")
    response = client.post("/sim/pair", json={"code": shown["pairingCode"], "phone": OTHER_PHONE})
    assert_error(response, 409, "wrong_phone", "this pairing code was asked for another phone")
    assert client.get("/sim/status").json()["devices"] == 0


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"phone": PHONE}, "missing_field", "field 'code' is required"),
        ({"code": "ABCD-EFGH"}, "missing_field", "field 'phone' is required"),
        (
            {"code": "A" * 17, "phone": PHONE},
            "invalid_field",
            "field 'code' is longer than 16 characters",
        ),
        ({"code": 1234, "phone": PHONE}, "invalid_field", "field 'code' must be a string"),
    ],
)
def test_sim_pair_bad_fields(client: TestClient, body: Json, code: str, message: str) -> None:
    assert_error(client.post("/sim/pair", json=body), 400, code, message)


@pytest.mark.parametrize("kind", ["crash", "Logout", "", "disconnect ", "ban"])
def test_sim_fault_bad_kind(client: TestClient, kind: str) -> None:
    # The kind is checked before the phone's devices: no device needs to be linked.
    response = client.post("/sim/faults", json={"phone": PHONE, "kind": kind})
    if kind == "":
        assert_error(response, 400, "missing_field", "field 'kind' must not be empty")
        return
    assert_error(
        response,
        400,
        "invalid_field",
        "field 'kind' must be one of: disconnect, logout, stream_replaced, temp_ban, "
        "logout_fails, keepalive_timeout, keepalive_restored, client_outdated, unresponsive",
    )


@pytest.mark.parametrize("seconds", [0, -1, "5", [5], {"s": 1}])
def test_sim_fault_bad_seconds(client: TestClient, seconds: Any) -> None:
    response = client.post(
        "/sim/faults", json={"phone": PHONE, "kind": "temp_ban", "seconds": seconds}
    )
    assert_error(response, 400, "invalid_field", "field 'seconds' must be a positive number")


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"kind": "logout"}, "missing_field", "field 'phone' is required"),
        ({"phone": PHONE}, "missing_field", "field 'kind' is required"),
        ({"phone": PHONE, "kind": 3}, "invalid_field", "field 'kind' must be a string"),
        (
            {"phone": "x", "kind": "logout"},
            "invalid_phone",
            f"field 'phone': phone holds a letter 'x'; {SPELLING}",
        ),
    ],
)
def test_sim_fault_bad_fields(client: TestClient, body: Json, code: str, message: str) -> None:
    assert_error(client.post("/sim/faults", json=body), 400, code, message)


@pytest.mark.parametrize("kind", ["disconnect", "logout", "stream_replaced", "temp_ban"])
def test_sim_fault_phone_not_linked(client: TestClient, account: Json, kind: str) -> None:
    response = client.post("/sim/faults", json={"phone": PHONE, "kind": kind})
    assert_error(response, 404, "not_linked", "no device is linked to +407****78")


def test_sim_message_to_phone_not_linked(client: TestClient) -> None:
    response = client.post("/sim/messages", json={"from": CONTACT, "to": PHONE, "text": "hi"})
    assert_error(response, 404, "not_linked", "no device is linked to +407****78")


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"to": PHONE, "text": "hi"}, "missing_field", "field 'from' is required"),
        ({"from": CONTACT, "text": "hi"}, "missing_field", "field 'to' is required"),
        ({"from": CONTACT, "to": PHONE}, "missing_field", "field 'text' is required"),
        (
            {"from": CONTACT, "to": PHONE, "text": 1},
            "invalid_field",
            "field 'text' must be a string",
        ),
        (
            {"from": "0799000001", "to": PHONE, "text": "hi"},
            "invalid_phone",
            f"field 'from': phone '0799****01' {NO_COUNTRY}",
        ),
        (
            {"from": CONTACT, "to": "+4071", "text": "hi"},
            "invalid_phone",
            f"field 'to': phone '*****' {NOT_VALID}",
        ),
    ],
)
def test_sim_message_bad_fields(client: TestClient, body: Json, code: str, message: str) -> None:
    assert_error(client.post("/sim/messages", json=body), 400, code, message)


def test_sim_inbox_query(client: TestClient) -> None:
    assert_error(
        client.get("/sim/messages"), 400, "missing_field", "query parameter 'phone' is required"
    )
    assert_error(
        client.get("/sim/messages", params={"phone": "0799000001"}),
        400,
        "invalid_phone",
        f"query parameter 'phone': phone '0799****01' {NO_COUNTRY}",
    )
    # A raw '+' in a query string arrives as a space; the sim reads it as the '+' it was.
    raw_plus = client.get("/sim/messages?phone=+40799000001")
    assert raw_plus.status_code == 200
    assert raw_plus.json() == {"success": True, "messages": []}
