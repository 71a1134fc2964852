"""How accounts, messages and events look in a terminal (rich tables and lines).

Everything the server hands over (names, message bodies, reasons) goes through
``clean``: a message body holding terminal escape sequences must show as text, never
move the cursor or retitle the window. Phones are masked in tables and event lines, as
the dashboard does; ``accounts show`` gives one account in full.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from wafleet.core.phones import mask_phone

Json = dict[str, Any]
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
PHASE_STYLES = {
    "Connected": "green",
    "QRReady": "yellow",
    "PairingCodeReady": "yellow",
    "Connecting": "cyan",
    "Pending": "cyan",
    "Reconnecting": "cyan",
    "Moving": "cyan",
    "Suspended": "dim",
    "LoggedOut": "red",
    "QRTimeout": "red",
    "PasskeyRequired": "red",
    "Replaced": "red",
    "Failed": "bold red",
}


def clean(value: object, one_line: bool = True) -> str:
    """Server text made safe to print: control and bidi characters shown as '?', and
    (``one_line``) line ends as '⏎'."""
    text = "" if value is None else str(value)
    if one_line:
        text = text.replace("\r\n", "⏎").replace("\n", "⏎").replace("\t", " ")
    return _CONTROL.sub("?", text)


def masked(phone: object) -> str:
    return mask_phone(str(phone)) if phone else "-"


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def ago(value: object, now: datetime | None = None) -> str:
    """'12 s ago', '5 min ago', '3 h ago', '2 d ago'; '-' for no time."""
    moment = parse_time(value)
    if moment is None:
        return "-"
    seconds = max(0, int(((now or datetime.now(UTC)) - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def phase_text(phase: object) -> Text:
    name = clean(phase) or "?"
    return Text(name, style=PHASE_STYLES.get(name, ""))


def _account_row(account: Json, now: datetime | None) -> list[str | Text]:
    shard = account.get("shard")
    return [
        clean(account.get("id")),
        clean(account.get("name")),
        masked(account.get("phone")),
        phase_text(account.get("phase")),
        Text(clean(account.get("reason") or "-")),
        "-" if shard is None else clean(shard),
        ago(account.get("lastMessageAt"), now),
        str(account.get("reconnects", 0)),
    ]


# (header, shrinks): the columns that shrink (with an ellipsis) when the terminal is
# narrow; the others keep their width, so an id or a phase is never cut.
_COLUMNS = (
    ("ID", False),
    ("Name", True),
    ("Phone", False),
    ("Phase", False),
    ("Reason", True),
    ("Shard", False),
    ("Last message", False),
    ("Reconnects", False),
)


def _flexible_widths(space: int, wanted: list[int]) -> list[int]:
    """Share ``space`` among the shrinking columns, none above what it wants."""
    widths = [6] * len(wanted)
    space -= sum(widths)
    while space > 0 and any(w < cap for w, cap in zip(widths, wanted, strict=True)):
        for index, cap in enumerate(wanted):
            if space > 0 and widths[index] < cap:
                widths[index] += 1
                space -= 1
    return widths


# Left out, in this order, while the terminal is too narrow for every column.
_DROPPABLE = ("Shard", "Reconnects", "Last message")


def accounts_table(
    accounts: Sequence[Json], width: int = 200, now: datetime | None = None
) -> Table:
    """One line per account for a terminal ``width`` wide: the name and the reason are
    cut short (…) first, then the least needed columns left out; an id, a phone or a
    phase is never cut."""
    rows = [_account_row(account, now) for account in accounts]
    widest = {
        header: max([len(header), *(len(str(row[index])) for row in rows)])
        for index, (header, _) in enumerate(_COLUMNS)
    }
    shown = [header for header, _ in _COLUMNS]
    shrinking = [header for header, shrinks in _COLUMNS if shrinks]

    def space() -> int:  # for the shrinking columns: each column takes 2 more
        fixed = sum(widest[h] for h in shown if h not in shrinking)
        return width - fixed - 2 * len(shown)

    for header in _DROPPABLE:
        if space() >= 6 * len(shrinking):
            break
        shown.remove(header)
    flexible = dict(
        zip(
            shrinking,
            _flexible_widths(space(), [min(widest[h], 40) for h in shrinking]),
            strict=True,
        )
    )
    count = f"{len(accounts)} account{'s' if len(accounts) != 1 else ''}"
    table = Table(
        title=count,
        box=box.SIMPLE_HEAD,
        title_justify="left",
        show_edge=False,
        padding=(0, 1, 0, 0),
    )
    for header in shown:
        table.add_column(
            header,
            width=flexible.get(header, widest[header]),
            no_wrap=True,
            overflow="ellipsis",
            justify="right" if header == "Reconnects" else "left",
        )
    positions = [index for index, (header, _) in enumerate(_COLUMNS) if header in shown]
    for row in rows:
        table.add_row(*(row[index] for index in positions))
    return table


def account_details(account: Json, now: datetime | None = None) -> Table:
    """One account in full (its phone unmasked: the person asked for this one)."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    last = account.get("lastDisconnect") or {}
    rows: list[tuple[str, Text | str]] = [
        ("ID", clean(account.get("id"))),
        ("Name", clean(account.get("name"))),
        ("Phone", clean(account.get("phone"))),
        ("Phase", phase_text(account.get("phase"))),
        ("Reason", Text(clean(account.get("reason") or "-"))),
        ("Login", clean(account.get("login") or "qr")),
        ("Shard", clean(account.get("shard") if account.get("shard") is not None else "-")),
        ("Linked as", clean(account.get("jid") or "-")),
        ("Created", f"{clean(account.get('createdAt') or '-')}"),
        ("Connected", ago(account.get("connectedAt"), now)),
        ("Last message", ago(account.get("lastMessageAt"), now)),
        ("Reconnects", str(account.get("reconnects", 0))),
    ]
    if last:
        rows.append(
            ("Last disconnect", clean(f"{last.get('reason')} ({ago(last.get('at'), now)})"))
        )
    if account.get("suspended"):
        rows.append(("Suspended", "yes (regenerate-qr resumes it)"))
    for label, value in rows:
        grid.add_row(label, value)
    return grid


def outbox_details(item: Json) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for label, key in (
        ("Outbox item", "id"),
        ("Account", "accountId"),
        ("To", "toJid"),
        ("Status", "status"),
        ("Failed attempts", "attemptCount"),
        ("WhatsApp id", "providerMessageId"),
        ("Error", "error"),
    ):
        value = item.get(key)
        if key == "toJid" and value is not None:
            value = masked(value)
        if value is not None:
            grid.add_row(label, Text(clean(value), style=_status_style(value, key)))
    return grid


def _status_style(value: object, key: str) -> str:
    if key != "status":
        return ""
    return {"sent": "green", "delivered": "green", "read": "green"}.get(str(value), "yellow")


def _message_time(message: Json) -> str:
    return str(message.get("tsClient") or message.get("createdAt") or "")


def threads_view(threads: Sequence[Json], now: datetime | None = None) -> RenderableType:
    """Each thread (newest first) with its messages, oldest to newest, as a chat reads."""
    if not threads:
        return Text("no messages")
    parts: list[RenderableType] = []
    for thread in threads:
        table = Table(title=f"with {masked(thread.get('clientJid'))}", title_justify="left")
        table.add_column("When", no_wrap=True)
        table.add_column("", no_wrap=True)
        table.add_column("Status", no_wrap=True)
        table.add_column("Text", overflow="fold")
        for message in sorted(thread.get("messages") or [], key=_message_time):
            inbound = message.get("direction") in ("in", "inbound")
            table.add_row(
                ago(message.get("tsClient") or message.get("createdAt"), now),
                Text("←", style="cyan") if inbound else Text("→", style="magenta"),
                clean(message.get("status") or "-"),
                Text(clean(message.get("body"), one_line=False)),
            )
        parts.append(table)
    return Group(*parts)


def event_line(event: Json) -> Text:
    """One line per event: time, type, account, seq and what happened."""
    data = event.get("data") or {}
    kind = str(event.get("type", "?"))
    moment = parse_time(event.get("at"))
    when = moment.astimezone().strftime("%H:%M:%S") if moment else "--:--:--"
    line = Text(f"{when}  ")
    line.append(f"{clean(kind):<16}", style="bold")
    line.append(f" {clean(event.get('accountId'))} #{clean(event.get('seq'))}  ")
    if kind == "message.inbound":
        line.append(f"from {masked(data.get('from'))}: ", style="cyan")
        line.append(clean(data.get("body")))
    elif kind == "message.status":
        line.append(f"to {masked(data.get('to'))} ")
        line.append(clean(data.get("status")), style=_status_style(data.get("status"), "status"))
        if data.get("error"):
            line.append(f" ({clean(data.get('error'))})", style="red")
    elif kind == "account.phase":
        line.append_text(phase_text(data.get("phase")))
        if data.get("reason"):
            line.append(f" ({clean(data.get('reason'))})")
    else:
        line.append(f"{clean(data.get('type'))} {clean(data.get('severity'))}", style="red")
    return line
