"""Bad input, part 1: tokens, unknown routes and methods (the one JSON error shape)."""

from __future__ import annotations

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from support.api_errors import (
    BAD_TOKEN,
    CONTACT,
    MISSING_TOKEN,
    OTHER_PHONE,
    UNKNOWN_ID,
    Anonymous,
    Json,
    account_ids,
    assert_error,
)

# ----- authentication ---------------------------------------------------------------------
PROTECTED: list[tuple[str, str]] = [
    ("POST", "/api/whatsapp/add-account"),
    ("GET", "/api/whatsapp/accounts"),
    ("GET", "/api/whatsapp/accounts/{account_id}"),
    ("DELETE", "/api/whatsapp/accounts/{account_id}"),
    ("GET", "/api/status/dashboard"),
    ("GET", "/api/whatsapp/qr/{account_id}"),
    ("GET", "/api/whatsapp/qr-visual"),
    ("POST", "/api/whatsapp/qr/{account_id}/link"),
    ("POST", "/api/whatsapp/qr-visual/link"),
    ("POST", "/api/whatsapp/regenerate-qr/{account_id}"),
    ("POST", "/api/whatsapp/disconnect/{account_id}"),
    ("POST", "/api/whatsapp/send-message"),
    ("GET", "/api/whatsapp/messages"),
    ("GET", "/api/whatsapp/outbox/{item_id}"),
    ("POST", "/api/keys"),
    ("GET", "/api/keys"),
    ("DELETE", "/api/keys/{key_id}"),
    ("GET", "/api/events"),
    ("GET", "/api/events/stream"),
    ("POST", "/api/webhooks"),
    ("GET", "/api/webhooks"),
    ("GET", "/api/webhooks/{webhook_id}"),
    ("DELETE", "/api/webhooks/{webhook_id}"),
    ("POST", "/api/webhooks/{webhook_id}/replay"),
    ("GET", "/api/webhooks/{webhook_id}/failures"),
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
    url = url.replace("{webhook_id}", "wh_0123456789abcdef")
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


def token_in_url(mint: str) -> str:
    return (
        "the admin token is not accepted in a URL, where access logs and browser history "
        "keep it; send it as 'Authorization: Bearer <admin token>'. To open a QR page in a "
        f"browser, mint a signed link with {mint} and open the 'url' it answers"
    )


def test_query_token_is_refused_everywhere_naming_the_mint_route(
    anonymous: Anonymous, account: Json, admin_token: str
) -> None:
    page = f"/api/whatsapp/qr/{account['id']}"
    for token in (admin_token, "nope", ""):
        response = anonymous("GET", page, params={"token": token})
        assert_error(response, 401, "token_in_url", token_in_url(f"POST {page}/link"))
        assert response.headers["www-authenticate"] == "Bearer"
    visual = anonymous("GET", "/api/whatsapp/qr-visual", params={"token": admin_token})
    assert_error(visual, 401, "token_in_url", token_in_url("POST /api/whatsapp/qr-visual/link"))
    elsewhere = "POST /api/whatsapp/qr/{account_id}/link (or POST /api/whatsapp/qr-visual/link)"
    for url in ("/api/whatsapp/accounts", f"/api/whatsapp/accounts/{account['id']}"):
        response = anonymous("GET", url, params={"token": admin_token})
        assert_error(response, 401, "token_in_url", token_in_url(elsewhere))


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
    "path", ["/nope", "/api/whatsapp/nope", "/api/whatsapp/accounts/a/b", "/api/v2/accounts"]
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
