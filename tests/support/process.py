"""Run ``wafleet standalone`` as a real process and talk to it over HTTP."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")
TOKEN = "e2e-admin-token-0123456789"


_HANDED_OUT: set[int] = set()
_LOWEST_PORT = 10000


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _port_slice(low: int, high: int) -> tuple[int, int]:
    """This test process's share of [low, high]: pytest-xdist workers get disjoint slices,
    so two workers never hand out the same port (each remembers only its own)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    index = int(worker) if worker.isdigit() else 0
    if count <= 1 or index >= count:
        return low, high
    size = (high - low + 1) // count
    return low + index * size, low + (index + 1) * size - 1


def free_port() -> int:
    """A loopback port no one holds, never handed out before by this test run.

    It is picked below the kernel's ephemeral range, which ``bind(0)`` and every outgoing
    connection draw from: a port from there can be taken by anyone between this call and
    the moment the process under test binds it, and ``bind(0)`` gives the same port again
    to the next caller when the first has not bound it yet.
    """
    low, high = _port_slice(_LOWEST_PORT, _ephemeral_low() - 1)
    for _ in range(1000):
        port = random.randint(low, high)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise AssertionError(f"no free loopback port between {low} and {high}")


def wait_until(
    what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.2
) -> T:
    """Call ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


@dataclass
class Standalone:
    data_dir: Path
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    transport: str = "sim"
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        )

    def start(self, ready_timeout: float = 30) -> None:
        env = {**os.environ, "WAFLEET_ADMIN_TOKEN": TOKEN, **self.env}
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-{time.time_ns()}.log"
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "wafleet_app", "standalone", "--transport", self.transport),
                *("--port", str(self.port), "--data-dir", str(self.data_dir)),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"wafleet exited early:\n{self.log()}")
            try:
                return httpx.get(self.url + "/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until("the standalone process to be ready", ready, ready_timeout)

    def log(self) -> str:
        return "" if self.log_path is None else self.log_path.read_text(errors="replace")[-5000:]

    def stop(self, timeout: float = 15) -> tuple[int, float]:
        """SIGTERM; return (exit code, seconds it took to exit)."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"wafleet did not exit within {timeout} s:\n{self.log()}"
            ) from None
        finally:
            elapsed = time.monotonic() - started
        self.proc = None
        return code, elapsed

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def rss_mib(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")


def phones(count: int, base: int = 40_712_000_000) -> list[str]:
    """Valid Romanian mobile numbers, distinct."""
    return [f"+{base + i * 7 + 1}" for i in range(count)]


def accounts_by_id(client: httpx.Client) -> dict[str, dict[str, Any]]:
    response = client.get("/api/whatsapp/accounts")
    response.raise_for_status()
    return {a["id"]: a for a in response.json()["accounts"]}


def summary(client: httpx.Client) -> dict[str, int]:
    response = client.get("/api/status/dashboard")
    response.raise_for_status()
    result: dict[str, int] = response.json()["summary"]
    return result


def onboard(client: httpx.Client, numbers: list[str], timeout: float = 90) -> dict[str, str]:
    """The legacy batch flow: add each account, show its QR, scan it. Returns phone -> id."""
    ids: dict[str, str] = {}
    for i, phone in enumerate(numbers, 1):
        response = client.post(
            "/api/whatsapp/add-account", json={"name": f"Account {i}", "phone": phone}
        )
        assert response.status_code == 200, response.text
        ids[phone] = response.json()["account"]["id"]
    scanned: set[str] = set()

    def scan_ready() -> bool:
        for account_id, account in accounts_by_id(client).items():
            if account_id in scanned or not account["qr"]:
                continue
            page = client.get(f"/api/whatsapp/qr/{account_id}")
            assert page.status_code == 200 and "data:image/png;base64," in page.text
            scan = client.post("/sim/scan", json={"qr": account["qr"], "phone": account["phone"]})
            if scan.status_code == 200:
                scanned.add(account_id)
        return len(scanned) == len(numbers)

    wait_until("every QR to be scanned", scan_ready, timeout, interval=0.3)
    return ids


@contextlib.contextmanager
def sim_service() -> Iterator[str]:
    """``wafleet sim`` as its own process on a free loopback port; yields its URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "wafleet_app", "sim", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(url + "/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until("the sim service", up, 20)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
