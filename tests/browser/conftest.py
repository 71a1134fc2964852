"""The console in a real browser: Playwright driving Debian's chromium against one real
``wafleet standalone --transport sim`` process for the whole module.

Without chromium the tests skip, except with ``CI=true``, where they fail (project rule).
Each test gets a fresh browser context (its own cookies); every page is watched for
Content-Security-Policy violations and for a credential in any URL it requests.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from support.browser import CHROMIUM, CHROMIUM_ARGS
from support.process import TOKEN, Standalone, wait_until

TIMEOUT_MS = 30_000  # generous: a slow, shared machine
expect.set_options(timeout=TIMEOUT_MS)  # the pages poll every few seconds


def tool_problem(message: str) -> NoReturn:
    """A missing or unusable tool: skip, except that with CI=true it fails (project rule)."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    data = tmp_path_factory.mktemp("console") / "data"
    proc = Standalone(data_dir=data, env={"WAFLEET_START_RATE": "20", "WAFLEET_START_BURST": "20"})
    proc.start()
    try:
        yield proc
    finally:
        if proc.proc is not None:
            proc.stop()


@pytest.fixture(scope="module")
def api(standalone: Standalone) -> Iterator[httpx.Client]:
    """The REST API with the admin token, and the sim (which plays the phones)."""
    with standalone.client() as client:
        yield client


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).is_file() or shutil.which(CHROMIUM) is None:
        tool_problem(f"{CHROMIUM} is missing: apt-get install chromium")
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Exception as exc:
            tool_problem(f"chromium does not start: {exc}")
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Watch:
    """What a test's pages did that they must not: CSP violations, credentials in URLs."""

    problems: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)

    def console(self, message: Any) -> None:
        text = str(message.text)
        if "Content Security Policy" in text or "Refused to" in text:
            self.problems.append(text)

    def request(self, request: Any) -> None:
        self.urls.append(str(request.url))


@pytest.fixture
def page(browser: Any, standalone: Standalone) -> Iterator[Any]:
    """A page in a fresh context (no cookies), at the standalone's address."""
    context = browser.new_context(base_url=standalone.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    watch = Watch()
    context.on("request", watch.request)
    tab = context.new_page()
    tab.on("console", watch.console)
    yield tab
    context.close()
    assert not watch.problems, watch.problems
    assert watch.urls and not [u for u in watch.urls if TOKEN in u]


def sign_in(page: Any, secret: str = TOKEN) -> None:
    page.goto("/")
    page.fill("#secret", secret)
    page.click("form.stack button[type=submit]")
    page.wait_for_selector("#fleet-table")


def account(api: httpx.Client, account_id: str) -> dict[str, Any]:
    response = api.get(f"/api/whatsapp/accounts/{account_id}", params={"qr": "raw"})
    response.raise_for_status()
    found: dict[str, Any] = response.json()["account"]
    return found


def linked(api: httpx.Client, phone: str, name: str) -> dict[str, Any]:
    """An account added and linked through the API and the sim (a test's starting point)."""
    added = api.post("/api/whatsapp/add-account", json={"phone": phone, "name": name})
    added.raise_for_status()
    account_id = added.json()["account"]["id"]
    qr = wait_until("a QR code", lambda: account(api, account_id)["qr"], 30)
    api.post("/sim/scan", json={"qr": qr, "phone": phone}).raise_for_status()
    return wait_phase(api, account_id, "Connected")


def wait_phase(api: httpx.Client, account_id: str, phase: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        found = account(api, account_id)
        return found if found["phase"] == phase else None

    return wait_until(f"{account_id} {phase}", probe, 30)
