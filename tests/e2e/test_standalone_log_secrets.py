"""A real ``wafleet standalone`` process writes no secret and no phone number in its log.

Everything goes over HTTP: a QR page opened by a minted link and reloaded, a refused
``?token=``, queries with phone numbers; then the process's whole stderr is read, in
both log formats (text lines, and ``WAFLEET_LOG_FORMAT=json``: one JSON object a line).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from support.process import TOKEN, Standalone, wait_until

pytestmark = pytest.mark.e2e

PHONE = "+40712345678"
CONTACT = "+40799000001"


@pytest.fixture(params=["text", "json"])
def standalone(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Standalone]:
    # Debug level: the HTTP and websocket libraries' own lines are in the log too.
    env = {"WAFLEET_LOG_LEVEL": "debug", "WAFLEET_LOG_FORMAT": request.param}
    proc = Standalone(data_dir=tmp_path / "data", env=env)
    yield proc
    proc.kill()


def access_lines(log: str, fmt: str) -> list[str]:
    """The access log's lines as text (the message of each, in JSON format)."""
    if fmt == "text":
        return [line for line in log.splitlines() if "uvicorn.access" in line]
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return [
        f"{r['message']} requestId={r.get('requestId')}"
        for r in records
        if r["logger"] == "uvicorn.access"
    ]


def test_log_has_no_token_signature_key_or_phone(standalone: Standalone) -> None:
    fmt = standalone.env["WAFLEET_LOG_FORMAT"]
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

    if fmt == "json":  # every line is an object, but the startup notices printed to stdout
        lines = [line for line in log.splitlines() if not line.startswith("wafleet: ")]
        assert all(isinstance(json.loads(line), dict) for line in lines), log[-3000:]
    access = access_lines(log, fmt)
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


def test_each_request_has_an_id_in_its_answer_and_its_log_lines(tmp_path: Path) -> None:
    proc = Standalone(data_dir=tmp_path / "data", env={"WAFLEET_LOG_FORMAT": "json"})
    try:
        proc.start()
        with proc.client() as client:
            given = client.get("/api/whatsapp/accounts", headers={"X-Request-ID": "trace-42"})
            made = client.get("/api/whatsapp/accounts")
            unfit = client.get("/api/whatsapp/accounts", headers={"X-Request-ID": "a b\tc"})
        assert given.headers["x-request-id"] == "trace-42"
        made_id = made.headers["x-request-id"]
        assert len(made_id) == 16 and made_id != "trace-42"
        assert unfit.headers["x-request-id"] not in ("a b\tc", made_id)
        code, _ = proc.stop()
        assert code == 0
    finally:
        proc.kill()
    assert proc.log_path is not None
    records = [
        json.loads(line) for line in proc.log_path.read_text().splitlines() if line.startswith("{")
    ]
    access = {r.get("requestId") for r in records if r["logger"] == "uvicorn.access"}
    assert {"trace-42", made_id} <= access
