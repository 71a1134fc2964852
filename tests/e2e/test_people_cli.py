"""The ``wafleet accounts`` commands and the settings, run as a person runs them: in a
pseudo-terminal, against a real standalone process with the simulated WhatsApp, reading
the screen (``test_people_terminal`` replays it) and the QR codes drawn on it."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import httpx
import pytest

from support.people_cli import (
    Cli,
    account,
    account_by_phone,
    api,
    cli,
    drawn,
    link,
    matrix_of,
    scan,
    server,
)
from support.process import TOKEN, Standalone, free_port, wait_until

__all__ = ["api", "cli", "server"]  # the fixtures

pytestmark = [pytest.mark.e2e, pytest.mark.cli]


def test_add_draws_the_qr_redraws_it_when_it_rotates_and_waits_until_connected(
    cli: Cli, api: httpx.Client
) -> None:
    phone = "+40712300001"
    session = cli.start("accounts", "add", phone, "--name", "Shop", "--wait")
    session.wait_for("Scan this QR code with WhatsApp on the phone of Shop (+407****01)")
    first = wait_until("the QR code", lambda: (account_by_phone(api, phone) or {}).get("qr"), 20)
    account_id = account_by_phone(api, phone)["id"]
    size = len(matrix_of(first))
    wait_until(
        "the first QR code drawn", lambda: matrix_of(first) in drawn(session.screen(), size), 20
    )
    assert "Added Shop (+407****01)" in session.text() and "QR code expires in" in session.text()

    code, text = cli.run("accounts", "regenerate-qr", account_id)  # rotates it now
    assert code == 0 and "A new QR code for Shop (+407****01) is on its way" in text

    def redrawn() -> bool:
        current = account(api, account_id)["qr"]
        return (
            bool(current)
            and current != first
            and matrix_of(current) in drawn(session.screen(), size)
        )

    wait_until("the new QR code drawn", redrawn, 20)
    assert "the one above no longer works" in session.text()
    wait_until("scanned", scan(api, account_id), 30, interval=0.2)
    session.wait_for("✓ Connected: Shop (+407****01) is linked as 4071****01")
    assert session.exit_code() == 0


def test_a_pairing_code_is_shown_and_typed_on_the_phone(cli: Cli, api: httpx.Client) -> None:
    phone = "+40712300002"
    session = cli.start("accounts", "add", phone, "--pairing-code", "--wait")
    text = session.wait_for("Link with phone number instead")
    code = re.search(r"Pairing code for Account 0002 \(\+407\*\*\*\*02\): (\w{4}-\w{4})", text)
    assert code is not None, text
    assert api.post("/sim/pair", json={"code": code.group(1), "phone": phone}).status_code == 200
    session.wait_for("✓ Connected")
    assert session.exit_code() == 0


def test_wait_ends_clearly_on_qr_timeout_and_on_ctrl_c(cli: Cli) -> None:
    timing_out = cli.start("accounts", "add", "+40712300003", "--wait")
    interrupted = cli.start("accounts", "add", "+40712300004", "--wait")
    interrupted.wait_for("QR code expires in")
    interrupted.type("\x03")
    interrupted.wait_for("Stopped waiting; the account stays as it is (QRReady)")
    assert interrupted.exit_code() == 130
    text = timing_out.wait_for("✗ QRTimeout: nobody scanned the QR code in time", 60)
    assert "wafleet accounts regenerate-qr wa-" in text
    assert timing_out.exit_code() == 1


def test_list_show_disconnect_and_delete(cli: Cli, api: httpx.Client) -> None:
    linked = link(api, "+40712300010", "Linked shop")
    code, text = cli.run("accounts", "add", "+40712300011", "--name", "Waiting shop")
    assert code == 0 and "Scan this QR code" in text and "accounts show wa-" in text
    waiting = account_by_phone(api, "+40712300011")["id"]

    code, text = cli.run("accounts", "list")
    assert code == 0
    row = next(line for line in text.splitlines() if linked in line)
    assert "Linked shop" in row and "+407****10" in row and "Connected" in row
    assert "+40712300010" not in text  # masked
    code, text = cli.run("accounts", "list", "--phase", "connected", "--search", "linked")
    assert code == 0 and linked in text and waiting not in text
    code, text = cli.run("accounts", "list", "--search", "+40 712 300 011", "--json")
    assert code == 0 and [a["id"] for a in json.loads(text)] == [waiting]

    code, text = cli.run("accounts", "show", linked)
    assert code == 0 and "+40712300010" in text and "Connected" in text
    code, text = cli.run("accounts", "show", waiting, "--json")
    assert code == 0 and json.loads(text)["id"] == waiting

    code, text = cli.run("accounts", "disconnect", linked)
    assert code == 0 and f"accounts regenerate-qr {linked}` resumes it" in text
    wait_until("suspended", lambda: account(api, linked)["phase"] == "Suspended", 20)

    asking = cli.start("accounts", "delete", waiting)
    asking.wait_for("Delete Waiting shop (+407****11)")
    asking.type("n\n")
    assert asking.exit_code() == 1 and "Not deleted." in asking.text()
    asking = cli.start("accounts", "delete", waiting)
    asking.wait_for("session wiped")
    asking.type("y\n")
    assert (
        asking.exit_code() == 0 and f"Deleted Waiting shop (+407****11), {waiting}" in asking.text()
    )
    code, text = cli.run("accounts", "show", waiting)
    assert code == 1 and "no such account (404" in text
    code, text = cli.run("accounts", "delete", linked, "--yes", "--json")
    assert code == 0 and json.loads(text)["deleted"] is True


def test_delete_without_a_terminal_wants_yes(cli: Cli, api: httpx.Client) -> None:
    added = api.post("/api/whatsapp/add-account", json={"phone": "+40712300012"}).json()
    result = subprocess.run(
        [sys.executable, "-m", "wafleet_app", "accounts", "delete", added["account"]["id"]],
        env=cli.env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2 and "pass --yes" in result.stderr


def test_settings_precedence_and_what_each_error_says(
    cli: Cli, api: httpx.Client, server: Standalone
) -> None:
    config = cli.home / ".config" / "wafleet" / "cli.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'url = "{server.url}"\nkey = "{TOKEN}"\n')
    config.chmod(0o600)
    bare = {k: v for k, v in cli.env().items() if k not in ("WAFLEET_URL", "WAFLEET_KEY")}
    bare["XDG_CONFIG_HOME"] = str(cli.home / ".config")
    code, text = cli.run("accounts", "list", env=bare)  # the config file alone
    assert code == 0 and "account" in text and "warning" not in text

    wrong = "wrong-key-0123456789-abcdef"
    code, text = cli.run("accounts", "list", env={**bare, "WAFLEET_KEY": wrong})
    assert code == 1 and "the key was refused (401" in text and "from WAFLEET_KEY" in text
    assert wrong not in text
    code, text = cli.run("accounts", "list", "--key", TOKEN, env={**bare, "WAFLEET_KEY": wrong})
    assert code == 0  # the flag wins over the environment

    config.chmod(0o644)
    code, text = cli.run("accounts", "list", env=bare)
    assert code == 0 and "readable or writable by others" in text and "chmod 600" in text
    assert TOKEN not in text

    nothing = {k: v for k, v in bare.items() if k != "XDG_CONFIG_HOME"}
    code, text = cli.run("accounts", "list", env={**nothing, "HOME": str(cli.home / "none")})
    assert code == 2 and "no server URL: pass --url" in text and "WAFLEET_URL" in text

    down = f"http://127.0.0.1:{free_port()}"
    code, text = cli.run("accounts", "list", "--url", down)
    assert code == 1 and f"cannot reach the server at {down}" in text

    made = api.post("/api/keys", json={"name": "reader", "scopes": ["read"]})
    reader = made.json()["secret"]
    code, text = cli.run("accounts", "add", "+40712300040", "--key", reader)
    assert code == 1 and "the key lacks a scope" in text and reader not in text
    code, text = cli.run("accounts", "show", "wa-nosuchaccount00000")
    assert code == 1 and "no such account (404" in text
    code, text = cli.run("accounts", "list", "--phase", "Sleeping")
    assert code == 2 and "'Sleeping' is not a phase" in text
