"""The command line of the commands for people: ``accounts``, ``send``, ``messages``,
``events`` and ``onboard``, each leaf with the connection options."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from wafleet_app.people.commands_onboard import DEFAULT_EVERY

CONNECTION = """connection (flags, else the environment, else the config file):
  --url / WAFLEET_URL / url = "..."   the API, e.g. http://127.0.0.1:8080
  --key / WAFLEET_KEY / key = "..."   the admin token or an API key (wfk_...)
  the config file is TOML: --config FILE, else ~/.config/wafleet/cli.toml
  ($XDG_CONFIG_HOME/wafleet/cli.toml); keep it chmod 600.
exit codes: 0 ok, 1 the API refused or failed, 2 usage or configuration, 130 Ctrl-C."""

ONBOARD_EPILOG = """The CSV has a header line: phone (required), name, login (qr or pairingCode).

  phone,name,login
  +40712345678,Shop,qr
  +40712345679,Warehouse,pairingCode

QR codes for a batch: with --wait, each added row's QR code is drawn here in turn and
the run waits until that phone is linked (a person scans them one by one). Without
--wait, the run adds every row and prints, at the end, a signed link to the QR page of
every account waiting for a scan (GET /api/whatsapp/qr-visual), to open in a browser.
A second run of the same file skips the linked rows and adds only what is missing."""


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection")
    group.add_argument("--url", help="the API's URL (default: WAFLEET_URL, the config file)")
    group.add_argument("--key", help="the admin token or an API key (default: WAFLEET_KEY)")
    group.add_argument("--config", type=Path, metavar="FILE", help="a TOML config file")
    common.add_argument("--json", action="store_true", help="print JSON instead of tables")
    return common


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text[:20]}' is not a whole number") from None
    if not 1 <= value <= 500:
        raise argparse.ArgumentTypeError("must be 1..500")
    return value


def _leaf(parent: Any, name: str, text: str, common: argparse.ArgumentParser) -> Any:
    return parent.add_parser(
        name,
        help=text,
        description=text,
        parents=[common],
        epilog=CONNECTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _accounts(commands: Any, common: argparse.ArgumentParser) -> None:
    accounts = commands.add_parser("accounts", help="add, list, show and remove accounts")
    verbs = accounts.add_subparsers(dest="accounts_command", required=True, metavar="ACTION")
    add = _leaf(verbs, "add", "add an account and show its QR code or pairing code", common)
    add.add_argument("phone", metavar="PHONE", help="with its country code: +40712345678")
    add.add_argument("--name", help="a name for people (default: 'Account <last 4 digits>')")
    add.add_argument(
        "--pairing-code", action="store_true", help="link with a pairing code instead of a QR"
    )
    add.add_argument("--wait", action="store_true", help="follow it until it is linked")
    listing = _leaf(verbs, "list", "list the accounts (every page of the API)", common)
    listing.add_argument("--phase", help="only these phases, comma-separated: Connected,QRReady")
    listing.add_argument("--search", help="only accounts whose name, id or phone holds this")
    show = _leaf(verbs, "show", "one account, with its QR code if it waits for a scan", common)
    show.add_argument("account_id", metavar="ID")
    show.add_argument("--wait", action="store_true", help="follow it until it is linked")
    regenerate = _leaf(verbs, "regenerate-qr", "start linking again, with a new QR code", common)
    regenerate.add_argument("account_id", metavar="ID")
    regenerate.add_argument("--wait", action="store_true", help="follow it until it is linked")
    disconnect = _leaf(verbs, "disconnect", "stop the session and keep it (suspend)", common)
    disconnect.add_argument("account_id", metavar="ID")
    delete = _leaf(verbs, "delete", "log the device out, wipe its session, remove it", common)
    delete.add_argument("account_id", metavar="ID")
    delete.add_argument("--yes", action="store_true", help="do not ask (for scripts)")


def add_parsers(commands: Any) -> None:
    """Add the commands for people to the ``wafleet`` command's subparsers."""
    common = _common()
    _accounts(commands, common)
    send = _leaf(commands, "send", "send a text message from an account", common)
    send.add_argument("account_id", metavar="ACCOUNT_ID")
    send.add_argument("to", metavar="TO", help="the recipient: +40799000001 or a JID")
    send.add_argument("text", metavar="TEXT")
    send.add_argument("--wait", action="store_true", help="follow it until sent or failed")
    send.add_argument("--idempotency-key", help="the same key sends once however often it is given")
    messages = _leaf(commands, "messages", "an account's threads and messages", common)
    messages.add_argument("account_id", metavar="ACCOUNT_ID")
    messages.add_argument("--contact", help="only the thread with this phone (+40...) or JID")
    messages.add_argument(
        "--limit", type=_positive, default=20, help="threads, and messages per thread (20)"
    )
    events = commands.add_parser("events", help="follow the event log")
    actions = events.add_subparsers(dest="events_command", required=True, metavar="ACTION")
    tail = _leaf(actions, "tail", "follow the events as they come (Ctrl-C stops)", common)
    tail.add_argument("--account", metavar="ID", help="only this account's events")
    tail.add_argument("--types", help="comma-separated: message.inbound,account.phase ...")
    tail.add_argument("--after", metavar="EVENT_ID", help="start after this event, not now")
    tail.add_argument("--count", type=int, metavar="N", help="stop after N events")
    onboard = commands.add_parser(
        "onboard",
        help="add the accounts of a CSV file (paced, resumable)",
        description="Add the accounts of a CSV file, paced and resumable.",
        parents=[common],
        epilog=ONBOARD_EPILOG + "\n\n" + CONNECTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    onboard.add_argument("file", metavar="FILE.csv", type=Path)
    onboard.add_argument(
        "--every",
        type=float,
        default=DEFAULT_EVERY,
        metavar="SECONDS",
        help=f"seconds between two adds (default: {DEFAULT_EVERY:g})",
    )
    onboard.add_argument(
        "--wait", action="store_true", help="draw each row's QR code and wait until it is linked"
    )
    onboard.add_argument("--region", help="read numbers without a country code as this: RO")
