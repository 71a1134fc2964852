"""Signing in and out: the session cookie's flags, bad keys refused, revoked keys and a
changed admin token ending sessions at once, and no credential in any URL."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from wafleet.core.settings import Settings
from wafleet_api.app import create_app

from .conftest import (
    ADMIN_TOKEN,
    LINK_KEY,
    MemoryBackend,
    bearer,
    create_key,
    csrf_of,
    htmx,
    scale_account,
    sign_in,
)

SESSION_TTL = 43200  # Settings.console_session_ttl's default


def session_cookie(response: Any) -> str:
    [cookie] = [c for c in response.headers.get_list("set-cookie") if "wafleet_console=" in c]
    return str(cookie)


def attributes(cookie: str) -> dict[str, str]:
    parts = [p.strip() for p in cookie.split(";")]
    pairs = [(*p.split("=", 1), "") for p in parts[1:]]
    return {pair[0].lower(): pair[1] for pair in pairs}


def test_a_bad_key_is_refused_and_the_admin_token_signs_in(client: TestClient) -> None:
    form = client.get("/console/sign-in")
    assert form.status_code == 200
    csrf = csrf_of(form.text)
    for secret in ["not the token", "wfk_0123456789ab_" + "A" * 43, ADMIN_TOKEN + "x"]:
        refused = client.post(
            "/console/sign-in", data={"csrf": csrf, "secret": secret}, follow_redirects=False
        )
        assert refused.status_code == 401
        assert "not the admin token or a valid API key" in refused.text or "not valid" in (
            refused.text
        )
        assert secret not in refused.text  # never echoed back
    assert client.get("/", follow_redirects=False).status_code == 303  # still signed out

    answer = client.post(
        "/console/sign-in",
        data={"csrf": csrf, "secret": ADMIN_TOKEN, "next": "/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    flags = attributes(session_cookie(answer))
    assert "httponly" in flags and flags["samesite"].lower() == "strict"
    assert flags["path"] == "/" and flags["max-age"] == str(SESSION_TTL)
    assert "secure" not in flags  # plain http here; see the https test
    page = client.get("/")
    assert page.status_code == 200 and 'id="fleet-table"' in page.text
    assert "admin" in page.text


def test_sign_out_clears_the_cookie(client: TestClient) -> None:
    csrf = sign_in(client, ADMIN_TOKEN)
    out = client.post("/console/sign-out", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"].startswith("/console/sign-in")
    flags = attributes(session_cookie(out))
    assert flags["max-age"] == "0"
    assert client.get("/", follow_redirects=False).status_code == 303


def test_the_cookie_is_secure_over_https(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", admin_token=ADMIN_TOKEN)
    app = create_app(
        settings,
        MemoryBackend([]),
        admin_token=ADMIN_TOKEN,
        link_key=LINK_KEY,  # type: ignore[arg-type]
    )
    with TestClient(app, base_url="https://console.example") as client:
        form = client.get("/console/sign-in")
        assert "secure" in attributes(session_cookie(form))
        answer = client.post(
            "/console/sign-in",
            data={"csrf": csrf_of(form.text), "secret": ADMIN_TOKEN},
            headers={"Origin": "https://console.example"},
            follow_redirects=False,
        )
        assert answer.status_code == 303
        flags = attributes(session_cookie(answer))
        assert "secure" in flags and "httponly" in flags and flags["samesite"].lower() == "strict"


def test_a_scoped_key_signs_in_and_its_revocation_ends_the_session_at_once(
    client: TestClient,
) -> None:
    key, secret = create_key(client, scopes=["read"])
    sign_in(client, secret)
    page = client.get("/")
    assert page.status_code == 200 and "console key" in page.text
    assert client.delete(f"/api/keys/{key['id']}", headers=bearer()).status_code == 200
    ended = client.get("/", follow_redirects=False)
    assert ended.status_code == 303
    assert ended.headers["location"] == "/console/sign-in?next=%2F&why=ended"
    assert attributes(session_cookie(ended))["max-age"] == "0"
    notice = client.get(ended.headers["location"])
    assert "the key was revoked" in notice.text


def test_a_page_left_open_goes_to_sign_in_when_its_key_is_revoked(client: TestClient) -> None:
    key, secret = create_key(client, scopes=["read"])
    csrf = sign_in(client, secret)
    assert client.get("/console/fleet", headers=htmx(csrf)).status_code == 200
    assert client.delete(f"/api/keys/{key['id']}", headers=bearer()).status_code == 200
    poll = client.get(
        "/console/fleet",
        headers={**htmx(csrf), "HX-Current-URL": "http://testserver/console/accounts/wa-x"},
    )
    assert poll.status_code == 401
    assert poll.headers["hx-redirect"] == (
        "/console/sign-in?next=%2Fconsole%2Faccounts%2Fwa-x&why=ended"
    )


def test_a_stale_cookie_on_the_sign_in_page_is_replaced_not_redirected(
    client: TestClient,
) -> None:
    key, secret = create_key(client, scopes=["read"])
    sign_in(client, secret)
    assert client.delete(f"/api/keys/{key['id']}", headers=bearer()).status_code == 200
    form = client.get("/console/sign-in?why=ended", follow_redirects=False)
    assert form.status_code == 200 and "the key was revoked" in form.text
    assert attributes(session_cookie(form))["max-age"] == "3600"  # a fresh signed-out one
    assert (
        client.get("/", follow_redirects=False).headers["location"] == "/console/sign-in?next=%2F"
    )


def test_a_key_without_read_cannot_sign_in(client: TestClient) -> None:
    _, secret = create_key(client, scopes=["send"])
    form = client.get("/console/sign-in")
    refused = client.post("/console/sign-in", data={"csrf": csrf_of(form.text), "secret": secret})
    assert refused.status_code == 401 and "lacks the &#39;read&#39; scope" in refused.text


def _app(tmp_path: Path, name: str, token: str) -> Any:
    settings = Settings(data_dir=tmp_path / name, admin_token=token)
    backend = MemoryBackend([scale_account(1)])
    return create_app(settings, backend, admin_token=token, link_key=LINK_KEY)  # type: ignore[arg-type]


def test_a_session_holds_on_every_replica_until_the_admin_token_changes(
    tmp_path: Path,
) -> None:
    one = _app(tmp_path, "one", ADMIN_TOKEN)
    two = _app(tmp_path, "two", ADMIN_TOKEN)  # another replica: the same link key and token
    rotated = _app(tmp_path, "rotated", "a-new-admin-token-0123456789")
    with TestClient(one) as first, TestClient(two) as second, TestClient(rotated) as third:
        sign_in(first, ADMIN_TOKEN)
        cookies = dict(first.cookies)
        second.cookies.update(cookies)
        assert second.get("/", follow_redirects=False).status_code == 200
        third.cookies.update(cookies)
        ended = third.get("/", follow_redirects=False)
        assert ended.status_code == 303 and "why=ended" in ended.headers["location"]


@pytest.mark.parametrize("param", ["token", "key", "secret", "apiKey"])
def test_a_credential_in_a_url_is_refused_and_not_echoed(client: TestClient, param: str) -> None:
    for path in ["/", "/console/sign-in"]:
        response = client.get(path, params={param: ADMIN_TOKEN}, follow_redirects=False)
        assert response.status_code == 400
        assert "never taken from a URL" in response.text
        assert ADMIN_TOKEN not in response.text


def test_no_url_or_redirect_carries_a_credential(client: TestClient, add_account: Any) -> None:
    account = add_account(client, "+40712345678")
    _, secret = create_key(client, scopes=["read", "send", "manage"])
    locations: list[str] = []
    pages: list[str] = []
    for credential in [ADMIN_TOKEN, secret]:
        client.cookies.clear()
        first = client.get(f"/console/accounts/{account['id']}", follow_redirects=False)
        locations.append(first.headers["location"])
        form = client.get(first.headers["location"])
        pages.append(form.text)
        answer = client.post(
            "/console/sign-in",
            data={"csrf": csrf_of(form.text), "secret": credential, "next": "/x"},
            follow_redirects=False,
        )
        locations.append(answer.headers["location"])
        for path in ["/", f"/console/accounts/{account['id']}", "/console/accounts/new"]:
            pages.append(client.get(path).text)
    assert locations[0] == f"/console/sign-in?next=%2Fconsole%2Faccounts%2F{account['id']}"
    urls = locations + [
        u for page in pages for u in re.findall(r'(?:href|action|hx-get|src)="([^"]*)"', page)
    ]
    assert urls
    for credential in [ADMIN_TOKEN, secret]:
        assert not [u for u in urls if credential in u]
        assert not [p for p in pages if credential in p]  # nor anywhere in a page


def test_the_console_cookie_never_authenticates_the_api(client: TestClient) -> None:
    sign_in(client, ADMIN_TOKEN)
    saved = client.headers.pop("Authorization")
    try:
        refused = client.get("/api/whatsapp/accounts")
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthorized"
        assert (
            client.post("/api/whatsapp/add-account", json={"phone": "+40712345678"}).status_code
            == 401
        )
    finally:
        client.headers["Authorization"] = saved


def test_a_bearer_token_does_not_open_the_console(client: TestClient) -> None:
    assert "Authorization" in client.headers  # the API tests' admin client
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith(
        "/console/sign-in"
    )
