"""Take the console's screenshots in docs/console/ from a real standalone process.

Runs ``wafleet standalone --transport sim`` on a free loopback port with a small fleet
(connected accounts with conversations, two waiting for a QR scan, one for a pairing
code, one disconnected), signs in with the admin token in Debian's chromium through
Playwright, and writes:

    sign-in.png      the sign-in form
    fleet.png        the fleet (desktop)
    fleet-phone.png  the fleet at 390 px wide
    onboarding.png   an account's live QR code with its countdown
    account.png      an account: status, a conversation, its phase history

Usage (from the repository root): ``.venv/bin/python docs/console/screenshots.py``
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))  # the test harnesses: the process, ports, phones

from support.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from support.process import TOKEN, Standalone, phones, wait_until  # noqa: E402

OUT = Path(__file__).resolve().parent
NAMES = [
    "Acme Shop",
    "Support Desk",
    "Bucharest Store",
    "Cluj Store",
    "Deliveries",
    "Billing",
    "Returns",
    "VIP Desk",
    "Warehouse",
    "Front Desk",
    "Night Shift",
    "Marketing",
]
CONNECTED = 8  # the first eight link; then two QR codes, a pairing code, a disconnect
CONTACTS = ["+40799000001", "+40799000002", "+40799000003"]
CHAT = [
    ("in", "Hello! Is my order 10452 on its way?"),
    ("out", "Hi Ana, yes: it left the warehouse this morning."),
    ("in", "Great, when will it arrive?"),
    ("out", "Tomorrow between 10:00 and 14:00. You will get a text from the courier."),
    ("in", "Perfect, thank you!"),
]


def _account(client: httpx.Client, phone: str, name: str, login: str = "qr") -> dict[str, Any]:
    response = client.post(
        "/api/whatsapp/add-account", json={"phone": phone, "name": name, "login": login}
    )
    response.raise_for_status()
    account: dict[str, Any] = response.json()["account"]
    return account


def _get(client: httpx.Client, account_id: str) -> dict[str, Any]:
    response = client.get(f"/api/whatsapp/accounts/{account_id}", params={"qr": "raw"})
    response.raise_for_status()
    account: dict[str, Any] = response.json()["account"]
    return account


def _link(client: httpx.Client, account: dict[str, Any]) -> None:
    shown = wait_until("a QR code", lambda: _get(client, account["id"])["qr"], 30)
    scanned = client.post("/sim/scan", json={"qr": shown, "phone": account["phone"]})
    scanned.raise_for_status()


def build_fleet(client: httpx.Client) -> dict[str, dict[str, Any]]:
    """The demo fleet; returns the accounts the screenshots open, by role."""
    numbers = phones(len(NAMES), base=40_722_100_000)
    accounts = [
        _account(client, phone, name, "pairingCode" if i == CONNECTED + 2 else "qr")
        for i, (phone, name) in enumerate(zip(numbers, NAMES, strict=True))
    ]
    for account in accounts[:CONNECTED]:
        _link(client, account)
    connected = {a["id"] for a in accounts[:CONNECTED]}
    wait_until(
        "the first accounts to connect",
        lambda: all(_get(client, i)["phase"] == "Connected" for i in connected),
        60,
    )
    shop = accounts[0]
    for direction, text in CHAT:
        if direction == "in":
            sent = client.post(
                "/sim/messages", json={"from": CONTACTS[0], "to": shop["phone"], "text": text}
            )
        else:
            body = {"accountId": shop["id"], "to": CONTACTS[0], "message": text}
            sent = client.post("/api/whatsapp/send-message", json=body)
        sent.raise_for_status()
        time.sleep(0.3)  # distinct times, in order
    for i, account in enumerate(accounts[1:CONNECTED], 1):
        text = f"Hi, a question about invoice {2400 + i}"
        contact = CONTACTS[i % len(CONTACTS)]
        client.post(
            "/sim/messages", json={"from": contact, "to": account["phone"], "text": text}
        ).raise_for_status()
    client.post("/sim/read", json={"phone": CONTACTS[0]}).raise_for_status()
    suspended = accounts[-1]
    client.post(f"/api/whatsapp/disconnect/{suspended['id']}").raise_for_status()
    waiting = accounts[CONNECTED]
    wait_until("a QR code to show", lambda: _get(client, waiting["id"])["qr"], 30)
    pairing = accounts[CONNECTED + 2]
    wait_until("a pairing code", lambda: _get(client, pairing["id"])["pairingCode"], 30)
    return {"shop": shop, "waiting": waiting}


def _sign_in(page: Page, base: str) -> None:
    page.goto(base + "/")
    page.fill("#secret", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_selector("#fleet-table")


def shoot(browser: Browser, base: str, roles: dict[str, dict[str, Any]]) -> list[Path]:
    written: list[Path] = []

    def save(page: Page, name: str, full_page: bool = True) -> None:
        path = OUT / name
        page.screenshot(path=str(path), full_page=full_page)
        written.append(path)

    desktop = browser.new_context(viewport={"width": 1280, "height": 800})
    page = desktop.new_page()
    page.goto(base + "/")
    page.wait_for_selector("#secret")
    save(page, "sign-in.png", full_page=False)
    _sign_in(page, base)
    save(page, "fleet.png")
    page.goto(f"{base}/console/accounts/{roles['waiting']['id']}/link")
    page.wait_for_selector(".qr img")
    page.wait_for_function("document.querySelector('.countdown').textContent.includes('in')")
    save(page, "onboarding.png", full_page=False)
    page.goto(f"{base}/console/accounts/{roles['shop']['id']}")
    page.wait_for_selector(".bubble")
    save(page, "account.png")
    desktop.close()

    phone = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
    )
    page = phone.new_page()
    _sign_in(page, base)
    save(page, "fleet-phone.png", full_page=False)
    phone.close()
    return written


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="wafleet-shots-") as temp:
        env = {"WAFLEET_START_RATE": "20", "WAFLEET_START_BURST": "20"}
        standalone = Standalone(data_dir=Path(temp) / "data", env=env)
        standalone.start()
        try:
            with standalone.client() as client:
                roles = build_fleet(client)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    written = shoot(browser, standalone.url, roles)
                finally:
                    browser.close()
        finally:
            standalone.stop()
    for path in written:
        print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
