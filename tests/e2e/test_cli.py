"""The ``wafleet`` command as a process: bad settings, the sim service on its own."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.process import Standalone, summary, wait_until
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
