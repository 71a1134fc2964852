"""The console's pages over the standalone app and the sim: onboarding up to Connected
(QR code and pairing code), an account's conversations and history, send, a new QR code,
disconnect, delete (confirmed), and the pages' security headers."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.testclient import TestClient

from support.api_flows import ISO, sim_inbox
from wafleet.core.phases import Phase

from .conftest import ADMIN_TOKEN, bearer, csrf_of, htmx, sign_in

PHONE = "+40712345678"
CONTACT = "+40799000001"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def add(client: TestClient, csrf: str, **form: str) -> str:
    """Add through the form; return the link page's path it sends to."""
    answer = client.post("/console/accounts", data={"csrf": csrf, **form}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    location: str = answer.headers["location"]
    assert location.endswith("/link")
    return location


def live(client: TestClient, csrf: str, link: str) -> str:
    response = client.get(link + "/live", headers=htmx(csrf))
    assert response.status_code == 200, response.text
    return response.text


def wait_text(wait_until: Any, fetch: Callable[[], str], needle: str) -> str:
    """What ``fetch`` answers, once it holds ``needle``."""

    def probe() -> str | None:
        text = fetch()
        return text if needle in text else None

    return str(wait_until(repr(needle), probe))


def wait_live(client: TestClient, csrf: str, link: str, wait_until: Any, needle: str) -> str:
    return wait_text(wait_until, lambda: live(client, csrf, link), needle)


def phase_of(client: TestClient, account_id: str) -> str:
    response = client.get(f"/api/whatsapp/accounts/{account_id}", headers=bearer())
    return str(response.json()["account"]["phase"])


def test_onboarding_with_a_qr_code_up_to_connected(client: TestClient, wait_until: Any) -> None:
    csrf = sign_in(client, ADMIN_TOKEN)
    form = client.get("/console/accounts/new")
    assert form.status_code == 200 and 'name="phone"' in form.text
    link = add(client, csrf, phone=PHONE, name="Shop", login="qr")
    account_id = link.split("/")[3]
    shown = wait_live(client, csrf, link, wait_until, "data-qr=")
    qr = re.search(r'data-qr="([^"]+)"', shown)
    assert qr and 'src="data:image/png;base64,' in shown and "data-expires=" in shown
    page = client.get(link)
    assert page.status_code == 200 and "Link Shop" in page.text
    scanned = client.post("/sim/scan", json={"qr": qr.group(1), "phone": PHONE})
    assert scanned.status_code == 200, scanned.text
    done = wait_live(client, csrf, link, wait_until, "Connected")
    assert f'href="/console/accounts/{account_id}"' in done
    assert "hx-trigger" not in done  # connected: the page stops polling
    assert phase_of(client, account_id) == Phase.CONNECTED
    again = add(client, csrf, phone="+40 712 345 678", name="Other")  # the same phone
    assert again == link


def test_the_link_page_follows_the_qr_code_as_it_rotates(make_client: Any, wait_until: Any) -> None:
    client = make_client(qr_first_ttl=0.5, qr_ttl=0.5, qr_max_cycles=20)
    csrf = sign_in(client, ADMIN_TOKEN)
    link = add(client, csrf, phone=PHONE)
    account_id = link.split("/")[3]
    first = re.findall(r'data-qr="([^"]+)"', wait_live(client, csrf, link, wait_until, "data-qr="))

    def rotated() -> str | None:
        text = live(client, csrf, link)
        codes = re.findall(r'data-qr="([^"]+)"', text)
        return text if codes and codes != first else None

    text = wait_until("a new QR code on the link page", rotated)
    expires = re.search(r'data-expires="([^"]+)"', text)  # the countdown of the new code
    assert expires and ISO.match(expires.group(1))
    assert phase_of(client, account_id) in (Phase.QR_READY, Phase.CONNECTING)


def test_onboarding_with_a_pairing_code(client: TestClient, wait_until: Any) -> None:
    csrf = sign_in(client, ADMIN_TOKEN)
    link = add(client, csrf, phone=PHONE, login="pairingCode")
    shown = wait_live(client, csrf, link, wait_until, "data-code=")
    code = re.search(r'data-code="([^"]+)"', shown)
    assert code and "Link with phone number instead" in shown
    paired = client.post("/sim/pair", json={"code": code.group(1), "phone": PHONE})
    assert paired.status_code == 200, paired.text
    wait_live(client, csrf, link, wait_until, "Open the account")


def test_the_add_form_says_what_to_fix_and_keeps_what_was_typed(client: TestClient) -> None:
    csrf = sign_in(client, ADMIN_TOKEN)
    for phone, fix in [("12", "Phone"), ("", "Phone")]:
        refused = client.post(
            "/console/accounts", data={"csrf": csrf, "phone": phone, "name": "Kept <b>"}
        )
        assert refused.status_code == 400 and fix in refused.text
        assert 'value="Kept &lt;b&gt;"' in refused.text  # kept, and escaped
    bad_login = client.post(
        "/console/accounts", data={"csrf": csrf, "phone": PHONE, "login": "sms"}
    )
    assert bad_login.status_code == 400 and "Login must be" in bad_login.text


def test_a_qr_timeout_offers_a_new_code_and_the_history_shows_it(
    make_client: Any, wait_until: Any
) -> None:
    client = make_client(qr_first_ttl=0.3, qr_ttl=0.1, qr_max_cycles=1)
    csrf = sign_in(client, ADMIN_TOKEN)
    link = add(client, csrf, phone=PHONE)
    account_id = link.split("/")[3]
    stuck = wait_live(client, csrf, link, wait_until, "QRTimeout")
    assert "Show a new QR code" in stuck and "regenerate-qr" in stuck
    history_part = f"/console/accounts/{account_id}/part/history"
    history = wait_text(
        wait_until, lambda: client.get(history_part, headers=htmx(csrf)).text, "incident"
    )
    assert "qr_timeout" in history and "QRReady" in history
    qr_page = client.get(f"/api/whatsapp/qr/{account_id}")  # the API's own QR page
    assert f'href="/console/accounts/{account_id}/link"' in qr_page.text
    answer = client.post(
        f"/console/accounts/{account_id}/regenerate-qr",
        data={"csrf": csrf},
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"] == link
    wait_live(client, csrf, link, wait_until, "data-qr=")


def test_send_disconnect_resume_and_delete(
    client: TestClient, onboard: Any, wait_until: Any
) -> None:
    account = onboard(client, PHONE, name="Shop")
    path = f"/console/accounts/{account['id']}"
    csrf = sign_in(client, ADMIN_TOKEN)
    page = client.get(path)
    assert page.status_code == 200 and "No conversations yet" in page.text
    key = re.search(r'name="idempotencyKey" value="([^"]+)"', page.text)
    assert key
    form = {"csrf": csrf, "to": CONTACT, "message": "Hello <there>", "idempotencyKey": key.group(1)}
    sent = client.post(path + "/send", data=form, follow_redirects=False)
    assert sent.status_code == 303
    query = parse_qs(urlsplit(sent.headers["location"]).query)
    assert query == {"done": ["sent"], "thread": ["40799000001@s.whatsapp.net"]}
    wait_until("the message at the contact", lambda: sim_inbox(client, CONTACT))
    assert sim_inbox(client, CONTACT)[0]["text"] == "Hello <there>"
    shown = wait_text(
        wait_until, lambda: client.get(sent.headers["location"]).text, "Hello &lt;there&gt;"
    )
    assert "Message queued" in shown and "+40799000001" in shown
    twice = client.post(path + "/send", data=form, follow_redirects=False)
    assert "done=duplicate" in twice.headers["location"]
    assert len(sim_inbox(client, CONTACT)) == 1  # one send for one form

    bad = client.post(path + "/send", data={**form, "to": "not a number", "idempotencyKey": ""})
    assert bad.status_code == 400 and "To:" in bad.text

    connected = client.post(path + "/regenerate-qr", data={"csrf": csrf}, follow_redirects=False)
    assert connected.status_code == 409 and "connected" in connected.text

    off = client.post(path + "/disconnect", data={"csrf": csrf}, follow_redirects=False)
    assert off.status_code == 303 and off.headers["location"] == path + "?done=disconnect"
    wait_until("suspended", lambda: phase_of(client, account["id"]) == Phase.SUSPENDED)
    assert "Resume" in client.get(path).text
    polled = client.get(path + "/part/status", headers=htmx(csrf)).text
    assert "Suspended" in polled  # the status, and the header's actions out of band:
    assert '<div id="account-actions" class="actions" hx-swap-oob="true">' in polled
    assert "Resume" in polled and ">Disconnect<" not in polled
    client.post(path + "/regenerate-qr", data={"csrf": csrf})
    wait_until("connected again", lambda: phase_of(client, account["id"]) == Phase.CONNECTED)

    confirm = client.get(path + "/delete")
    assert confirm.status_code == 200 and "Delete Shop?" in confirm.text
    assert f'name="confirm" value="{account["id"]}"' in confirm.text
    unconfirmed = client.post(path + "/delete", data={"csrf": csrf}, follow_redirects=False)
    assert unconfirmed.headers["location"] == path + "/delete"
    assert phase_of(client, account["id"]) == Phase.CONNECTED  # still there
    deleted = client.post(
        path + "/delete", data={"csrf": csrf, "confirm": account["id"]}, follow_redirects=False
    )
    assert deleted.status_code == 303 and deleted.headers["location"] == "/?done=deleted"
    assert (
        client.get(f"/api/whatsapp/accounts/{account['id']}", headers=bearer()).status_code == 404
    )
    assert "The account was deleted" in client.get(deleted.headers["location"]).text
    gone = client.get(path + "/part/status", headers=htmx(csrf))
    assert gone.status_code == 200 and "no account" in gone.text and "hx-trigger" not in gone.text


def test_pages_and_fragments_carry_the_console_policy_and_no_inline_code(
    client: TestClient, add_account: Any
) -> None:
    account = add_account(client, PHONE)
    csrf = sign_in(client, ADMIN_TOKEN)
    pages = [
        client.get("/console/sign-in"),
        client.get("/"),
        client.get("/console/accounts/new"),
        client.get(f"/console/accounts/{account['id']}"),
        client.get(f"/console/accounts/{account['id']}/link"),
        client.get(f"/console/accounts/{account['id']}/delete"),
        client.get("/console/fleet", headers=htmx(csrf)),
        client.get(f"/console/accounts/{account['id']}/part/messages", headers=htmx(csrf)),
        client.get("/console/nope"),
    ]
    for response in pages:
        assert response.headers["content-security-policy"] == CSP, response.url
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["referrer-policy"] == "same-origin"
        text = response.text
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), response.url  # no inline script
        assert "<style" not in text and " style=" not in text, response.url
        assert not re.search(r"\son[a-z]+=", text), response.url  # no event handler attributes
    assert pages[-1].status_code == 404 and "no console page" in pages[-1].text
    assert '"allowEval":false' in pages[1].text and '"historyCacheSize":0' in pages[1].text


def test_static_files_are_versioned_and_only_the_console_s(client: TestClient) -> None:
    page = client.get("/console/sign-in").text
    urls = re.findall(r'(?:src|href)="(/console/static/[^"]+)"', page)
    assert {urlsplit(u).path for u in urls} == {
        "/console/static/console.css",
        "/console/static/htmx.min.js",
        "/console/static/console.js",
    }
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200 and response.content
        assert "immutable" in response.headers["cache-control"]
        again = client.get(url, headers={"If-None-Match": response.headers["etag"]})
        assert again.status_code == 304
    htmx_js = client.get(next(u for u in urls if "htmx" in u)).text
    assert 'version:"2.' in htmx_js
    for hidden in ["LICENSE", "VENDORED.md", "..%2Fstate.py", "nope.js"]:
        assert client.get(f"/console/static/{hidden}").status_code == 404
    assert (
        client.get("/console/static/console.css", params={"v": "old"}).headers["cache-control"]
        == "no-cache"
    )


def test_the_sign_in_form_names_its_fields_for_password_managers(client: TestClient) -> None:
    form = client.get("/console/sign-in").text
    assert 'type="password"' in form and 'autocomplete="current-password"' in form
    assert 'method="post"' in form  # never a GET: the key would land in the URL
    assert csrf_of(form)
