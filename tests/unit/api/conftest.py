"""Fixtures for the API tests: the standalone app over SQLite stores and the in-process sim.

Every client is a ``TestClient`` entered as a context manager, so the app's lifespan
(start and stop of the backend, the session manager and the simulated WhatsApp) runs.
Every wait is a bounded poll that fails with what it was waiting for.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx
import pytest

from wafleet.core.settings import Settings
from wafleet.core.token import AdminToken
from wafleet_app.standalone import create_standalone_app

with warnings.catch_warnings():
    # Starlette 1.x warns once, at import, that its test client will move to httpx2.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

ADMIN_TOKEN = "api-tests-admin-token-0123456789abcdef"
MAX_BODY_BYTES = 16 * 1024  # below the sim's own 64 KiB, so a wrong limit would show
WAIT_SECONDS = 10.0
POLL_INTERVAL = 0.02

T = TypeVar("T")


class ClientFactory(Protocol):
    def __call__(
        self,
        *,
        data_dir: Path | None = None,
        qr_first_ttl: float = 60.0,
        qr_ttl: float = 20.0,
        raise_server_exceptions: bool = True,
        start: bool = True,
        **overrides: Any,
    ) -> TestClient: ...


class Anonymous(Protocol):
    def __call__(self, method: str, url: str, **kwargs: Any) -> httpx.Response: ...


# ----- polling and account helpers (exposed to the tests through fixtures) ----------------
def wait_until(
    what: str,
    probe: Callable[[], T | None],
    timeout: float = WAIT_SECONDS,
    interval: float = POLL_INTERVAL,
) -> T:
    """Poll ``probe`` until it returns something truthy; return it or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}; last value: {last!r}")
        time.sleep(interval)


def get_account(client: TestClient, account_id: str) -> dict[str, Any]:
    response = client.get(f"/api/whatsapp/accounts/{account_id}")
    assert response.status_code == 200, response.text
    account: dict[str, Any] = response.json()["account"]
    return account


def wait_account(
    client: TestClient,
    account_id: str,
    predicate: Callable[[dict[str, Any]], bool],
    what: str,
    timeout: float = WAIT_SECONDS,
) -> dict[str, Any]:
    """Poll GET /api/whatsapp/accounts/:id until ``predicate`` holds for the account."""
    deadline = time.monotonic() + timeout
    while True:
        last = get_account(client, account_id)
        if predicate(last):
            return last
        if time.monotonic() >= deadline:
            status = {k: last.get(k) for k in ("status", "phase", "reason", "qr", "pairingCode")}
            pytest.fail(f"timed out after {timeout:g} s waiting for {account_id} {what}: {status}")
        time.sleep(POLL_INTERVAL)


def wait_status(client: TestClient, account_id: str, status: str) -> dict[str, Any]:
    return wait_account(client, account_id, lambda a: a["status"] == status, f"status {status!r}")


def add_account(client: TestClient, phone: str, **fields: Any) -> dict[str, Any]:
    response = client.post("/api/whatsapp/add-account", json={"phone": phone, **fields})
    assert response.status_code in (200, 201), response.text
    account: dict[str, Any] = response.json()["account"]
    return account


def wait_qr(client: TestClient, account_id: str) -> dict[str, Any]:
    """The account once its raw QR string (``qr``) is shown."""
    return wait_account(client, account_id, lambda a: bool(a["qr"]), "to show a QR code")


def scan(client: TestClient, qr: str, phone: str) -> dict[str, Any]:
    response = client.post("/sim/scan", json={"qr": qr, "phone": phone})
    assert response.status_code == 200, response.text
    linked: dict[str, Any] = response.json()
    return linked


def onboard(client: TestClient, phone: str, **fields: Any) -> dict[str, Any]:
    """Add an account (idempotent), scan its QR with the simulated phone, wait until connected."""
    account = add_account(client, phone, **fields)
    shown = wait_qr(client, account["id"])
    scan(client, shown["qr"], phone)
    return wait_status(client, account["id"], "connected")


# ----- fixtures ---------------------------------------------------------------------------
@pytest.fixture
def admin_token() -> str:
    return ADMIN_TOKEN


@pytest.fixture
def make_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ClientFactory]:
    """Build a standalone app (sim transport, SQLite in ``tmp_path``) and a client for it.

    The client carries the admin token; it is entered (lifespan running) unless
    ``start=False``, in which case the test enters it itself.
    """
    counter = 0
    with ExitStack() as stack:

        def factory(
            *,
            data_dir: Path | None = None,
            qr_first_ttl: float = 60.0,
            qr_ttl: float = 20.0,
            raise_server_exceptions: bool = True,
            start: bool = True,
            **overrides: Any,
        ) -> TestClient:
            nonlocal counter
            counter += 1
            # sim_config_from_env reads os.environ when the backend is built.
            monkeypatch.setenv("WAFLEET_SIM_QR_FIRST_TTL", str(qr_first_ttl))
            monkeypatch.setenv("WAFLEET_SIM_QR_TTL", str(qr_ttl))
            monkeypatch.delenv("WAFLEET_SIM_TEMP_BAN_SECONDS", raising=False)
            values: dict[str, Any] = {
                "data_dir": data_dir or tmp_path / f"data-{counter}",
                "transport": "sim",
                "admin_token": ADMIN_TOKEN,
                "start_rate": 100.0,
                "start_burst": 100,
                "max_body_bytes": MAX_BODY_BYTES,
                **overrides,
            }
            settings = Settings(**values)
            app = create_standalone_app(settings, AdminToken(ADMIN_TOKEN, "environment"))
            client = TestClient(
                app,
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                raise_server_exceptions=raise_server_exceptions,
            )
            if start:
                stack.enter_context(client)
            return client

        yield factory


@pytest.fixture
def client(make_client: ClientFactory) -> TestClient:
    """A started standalone app with the admin token on every request."""
    return make_client()


@pytest.fixture
def anonymous(client: TestClient) -> Anonymous:
    """Send one request through ``client`` without its Authorization header."""

    def request(method: str, url: str, **kwargs: Any) -> httpx.Response:
        saved = client.headers.pop("Authorization")
        try:
            return client.request(method, url, **kwargs)
        finally:
            client.headers["Authorization"] = saved

    return request


@pytest.fixture(name="wait_until")
def wait_until_fixture() -> Callable[..., Any]:
    return wait_until


@pytest.fixture(name="wait_account")
def wait_account_fixture() -> Callable[..., dict[str, Any]]:
    return wait_account


@pytest.fixture(name="wait_status")
def wait_status_fixture() -> Callable[[TestClient, str, str], dict[str, Any]]:
    return wait_status


@pytest.fixture(name="wait_qr")
def wait_qr_fixture() -> Callable[[TestClient, str], dict[str, Any]]:
    return wait_qr


@pytest.fixture(name="add_account")
def add_account_fixture() -> Callable[..., dict[str, Any]]:
    return add_account


@pytest.fixture(name="onboard")
def onboard_fixture() -> Callable[..., dict[str, Any]]:
    """``onboard(client, phone, **fields)``: add, scan the QR, wait until connected."""
    return onboard


@pytest.fixture
def account(client: TestClient, add_account: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """An account that exists (waiting for its QR scan)."""
    return add_account(client, "+40712345678")
