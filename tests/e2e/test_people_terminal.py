"""The replay terminal of the CLI tests (``support.people_cli``), checked against rich
itself: what rich draws, live lines and QR codes included, reads back as it was."""

from __future__ import annotations

import pytest
from rich.console import Console
from rich.live import Live
from rich.text import Text

from support.people_cli import Terminal, drawn, matrix_of, rich_output
from wafleet_app.people.qr_terminal import qr_text

pytestmark = pytest.mark.cli


def test_the_replay_keeps_what_is_printed_above_a_live_line_and_drops_the_line() -> None:
    def draw(console: Console) -> None:
        with Live(Text("waiting 1"), console=console, transient=True, auto_refresh=False) as live:
            console.print("first")
            live.update(Text("waiting 2"), refresh=True)
            console.print("second")

    assert Terminal(rich_output(draw)).text().strip() == "first\nsecond"


def test_the_replay_of_a_drawn_qr_code_reads_back_as_its_matrix() -> None:
    code = "2@" + "x" * 40

    def draw(console: Console) -> None:
        console.print("Scan this QR code with WhatsApp")
        console.print(qr_text(code))

    matrix = matrix_of(code)
    assert drawn(Terminal(rich_output(draw)), len(matrix)) == [matrix]
