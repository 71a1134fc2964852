"""A real ``wafleet standalone`` process writes no secret and no phone number in its log.

Everything goes over HTTP: a QR page opened by a minted link and reloaded, a refused
``?token=``, queries with phone numbers; then the process's whole stderr is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from support.process import TOKEN, Standalone, wait_until

pytestmark = pytest.mark.e2e

PHONE = "+40712345678"
CONTACT = "+40799000001"


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[Standalone]:
    # Debug level: the HTTP and websocket libraries' own lines are in the log too.
    proc = Standalone(data_dir=tmp_path / "data", env={"WAFLEET_LOG_LEVEL": "debug"})
    yield proc
    proc.kill()


def test_log_has_no_token_signature_key_or_phone(standalone: Standalone) -> None:
    standalone.start()
    with standalone.client() as client, httpx.Client(base_url=standalone.url) as browser:
        added = client.post("/api/whatsapp/add-account", json={"phone": PHONE})
        assert added.status_code == 200, added.text
        account_id = added.json()["account"]["id"]
        wait_until(
            "a QR code",
            lambda: client.get(f"/api/whatsapp/accounts/{account_id}").json()["account"]["qr"],
            30,
        )
        minted = client.post(f"/api/whatsapp/qr/{account_id}/link", json={"ttlSeconds": 600})
        assert minted.status_code == 200, minted.text
        link = minted.json()["url"]
        signature = parse_qs(urlsplit(link).query)["sig"][0]
        for _ in range(3):  # the page reloads itself every 5 s with the same URL
            opened = browser.get(link)
            assert opened.status_code == 200
            assert opened.headers["referrer-policy"] == "no-referrer"
        refused = browser.get(f"/api/whatsapp/qr/{account_id}", params={"token": TOKEN})
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "token_in_url"
        assert browser.get("/sim/messages", params={"phone": CONTACT}).status_code == 200
        assert browser.get(f"/sim/messages?phone={CONTACT}").status_code == 200
        thread = f"{account_id}__{CONTACT.lstrip('+')}@s.whatsapp.net"
        messages = client.get(f"/api/whatsapp/messages?threadId={quote(thread)}")
        assert messages.status_code in (200, 404), messages.text
    key = (standalone.data_dir / "link-key").read_text().strip()
    code, _ = standalone.stop()
    assert code == 0
    assert standalone.log_path is not None
    log = standalone.log_path.read_text(errors="replace")

    access = [line for line in log.splitlines() if "uvicorn.access" in line]
    assert len(access) >= 9, log[-3000:]
    for secret in (TOKEN, signature, key):
        assert secret not in log
    for phone in (PHONE, CONTACT):
        digits = phone.lstrip("+")
        assert not [line for line in access if digits in line], access
    # The lines are there, masked: the link, the refused token, the phone queries.
    assert any(
        f"/api/whatsapp/qr/{account_id}?exp=" in line and "&sig=***" in line for line in access
    )
    assert any(f'/api/whatsapp/qr/{account_id}?token=*** HTTP/1.1" 401' in line for line in access)
    assert any('/sim/messages?phone=+407****01 HTTP/1.1" 200' in line for line in access)
    assert any("threadId=" in line and "4079****01" in line for line in access)
