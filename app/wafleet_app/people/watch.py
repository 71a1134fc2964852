"""Showing an account's QR code or pairing code, and following it until it is linked.

``follow`` polls the account (``GET /api/whatsapp/accounts/{id}``) and keeps one live
status line at the bottom of the terminal (phase, reason, the QR countdown to
``qrExpiresAt``); each new QR code (a rotation changes the account's ``qr``) is drawn
above it, with a heading saying the previous one no longer works. It ends on Connected
(exit 0), on a phase that waits for a person (QRTimeout, LoggedOut...: exit 1, saying
what to do), or on Ctrl-C (exit 130, the account left as it is).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

from wafleet_app.people.client import Json
from wafleet_app.people.context import Context
from wafleet_app.people.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, ApiFailure
from wafleet_app.people.qr_terminal import qr_size, qr_text
from wafleet_app.people.render import clean, masked, parse_time, phase_text

POLL = 0.5  # seconds between reads of the account
CODE_TIMEOUT = 30.0  # seconds to wait for the first code after an add or a regenerate
# Phases that wait for a person: following them further would wait for ever.
ENDS = {
    "QRTimeout": "nobody scanned the QR code in time",
    "LoggedOut": "the device was logged out",
    "PasskeyRequired": "the phone asks for a passkey, which wafleet cannot answer",
    "Failed": "the account cannot run",
    "Suspended": "the account was disconnected (its session is kept)",
    "Replaced": "another client took over the session",
}
HOW_TO_LINK = "Settings → Linked devices → Link a device"


@dataclass
class Codes:
    """The codes drawn so far: a new one is drawn, the same one is not drawn again.

    After a regenerate-qr, the account's old phase (QRTimeout, Suspended...) is no end
    until the account has left it: the first reads may still show it.
    """

    qr: str | None = None
    pairing_code: str | None = None
    drawn: int = 0
    stale_phase: str | None = None
    stale_until: float = 0.0

    @classmethod
    def after_action(cls, before: Json) -> Codes:
        """What the account showed before an action that asks for new codes."""
        return cls(
            qr=before.get("qr"),
            pairing_code=before.get("pairingCode"),
            stale_phase=str(before.get("phase")),
            stale_until=time.monotonic() + CODE_TIMEOUT,
        )

    def ignores(self, phase: object) -> bool:
        if self.stale_phase is None:
            return False
        if phase != self.stale_phase or time.monotonic() > self.stale_until:
            self.stale_phase = None  # left it (or it never will): phases count again
            return False
        return True


def _draw_qr(ctx: Context, account: Json, code: str, codes: Codes) -> None:
    codes.drawn += 1
    console = ctx.out
    who = f"{clean(account.get('name'))} ({masked(account.get('phone'))})"
    if codes.drawn == 1:
        heading = f"Scan this QR code with WhatsApp on the phone of {who}: {HOW_TO_LINK}"
    else:
        heading = f"New QR code #{codes.drawn} for {who}; the one above no longer works:"
    console.print(Text(heading, style="bold"), soft_wrap=True)
    columns, _ = qr_size(code)
    if console.is_terminal and console.width < columns:
        ctx.warn(
            f"the terminal is {console.width} columns wide and the QR code needs {columns}: "
            "widen it, or open the QR page that `wafleet accounts show ID` links to"
        )
    console.print(qr_text(code))


def show_codes(ctx: Context, account: Json, codes: Codes) -> bool:
    """Draw the account's QR code or pairing code if it is new; True if one was drawn."""
    qr, pairing = account.get("qr"), account.get("pairingCode")
    drawn = False
    if isinstance(qr, str) and qr and qr != codes.qr:
        codes.qr = qr
        if not ctx.json:
            _draw_qr(ctx, account, qr, codes)
        drawn = True
    if isinstance(pairing, str) and pairing and pairing != codes.pairing_code:
        codes.pairing_code = pairing
        if not ctx.json:
            who = f"{clean(account.get('name'))} ({masked(account.get('phone'))})"
            ctx.out.print(
                Text.assemble((f"Pairing code for {who}: ", "bold"), (clean(pairing), "reverse")),
                soft_wrap=True,
            )
            ctx.out.print(
                f"On that phone, in WhatsApp: {HOW_TO_LINK} → Link with phone number "
                "instead, and type the code.",
                markup=False,
                soft_wrap=True,
            )
        drawn = True
    return drawn


def wait_for_code(ctx: Context, account: Json, codes: Codes) -> Json:
    """The account once it shows a code not drawn yet (or is linked, or stuck), polling
    up to CODE_TIMEOUT seconds; the code is drawn."""
    deadline = time.monotonic() + CODE_TIMEOUT
    while True:
        phase = account.get("phase")
        ended = phase == "Connected" or (phase in ENDS and not codes.ignores(phase))
        if show_codes(ctx, account, codes) or ended:
            return account
        if time.monotonic() >= deadline:
            ctx.say(f"no code yet after {CODE_TIMEOUT:g} s (phase {clean(phase)})", "yellow")
            return account
        time.sleep(POLL)
        account = ctx.api.account(str(account["id"]))


@dataclass
class StatusLine:
    """The live line under the codes; rendered anew a few times a second (countdown)."""

    account: Json
    trouble: str | None = None
    spinner: Spinner = field(default_factory=lambda: Spinner("dots"))

    def text(self, now: datetime | None = None) -> Text:
        account = self.account
        line = phase_text(account.get("phase"))
        if account.get("reason"):
            line.append(f" · {clean(account.get('reason'))}")
        expires = parse_time(account.get("qrExpiresAt"))
        if account.get("phase") == "QRReady" and expires is not None:
            left = int((expires - (now or datetime.now(UTC))).total_seconds())
            line.append(
                f" · QR code expires in {left} s" if left > 0 else " · QR code expired",
                style="yellow" if left <= 10 else "",
            )
        if self.trouble:
            line.append(f" · {self.trouble}", style="red")
        line.append(" · Ctrl-C stops waiting", style="dim")
        return line

    def __rich__(self) -> Spinner:
        self.spinner.text = self.text()
        return self.spinner


def report(ctx: Context, account: Json, codes: Codes | None = None) -> int | None:
    """Say how it ended, if it did: the exit code; None while it is still on its way."""
    phase = str(account.get("phase"))
    if codes is not None and codes.ignores(phase):
        return None
    who = f"{clean(account.get('name'))} ({masked(account.get('phone'))})"
    if phase == "Connected":
        ctx.say(f"✓ Connected: {who} is linked as {masked(account.get('jid'))}", "green")
        return EXIT_OK
    if phase in ENDS:
        reason = f" ({clean(account.get('reason'))})" if account.get("reason") else ""
        ctx.say(f"✗ {phase}: {ENDS[phase]}{reason}.", "red")
        ctx.say(f"  To link it again: wafleet accounts regenerate-qr {account['id']} --wait")
        return EXIT_FAILED
    return None


def _poll(ctx: Context, status: StatusLine, codes: Codes) -> int:
    last_seen: tuple[object, object] | None = None
    while True:
        account = status.account
        show_codes(ctx, account, codes)
        seen = (account.get("phase"), account.get("reason"))
        if seen != last_seen and (ctx.json or not ctx.out.is_terminal):
            ctx.say(status.text().plain.removesuffix(" · Ctrl-C stops waiting"))
        last_seen = seen
        ended = report(ctx, account, codes)
        if ended is not None:
            return ended
        time.sleep(POLL)
        try:
            status.account = ctx.api.account(str(account["id"]))
            status.trouble = None
        except ApiFailure as exc:
            if not exc.transient:
                raise
            status.trouble = f"{exc.message}; retrying"


def follow(ctx: Context, account: Json, codes: Codes | None = None) -> int:
    """Follow ``account`` until it is linked or needs a person (see the module doc)."""
    codes = codes or Codes()
    status = StatusLine(account)
    try:
        if ctx.out.is_terminal and not ctx.json:
            with Live(status, console=ctx.out, refresh_per_second=4, transient=True):
                code = _poll(ctx, status, codes)
        else:
            code = _poll(ctx, status, codes)
    except KeyboardInterrupt:
        phase = clean(status.account.get("phase"))
        ctx.say(
            f"Stopped waiting; the account stays as it is ({phase}). "
            f"Follow it again with: wafleet accounts show {status.account['id']} --wait",
            "yellow",
        )
        return EXIT_INTERRUPTED
    if ctx.json:
        ctx.emit(status.account)
    return code
