"""Bad input on every endpoint: exact status codes and the one JSON error shape.

Every error is ``{"success": false, "error": {"code": ..., "message": ...}}``; the code
is asserted exactly everywhere, the message wherever it is deterministic.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

PHONE = "+40712345678"
OTHER_PHONE = "+40712345679"
CONTACT = "+40799000001"
UNKNOWN_ID = "wa-aaaaaaaaaaaaaaaaaaaa"
MAX_BODY = 16 * 1024  # conftest's Settings.max_body_bytes
SIM_MAX_BODY = 64 * 1024

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


@pytest.fixture
def account(client: TestClient, add_account: AddAccount) -> Json:
    """An account that exists (waiting for its QR scan)."""
    return add_account(client, PHONE)


# ----- authentication ---------------------------------------------------------------------
PROTECTED: list[tuple[str, str]] = [
    ("POST", "/api/whatsapp/add-account"),
    ("GET", "/api/whatsapp/accounts"),
    ("GET", "/api/whatsapp/accounts/{account_id}"),
    ("DELETE", "/api/whatsapp/accounts/{account_id}"),
    ("GET", "/api/status/dashboard"),
    ("GET", "/api/whatsapp/qr/{account_id}"),
    ("GET", "/api/whatsapp/qr-visual"),
    ("POST", "/api/whatsapp/regenerate-qr/{account_id}"),
    ("POST", "/api/whatsapp/disconnect/{account_id}"),
    ("POST", "/api/whatsapp/send-message"),
    ("GET", "/api/whatsapp/messages"),
    ("GET", "/api/whatsapp/outbox/{item_id}"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
]
OPEN: list[tuple[str, str]] = [("GET", "/health"), ("GET", "/readyz")]


def served(client: TestClient) -> set[tuple[str, str]]:
    """Every (method, path) the app serves over HTTP, HEAD aside."""
    pairs: set[tuple[str, str]] = set()
    for route in client.app.routes:
        if isinstance(route, Route) and route.methods:
            pairs |= {(m, route.path) for m in route.methods if m != "HEAD"}
    return pairs


def test_protected_list_covers_every_route_but_probes_and_sim(client: TestClient) -> None:
    non_sim = {(m, p) for m, p in served(client) if not p.startswith("/sim/")}
    assert non_sim == set(PROTECTED) | set(OPEN)


def valid_request(method: str, path: str, account_id: str) -> tuple[str, str, Json | None]:
    """A request that would succeed with the token, so only the token decides."""
    url = path.replace("{account_id}", account_id).replace("{item_id}", "ob-unknown")
    body: Json | None = None
    if path.endswith("add-account"):
        body = {"phone": OTHER_PHONE}
    elif path.endswith("send-message"):
        body = {"accountId": account_id, "to": CONTACT, "message": "hi"}
    return method, url, body


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_no_token_is_401_with_www_authenticate(
    client: TestClient, anonymous: Anonymous, account: Json, method: str, path: str
) -> None:
    method, url, body = valid_request(method, path, account["id"])
    response = anonymous(method, url, json=body)
    assert_error(response, 401, "unauthorized", MISSING_TOKEN)
    assert response.headers["www-authenticate"] == "Bearer"
    # Nothing happened behind the refusal.
    assert account_ids(client) == [account["id"]]
    assert client.get(f"/api/whatsapp/accounts/{account['id']}").json()["account"]["phase"] != (
        "Suspended"
    )


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize(
    "authorization",
    ["Bearer wrong-token", f"Bearer {'x' * 40}", "Bearer ", "Bearer api-tests-admin-token"],
)
def test_wrong_token_is_401_with_www_authenticate(
    client: TestClient, account: Json, method: str, path: str, authorization: str
) -> None:
    method, url, body = valid_request(method, path, account["id"])
    response = client.request(method, url, json=body, headers={"Authorization": authorization})
    assert_error(response, 401, "unauthorized", BAD_TOKEN)
    assert response.headers["www-authenticate"] == "Bearer"
    assert account_ids(client) == [account["id"]]


@pytest.mark.parametrize("authorization", ["Basic " + "dXNlcjpwYXNz", "Token abc", "abc"])
def test_other_auth_schemes_count_as_no_token(client: TestClient, authorization: str) -> None:
    response = client.get("/api/whatsapp/accounts", headers={"Authorization": authorization})
    assert_error(response, 401, "unauthorized", MISSING_TOKEN)
    assert response.headers["www-authenticate"] == "Bearer"


def test_bearer_scheme_is_case_insensitive(client: TestClient, admin_token: str) -> None:
    response = client.get(
        "/api/whatsapp/accounts", headers={"Authorization": f"bearer {admin_token}"}
    )
    assert response.status_code == 200


def test_query_token_only_on_pages(anonymous: Anonymous, account: Json, admin_token: str) -> None:
    page = f"/api/whatsapp/qr/{account['id']}"
    assert anonymous("GET", page, params={"token": admin_token}).status_code == 200
    visual = anonymous("GET", "/api/whatsapp/qr-visual", params={"token": admin_token})
    assert visual.status_code == 200
    assert_error(anonymous("GET", page, params={"token": "nope"}), 401, "unauthorized", BAD_TOKEN)
    assert_error(anonymous("GET", page, params={"token": ""}), 401, "unauthorized", MISSING_TOKEN)
    # Anywhere else ?token= is ignored.
    for url in ("/api/whatsapp/accounts", f"/api/whatsapp/accounts/{account['id']}"):
        response = anonymous("GET", url, params={"token": admin_token})
        assert_error(response, 401, "unauthorized", MISSING_TOKEN)


def test_header_beats_query_token_on_pages(
    client: TestClient, account: Json, admin_token: str
) -> None:
    response = client.get(
        f"/api/whatsapp/qr/{account['id']}",
        params={"token": admin_token},
        headers={"Authorization": "Bearer wrong"},
    )
    assert_error(response, 401, "unauthorized", BAD_TOKEN)


def test_probes_are_open(anonymous: Anonymous) -> None:
    health = anonymous("GET", "/health")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "healthy"
    assert body["sessions_dir_writable"] is True
    assert isinstance(body["uptime"], int)
    assert isinstance(body["version"], str)
    ready = anonymous("GET", "/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}


def test_sim_control_routes_are_open(anonymous: Anonymous) -> None:
    response = anonymous("GET", "/sim/status")
    assert response.status_code == 200
    assert response.json()["success"] is True


# ----- unknown routes and methods ---------------------------------------------------------
NOT_FOUND = "no such route; see /openapi.json"
NOT_ALLOWED = "this route does not take that method; see /openapi.json"


@pytest.mark.parametrize(
    "path", ["/", "/api/whatsapp/nope", "/api/whatsapp/accounts/a/b", "/api/v2/accounts"]
)
def test_unknown_route_is_404_json(client: TestClient, path: str) -> None:
    assert_error(client.get(path), 404, "not_found", NOT_FOUND)


def test_unknown_route_without_token_is_401_first(anonymous: Anonymous) -> None:
    assert_error(anonymous("GET", "/api/whatsapp/nope"), 401, "unauthorized", MISSING_TOKEN)


def test_unknown_sim_route_is_404_json_without_token(anonymous: Anonymous) -> None:
    assert_error(anonymous("GET", "/sim/nope"), 404, "not_found", NOT_FOUND)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/whatsapp/add-account"),
        ("PUT", "/api/whatsapp/accounts"),
        ("DELETE", "/api/whatsapp/accounts"),
        ("PATCH", f"/api/whatsapp/accounts/{UNKNOWN_ID}"),
        ("POST", f"/api/whatsapp/accounts/{UNKNOWN_ID}"),
        ("GET", "/api/whatsapp/send-message"),
        ("POST", "/api/whatsapp/messages"),
        ("GET", f"/api/whatsapp/regenerate-qr/{UNKNOWN_ID}"),
        ("DELETE", f"/api/whatsapp/disconnect/{UNKNOWN_ID}"),
        ("POST", "/api/status/dashboard"),
        ("POST", "/metrics"),
        ("POST", "/health"),
        ("GET", "/sim/scan"),
        ("DELETE", "/sim/messages"),
    ],
)
def test_wrong_method_is_405_json(client: TestClient, method: str, path: str) -> None:
    assert_error(client.request(method, path), 405, "method_not_allowed", NOT_ALLOWED)


def test_wrong_method_405_names_the_allowed_methods(client: TestClient) -> None:
    response = client.get("/api/whatsapp/add-account")
    assert response.status_code == 405
    assert response.headers.get("allow") == "POST"


# ----- request bodies (every JSON-body route) ---------------------------------------------
BODY_ROUTES: list[tuple[str, int]] = [
    ("/api/whatsapp/add-account", MAX_BODY),
    ("/api/whatsapp/send-message", MAX_BODY),
    ("/sim/scan", SIM_MAX_BODY),
    ("/sim/pair", SIM_MAX_BODY),
    ("/sim/messages", SIM_MAX_BODY),
    ("/sim/faults", SIM_MAX_BODY),
]
EMPTY = "request body is empty; send a JSON object"
NOT_JSON = "request body is not valid JSON"
NOT_OBJECT = "request body must be a JSON object"


@pytest.mark.parametrize(("path", "limit"), BODY_ROUTES)
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", EMPTY),
        (b"{", NOT_JSON),
        (b"{'phone': '+40712345678'}", NOT_JSON),
        (b"phone=%2B40712345678", NOT_JSON),
        (b"\xff\xfe\x00", NOT_JSON),
        (b"[]", NOT_OBJECT),
        (b'[{"phone": "+40712345678"}]', NOT_OBJECT),
        (b"null", NOT_OBJECT),
        (b"42", NOT_OBJECT),
        (b'"+40712345678"', NOT_OBJECT),
        (b"true", NOT_OBJECT),
    ],
    ids=[
        "empty",
        "truncated",
        "single-quotes",
        "form",
        "not-utf8",
        "array",
        "array-of-object",
        "null",
        "number",
        "string",
        "bool",
    ],
)
def test_bad_bodies(
    client: TestClient, path: str, limit: int, content: bytes, message: str
) -> None:
    response = client.post(path, content=content, headers={"Content-Type": "application/json"})
    assert_error(response, 400, "invalid_json", message)


@pytest.mark.parametrize(("path", "limit"), BODY_ROUTES)
def test_oversized_body_with_content_length(client: TestClient, path: str, limit: int) -> None:
    body = json.dumps({"phone": PHONE, "pad": "x" * limit}).encode()
    response = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.request.headers["content-length"] == str(len(body))
    assert_error(response, 413, "body_too_large", f"request body is over {limit} bytes")


@pytest.mark.parametrize(("path", "limit"), BODY_ROUTES)
def test_oversized_chunked_body(client: TestClient, path: str, limit: int) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"phone": "+40712345678", "pad": "'
        for _ in range(limit // 1024 + 1):
            yield b"x" * 1024
        yield b'"}'

    response = client.post(path, content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_error(response, 413, "body_too_large", f"request body is over {limit} bytes")


def test_body_of_exactly_the_limit_is_accepted(client: TestClient) -> None:
    body = json.dumps({"phone": PHONE}).encode()
    body += b" " * (MAX_BODY - len(body))
    assert len(body) == MAX_BODY
    response = client.post("/api/whatsapp/add-account", content=body)
    assert response.status_code == 201, response.text


def test_oversized_body_creates_nothing(client: TestClient) -> None:
    body = json.dumps({"phone": PHONE, "name": "x" * MAX_BODY})
    response = client.post("/api/whatsapp/add-account", content=body)
    assert response.status_code == 413
    assert account_ids(client) == []


# ----- add-account fields -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({}, "missing_field", "field 'phone' is required"),
        ({"name": "Ana"}, "missing_field", "field 'phone' is required"),
        ({"phone": None}, "missing_field", "field 'phone' is required"),
        ({"Phone": PHONE}, "missing_field", "field 'phone' is required"),
        ({"phone": ""}, "missing_field", "field 'phone' must not be empty"),
        ({"phone": "   "}, "missing_field", "field 'phone' must not be empty"),
        ({"phone": 40712345678}, "invalid_field", "field 'phone' must be a string"),
        ({"phone": 4.07e10}, "invalid_field", "field 'phone' must be a string"),
        ({"phone": [PHONE]}, "invalid_field", "field 'phone' must be a string"),
        ({"phone": {"e164": PHONE}}, "invalid_field", "field 'phone' must be a string"),
        ({"phone": True}, "invalid_field", "field 'phone' must be a string"),
        ({"phone": "+4" + "0" * 40}, "invalid_field", "field 'phone' is longer than 40 characters"),
        ({"phone": PHONE, "name": 7}, "invalid_field", "field 'name' must be a string"),
        ({"phone": PHONE, "name": ["a"]}, "invalid_field", "field 'name' must be a string"),
        (
            {"phone": PHONE, "name": "n" * 101},
            "invalid_field",
            "field 'name' is longer than 100 characters",
        ),
        ({"phone": PHONE, "login": 1}, "invalid_field", "field 'login' must be a string"),
        (
            {"phone": PHONE, "login": "x" * 21},
            "invalid_field",
            "field 'login' is longer than 20 characters",
        ),
    ],
)
def test_add_account_bad_fields(client: TestClient, body: Json, code: str, message: str) -> None:
    response = client.post("/api/whatsapp/add-account", json=body)
    assert_error(response, 400, code, message)
    assert account_ids(client) == []


@pytest.mark.parametrize("login", ["sms", "QR", "pairingcode", "pairing_code", " qr", ""])
def test_add_account_bad_login(client: TestClient, login: str) -> None:
    response = client.post("/api/whatsapp/add-account", json={"phone": PHONE, "login": login})
    assert_error(response, 400, "invalid_field", "field 'login' must be 'qr' or 'pairingCode'")
    assert account_ids(client) == []


INVALID_PHONES: list[tuple[str, str]] = [
    # letters
    ("abc", f"phone '***' {NO_COUNTRY}"),
    (
        "+abcdefgh",
        "phone '+abc****gh' is not a phone number: "
        "(1) The string supplied did not seem to be a phone number.",
    ),
    (
        "+4O7I2345678",
        "phone '+4O7****78' is not a phone number: "
        "(1) The string supplied did not seem to be a phone number.",
    ),
    # too short
    ("+4071", f"phone '*****' {NOT_VALID}"),
    ("+40712", f"phone '******' {NOT_VALID}"),
    ("+4071234", f"phone '+407****34' {NOT_VALID}"),
    # too long for E.164
    ("+407123456789012", f"phone '+407****12' {NOT_VALID}"),
    ("+" + "4" * 33, "phone is too long; give it in E.164 form such as '+40712345678'"),
    # no country code, and no default region set
    ("0712345678", f"phone '0712****78' {NO_COUNTRY}"),
    ("712345678", f"phone '7123****78' {NO_COUNTRY}"),
    ("40712345678", f"phone '4071****78' {NO_COUNTRY}"),
    # unknown country code
    (
        "+999123456789",
        "phone '+999****89' is not a phone number: "
        "(0) Could not interpret numbers after plus-sign.",
    ),
    # a group JID is not a phone
    ("123456789-1600000000@g.us", f"phone '1234****00' {NO_COUNTRY}"),
    (
        "+",
        "phone '*' is not a phone number: "
        "(1) The string supplied did not seem to be a phone number.",
    ),
]


@pytest.mark.parametrize(("phone", "detail"), INVALID_PHONES)
def test_add_account_invalid_phone(client: TestClient, phone: str, detail: str) -> None:
    response = client.post("/api/whatsapp/add-account", json={"phone": phone})
    assert_error(response, 400, "invalid_phone", f"field 'phone': {detail}")
    assert account_ids(client) == []


@pytest.mark.parametrize(("phone", "detail"), INVALID_PHONES)
def test_invalid_phone_error_never_echoes_the_number(
    client: TestClient, phone: str, detail: str
) -> None:
    response = client.post("/api/whatsapp/add-account", json={"phone": phone})
    if len(phone) > 6:
        assert phone not in response.text


# ----- unknown accounts -------------------------------------------------------------------
def not_found(account_id: str) -> str:
    return f"no account with id '{account_id[:64]}'"


ACCOUNT_ROUTES = [
    ("GET", "/api/whatsapp/accounts/{}"),
    ("DELETE", "/api/whatsapp/accounts/{}"),
    ("GET", "/api/whatsapp/qr/{}"),
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


def test_unknown_account_qr_page_with_query_token_is_404_json(
    anonymous: Anonymous, admin_token: str
) -> None:
    response = anonymous("GET", f"/api/whatsapp/qr/{UNKNOWN_ID}", params={"token": admin_token})
    assert_error(response, 404, "account_not_found", not_found(UNKNOWN_ID))


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
            f"field 'to': phone '*****' {NO_COUNTRY}",
        ),
        (
            {"accountId": "{id}", "to": "+4079", "message": "hi"},
            "invalid_phone",
            f"field 'to': phone '*****' {NOT_VALID}",
        ),
        (
            {"accountId": "{id}", "to": "120363000000000000@g.us", "message": "hi"},
            "invalid_phone",
            f"field 'to': phone '1203****00' {NO_COUNTRY}",
        ),
        (
            {"accountId": UNKNOWN_ID, "to": "abc", "message": "hi"},
            "invalid_phone",
            f"field 'to': phone '***' {NO_COUNTRY}",
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


def test_messages_thread_of_another_account(
    client: TestClient, account: Json, add_account: AddAccount
) -> None:
    other = add_account(client, OTHER_PHONE)
    params = {
        "accountId": account["id"],
        "threadId": f"{other['id']}__{CONTACT[1:]}@s.whatsapp.net",
    }
    response = client.get("/api/whatsapp/messages", params=params)
    assert_error(response, 400, "invalid_query", "threadId belongs to another account")


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
        assert first.post("/api/whatsapp/add-account", json={"phone": PHONE}).status_code == 201
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
        "field 'kind' must be one of: disconnect, logout, stream_replaced, temp_ban",
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
            f"field 'phone': phone '*' {NO_COUNTRY}",
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
