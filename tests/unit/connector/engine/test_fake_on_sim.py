"""The fake Go library against the project's simulated WhatsApp (its HTTP control API and
device stream on a loopback port): link by QR scan, an inbound message acknowledged, a
send, a confirmed logout."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

if importlib.util.find_spec("neonize") is None:
    pytest.skip("neonize is not installed", allow_module_level=True)

import uvicorn
from unit.connector.engine.enginekit import CONTACT, PHONE, Recorder, spec

from support.fake_go import FakeGoLibrary
from support.process import free_port
from wafleet.sim.routes import create_sim_app
from wafleet.sim.service import SimConfig, SimWhatsApp
from wafleet_connector.engine.ffi import NeonizeFfi
from wafleet_connector.engine.inprocess import NeonizeConfig, NeonizeTransport
from wafleet_connector.engine.store import linked_device_jid
from wafleet_connector.transport import Connected, InboundMessage, Paired, QRCode

pytestmark = pytest.mark.neonize


@contextlib.contextmanager
def running_sim() -> Iterator[str]:
    port = free_port()
    app = create_sim_app(SimWhatsApp(SimConfig()))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the sim did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


async def _pending(http: httpx.AsyncClient) -> int:
    status = (await http.get("/sim/status")).json()
    return int(status["pendingMessages"])


async def test_link_receive_send_and_log_out_through_the_sim(tmp_path: Path) -> None:
    with running_sim() as base:
        lib = FakeGoLibrary(base)  # an http:// base URL: the fake dials its /sim/ws
        transport = NeonizeTransport(NeonizeConfig(max_sessions=2), core=NeonizeFfi(lib=lib))
        rec = Recorder()
        session = await transport.open(spec(tmp_path), rec)
        qr = await rec.wait_for(QRCode)
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            scan = await http.post("/sim/scan", json={"qr": qr.code, "phone": PHONE})
            assert scan.status_code == 200, scan.text
            await rec.wait_for(Connected)
            assert rec.kinds() == [QRCode, Paired, Connected]
            assert linked_device_jid(spec(tmp_path).session_path) is not None

            posted = await http.post(
                "/sim/messages", json={"from": "+40722222222", "to": PHONE, "text": "hello"}
            )
            assert posted.status_code == 200, posted.text
            inbound = await rec.wait_for(InboundMessage)
            assert (inbound.text, inbound.chat_jid) == ("hello", CONTACT)
            deadline = time.monotonic() + 10
            while await _pending(http):  # the receipt (ack) reached the sim
                assert time.monotonic() < deadline, "the sim never got the ack"
                await asyncio.sleep(0.05)

            wa_id = await session.send_text(CONTACT, "hi back")
            inbox = await http.get("/sim/messages", params={"phone": "+40722222222"})
            assert wa_id in [m["id"] for m in inbox.json()["messages"]]

            await session.logout()  # the sim confirms with "logged_out"
            devices = await http.get("/sim/devices", params={"phone": PHONE})
            assert devices.json()["devices"] == []
            assert linked_device_jid(spec(tmp_path).session_path) is None
        await transport.close()
