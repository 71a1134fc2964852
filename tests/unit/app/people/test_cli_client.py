"""The REST client of the commands for people, against httpx's mock transport: what each
refusal says, that the key is never in it, and paging through the account list."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from wafleet_app.people.client import Api
from wafleet_app.people.errors import ApiFailure
from wafleet_app.people.settings import CliSettings

KEY = "wfk_0123456789ab_secretsecretsecretsecretsecretsecretsecret1"
URL = "http://fleet.test:8080"


def api(handler: Callable[[httpx.Request], httpx.Response]) -> Api:
    settings = CliSettings(url=URL, key=KEY, key_source="WAFLEET_KEY")
    return Api(settings, transport=httpx.MockTransport(handler))


def error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(
        status, json={"success": False, "error": {"code": code, "message": message}}
    )


def failure(handler: Callable[[httpx.Request], httpx.Response]) -> ApiFailure:
    with pytest.raises(ApiFailure) as caught:
        api(handler).account("wa-x")
    assert KEY not in str(caught.value)
    return caught.value


def test_the_key_goes_as_a_bearer_token() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"success": True, "account": {"id": "wa-x"}})

    assert api(handler).account("wa-x") == {"id": "wa-x"}
    assert seen[0].headers["authorization"] == f"Bearer {KEY}"
    assert seen[0].url.path == "/api/whatsapp/accounts/wa-x"


def test_an_id_cannot_reach_another_route() -> None:
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.raw_path.decode())
        return httpx.Response(200, json={"success": True, "account": {}})

    api(handler).account("../keys?x=1")
    assert paths == ["/api/whatsapp/accounts/..%2Fkeys%3Fx%3D1"]


def test_401_says_the_key_was_refused_and_where_it_came_from() -> None:
    exc = failure(lambda _: error(401, "unauthorized", f"bad token {KEY}"))
    assert exc.status == 401 and not exc.transient
    assert "the key was refused" in exc.message and "WAFLEET_KEY" in exc.message
    assert "<key>" in exc.message  # a server that echoes it is scrubbed


def test_403_says_a_scope_lacks() -> None:
    exc = failure(lambda _: error(403, "missing_scope", "this API key lacks the scope 'manage'"))
    assert "lacks a scope" in exc.message and "'manage'" in exc.message


def test_404_says_no_such_account() -> None:
    exc = failure(lambda _: error(404, "account_not_found", "no account with id 'wa-x'"))
    assert exc.message.startswith("no such account") and "accounts list" in exc.message


def test_an_answer_that_is_not_wafleets_names_the_url() -> None:
    exc = failure(lambda _: httpx.Response(502, text="<html>bad gateway</html>"))
    assert URL in exc.message and "wafleet API" in exc.message and exc.transient


def test_an_unreachable_server_names_its_url() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    exc = failure(handler)
    assert exc.transient and f"cannot reach the server at {URL}" in exc.message


def test_the_list_follows_the_cursor_to_the_last_page() -> None:
    accounts = [{"id": f"wa-{n}"} for n in range(1, 1001)]
    queries: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        query = dict(request.url.params)
        queries.append(query)
        start = int(query.get("cursor", "0"))
        end = start + int(query["limit"])
        more = end < len(accounts)
        body = {
            "success": True,
            "accounts": accounts[start:end],
            "nextCursor": str(end) if more else None,
        }
        return httpx.Response(200, content=json.dumps(body))

    assert [a["id"] for a in api(handler).accounts(page=300)] == [a["id"] for a in accounts]
    assert [q.get("cursor") for q in queries] == [None, "300", "600", "900"]
    assert all(q["qr"] == "raw" for q in queries)
