"""The QR code drawn with half blocks: read back, it is the very matrix qrcode built."""

from __future__ import annotations

import qrcode
from hypothesis import given
from hypothesis import strategies as st
from qrcode.constants import ERROR_CORRECT_L
from rich.console import Console

from wafleet_app.people.qr_terminal import (
    QUIET_ZONE,
    half_blocks,
    qr_matrix,
    qr_size,
    qr_text,
    read_half_blocks,
)

CODE = "2@" + "A" * 24 + "," + "B" * 43 + "," + "C" * 43 + "," + "D" * 43


@st.composite
def matrices(draw: st.DrawFn) -> list[list[bool]]:
    width = draw(st.integers(1, 30))
    height = draw(st.integers(1, 30))
    row = st.lists(st.booleans(), min_size=width, max_size=width)
    return draw(st.lists(row, min_size=height, max_size=height))


@given(matrices())
def test_the_drawing_reads_back_as_the_matrix(matrix: list[list[bool]]) -> None:
    lines = half_blocks(matrix)
    assert len(lines) == (len(matrix) + 1) // 2
    assert all(len(line) == len(matrix[0]) for line in lines)
    assert set("".join(lines)) <= set(" ▀▄█")
    assert read_half_blocks(lines, len(matrix)) == matrix
    if len(matrix) % 2:  # the row added below an odd last row is light
        assert not any(read_half_blocks(lines)[-1])


def test_the_matrix_is_qrcodes_with_its_quiet_zone() -> None:
    reference = qrcode.QRCode(error_correction=ERROR_CORRECT_L, border=QUIET_ZONE)
    reference.add_data(CODE)
    reference.make(fit=True)
    matrix = qr_matrix(CODE)
    assert matrix == [[bool(m) for m in row] for row in reference.get_matrix()]
    assert not any(matrix[0]) and not any(row[0] for row in matrix)  # light around
    assert qr_size(CODE) == (len(matrix), (len(matrix) + 1) // 2)


def test_a_terminal_shows_dark_on_light_and_the_text_reads_back() -> None:
    console = Console(record=True, width=120, force_terminal=True, color_system="standard")
    console.print(qr_text(CODE))
    shown = console.export_text(styles=False, clear=False).rstrip("\n").split("\n")
    assert read_half_blocks(shown, len(qr_matrix(CODE))) == qr_matrix(CODE)
    styled = console.export_text(styles=True)
    assert "\x1b[30;107m" in styled  # black on bright white, whatever the theme


def test_a_narrow_terminal_crops_rather_than_wraps() -> None:
    console = Console(record=True, width=20)
    console.print(qr_text(CODE))
    shown = console.export_text().rstrip("\n").split("\n")
    assert len(shown) == qr_size(CODE)[1]  # as many lines: no line wrapped in two
