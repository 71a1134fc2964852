"""A QR code drawn in a terminal, two modules per character, so a phone scans it there.

The ``qrcode`` package builds the matrix (the same error correction as the API's PNG);
each character cell holds two rows of it with the half blocks ``▀ ▄ █`` and a space. The
drawing is styled black on bright white whatever the terminal's own colours: a light
theme and a dark one alike show dark modules on a light ground, as a scanner expects,
and the quiet zone around the code is part of the drawing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import qrcode
from qrcode.constants import ERROR_CORRECT_L
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.style import Style
from rich.text import Text

QUIET_ZONE = 2  # light modules around the code (the API's PNG keeps 2 as well)
STYLE = Style(color="black", bgcolor="bright_white")
# (top dark, bottom dark) -> the character that shows them
BLOCKS = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}
CELLS = {char: cell for cell, char in BLOCKS.items()}

Matrix = list[list[bool]]


def qr_matrix(code: str) -> Matrix:
    """The modules of ``code``'s QR code (True: dark), quiet zone included."""
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_L, border=QUIET_ZONE)
    qr.add_data(code)
    qr.make(fit=True)
    return [[bool(module) for module in row] for row in qr.get_matrix()]


def half_blocks(matrix: Sequence[Sequence[bool]]) -> list[str]:
    """Two matrix rows per line; an odd last row gets a light row below it."""
    width = len(matrix[0]) if matrix else 0
    light = [False] * width
    lines = []
    for top in range(0, len(matrix), 2):
        upper = matrix[top]
        lower = matrix[top + 1] if top + 1 < len(matrix) else light
        lines.append("".join(BLOCKS[(bool(a), bool(b))] for a, b in zip(upper, lower, strict=True)))
    return lines


def read_half_blocks(lines: Sequence[str], height: int | None = None) -> Matrix:
    """The matrix a drawing shows (the inverse of ``half_blocks``); ``height`` drops the
    light row added below an odd last row. What a test reads a terminal's screen with."""
    matrix: Matrix = []
    for line in lines:
        cells = [CELLS[char] for char in line]
        matrix.append([top for top, _ in cells])
        matrix.append([bottom for _, bottom in cells])
    return matrix if height is None else matrix[:height]


def qr_size(code: str) -> tuple[int, int]:
    """(columns, lines) the drawing of ``code`` takes."""
    modules = len(qr_matrix(code))
    return modules, (modules + 1) // 2


@dataclass(frozen=True)
class QrDrawing:
    """The drawing as a rich renderable: never wrapped (a wrapped QR code scans as
    nothing), cropped on a terminal too narrow for it. (A bare ``Text`` would not do:
    ``Console.print`` joins texts into a new one that wraps again.)"""

    code: str

    def text(self) -> Text:
        return Text("\n".join(half_blocks(qr_matrix(self.code))), style=STYLE)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from console.render(self.text(), options.update(no_wrap=True, overflow="crop"))

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width = qr_size(self.code)[0]
        return Measurement(width, width)


def qr_text(code: str) -> QrDrawing:
    return QrDrawing(code)
