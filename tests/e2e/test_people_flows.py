"""``wafleet send``, ``messages``, ``events tail`` and ``onboard``, run as a person runs
them: in a pseudo-terminal, against a real standalone process with the simulated
WhatsApp, reading the screen (``test_people_terminal`` replays it)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from support.people_cli import (
    CONTACT,
    Cli,
    Relay,
    account_by_phone,
    api,
    cli,
    link,
    scan,
    server,
)
from support.process import Standalone, wait_until

__all__ = ["api", "cli", "server"]  # the fixtures

pytestmark = [pytest.mark.e2e, pytest.mark.cli]


@pytest.fixture(scope="module")
def linked_account(api: httpx.Client) -> str:
    return link(api, "+40712300020", "Talker")


def test_send_follows_the_message_and_messages_shows_it(
    cli: Cli, api: httpx.Client, linked_account: str
) -> None:
    code, text = cli.run("send", linked_account, CONTACT, "Hello from the CLI", "--wait")
    assert code == 0 and re.search(r"Status +sent", text) and "4079****01" in text
    code, text = cli.run("send", linked_account, CONTACT, "Second one", "--json")
    item = json.loads(text)
    assert code == 0 and item["body"] == "Second one" and item["accountId"] == linked_account
    api.post("/sim/messages", json={"from": CONTACT, "to": "+40712300020", "text": "Thanks!"})

    def thread() -> str | None:
        code, text = cli.run("messages", linked_account, "--contact", CONTACT)
        return text if code == 0 and "Thanks!" in text else None

    text = wait_until("the reply in the thread", thread, 30, interval=0.5)
    assert "with 4079****01" in text
    lines = [
        line for line in text.splitlines() if "Hello from the CLI" in line or "Thanks!" in line
    ]
    assert "→" in lines[0] and "←" in lines[1]  # oldest first, as a chat reads
    code, text = cli.run("messages", linked_account, "--limit", "1", "--json")
    threads = json.loads(text)
    assert code == 0 and len(threads) == 1 and threads[0]["accountId"] == linked_account
    code, text = cli.run("messages", linked_account, "--contact", "nobody")
    assert code == 2 and "--contact" in text


def test_events_tail_sees_inbound_messages_and_loses_none_when_the_connection_drops(
    cli: Cli, api: httpx.Client, server: Standalone, linked_account: str
) -> None:
    relay = Relay(server.port)
    try:
        env = cli.env(WAFLEET_URL=f"http://127.0.0.1:{relay.port}")
        tail = cli.start(
            "events", "tail", "--account", linked_account, "--types", "message.inbound", env=env
        )
        tail.wait_for("Following the events from now on")

        def say(text: str) -> None:
            sent = api.post(
                "/sim/messages", json={"from": CONTACT, "to": "+40712300020", "text": text}
            )
            assert sent.status_code == 200, sent.text

        def logged(text: str) -> bool:
            events = api.get("/api/events", params={"accountId": linked_account, "limit": "500"})
            return any(e["data"].get("body") == text for e in events.json()["events"])

        say("first words")
        tail.wait_for("message.inbound  " + linked_account)
        tail.wait_for("from 4079****01: first words")
        relay.cut()
        say("while away")
        wait_until("logged while away", lambda: logged("while away"), 20)
        relay.blocked = False
        text = tail.wait_for("from 4079****01: while away", 30)
        assert "reconnecting" in text
        assert text.count("first words") == 1 and text.count("while away") == 1
        first = re.search(r"first words\s+(evt_\w+)", text)
        assert first is not None
    finally:
        relay.close()
    code, text = cli.run(
        "events",
        "tail",
        "--json",
        "--after",
        first.group(1),
        "--count",
        "1",
        "--account",
        linked_account,
        "--types",
        "message.inbound",
    )
    event = json.loads(text.strip().splitlines()[-1])
    assert code == 0 and event["data"]["body"] == "while away"


def test_onboard_a_csv_then_resume_it(cli: Cli, api: httpx.Client, tmp_path: Path) -> None:
    link(api, "+40712300030", "Old shop")
    sheet = tmp_path / "accounts.csv"
    sheet.write_text(
        "phone,name,login\n"
        "+40712300030,Old shop,qr\n"  # already linked
        "+40712300031,North,qr\n"
        "call-me-maybe,Bad,qr\n"
        "+40 712 300 031,Twice,\n"  # a duplicate of line 3
        "+40712300032,South,pairingCode\n"
    )
    code, text = cli.run("onboard", str(sheet), "--every", "1")
    assert code == 1  # bad rows
    assert re.search(r"line 2 +skipped +\+407\*\*\*\*30 +already linked", text), text
    assert re.search(r"line 3 +added +\+407\*\*\*\*31", text)
    assert re.search(r"line 4 +bad +not a phone number", text)
    assert re.search(r"line 5 +bad +a duplicate: the same number as line 3", text)
    assert re.search(r"line 6 +added +\+407\*\*\*\*32", text)
    assert "5 of 5 rows: 2 added, 1 skipped, 2 bad" in text
    assert "/api/whatsapp/qr-visual?exp=" in text  # where to scan them
    north = account_by_phone(api, "+40712300031")
    south = account_by_phone(api, "+40712300032")
    assert north is not None and south is not None and south["login"] == "pairingCode"
    assert north["name"] == "North"
    created = [
        datetime.fromisoformat(a["createdAt"].replace("Z", "+00:00")) for a in (north, south)
    ]
    assert (created[1] - created[0]).total_seconds() >= 0.95  # paced: --every 1

    wait_until("North linked", scan(api, north["id"]), 30, interval=0.2)
    code, text = cli.run("onboard", str(sheet), "--every", "0")
    assert re.search(r"line 3 +skipped +\+407\*\*\*\*31 +already linked", text), text
    assert re.search(r"line 6 +exists +\+407\*\*\*\*32", text)
    assert "added" not in text.split("rows:")[-1] and "line 4" in text
    code, text = cli.run("onboard", str(tmp_path / "missing.csv"))
    assert code == 2 and "no file" in text


def test_onboard_with_wait_draws_each_rows_qr_and_waits_for_its_scan(
    cli: Cli, api: httpx.Client, tmp_path: Path
) -> None:
    sheet = tmp_path / "two.csv"
    sheet.write_text("phone,name\n+40712300050,Left\n+40712300051,Right\n")
    session = cli.start("onboard", str(sheet), "--wait", "--every", "0")
    for phone, name in (("+40712300050", "Left"), ("+40712300051", "Right")):
        session.wait_for(f"Scan this QR code with WhatsApp on the phone of {name}")
        added = wait_until(f"{name} added", lambda phone=phone: account_by_phone(api, phone), 20)
        wait_until(f"{name} scanned", scan(api, added["id"]), 30, interval=0.2)
        session.wait_for(f"✓ Connected: {name}")
    assert session.exit_code() == 0
    assert "2 of 2 rows: 2 added, 2 linked now" in session.text()
