"""CSRF: every console form and htmx request carries the session's token, and a POST from
another site is refused whatever it carries; a refused request changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from .conftest import ADMIN_TOKEN, bearer, csrf_of, htmx, sign_in

PHONE = "+40712345678"


def account_ids(client: TestClient) -> list[str]:
    response = client.get("/api/whatsapp/accounts", params={"qr": "none"}, headers=bearer())
    return [a["id"] for a in response.json()["accounts"]]


def console_posts(client: TestClient) -> set[str]:
    """Every POST route of the console mount, as a path template."""
    [mount] = [r for r in client.app.routes if isinstance(r, Mount) and r.path == "/console"]  # type: ignore[attr-defined]
    return {
        "/console" + r.path
        for r in mount.routes
        if isinstance(r, Route) and r.methods and "POST" in r.methods
    }


def test_every_console_post_is_refused_without_the_token(
    client: TestClient, add_account: Any
) -> None:
    account = add_account(client, PHONE)
    good = sign_in(client, ADMIN_TOKEN)
    posts = console_posts(client)
    assert posts == {
        "/console/sign-in",
        "/console/sign-out",
        "/console/accounts",
        "/console/accounts/{account_id}/send",
        "/console/accounts/{account_id}/regenerate-qr",
        "/console/accounts/{account_id}/disconnect",
        "/console/accounts/{account_id}/delete",
    }
    form = {
        "phone": "+40712345679",
        "to": "+40799000001",
        "message": "hi",
        "confirm": account["id"],
    }
    for template in sorted(posts):
        path = template.replace("{account_id}", account["id"])
        for token in [None, "", "forged-token", good[:-2] + "xx"]:
            data = form if token is None else {**form, "csrf": token}
            refused = client.post(path, data=data, follow_redirects=False)
            assert refused.status_code == 403, (path, token, refused.text)
            assert "Refused" in refused.text
    assert account_ids(client) == [account["id"]]  # nothing added, nothing deleted
    assert client.get("/", follow_redirects=False).status_code == 200  # still signed in
    status = client.get(f"/api/whatsapp/accounts/{account['id']}", headers=bearer()).json()
    assert status["account"]["suspended"] is False  # not disconnected


def test_the_token_of_another_session_is_refused(make_client: Any) -> None:
    one, two = make_client(), make_client()
    token_of_two = sign_in(two, ADMIN_TOKEN)
    sign_in(one, ADMIN_TOKEN)
    refused = one.post("/console/accounts", data={"csrf": token_of_two, "phone": PHONE})
    assert refused.status_code == 403
    assert account_ids(one) == []


def test_the_right_token_goes_through(client: TestClient) -> None:
    csrf = sign_in(client, ADMIN_TOKEN)
    added = client.post(
        "/console/accounts", data={"csrf": csrf, "phone": PHONE}, follow_redirects=False
    )
    assert added.status_code == 303, added.text
    assert len(account_ids(client)) == 1
    # htmx sends it as a header instead of a field
    again = client.post(
        "/console/accounts",
        data={"phone": "+40712345679"},
        headers={"X-CSRF-Token": csrf},
        follow_redirects=False,
    )
    assert again.status_code == 303 and len(account_ids(client)) == 2


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "http://testserver.evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # a sibling subdomain is another site too
    ],
)
def test_a_post_from_another_site_is_refused_even_with_the_token(
    client: TestClient, headers: dict[str, str]
) -> None:
    csrf = sign_in(client, ADMIN_TOKEN)
    refused = client.post("/console/accounts", data={"csrf": csrf, "phone": PHONE}, headers=headers)
    assert refused.status_code == 403 and "another site" in refused.text
    assert account_ids(client) == []


def test_a_post_from_this_site_passes_the_origin_check(client: TestClient) -> None:
    csrf = sign_in(client, ADMIN_TOKEN)
    for headers in [{"Origin": "http://testserver"}, {"Sec-Fetch-Site": "same-origin"}]:
        added = client.post(
            "/console/accounts",
            data={"csrf": csrf, "phone": PHONE},
            headers=headers,
            follow_redirects=False,
        )
        assert added.status_code == 303, added.text


def test_htmx_requests_carry_the_token(client: TestClient) -> None:
    csrf = sign_in(client, ADMIN_TOKEN)
    assert client.get("/console/fleet", headers=htmx(csrf)).status_code == 200
    for token in ["", "forged", csrf[:-1]]:
        refused = client.get(
            "/console/fleet", headers={"HX-Request": "true", "X-CSRF-Token": token}
        )
        assert refused.status_code == 403
    no_header = client.get("/console/fleet", headers={"HX-Request": "true"})
    assert no_header.status_code == 403


def test_a_sign_in_without_the_form_s_cookie_is_refused(client: TestClient) -> None:
    form = client.get("/console/sign-in")
    csrf = csrf_of(form.text)
    client.cookies.clear()  # a form posted from elsewhere, or cookies switched off
    refused = client.post("/console/sign-in", data={"csrf": csrf, "secret": ADMIN_TOKEN})
    assert refused.status_code == 403 and "no console cookie" in refused.text
    assert "wafleet_console" not in client.cookies


def test_a_form_must_be_url_encoded_and_small(client: TestClient) -> None:
    csrf = sign_in(client, ADMIN_TOKEN)
    as_json = client.post(
        "/console/accounts", json={"csrf": csrf, "phone": PHONE}, headers={"X-CSRF-Token": csrf}
    )
    assert as_json.status_code == 415
    huge = client.post(
        "/console/accounts",
        data={"csrf": csrf, "phone": PHONE, "name": "x" * 20_000},  # over the 16 KiB limit
    )
    assert huge.status_code == 413
    assert account_ids(client) == []
