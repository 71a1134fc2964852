"""``wafleet send`` (through the outbox, optionally followed to its end) and
``wafleet messages`` (an account's threads)."""

from __future__ import annotations

import argparse
import time

from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

from wafleet.core.phones import InvalidPhone, normalize_recipient
from wafleet_app.people.client import Json
from wafleet_app.people.context import Context
from wafleet_app.people.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    ApiFailure,
    UsageError,
)
from wafleet_app.people.render import clean, outbox_details, threads_view

POLL = 0.5
ENDED = frozenset({"sent", "delivered", "read", "failed", "ambiguous"})
FAILED = frozenset({"failed", "ambiguous"})


def _follow_item(ctx: Context, item: Json) -> Json:
    """The outbox item once it is sent or has failed (Ctrl-C: KeyboardInterrupt)."""
    spinner = Spinner("dots", text="")
    live = Live(spinner, console=ctx.out, transient=True, refresh_per_second=4)
    with live if ctx.out.is_terminal and not ctx.json else _Quiet():
        while item.get("status") not in ENDED:
            attempts = item.get("attemptCount", 0)
            spinner.update(text=Text(f"{clean(item.get('status'))} · failed attempts {attempts}"))
            time.sleep(POLL)
            try:
                item = ctx.api.outbox(str(item["id"]))
            except ApiFailure as exc:
                if not exc.transient:
                    raise
                spinner.update(text=Text(f"{exc.message}; retrying", style="red"))
    return item


class _Quiet:
    """No live line (not a terminal, or JSON on stdout)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


def send(ctx: Context, args: argparse.Namespace) -> int:
    """Send a text; print its outbox item (--wait: once it is sent or has failed)."""
    answer = ctx.api.send(args.account_id, args.to, args.text, args.idempotency_key)
    wait = bool(args.wait)
    if answer.get("duplicate") and not ctx.json:
        ctx.say("A repeat of an earlier request with this idempotency key: nothing new sent.")
    try:
        item = ctx.api.outbox(str(answer["outboxId"]))
    except ApiFailure as exc:
        if exc.status != 403:
            raise
        # A key with the send scope but not read: the message went; say what is known.
        ctx.warn("this key cannot read the outbox (no 'read' scope): the send's answer only")
        item = {
            "id": answer["outboxId"],
            "status": answer.get("status"),
            "providerMessageId": answer.get("messageId") if not answer.get("queued") else None,
        }
        wait = False
    if wait:
        try:
            item = _follow_item(ctx, item)
        except KeyboardInterrupt:
            ctx.say(
                f"Stopped waiting; the message stays in the outbox as {item['id']} "
                f"({clean(item.get('status'))}): the same send with --idempotency-key "
                f"{clean(item.get('idempotencyKey'))} shows it again without sending twice",
                "yellow",
            )
            return EXIT_INTERRUPTED
    if ctx.json:
        ctx.emit(item)
    else:
        ctx.out.print(outbox_details(item))
    return EXIT_FAILED if item.get("status") in FAILED else EXIT_OK


def thread_of(account_id: str, contact: str | None) -> str | None:
    """The thread id of ``account_id`` with ``contact`` (a phone with its country code, or
    a JID), as the API names threads."""
    if not contact:
        return None
    try:
        jid = normalize_recipient(contact)
    except InvalidPhone as exc:
        raise UsageError(f"--contact: {exc}") from None
    return f"{account_id}__{jid}"


def messages(ctx: Context, args: argparse.Namespace) -> int:
    """An account's threads, newest first, each with its newest messages."""
    account = ctx.api.account(args.account_id)  # its id as threads are kept, or a 404
    account_id = str(account["id"])
    threads = ctx.api.threads(account_id, thread_of(account_id, args.contact), args.limit)
    if ctx.json:
        ctx.emit(threads)
    else:
        ctx.out.print(threads_view(threads))
    return EXIT_OK
