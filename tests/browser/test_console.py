"""The web console in chromium against a real standalone process: sign-in, onboarding up
to Connected through the sim (the test plays the phone, scanning the QR the page shows),
sending a message, a new QR code after a logout, disconnect and delete."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from support.process import wait_until

from .conftest import TOKEN, account, linked, sign_in, wait_phase

pytestmark = pytest.mark.browser

CONTACT = "+40799000001"


def test_sign_in_refuses_a_bad_key_then_signs_in_and_out(page: Any) -> None:
    page.goto("/")
    expect(page).to_have_url("/console/sign-in?next=%2F")
    page.fill("#secret", "not the admin token")
    page.click("form.stack button[type=submit]")
    expect(page.locator(".flash.bad")).to_contain_text("not the admin token or a valid API key")
    sign_in(page)
    expect(page.locator("h1")).to_have_text("Fleet")
    expect(page.locator(".who-name")).to_have_text("admin")
    page.click("text=Sign out")
    expect(page.locator(".flash.info")).to_contain_text("You are signed out")
    page.goto("/")
    expect(page.locator("#secret")).to_be_visible()  # the cookie is gone


def test_onboarding_shows_a_live_qr_until_connected(page: Any, api: httpx.Client) -> None:
    phone = "+40722300001"
    sign_in(page)
    page.click(".page-head >> text=Add account")
    page.fill("#phone", phone)
    page.fill("#name", "Browser Shop")
    page.click("form.stack button[type=submit]")
    expect(page.locator("h1")).to_have_text("Link Browser Shop")
    qr = page.locator("figure.qr")
    expect(qr).to_be_visible()
    expect(page.locator(".qr img")).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
    expect(page.locator(".countdown")).to_contain_text("Expires in")  # console.js runs
    code = qr.get_attribute("data-qr")
    assert code
    scanned = api.post("/sim/scan", json={"qr": code, "phone": phone})
    assert scanned.status_code == 200, scanned.text
    live = page.locator("#link-live")
    expect(live).to_contain_text("Connected")  # htmx brought it, no reload
    page.click("text=Open the account")
    expect(page.locator("#account-status .badge")).to_have_text("Connected")


def test_sending_a_message(page: Any, api: httpx.Client) -> None:
    shop = linked(api, "+40722300002", "Sender")
    sign_in(page)
    page.click(f"text={shop['name']}")
    expect(page.locator("h1")).to_have_text("Sender")
    page.fill("#to", CONTACT)
    page.fill("#message", "Your order left the warehouse")
    page.click(".send-form button[type=submit]")
    expect(page.locator(".flash.ok")).to_contain_text("Message queued")
    expect(page.locator(".bubble.outbound .body")).to_have_text("Your order left the warehouse")

    def received() -> list[dict[str, Any]]:
        inbox = api.get("/sim/messages", params={"phone": CONTACT}).json()["messages"]
        return [m for m in inbox if m["text"] == "Your order left the warehouse"]

    wait_until("the contact's phone to receive it", received, 30)


def test_a_new_qr_code_after_the_phone_logged_the_device_out(page: Any, api: httpx.Client) -> None:
    phone = "+40722300003"
    shop = linked(api, phone, "Logged Out Shop")
    sign_in(page)
    page.goto(f"/console/accounts/{shop['id']}")
    api.post("/sim/faults", json={"phone": phone, "kind": "logout"}).raise_for_status()
    expect(page.locator("#account-status .badge")).to_have_text("LoggedOut")  # polled
    page.click("button:has-text('New QR code')")
    expect(page.locator("h1")).to_have_text("Link Logged Out Shop")
    qr = page.locator("figure.qr")
    expect(qr).to_be_visible()
    scanned = api.post("/sim/scan", json={"qr": qr.get_attribute("data-qr"), "phone": phone})
    assert scanned.status_code == 200, scanned.text
    expect(page.locator("#link-live")).to_contain_text("Connected")
    history = page.goto(f"/console/accounts/{shop['id']}")
    assert history is not None and history.ok
    expect(page.locator("#history-live")).to_contain_text("logged_out")  # the incident


def test_disconnect_then_delete_after_a_confirmation(page: Any, api: httpx.Client) -> None:
    shop = linked(api, "+40722300004", "Short Lived")
    sign_in(page)
    page.goto(f"/console/accounts/{shop['id']}")
    page.click("button:has-text('Disconnect')")
    expect(page.locator(".flash.ok")).to_contain_text("Disconnected")
    expect(page.locator("#account-status .badge")).to_have_text("Suspended")
    assert wait_phase(api, shop["id"], "Suspended")
    page.click("text=Delete…")
    expect(page.locator("h1")).to_have_text("Delete Short Lived?")
    page.click("button:has-text('Delete the account')")
    expect(page.locator(".flash.ok")).to_contain_text("The account was deleted")
    expect(page.locator("#fleet-table")).not_to_contain_text("Short Lived")
    gone = api.get(f"/api/whatsapp/accounts/{shop['id']}")
    assert gone.status_code == 404


def test_the_fleet_searches_and_filters_without_a_reload(page: Any, api: httpx.Client) -> None:
    linked(api, "+40722300005", "Zebra Desk")
    sign_in(page)
    page.fill("#q", "zebra")
    expect(page.locator("#fleet-table tbody tr")).to_have_count(1)
    expect(page.locator("#fleet-table")).to_contain_text("Zebra Desk")
    expect(page).to_have_url("/?q=zebra")  # the search is in the address, for a reload
    page.click("#fleet-table .chip:has-text('Connected')")
    expect(page).to_have_url("/?q=zebra&phase=Connected")
    page.reload()
    expect(page.locator("#q")).to_have_value("zebra")
    expect(page.locator("#fleet-table tbody tr")).to_have_count(1)
    assert account(api, next(iter(_ids(page))))["name"] == "Zebra Desk"
    assert TOKEN not in page.url


def _ids(page: Any) -> list[str]:
    rows = page.locator("tr[data-account]").all()
    return [str(row.get_attribute("data-account")) for row in rows]
