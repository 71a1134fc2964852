"""The pseudo-terminal that the tests of the ``wafleet`` commands for people run them in,
the small terminal that replays what they wrote (what a person would see), and the
fixtures those tests share: one standalone process per test module, a CLI runner per test.

``Cli`` starts a command in a pty of COLS x ROWS (the pty its controlling terminal, so a
typed Ctrl-C is a SIGINT); ``Terminal`` replays the output (cursor moves and line
erasures of rich's live lines included) into the lines left on the screen; ``drawn``
reads the QR codes drawn there back to their modules. ``tests/e2e/test_people_terminal``
checks that replay against rich itself; ``test_people_cli`` and ``test_people_flows`` use
it on real runs (import the fixtures ``server``, ``cli`` and ``api`` from here).
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import pty
import re
import socket
import struct
import subprocess
import sys
import termios
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import qrcode
from qrcode.constants import ERROR_CORRECT_L
from rich.console import Console

from support.process import TOKEN, Standalone, free_port, wait_until
from wafleet_app.people.qr_terminal import read_half_blocks

COLS, ROWS = 120, 50
# What would change what the command shows: our own settings, and the variables that
# make rich ignore the terminal's size or colours.
OVERRIDES = ("WAFLEET_", "NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES", "TTY_", "TERM")

CONTACT = "+40799000001"
# Quick QR codes: a rotation within seconds, and the QR-loop guard (QRTimeout) after
# three unscanned codes, about 8 s.
SERVER_ENV = {
    "WAFLEET_SIM_QR_FIRST_TTL": "4",
    "WAFLEET_SIM_QR_TTL": "2",
    "WAFLEET_QR_MAX_CYCLES": "3",
    "WAFLEET_EVENT_POLL": "0.25",
}
_CSI = re.compile(r"\x1b\[([0-9;?]*)([@-~])")
_OSC = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
Matrix = list[list[bool]]


class Terminal:
    """The lines a terminal shows after ``text`` (scrollback included): printable
    characters, CR, LF, and the CSI moves and erasures rich writes."""

    def __init__(self, text: str) -> None:
        self.lines: list[list[str]] = [[]]
        self.row = self.col = 0
        index = 0
        while index < len(text):
            char = text[index]
            if char == "\x1b":
                match = _CSI.match(text, index) or _OSC.match(text, index)
                if match is not None and match.re is _CSI:
                    self._csi(match.group(1), match.group(2))
                index = match.end() if match is not None else index + 2
                continue
            if char == "\n":
                self.row, self.col = self.row + 1, 0
            elif char == "\r":
                self.col = 0
            elif char >= " ":
                self._put(char)
            index += 1

    def _line(self) -> list[str]:
        while len(self.lines) <= self.row:
            self.lines.append([])
        return self.lines[self.row]

    def _put(self, char: str) -> None:
        line = self._line()
        line.extend(" " * (self.col + 1 - len(line)))
        line[self.col] = char
        self.col += 1

    def _csi(self, params: str, final: str) -> None:
        number = int(params) if params.isdigit() else 1
        if final == "A":
            self.row = max(0, self.row - number)
        elif final == "B":
            self.row += number
        elif final == "G":
            self.col = number - 1
        elif final == "K":  # erase in line: to its end, to the cursor, all of it
            line = self._line()
            if params in ("", "0"):
                del line[self.col :]
            else:
                line[: self.col + 1 if params == "1" else len(line)] = " " * (
                    min(len(line), self.col + 1) if params == "1" else len(line)
                )
        elif final == "J" and params in ("", "0"):
            del self._line()[self.col :]
            del self.lines[self.row + 1 :]

    def text(self) -> str:
        return "\n".join("".join(line).rstrip() for line in self.lines)


@dataclass
class Session:
    """One ``wafleet`` command in a pseudo-terminal of COLS x ROWS."""

    proc: subprocess.Popen[bytes]
    master: int
    raw: bytearray = field(default_factory=bytearray)
    reader: threading.Thread | None = None

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the command exited and the terminal closed
                return
            if not chunk:
                return
            self.raw.extend(chunk)

    def screen(self) -> Terminal:
        return Terminal(bytes(self.raw).decode("utf-8", "replace"))

    def text(self) -> str:
        return self.screen().text()

    def wait_for(self, what: str, timeout: float = 30) -> str:
        def shown() -> str | None:
            text = self.text()
            if what in text:
                return text
            if self.proc.poll() is not None:
                raise AssertionError(f"exited {self.proc.returncode} before {what!r}:\n{text}")
            return None

        try:
            return wait_until(f"{what!r} on the screen", shown, timeout, interval=0.1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the screen:\n{self.text()}") from None

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def exit_code(self, timeout: float = 60) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running after {timeout} s:\n{self.text()}") from None
        if self.reader is not None:
            self.reader.join(10)
        return code


def _controlling_terminal() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # so Ctrl-C typed on it is a SIGINT


@dataclass
class Cli:
    server: Standalone
    home: Path
    sessions: list[Session] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith(OVERRIDES)}
        base = {"WAFLEET_URL": self.server.url, "WAFLEET_KEY": TOKEN, "TERM": "xterm-256color"}
        return {**keep, "HOME": str(self.home), "XDG_CONFIG_HOME": "", **base, **extra}

    def start(self, *args: str, env: dict[str, str] | None = None) -> Session:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        proc = subprocess.Popen(
            [sys.executable, "-m", "wafleet_app", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=self.env() if env is None else env,
            start_new_session=True,
            preexec_fn=_controlling_terminal,  # noqa: PLW1509 (only an ioctl before exec)
        )
        os.close(slave)
        session = Session(proc, master)
        session.reader = threading.Thread(target=session._read, daemon=True)
        session.reader.start()
        self.sessions.append(session)
        return session

    def run(self, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
        """Run to its end: (exit code, the screen's text)."""
        session = self.start(*args, env=env)
        return session.exit_code(), session.text()

    def close(self) -> None:
        for session in self.sessions:
            if session.proc.poll() is None:
                session.proc.kill()
                session.proc.wait()
            os.close(session.master)


def account(api: httpx.Client, account_id: str) -> dict[str, Any]:
    return dict(api.get(f"/api/whatsapp/accounts/{account_id}").json()["account"])


def account_by_phone(api: httpx.Client, phone: str) -> dict[str, Any] | None:
    accounts = api.get("/api/whatsapp/accounts", params={"qr": "raw"}).json()["accounts"]
    return next((a for a in accounts if a["phone"] == phone), None)


def scan(api: httpx.Client, account_id: str) -> Callable[[], bool]:
    """A probe that scans the account's current QR code (as a phone would) until linked."""

    def probe() -> bool:
        current = account(api, account_id)
        if current["phase"] == "Connected":
            return True
        if current["qr"]:
            api.post("/sim/scan", json={"qr": current["qr"], "phone": current["phone"]})
        return False

    return probe


def link(api: httpx.Client, phone: str, name: str) -> str:
    added = api.post("/api/whatsapp/add-account", json={"phone": phone, "name": name})
    account_id: str = added.json()["account"]["id"]
    wait_until(f"{name} linked", scan(api, account_id), 60, interval=0.2)
    return account_id


def matrix_of(code: str) -> Matrix:
    made = qrcode.QRCode(error_correction=ERROR_CORRECT_L, border=2)
    made.add_data(code)
    made.make(fit=True)
    return [[bool(m) for m in row] for row in made.get_matrix()]


def drawn(screen: Terminal, size: int) -> list[Matrix]:
    """Every QR code drawn on the screen, read back from its half blocks."""
    lines = ["".join(line) for line in screen.lines]
    found = []
    for index, line in enumerate(lines):
        if line.startswith(("Scan this QR code", "New QR code #")):
            block = lines[index + 1 : index + 1 + (size + 1) // 2]
            with contextlib.suppress(KeyError):
                found.append(read_half_blocks([row[:size].ljust(size) for row in block], size))
    return found


class Relay:
    """A TCP relay to the server that the test can cut (every connection dropped, new
    ones refused) and mend: the network drop that ``events tail`` must survive."""

    def __init__(self, target: int) -> None:
        self.port = free_port()
        self.target = target
        self.blocked = False
        self.open: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.listener.accept()
                if self.blocked:
                    conn.close()
                    continue
                upstream = socket.create_connection(("127.0.0.1", self.target))
                self.open += [conn, upstream]
                for a, b in ((conn, upstream), (upstream, conn)):
                    threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.blocked = True
        for sock in self.open:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self.open.clear()

    def close(self) -> None:
        self.cut()
        self.listener.close()


def rich_output(draw: Callable[[Console], None]) -> str:
    """What rich writes to a terminal COLS wide for ``draw``."""
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=COLS, height=ROWS)
    draw(console)
    return out.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    proc = Standalone(data_dir=tmp_path_factory.mktemp("people") / "data", env=SERVER_ENV)
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def cli(server: Standalone, tmp_path: Path) -> Iterator[Cli]:
    runner = Cli(server, tmp_path / "home")
    runner.home.mkdir()
    yield runner
    runner.close()


@pytest.fixture(scope="module")
def api(server: Standalone) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client
