"""``wafleet events tail``: the event stream, one line per event (or a JSON line)."""

from __future__ import annotations

import argparse

from wafleet_app.people.client import Json
from wafleet_app.people.context import Context
from wafleet_app.people.errors import EXIT_INTERRUPTED, EXIT_OK, UsageError
from wafleet_app.people.render import event_line
from wafleet_app.people.sse import Follow, follow

EVENT_TYPES = ("message.inbound", "message.status", "account.phase", "account.incident")


def check_types(raw: str | None) -> str | None:
    """``--types`` as the API takes it (comma-separated, known types only)."""
    if raw is None:
        return None
    given = [item.strip() for item in raw.split(",")]
    for item in given:
        if item not in EVENT_TYPES:
            raise UsageError(
                f"--types: '{item[:40]}' is not an event type; use a comma-separated list "
                f"of {', '.join(EVENT_TYPES)}"
            )
    return ",".join(given)


def check_after(raw: str | None) -> str | None:
    if raw is not None and not (raw.startswith("evt_") and raw[4:].isalnum()):
        raise UsageError("--after: an event id looks like evt_..., as `events tail` shows it")
    return raw


def tail(ctx: Context, args: argparse.Namespace) -> int:
    """Follow the stream until Ctrl-C; a dropped connection resumes with Last-Event-ID."""
    what = Follow(
        account_id=args.account, types=check_types(args.types), after=check_after(args.after)
    )

    def on_event(event: Json) -> None:
        if ctx.json:
            ctx.emit(event)
        else:
            line = event_line(event)
            line.append(f"  {event.get('id')}", style="dim")
            ctx.out.print(line, soft_wrap=True)

    def on_notice(message: str) -> None:
        ctx.err.print(f"wafleet: {message}", style="yellow", markup=False, soft_wrap=True)

    def on_open() -> None:
        if not ctx.json:
            start = f"after {what.after}" if what.after else "from now on"
            ctx.say(f"Following the events {start} (Ctrl-C stops).", "dim")

    try:
        follow(ctx.api, what, on_event, on_notice, on_open=on_open, max_events=args.count)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return EXIT_OK
