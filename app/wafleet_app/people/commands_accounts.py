"""``wafleet accounts add|list|show|regenerate-qr|disconnect|delete``."""

from __future__ import annotations

import argparse
import sys

from rich.prompt import Confirm

from wafleet.core.phases import Phase
from wafleet_app.people.client import Json
from wafleet_app.people.context import Context
from wafleet_app.people.errors import EXIT_FAILED, EXIT_OK, ApiFailure, UsageError
from wafleet_app.people.render import account_details, accounts_table, clean, masked
from wafleet_app.people.watch import Codes, follow, report, show_codes, wait_for_code

# An account in these phases links again only after a regenerate-qr.
RELINK = ("QRTimeout", "LoggedOut")
NEEDS_CODE = ("QRReady", "PairingCodeReady", *RELINK, "PasskeyRequired")


def who(account: Json) -> str:
    return f"{clean(account.get('name'))} ({masked(account.get('phone'))})"


def relink_if_needed(ctx: Context, account: Json) -> Codes:
    """An existing account that waits for a new link gets one (POST regenerate-qr)."""
    if account.get("phase") not in RELINK:
        return Codes()
    ctx.api.action("regenerate-qr", str(account["id"]))
    ctx.say(f"It was {clean(account.get('phase'))}: a new QR code was requested.")
    return Codes.after_action(account)


def add(ctx: Context, args: argparse.Namespace) -> int:
    """Add an account, show its QR code (or pairing code); --wait: until it is linked."""
    login = "pairingCode" if args.pairing_code else "qr"
    answer = ctx.api.add_account(args.phone, args.name, login)
    account: Json = answer["account"]
    if ctx.json and not args.wait:
        ctx.emit(answer)
        return EXIT_OK
    if answer.get("created"):
        ctx.say(f"Added {who(account)} as {account['id']}.")
    else:
        ctx.say(f"{who(account)} was already there as {account['id']} ({account['phase']}).")
    if account.get("phase") == "Connected":
        ctx.say("It is linked already: nothing to scan.", "green")
        if ctx.json:
            ctx.emit(account)
        return EXIT_OK
    codes = relink_if_needed(ctx, account)
    if args.wait:
        return follow(ctx, account, codes)
    account = wait_for_code(ctx, account, codes)
    ended = report(ctx, account, codes)
    if ended is not None:
        return ended
    if codes.drawn or codes.pairing_code:
        ctx.say(
            "The QR code changes every 20 s or so: to follow it until the phone is linked, "
            f"run: wafleet accounts show {account['id']} --wait"
        )
    return EXIT_OK


def parse_phases(raw: str | None) -> frozenset[str] | None:
    if not raw:
        return None
    known = {phase.value.lower(): phase.value for phase in Phase}
    chosen = set()
    for item in raw.split(","):
        name = known.get(item.strip().lower())
        if name is None:
            raise UsageError(
                f"--phase: '{item.strip()[:40]}' is not a phase; use one or more of "
                + ", ".join(phase.value for phase in Phase)
            )
        chosen.add(name)
    return frozenset(chosen)


def matches(account: Json, phases: frozenset[str] | None, search: str | None) -> bool:
    if phases is not None and account.get("phase") not in phases:
        return False
    if not search:
        return True
    needle = search.strip().lower()
    digits = "".join(char for char in needle if char.isdigit())
    phone = "".join(char for char in str(account.get("phone", "")) if char.isdigit())
    number = bool(digits) and all(char in "+0123456789 -()." for char in needle)
    return (
        needle in str(account.get("name", "")).lower()
        or needle in str(account.get("id", "")).lower()
        or (number and digits in phone)
    )


def list_accounts(ctx: Context, args: argparse.Namespace) -> int:
    """Every account (paged through the API's cursor), filtered here."""
    phases = parse_phases(args.phase)
    accounts = [a for a in ctx.api.accounts() if matches(a, phases, args.search)]
    if ctx.json:
        ctx.emit(accounts)
    else:
        ctx.out.print(accounts_table(accounts, ctx.out.width))
    return EXIT_OK


def _qr_page_hint(ctx: Context, account: Json) -> None:
    try:
        link = ctx.api.qr_link(str(account["id"]))
    except ApiFailure:
        return  # a key that cannot mint links still reads the code drawn above
    ctx.say(f"Its QR page for a browser (until {link.get('expiresAt')}): {link.get('url')}")


def show(ctx: Context, args: argparse.Namespace) -> int:
    """One account; its QR code or pairing code if it waits for one; --wait: follow it."""
    account = ctx.api.account(args.account_id)
    if ctx.json and not args.wait:
        ctx.emit(account)
        return EXIT_OK
    if not ctx.json:
        ctx.out.print(account_details(account))
    codes = Codes()
    if args.wait:
        return follow(ctx, account, codes)
    if account.get("phase") in NEEDS_CODE and show_codes(ctx, account, codes):
        _qr_page_hint(ctx, account)
    return EXIT_OK


def regenerate_qr(ctx: Context, args: argparse.Namespace) -> int:
    """Start linking again; the new QR code is drawn when it comes."""
    before = ctx.api.account(args.account_id)
    answer = ctx.api.action("regenerate-qr", str(before["id"]))
    if ctx.json and not args.wait:
        ctx.emit(answer)
        return EXIT_OK
    if before.get("phase") == "Suspended":
        ctx.say(f"Resuming {who(before)}: a linked session connects again without a scan.")
    else:
        ctx.say(f"A new QR code for {who(before)} is on its way.")
    codes = Codes.after_action(before)
    account = ctx.api.account(str(before["id"]))
    if args.wait:
        return follow(ctx, account, codes)
    account = wait_for_code(ctx, account, codes)
    ended = report(ctx, account, codes)
    return EXIT_OK if ended is None else ended


def disconnect(ctx: Context, args: argparse.Namespace) -> int:
    """Stop the session and keep it (suspend)."""
    answer = ctx.api.action("disconnect", args.account_id)
    if ctx.json:
        ctx.emit(answer)
    else:
        ctx.say(
            f"Disconnected {answer.get('accountId')}: its session is stopped and kept; "
            f"`wafleet accounts regenerate-qr {answer.get('accountId')}` resumes it."
        )
    return EXIT_OK


def delete(ctx: Context, args: argparse.Namespace) -> int:
    """Log the device out and wipe its session; asks first on a terminal."""
    account = ctx.api.account(args.account_id)  # a 404 before any question
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"not deleting {account['id']} without a confirmation: pass --yes "
                "(no terminal to ask on)"
            )
        question = (
            f"Delete {who(account)}, {account['id']}? Its device is logged out and its "
            "session wiped"
        )
        if not Confirm.ask(question, console=ctx.err, default=False):
            ctx.say("Not deleted.")
            return EXIT_FAILED
    answer = ctx.api.delete(str(account["id"]))
    if ctx.json:
        ctx.emit(answer)
    else:
        ctx.say(f"Deleted {who(account)}, {account['id']}.")
    return EXIT_OK
