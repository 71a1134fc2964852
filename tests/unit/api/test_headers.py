"""Security headers: HTML pages forbid caching, framing, sniffing, loading and referrers;
JSON answers are not cached or sniffed either."""

from __future__ import annotations

import base64
import hashlib
import re

import httpx
import pytest
from starlette.testclient import TestClient

from support.api_errors import UNKNOWN_ID, Anonymous, Json
from wafleet_api.headers import with_security_headers

PAGE_HEADERS = {
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
}


def assert_page_headers(response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("text/html")
    for name, value in PAGE_HEADERS.items():
        assert response.headers[name] == value, name
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in response.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["img-src"] == "data:"
    assert policy["base-uri"] == "'none'"
    assert policy["form-action"] == "'none'"
    assert "script-src" not in policy  # default-src 'none': no script at all
    # The one inline <style> is allowed by its hash, and nothing else.
    styles = re.findall(r"<style>(.*?)</style>", response.text, re.DOTALL)
    assert len(styles) == 1
    digest = base64.b64encode(hashlib.sha256(styles[0].encode()).digest()).decode()
    assert policy["style-src"] == f"'sha256-{digest}'"
    assert " style=" not in response.text  # inline style attributes would be blocked


def assert_json_headers(response: httpx.Response) -> None:
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in response.headers


def test_qr_pages_send_the_page_headers(
    client: TestClient, anonymous: Anonymous, account: Json
) -> None:
    page = f"/api/whatsapp/qr/{account['id']}"
    assert_page_headers(client.get(page))
    assert_page_headers(client.get("/api/whatsapp/qr-visual"))
    link = client.post(f"{page}/link").json()["path"]
    assert_page_headers(anonymous("GET", link))


def test_refused_link_pages_send_the_page_headers(
    client: TestClient, anonymous: Anonymous, account: Json
) -> None:
    link = client.post("/api/whatsapp/qr-visual/link").json()["path"]
    forged = anonymous("GET", link[:-2] + ("AA" if not link.endswith("AA") else "BB"))
    assert forged.status_code == 401
    assert_page_headers(forged)
    client.app.state.links.clock = lambda: 4_000_000_000.0  # type: ignore[attr-defined]
    expired = anonymous("GET", link)
    assert expired.status_code == 401
    assert_page_headers(expired)


@pytest.mark.parametrize(
    "url",
    [
        "/api/whatsapp/accounts",
        "/api/status/dashboard",
        f"/api/whatsapp/accounts/{UNKNOWN_ID}",  # an error answer
        "/api/whatsapp/nope",
        "/health",
    ],
)
def test_json_answers_are_not_cached_or_sniffed(
    client: TestClient, account: Json, url: str
) -> None:
    assert_json_headers(client.get(url))


def test_refusals_carry_the_headers_too(anonymous: Anonymous) -> None:
    response = anonymous("GET", "/api/whatsapp/accounts")
    assert response.status_code == 401
    assert_json_headers(response)


def test_compressed_answers_keep_the_headers(client: TestClient, add_account: object) -> None:
    for n in range(6):
        add_account(client, f"+4071234560{n}")  # type: ignore[operator]
    response = client.get("/api/whatsapp/accounts", headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert_json_headers(response)


def test_a_header_the_route_set_is_kept() -> None:
    message = {
        "type": "http.response.start",
        "status": 200,
        "headers": [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"Cache-Control", b"max-age=5"),
        ],
    }
    headers = with_security_headers(message)["headers"]
    assert [v for n, v in headers if n.lower() == b"cache-control"] == [b"max-age=5"]
    assert (b"referrer-policy", b"no-referrer") in headers
    plain = with_security_headers({"type": "http.response.start", "status": 204, "headers": []})
    assert dict(plain["headers"]) == {
        b"cache-control": b"no-store",
        b"x-content-type-options": b"nosniff",
    }
