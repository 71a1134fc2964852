"""Property tests over every route of the standalone app (the API's and the sim's): any
path parameter, query string or method is answered without a 5xx, a refusal is the one
JSON error shape, a 405 names every method of its path, and valid queries succeed."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from contract.strategies import check_answer, cursors, nasty_text, spelled_phones
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Route
from starlette.testclient import TestClient

SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# A valid request to these never ends (a stream): tests/e2e/test_events.py reads them.
ENDLESS = {"/api/events/stream"}
# A path segment as a client may write it: any text (percent-encoded as UTF-8, lone
# surrogates as their invalid UTF-8), or raw bytes that are no UTF-8 at all.
segments = st.one_of(
    nasty_text(30).filter(bool).map(lambda t: quote(t.encode("utf-8", "surrogatepass"), safe="")),
    st.binary(min_size=1, max_size=12).map(lambda b: quote(b, safe="")),
)
query_values = st.one_of(
    nasty_text(),
    st.integers().map(str),
    st.sampled_from(["", "png", "raw", "none", "0", "1", "500", "501", "1000", "1001"]),
)


def answer(response: httpx.Response) -> dict[str, Any] | None:
    if response.request.method == "HEAD":  # no body to check
        assert response.status_code < 500, response.status_code
        return {"code": "method_not_allowed"} if response.status_code == 405 else None
    return check_answer(response.status_code, response.headers["content-type"], response.text)


def served(client: TestClient) -> dict[str, set[str]]:
    """Every HTTP path template of the app, with the methods it takes."""
    paths: dict[str, set[str]] = {}
    for route in client.app.routes:  # type: ignore[attr-defined]
        if isinstance(route, Route) and route.methods:
            paths.setdefault(route.path, set()).update(route.methods)
    return paths


def fill(template: str, segment: str) -> str:
    return re.sub(r"\{[^}]+\}", segment, template)


def query_string(params: dict[str, str]) -> str:
    return urlencode(
        {
            k.encode("utf-8", "surrogatepass"): v.encode("utf-8", "surrogatepass")
            for k, v in params.items()
        }
    )


def test_the_sim_routes_are_served(client: TestClient) -> None:
    paths = served(client)
    assert {"/sim/scan", "/sim/messages", "/api/whatsapp/add-account"} <= set(paths)
    assert paths["/sim/messages"] >= {"GET", "POST"}


@SETTINGS
@given(data=st.data())
def test_any_path_parameter_is_answered_without_a_5xx(
    client: TestClient, data: st.DataObject
) -> None:
    paths = {p: m for p, m in served(client).items() if "{" in p}
    template = data.draw(st.sampled_from(sorted(paths)))
    method = data.draw(st.sampled_from(sorted(paths[template] - {"HEAD"})))
    url = fill(template, data.draw(segments))
    response = client.request(method, url)
    error = answer(response)
    if error is not None and response.status_code == 404:
        assert error["code"].endswith("not_found"), error


@SETTINGS
@given(data=st.data())
def test_any_query_string_is_answered_without_a_5xx(
    client: TestClient, data: st.DataObject
) -> None:
    paths = {
        p: m for p, m in served(client).items() if "{" not in p and "GET" in m and p not in ENDLESS
    }
    path = data.draw(st.sampled_from(sorted(paths)))
    names = st.sampled_from(
        ["qr", "limit", "cursor", "accountId", "threadId", "phone", "after", "types", "x"]
    )
    params = data.draw(st.dictionaries(names | nasty_text(6), query_values, max_size=4))
    answer(client.get(f"{path}?{query_string(params)}"))


@SETTINGS
@given(data=st.data())
def test_a_method_a_path_does_not_take_is_a_405_naming_all_it_takes(
    client: TestClient, data: st.DataObject
) -> None:
    paths = served(client)
    template = data.draw(st.sampled_from(sorted(paths)))
    allowed = paths[template]
    method = data.draw(st.sampled_from([m for m in METHODS if m not in allowed]))
    response = client.request(method, fill(template, "wa-abcdefghijklmnopabcd"))
    error = answer(response)
    assert response.status_code == 405, response.text
    assert error is not None and error["code"] == "method_not_allowed"
    assert set(response.headers["allow"].split(", ")) == allowed


@SETTINGS
@given(
    qr=st.sampled_from([None, "png", "raw", "none"]),
    limit=st.none() | st.integers(min_value=1, max_value=1000),
    cursor=st.none() | cursors,
)
def test_a_valid_account_list_query_succeeds(
    client: TestClient, qr: str | None, limit: int | None, cursor: str | None
) -> None:
    if cursor is not None and limit is None:
        limit = 100  # the listing takes a cursor with a limit
    params = {k: str(v) for k, v in {"qr": qr, "limit": limit, "cursor": cursor}.items() if v}
    response = client.get("/api/whatsapp/accounts", params=params)
    assert response.status_code == 200, response.text
    assert response.json()["success"] is True


@SETTINGS
@given(limit=st.none() | st.integers(min_value=1, max_value=500), account=st.booleans())
def test_a_valid_messages_query_succeeds(
    client: TestClient, account: bool, limit: int | None, add_account: Any
) -> None:
    params: dict[str, str] = {} if limit is None else {"limit": str(limit)}
    if account:
        params["accountId"] = add_account(client, "+40712345678")["id"]
    response = client.get("/api/whatsapp/messages", params=params)
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "threads": []}


@SETTINGS
@given(phone=spelled_phones, path=st.sampled_from(["/sim/messages", "/sim/devices", "/sim/lid"]))
def test_a_valid_sim_query_succeeds(client: TestClient, phone: tuple[str, str], path: str) -> None:
    spelled, e164 = phone
    response = client.get(path, params={"phone": spelled})
    assert response.status_code == 200, response.text
    if path == "/sim/lid":
        assert response.json()["phone"] == e164


@pytest.mark.parametrize(
    "path", ["/health", "/readyz", "/metrics", "/openapi.json", "/api/status/dashboard"]
)
def test_the_plain_routes_answer(client: TestClient, path: str) -> None:
    assert client.get(path, params={"x": "\ud800".encode("utf-8", "surrogatepass")}).is_success
