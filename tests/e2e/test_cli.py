"""The ``wafleet`` command as a process: bad settings, the sim service on its own."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.process import Standalone, free_port, summary, wait_until
from support.process import sim_service as sim_process

pytestmark = pytest.mark.e2e


def run_wafleet(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wafleet_app", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("WAFLEET_PORT", "eighty", "WAFLEET_PORT='eighty' is not a whole number"),
        ("WAFLEET_TRANSPORT", "carrier-pigeon", "WAFLEET_TRANSPORT='carrier-pigeon' is not one of"),
        ("WAFLEET_DEFAULT_REGION", "XX", "WAFLEET_DEFAULT_REGION='XX' is not a region code"),
        ("WAFLEET_ADMIN_TOKEN", "short", "WAFLEET_ADMIN_TOKEN is shorter than 16 characters"),
    ],
)
def test_bad_setting_stops_the_start_naming_the_variable(
    tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    result = run_wafleet("standalone", "--data-dir", str(tmp_path), env={variable: value})
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_help_lists_the_commands() -> None:
    result = run_wafleet("--help", env={})
    assert result.returncode == 0
    assert "standalone" in result.stdout and "sim" in result.stdout


@pytest.fixture
def sim_service() -> Iterator[str]:
    with sim_process() as url:
        yield url


def test_standalone_against_an_external_sim_over_websocket(
    tmp_path: Path, sim_service: str
) -> None:
    proc = Standalone(data_dir=tmp_path / "data", env={"WAFLEET_SIM_URL": sim_service})
    proc.start()
    try:
        with proc.client() as client, httpx.Client(base_url=sim_service) as sim:
            added = client.post("/api/whatsapp/add-account", json={"phone": "+40712000111"})
            account_id = added.json()["account"]["id"]

            def qr() -> str | None:
                code: str | None = client.get(f"/api/whatsapp/accounts/{account_id}").json()[
                    "account"
                ]["qr"]
                return code

            code = wait_until("a QR code", qr, 20)
            assert sim.post("/sim/scan", json={"qr": code, "phone": "+40712000111"}).is_success
            wait_until("connected", lambda: summary(client)["connected"] == 1, 20)
            assert client.get("/sim/status").status_code == 404  # not embedded
            sent = sim.post(
                "/sim/messages", json={"from": "+40799000001", "to": "+40712000111", "text": "hi"}
            )
            assert sent.is_success
            wait_until(
                "the message stored",
                lambda: client.get("/api/whatsapp/messages").json()["threads"],
                20,
            )
    finally:
        proc.kill()


def test_standalone_starts_on_the_legacy_servers_environment(tmp_path: Path) -> None:
    """PORT, ADMIN_TOKEN and SESSIONS_PATH as the legacy server read them; each named in a
    start-up line with the WAFLEET_* variable to set instead."""
    port = free_port()
    token = "legacy-admin-token-0123456789"
    sessions = tmp_path / "volume" / "sessions"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAFLEET_") and k != "PORT"}
    env |= {"PORT": str(port), "ADMIN_TOKEN": token, "SESSIONS_PATH": str(sessions)}
    log = tmp_path / "standalone.log"
    command = [sys.executable, "-m", "wafleet_app", "standalone", "--transport", "sim"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*command, "--data-dir", str(tmp_path / "data")], env=env, stdout=out, stderr=out
        )
    try:
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"wafleet exited early:\n{log.read_text()}")
            try:
                return httpx.get(url + "/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until("standalone on the legacy PORT", ready, 30)
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
            added = client.post("/api/whatsapp/add-account", json={"phone": "+40712000222"})
            assert added.status_code == 200, added.text
            account_id = added.json()["account"]["id"]
            wait_until(
                "the session store under SESSIONS_PATH",
                (sessions / f"{account_id}.db").exists,
                20,
            )
        text = log.read_text()
        for legacy, wafleet in (
            ("PORT", "WAFLEET_PORT"),
            ("ADMIN_TOKEN", "WAFLEET_ADMIN_TOKEN"),
            ("SESSIONS_PATH", "WAFLEET_SESSIONS_DIR"),
        ):
            assert f"{legacy} is read as {wafleet}; set that instead" in text
        assert f"wafleet: the web console is at {url}/ (sign in with the admin token)" in text
        assert token not in text
    finally:
        proc.kill()
        proc.wait(timeout=10)
