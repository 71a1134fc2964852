"""``wafleet standalone --transport neonize`` as a real process, its sessions in engine
workers running the strict fake Go library against a ``wafleet sim`` process."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.engine import FAKE_LIBRARY, TESTS_DIR
from support.process import Standalone, accounts_by_id, phones, sim_service, summary, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.neonize]

CONTACT = "+40799000001"


@pytest.fixture
def sim_url() -> Iterator[str]:
    with sim_service() as url:
        yield url


def worker_pids(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.extend(int(child) for child in (task / "children").read_text().split())
    return found


def gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "zombie" in status


def test_standalone_runs_neonize_sessions_in_engine_workers(tmp_path: Path, sim_url: str) -> None:
    env = {
        "WAFLEET_ENGINE_LIBRARY": FAKE_LIBRARY,
        "WAFLEET_FAKE_GO_SIM_URL": sim_url,
        "WAFLEET_ENGINE_SESSIONS_PER_WORKER": "2",
        "WAFLEET_START_RATE": "10",
        "PYTHONPATH": str(TESTS_DIR),
    }
    proc = Standalone(data_dir=tmp_path / "data", env=env, transport="neonize")
    numbers = phones(3)
    try:
        proc.start()
        assert proc.proc is not None
        with proc.client() as client, httpx.Client(base_url=sim_url, timeout=10) as sim:
            for phone in numbers:
                added = client.post("/api/whatsapp/add-account", json={"phone": phone})
                assert added.status_code == 200, added.text

            def scan_all() -> bool:
                for account in accounts_by_id(client).values():
                    if account["phase"] == "QRReady" and account["qr"]:
                        sim.post("/sim/scan", json={"qr": account["qr"], "phone": account["phone"]})
                return summary(client)["connected"] == 3

            wait_until("3 connected through the engine", scan_all, 60)
            workers = worker_pids(proc.proc.pid)
            assert len(workers) == 2, workers  # 2 sessions per worker

            # In: a contact writes to the first account; out: the account answers.
            account_id = next(
                a["id"] for a in accounts_by_id(client).values() if a["phone"] == numbers[0]
            )
            sent = sim.post("/sim/messages", json={"from": CONTACT, "to": numbers[0], "text": "hi"})
            assert sent.status_code == 200, sent.text

            def stored() -> bool:
                threads = client.get("/api/whatsapp/messages", params={"accountId": account_id})
                return any(
                    m["body"] == "hi" for t in threads.json()["threads"] for m in t["messages"]
                )

            wait_until("the inbound message stored", stored, 30)
            reply = client.post(
                "/api/whatsapp/send-message",
                json={"accountId": account_id, "to": CONTACT, "message": "hello back"},
            )
            assert reply.status_code == 200, reply.text

            def received() -> bool:
                inbox = sim.get("/sim/messages", params={"phone": CONTACT}).json()["messages"]
                return [m["text"] for m in inbox] == ["hello back"]

            wait_until("the reply at the contact's phone", received, 30)

        code, _ = proc.stop(timeout=30)
        assert code == 0, proc.log()
        for pid in workers:
            wait_until(f"worker {pid} to exit with the connector", lambda p=pid: gone(p), 15)
    finally:
        if proc.proc is not None:
            for pid in worker_pids(proc.proc.pid):
                os.kill(pid, signal.SIGKILL)
        proc.kill()
