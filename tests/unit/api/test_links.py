"""Signed, expiring links to the QR pages: minting, opening, refusing, and the key."""

from __future__ import annotations

import os
import re
import stat
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from support.api_errors import MAX_BODY, UNKNOWN_ID, Anonymous, Json, assert_error
from support.api_flows import OTHER_PHONE, PHONE, REFRESH, ClientFactory, WaitQr
from wafleet.core.envconfig import ConfigError
from wafleet.core.settings import Settings
from wafleet.core.signing_key import KEY_FILE, load_or_create_link_key
from wafleet_api.links import LinkCheck, LinkSigner

VISUAL = "/api/whatsapp/qr-visual"
MISSING_TOKEN = "missing bearer token; send 'Authorization: Bearer <admin token>'"
LINK_PATH = re.compile(
    r"^/api/whatsapp/qr(-visual|/wa-[a-p]{20})\?exp=([0-9]{10})&sig=[A-Za-z0-9_-]{43}$"
)


def page(account_id: str) -> str:
    return f"/api/whatsapp/qr/{account_id}"


def mint(client: TestClient, path: str, **body: object) -> Json:
    response = client.post(f"{path}/link", json=body or None)
    assert response.status_code == 200, response.text
    answer: Json = response.json()
    return answer


def move_clock(client: TestClient, seconds: float) -> None:
    """Move the app's link clock ``seconds`` ahead of the real one."""
    client.app.state.links.clock = lambda: time.time() + seconds  # type: ignore[attr-defined]


def assert_link_page(response: object, status: int, heading: str, mint_route: str) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith("text/html")  # type: ignore[attr-defined]
    text: str = response.text  # type: ignore[attr-defined]
    assert f"<h1>{heading}</h1>" in text
    assert f"<code>{mint_route}</code>" in text
    assert REFRESH not in text  # the refused page does not reload itself forever


# ----- minting ----------------------------------------------------------------------------
def test_minted_account_link_opens_its_page_without_the_token(
    client: TestClient, anonymous: Anonymous, account: Json, wait_qr: WaitQr
) -> None:
    wait_qr(client, account["id"])
    before = int(time.time())
    answer = mint(client, page(account["id"]))
    assert set(answer) == {"success", "accountId", "url", "path", "expiresAt", "ttlSeconds"}
    assert answer["success"] is True
    assert answer["accountId"] == account["id"]
    assert answer["ttlSeconds"] == 900
    match = LINK_PATH.match(answer["path"])
    assert match, answer["path"]
    assert before + 900 <= int(match.group(2)) <= int(time.time()) + 900
    assert answer["url"] == "http://testserver" + answer["path"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z", answer["expiresAt"])

    opened = anonymous("GET", answer["path"])
    assert opened.status_code == 200
    assert opened.headers["content-type"].startswith("text/html")
    assert "data:image/png;base64," in opened.text
    assert REFRESH in opened.text  # reloads the same URL, link included


def test_the_link_keeps_working_across_refreshes_until_it_expires(
    client: TestClient, anonymous: Anonymous, account: Json
) -> None:
    link = mint(client, page(account["id"]))["path"]
    for seconds in (0, 5, 10, 450, 895):  # the page's own reloads, every 5 s
        move_clock(client, seconds)
        assert anonymous("GET", link).status_code == 200, seconds
    move_clock(client, 901)
    expired = anonymous("GET", link)
    mint_route = f"POST {page(account['id'])}/link"
    assert_link_page(expired, 401, "This link has expired", mint_route)
    assert expired.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert "Ask whoever gave you the link for a new one." in expired.text


def test_lifetime_may_be_asked_for_within_the_maximum(
    client: TestClient, anonymous: Anonymous, account: Json
) -> None:
    answer = mint(client, page(account["id"]), ttlSeconds=3600)
    assert answer["ttlSeconds"] == 3600
    move_clock(client, 3590)
    assert anonymous("GET", answer["path"]).status_code == 200
    move_clock(client, 3601)
    assert anonymous("GET", answer["path"]).status_code == 401


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"ttlSeconds": 59}, "field 'ttlSeconds' must be 60..86400 (WAFLEET_LINK_MAX_TTL)"),
        ({"ttlSeconds": 86401}, "field 'ttlSeconds' must be 60..86400 (WAFLEET_LINK_MAX_TTL)"),
        ({"ttlSeconds": -1}, "field 'ttlSeconds' must be 60..86400 (WAFLEET_LINK_MAX_TTL)"),
        ({"ttlSeconds": 900.5}, "field 'ttlSeconds' must be a whole number of seconds"),
        ({"ttlSeconds": True}, "field 'ttlSeconds' must be a whole number of seconds"),
        ({"ttlSeconds": "900"}, "field 'ttlSeconds' must be a whole number of seconds"),
    ],
)
def test_bad_lifetime_is_400_naming_the_field(
    client: TestClient, account: Json, body: Json, message: str
) -> None:
    for path in (page(account["id"]), VISUAL):
        response = client.post(f"{path}/link", json=body)
        assert_error(response, 400, "invalid_field", message)


def test_body_is_optional_but_must_be_a_json_object(client: TestClient, account: Json) -> None:
    assert client.post(f"{VISUAL}/link").json()["ttlSeconds"] == 900
    assert client.post(f"{VISUAL}/link", json={}).json()["ttlSeconds"] == 900
    assert client.post(f"{VISUAL}/link", json={"ttlSeconds": None}).json()["ttlSeconds"] == 900
    assert client.post(f"{VISUAL}/link", json={"ttlSeconds": 600.0}).json()["ttlSeconds"] == 600
    bad = client.post(f"{VISUAL}/link", content=b"[900]")
    assert_error(bad, 400, "invalid_json", "request body must be a JSON object")


def test_an_oversized_body_is_413(client: TestClient) -> None:
    body = b'{"ttlSeconds": 900, "pad": "' + b"x" * MAX_BODY + b'"}'
    response = client.post(f"{VISUAL}/link", content=body)
    assert_error(response, 413, "body_too_large", f"request body is over {MAX_BODY} bytes")


def test_the_default_and_longest_lifetimes_are_settings(make_client: ClientFactory) -> None:
    client = make_client(link_ttl=120, link_max_ttl=600)
    assert client.post(f"{VISUAL}/link").json()["ttlSeconds"] == 120
    response = client.post(f"{VISUAL}/link", json={"ttlSeconds": 601})
    assert_error(
        response, 400, "invalid_field", "field 'ttlSeconds' must be 60..600 (WAFLEET_LINK_MAX_TTL)"
    )


def test_minting_for_an_unknown_account_is_404(client: TestClient) -> None:
    response = client.post(f"{page(UNKNOWN_ID)}/link")
    assert_error(response, 404, "account_not_found", f"no account with id '{UNKNOWN_ID}'")


def test_minting_needs_the_bearer_token(client: TestClient, anonymous: Anonymous) -> None:
    link = mint(client, VISUAL)["path"]
    for url in (f"{VISUAL}/link", link.replace(VISUAL, f"{VISUAL}/link")):
        assert_error(anonymous("POST", url), 401, "unauthorized", MISSING_TOKEN)


# ----- one link, one page -----------------------------------------------------------------
def test_an_account_link_opens_no_other_page(
    client: TestClient, anonymous: Anonymous, add_account: object, account: Json
) -> None:
    other = add_account(client, OTHER_PHONE)  # type: ignore[operator]
    link = mint(client, page(account["id"]))["path"]
    query = urlsplit(link).query
    for path in (page(other["id"]), VISUAL):
        refused = anonymous("GET", f"{path}?{query}")
        mint_route = "POST /api/whatsapp/qr-visual/link" if path == VISUAL else f"POST {path}/link"
        assert_link_page(refused, 401, "This link is not valid", mint_route)
    # Nor any JSON route, nor another method on its own page.
    for method, url in (
        ("GET", f"/api/whatsapp/accounts/{account['id']}?{query}"),
        ("GET", f"/api/whatsapp/accounts?{query}"),
        ("POST", f"/api/whatsapp/regenerate-qr/{account['id']}?{query}"),
        ("POST", link),
    ):
        assert_error(anonymous(method, url), 401, "unauthorized", MISSING_TOKEN)


def test_a_qr_visual_link_opens_qr_visual_only(
    client: TestClient, anonymous: Anonymous, account: Json
) -> None:
    answer = mint(client, VISUAL)
    assert "accountId" not in answer
    assert LINK_PATH.match(answer["path"])
    opened = anonymous("GET", answer["path"])
    assert opened.status_code == 200
    assert "QR codes (" in opened.text
    query = urlsplit(answer["path"]).query
    refused = anonymous("GET", f"{page(account['id'])}?{query}")
    assert_link_page(refused, 401, "This link is not valid", f"POST {page(account['id'])}/link")


def tampered(link: str) -> list[str]:
    path, _, query = link.partition("?")
    exp, sig = parse_qs(query)["exp"][0], parse_qs(query)["sig"][0]
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    return [
        f"{path}?exp={int(exp) + 1}&sig={sig}",  # a longer life
        f"{path}?exp={int(exp) - 1}&sig={sig}",
        f"{path}?exp={exp}&sig={flipped}",
        f"{path}?exp={exp}&sig={sig[:-1]}",
        f"{path}?exp={exp}",
        f"{path}?sig={sig}",
        f"{path}?exp={exp}&sig={sig}&sig={sig}",
        f"{path}?exp=0{exp}&sig={sig}",
        f"{path}?exp={exp}.0&sig={sig}",
        f"{path}?exp={exp}%0A&sig={sig}",
        f"{path}?exp=%20{exp}&sig={sig}",
        f"{path}?exp=&sig=",
    ]


def test_an_altered_link_is_refused(
    client: TestClient, anonymous: Anonymous, account: Json
) -> None:
    link = mint(client, page(account["id"]))["path"]
    for url in tampered(link):
        refused = anonymous("GET", url)
        assert_link_page(refused, 401, "This link is not valid", f"POST {page(account['id'])}/link")
    assert anonymous("GET", link).status_code == 200


def test_an_expired_link_that_was_altered_is_not_genuine(
    client: TestClient, anonymous: Anonymous, account: Json
) -> None:
    link = mint(client, page(account["id"]))["path"]
    move_clock(client, 2000)
    assert anonymous("GET", link).status_code == 401
    assert anonymous("GET", tampered(link)[0]).status_code == 401  # a forged renewal


def test_the_header_token_wins_over_a_link(
    client: TestClient, anonymous: Anonymous, account: Json
) -> None:
    link = mint(client, page(account["id"]))["path"]
    wrong = client.get(link, headers={"Authorization": "Bearer not-the-token"})
    assert_error(wrong, 401, "unauthorized", "the bearer token is not valid")
    move_clock(client, 2000)
    assert client.get(link).status_code == 200  # the admin needs no link


# ----- the key ----------------------------------------------------------------------------
def test_standalone_keeps_a_generated_key_private_across_restarts(
    make_client: ClientFactory, tmp_path: Path, anonymous: Anonymous
) -> None:
    data_dir = tmp_path / "kept"
    first = make_client(data_dir=data_dir)
    link = mint(first, VISUAL)["path"]
    key_file = data_dir / KEY_FILE
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    key = key_file.read_text().strip()
    assert len(key) >= 32
    settings = first.app.state.settings  # type: ignore[attr-defined]
    for secret in (key, settings.admin_token):
        assert secret not in link
    second = make_client(data_dir=data_dir)
    second.headers.pop("Authorization")
    assert second.get(link).status_code == 200
    assert key_file.read_text().strip() == key


def test_replicas_with_the_same_configured_key_open_each_others_links(
    make_client: ClientFactory,
) -> None:
    key = "k" * 40
    one, two = make_client(link_key=key), make_client(link_key=key)
    link = mint(one, VISUAL)["path"]
    two.headers.pop("Authorization")
    assert two.get(link).status_code == 200
    stranger = make_client(link_key="s" * 40)
    stranger.headers.pop("Authorization")
    assert stranger.get(link).status_code == 401


def test_a_lowered_maximum_refuses_longer_links_minted_before(
    make_client: ClientFactory,
) -> None:
    key = "k" * 40
    before = make_client(link_key=key)
    link = mint(before, VISUAL, ttlSeconds=7200)["path"]
    after = make_client(link_key=key, link_ttl=300, link_max_ttl=600)
    after.headers.pop("Authorization")
    assert after.get(link).status_code == 401


def test_link_key_setting_is_validated() -> None:
    assert Settings.from_env({"WAFLEET_LINK_KEY": "x" * 32}).link_key == "x" * 32
    with pytest.raises(ConfigError, match="WAFLEET_LINK_KEY is shorter than 32 characters"):
        Settings.from_env({"WAFLEET_LINK_KEY": "short"})
    with pytest.raises(ConfigError, match="WAFLEET_LINK_TTL=7200 is above WAFLEET_LINK_MAX_TTL"):
        Settings.from_env({"WAFLEET_LINK_TTL": "7200", "WAFLEET_LINK_MAX_TTL": "3600"})
    with pytest.raises(ConfigError, match=r"WAFLEET_LINK_TTL=10 is out of range; use 60\.\."):
        Settings.from_env({"WAFLEET_LINK_TTL": "10"})
    settings = Settings.from_env({"WAFLEET_LINK_KEY": "x" * 40, "WAFLEET_ADMIN_TOKEN": "t" * 20})
    assert "x" * 40 not in repr(settings) and "t" * 20 not in repr(settings)


def test_key_file_is_generated_once_and_replaced_if_too_short(tmp_path: Path) -> None:
    first = load_or_create_link_key(None, tmp_path)
    assert first.source == "generated"
    again = load_or_create_link_key(None, tmp_path)
    assert (again.value, again.source) == (first.value, str(tmp_path / KEY_FILE))
    assert first.value.decode() not in repr(first)
    (tmp_path / KEY_FILE).write_text("short\n")
    replaced = load_or_create_link_key(None, tmp_path)
    assert replaced.source == "generated" and len(replaced.value) >= 32
    assert load_or_create_link_key("c" * 32, tmp_path).source == "environment"
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE]  # no temporary file left


def test_signer_checks_in_isolation() -> None:
    now = 1_700_000_000.0
    signer = LinkSigner(b"k" * 32, max_ttl=600, clock=lambda: now)
    url, expires = signer.mint("/api/whatsapp/qr/wa-abc", 300)
    query = urlsplit(url).query.encode()
    assert expires == 1_700_000_300
    assert signer.check("/api/whatsapp/qr/wa-abc", query) is LinkCheck.VALID
    assert signer.check("/api/whatsapp/qr/wa-abd", query) is LinkCheck.INVALID
    assert signer.check("/api/whatsapp/qr/wa-abc", b"") is LinkCheck.ABSENT
    assert signer.check("/api/whatsapp/accounts", query) is LinkCheck.INVALID
    later = LinkSigner(b"k" * 32, max_ttl=600, clock=lambda: now + 300)
    assert later.check("/api/whatsapp/qr/wa-abc", query) is LinkCheck.EXPIRED
    with pytest.raises(ValueError, match="not a page"):
        signer.mint("/api/whatsapp/accounts", 300)
    with pytest.raises(ValueError, match=r"outside 1\.\.600"):
        signer.mint("/api/whatsapp/qr-visual", 601)
    with pytest.raises(ValueError, match="at least 32 bytes"):
        LinkSigner(b"short", max_ttl=600)


def test_links_of_the_page_path_forms_stay_apart(client: TestClient, account: Json) -> None:
    # "/qr/<id>/link" and "/qr-visual/link" are mint routes, never pages a link opens.
    link = mint(client, page(account["id"]))["path"]
    assert (
        client.app.state.links.check(  # type: ignore[attr-defined]
            f"{page(account['id'])}/link", urlsplit(link).query.encode()
        )
        is LinkCheck.INVALID
    )
    assert PHONE not in link
