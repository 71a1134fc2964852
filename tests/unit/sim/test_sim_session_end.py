"""Ending a session from the device: "stop" keeps the device, "logout" unlinks it,
and the logout_fails fault models an unlink WhatsApp did not confirm."""

from __future__ import annotations

import asyncio
import time

import pytest
from unit.sim.harness import CONTACT, PHONE, QR_HELLO, WAIT, Client, Harness, running

from wafleet.sim.service import SimConfig, SimError

LOGGED_OUT = {"type": "logged_out", "reason": "logout", "code": 401}


# ----- stop ----------------------------------------------------------------------------------
async def test_stop_is_answered_by_stopped_then_the_stream_closes(h: Harness) -> None:
    client, device = await h.link_by_qr()
    await client.send({"type": "stop"})
    assert await client.expect("stopped") == {"type": "stopped"}
    await client.expect_closed()
    assert h.sim.summary()["live"] == 0
    assert device["id"] in h.sim.devices  # the device stays linked

    again = await h.resume(device)
    await again.expect("connected")


async def test_unacked_messages_are_redelivered_after_a_stop(h: Harness) -> None:
    client, device = await h.link_by_qr()
    acked = await h.sim.deliver(CONTACT, PHONE, "one")
    kept = await h.sim.deliver(CONTACT, PHONE, "two")
    assert (await client.expect("message"))["id"] == acked
    assert (await client.expect("message"))["id"] == kept
    await client.send({"type": "ack", "id": acked})
    await client.send({"type": "stop"})
    await client.expect("stopped")
    await client.expect_closed()
    while_away = await h.sim.deliver(CONTACT, PHONE, "three")

    again = await h.resume(device)
    await again.expect("connected")
    assert (await again.expect("message"))["id"] == kept
    assert (await again.expect("message"))["id"] == while_away
    await again.expect_quiet()


# ----- logout --------------------------------------------------------------------------------
async def test_logout_answers_logged_out_and_removes_the_device(h: Harness) -> None:
    client, device = await h.link_by_qr()
    await client.send({"type": "logout"})
    assert await client.expect("logged_out") == LOGGED_OUT
    await client.expect_closed()
    assert h.sim.devices == {}
    later = await h.resume(device)
    assert (await later.expect("logged_out"))["reason"] == "device_removed"
    await later.expect_closed()


async def logout(client: Client) -> dict[str, object]:
    await client.send({"type": "logout"})
    frame = await client.recv()
    assert frame is not None and frame["type"] in ("logged_out", "logout_failed"), frame
    return frame


async def test_logout_fails_keeps_the_device_and_the_stream(h: Harness) -> None:
    client, device = await h.link_by_qr()
    assert await h.sim.fault(PHONE, "logout_fails") == 1
    await client.expect_quiet()  # the fault itself sends nothing

    failed = await logout(client)
    assert failed["type"] == "logout_failed"
    assert isinstance(failed["error"], str) and failed["error"]
    assert device["id"] in h.sim.devices
    message_id = await h.sim.deliver(CONTACT, PHONE, "still here")
    assert (await client.expect("message"))["id"] == message_id  # the stream is open
    assert (await logout(client))["type"] == "logout_failed"  # again, while it lasts


async def test_logout_works_again_once_logout_fails_runs_out(h: Harness) -> None:
    client, _ = await h.link_by_qr()
    await h.sim.fault(PHONE, "logout_fails", seconds=0.2)
    assert (await logout(client))["type"] == "logout_failed"
    deadline = time.monotonic() + WAIT
    while (frame := await logout(client))["type"] == "logout_failed":
        assert time.monotonic() < deadline, "logout kept failing"
        await asyncio.sleep(0.02)
    assert frame == LOGGED_OUT
    await client.expect_closed()
    assert h.sim.devices == {}


async def test_logout_fails_lasts_the_configured_default() -> None:
    async with running(SimConfig(logout_fails_seconds=0.2)) as h:
        client, _ = await h.link_by_qr()
        await h.sim.fault(PHONE, "logout_fails")
        assert (await logout(client))["type"] == "logout_failed"
        deadline = time.monotonic() + WAIT
        while (await logout(client))["type"] == "logout_failed":
            assert time.monotonic() < deadline, "the default duration was not used"
            await asyncio.sleep(0.02)
        assert h.sim.devices == {}


async def test_logout_fails_is_per_phone(h: Harness) -> None:
    one, _ = await h.link_by_qr(PHONE)
    two, _ = await h.link_by_qr("+40712000002")
    await h.sim.fault(PHONE, "logout_fails")
    assert (await logout(two)) == LOGGED_OUT
    assert (await logout(one))["type"] == "logout_failed"


async def test_an_unlink_from_the_phone_still_works_under_logout_fails(h: Harness) -> None:
    client, _ = await h.link_by_qr()
    await h.sim.fault(PHONE, "logout_fails")
    await h.sim.fault(PHONE, "logout")
    assert (await client.expect("logged_out"))["reason"] == "logged_out_from_phone"
    await client.expect_closed()
    assert h.sim.devices == {}


# ----- ending a session that is not linked yet -----------------------------------------------
async def test_stop_while_showing_a_qr_code_is_answered(h: Harness) -> None:
    client = await h.connect(QR_HELLO)
    await client.expect("qr")
    await client.send({"type": "stop"})
    assert await client.expect("stopped") == {"type": "stopped"}
    await client.expect_closed()
    assert h.sim.summary()["linking"] == 0
    assert h.sim.devices == {}


async def test_logout_while_showing_a_pairing_code_is_answered(h: Harness) -> None:
    hello = {"type": "hello", "device": None, "login": "pairingCode", "phone": PHONE}
    client = await h.connect(hello)
    code = (await client.expect("pairing_code"))["code"]
    await client.send({"type": "logout"})
    assert await client.expect("logged_out") == LOGGED_OUT
    await client.expect_closed()
    with pytest.raises(SimError):
        h.sim.pair(code, PHONE)
    assert h.sim.devices == {}


async def test_a_send_before_the_link_is_refused_unreached(h: Harness) -> None:
    client = await h.connect(QR_HELLO)
    qr = await client.expect("qr")
    await client.send({"type": "send", "ref": "early", "to": "40799000001@s.whatsapp.net"})
    error = await client.expect("send_error")
    assert (error["ref"], error["reached"]) == ("early", False)
    h.sim.scan(qr["code"], PHONE)  # the link goes on
    await client.expect("paired")
    await client.expect("connected")
