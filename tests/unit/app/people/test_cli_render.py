"""What the terminal shows of the server's text: safe to print, and one line per account."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console

from wafleet_app.people.render import accounts_table, ago, clean, event_line


def test_escape_sequences_in_server_text_are_shown_not_obeyed() -> None:
    assert clean("Hi \x1b[2J\x1b]0;owned\x07 there\nnext") == "Hi ?[2J?]0;owned? there⏎next"
    assert clean("a\u202eb") == "a?b"  # a bidi override cannot reorder what follows
    line = event_line(
        {
            "type": "message.inbound",
            "accountId": "wa-a",
            "seq": 3,
            "data": {"from": "40799000001@s.whatsapp.net", "body": "\x1b[31mred"},
        }
    )
    assert "\x1b" not in line.plain and "4079****01" in line.plain


def test_ages() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert ago("2026-01-01T11:59:48.000Z", now) == "12 s ago"
    assert ago("2026-01-01T09:00:00Z", now) == "3 h ago"
    assert ago(None, now) == "-"


def test_one_line_per_account_and_the_id_never_cut() -> None:
    account = {
        "id": "wa-abcdefghijklmnopabcd",
        "name": "A very long name for a shop " * 3,
        "phone": "+40712345678",
        "phase": "PairingCodeReady",
        "reason": "a long reason " * 10,
        "reconnects": 3,
    }
    for width in (80, 120, 200):
        console = Console(record=True, width=width)
        console.print(accounts_table([account, {**account, "id": "wa-2"}], width))
        lines = console.export_text().splitlines()
        rows = [line for line in lines if "+407****78" in line]
        assert len(rows) == 2, lines
        assert "wa-abcdefghijklmnopabcd" in rows[0] and "PairingCodeReady" in rows[0]
        assert "+40712345678" not in console.export_text()
