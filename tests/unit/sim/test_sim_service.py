"""The simulated WhatsApp service, driven over in-process pipes with the frame protocol."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from unit.sim.harness import (
    CONTACT,
    CONTACT_JID,
    JID,
    OTHER_JID,
    OTHER_PHONE,
    PHONE,
    QR_HELLO,
    Harness,
    parse_wall,
    running,
    wait_until,
)

from wafleet.sim.service import PAIRING_ALPHABET, SimConfig, SimError, SimWhatsApp
from wafleet.sim.wire import Frame


# ----- QR linking ----------------------------------------------------------------------------
async def test_qr_is_the_first_frame(h: Harness) -> None:
    client = await h.connect(QR_HELLO)
    qr = await client.expect("qr")
    assert qr["code"].startswith("2@")
    expires = parse_wall(qr["expiresAt"])
    left = (expires - datetime.now(UTC)).total_seconds()
    assert 25 < left <= 31
    assert h.sim.summary()["linking"] == 1


async def test_qr_codes_rotate_with_new_codes() -> None:
    async with running(SimConfig(qr_first_ttl=0.2, qr_ttl=0.1)) as h:
        client = await h.connect(QR_HELLO)
        first = await client.expect("qr")
        started = time.monotonic()
        codes = [first["code"]]
        arrivals = []
        for _ in range(3):
            codes.append((await client.expect("qr", timeout=2.0))["code"])
            arrivals.append(time.monotonic() - started)
        assert len(set(codes)) == 4
        assert arrivals[0] >= 0.15  # the first code lives qr_first_ttl
        assert arrivals[2] - arrivals[0] >= 0.15  # later ones qr_ttl each
        assert arrivals[2] < 2.0


async def test_rotated_away_qr_is_refused_and_the_current_one_links() -> None:
    async with running(SimConfig(qr_first_ttl=0.2, qr_ttl=0.1)) as h:
        client = await h.connect(QR_HELLO)
        old = await client.expect("qr")
        current = await client.expect("qr", timeout=2.0)
        with pytest.raises(SimError) as info:
            h.sim.scan(old["code"], PHONE)
        assert info.value.status == 404
        assert info.value.code == "qr_not_found"
        assert h.sim.devices == {}

        device = h.sim.scan(current["code"], PHONE)  # scanned as soon as it is shown
        # Codes shown after the scan and before the link ends are skipped.
        frame = await client.recv()
        while frame is not None and frame["type"] == "qr":
            frame = await client.recv()
        assert frame is not None and frame["type"] == "paired"
        assert frame["device"] == {"id": device.id, "secret": device.secret}
        assert frame["jid"] == JID
        connected = await client.expect("connected")
        assert connected["jid"] == JID
        assert h.sim.summary() == {
            "devices": 1,
            "live": 1,
            "linking": 0,
            "pendingMessages": 0,
            "replacements": 0,
        }
        assert set(h.sim.live_phones()) == {PHONE}


async def test_a_qr_links_only_once(h: Harness) -> None:
    client = await h.connect(QR_HELLO)
    qr = await client.expect("qr")
    h.sim.scan(qr["code"], PHONE)
    await client.expect("paired")
    with pytest.raises(SimError) as info:
        h.sim.scan(qr["code"], "+40712000009")
    assert info.value.status == 404
    assert len(h.sim.devices) == 1


async def test_unknown_qr_and_qr_of_a_gone_client_are_refused(h: Harness) -> None:
    with pytest.raises(SimError) as info:
        h.sim.scan("2@nothing", PHONE)
    assert info.value.status == 404
    client = await h.connect(QR_HELLO)
    qr = await client.expect("qr")
    await client.hang_up()
    with pytest.raises(SimError) as info:
        h.sim.scan(qr["code"], PHONE)
    assert info.value.status == 404
    assert h.sim.summary()["linking"] == 0


async def test_not_a_hello_closes_the_stream(h: Harness) -> None:
    client = await h.connect({"type": "ack", "id": "x"})
    await client.expect_closed()


# ----- pairing code --------------------------------------------------------------------------
async def test_pairing_code_links_with_the_right_phone() -> None:
    async with running(SimConfig()) as h:
        hello = {"type": "hello", "device": None, "login": "pairingCode", "phone": PHONE}
        client = await h.connect(hello)
        code = (await client.expect("pairing_code"))["code"]
        assert re.fullmatch(rf"[{PAIRING_ALPHABET}]{{4}}-[{PAIRING_ALPHABET}]{{4}}", code)

        with pytest.raises(SimError) as info:
            h.sim.pair(code, "+40712000002")
        assert (info.value.status, info.value.code) == (409, "wrong_phone")
        with pytest.raises(SimError) as info:
            h.sim.pair("AAAA-AAAA" if code != "AAAA-AAAA" else "BBBB-BBBB", PHONE)
        assert info.value.status == 404

        device = h.sim.pair(f"  {code.lower()} ", PHONE)
        assert device.phone == PHONE
        paired = await client.expect("paired")
        assert paired["device"] == {"id": device.id, "secret": device.secret}
        assert paired["jid"] == JID
        await client.expect("connected")
        with pytest.raises(SimError):
            h.sim.pair(code, PHONE)  # used up


# ----- resuming with device credentials -------------------------------------------------------
async def test_reconnect_with_credentials_connects_without_linking(h: Harness) -> None:
    client, device = await h.link_by_qr()
    await client.hang_up()
    assert h.sim.summary()["live"] == 0
    again = await h.resume(device)
    connected = await again.expect("connected")
    assert connected["jid"] == JID
    await again.expect_quiet()
    assert len(h.sim.devices) == 1
    assert h.sim.summary()["live"] == 1


async def test_wrong_secret_is_logged_out(h: Harness) -> None:
    client, device = await h.link_by_qr()
    await client.hang_up()
    stranger = await h.resume({"id": device["id"], "secret": "guessed"})
    frame = await stranger.expect("logged_out")
    assert frame["reason"] == "device_removed"
    await stranger.expect_closed()
    assert device["id"] in h.sim.devices  # the real device is not harmed


async def test_second_connection_replaces_the_first(h: Harness) -> None:
    first, device = await h.link_by_qr()
    second = await h.resume(device)
    await second.expect("connected")
    await first.expect("stream_replaced")
    await first.expect_closed()
    assert h.sim.summary()["live"] == 1
    assert h.sim.summary()["replacements"] == 1  # two clients drove one device: counted

    message_id = await h.sim.deliver(CONTACT, PHONE, "to the live one")
    assert (await second.expect("message"))["id"] == message_id


# ----- inbound delivery ----------------------------------------------------------------------
async def test_unacked_message_is_redelivered_on_reconnect(h: Harness) -> None:
    client, device = await h.link_by_qr()
    message_id = await h.sim.deliver(CONTACT, PHONE, "hello there")
    frame = await client.expect("message")
    assert frame["id"] == message_id
    assert frame["from"] == CONTACT_JID
    assert frame["text"] == "hello there"
    assert parse_wall(frame["ts"])
    await client.hang_up()

    again = await h.resume(device)
    await again.expect("connected")
    redelivered = await again.expect("message")
    assert redelivered == frame
    assert h.sim.summary()["pendingMessages"] == 1


async def test_acked_message_is_not_redelivered(h: Harness) -> None:
    client, device = await h.link_by_qr()
    acked = await h.sim.deliver(CONTACT, PHONE, "one")
    kept = await h.sim.deliver(CONTACT, PHONE, "two")
    assert (await client.expect("message"))["id"] == acked
    assert (await client.expect("message"))["id"] == kept
    await client.send({"type": "ack", "id": acked})
    await wait_until("the ack", lambda: h.sim.summary()["pendingMessages"] == 1)
    await client.hang_up()

    again = await h.resume(device)
    await again.expect("connected")
    assert (await again.expect("message"))["id"] == kept
    await again.expect_quiet()


async def test_message_for_an_offline_device_waits_for_it(h: Harness) -> None:
    client, device = await h.link_by_qr()
    await client.hang_up()
    message_id = await h.sim.deliver(CONTACT, PHONE, "while you were away")
    again = await h.resume(device)
    await again.expect("connected")
    assert (await again.expect("message"))["id"] == message_id


async def test_deliver_to_an_unlinked_phone_is_refused(h: Harness) -> None:
    with pytest.raises(SimError) as info:
        await h.sim.deliver(CONTACT, "+40712999999", "anyone?")
    assert (info.value.status, info.value.code) == (404, "not_linked")
    assert "+40712999999" not in info.value.message


# ----- outbound ------------------------------------------------------------------------------
async def test_device_send_reaches_the_recipient_inbox(h: Harness) -> None:
    client, _ = await h.link_by_qr()
    await client.send({"type": "send", "ref": "r1", "to": CONTACT_JID, "text": "hi!"})
    sent = await client.expect("sent")
    assert sent["ref"] == "r1"
    assert sent["id"].startswith("3EB0")
    receipt = await client.expect("receipt")
    assert receipt == {"type": "receipt", "id": sent["id"], "status": "delivered"}
    inbox = h.sim.received(CONTACT)
    assert len(inbox) == 1
    assert inbox[0]["id"] == sent["id"]
    assert inbox[0]["from"] == PHONE
    assert inbox[0]["to"] == CONTACT
    assert inbox[0]["text"] == "hi!"
    assert h.sim.received(PHONE) == []


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "send", "ref": "r2", "to": "40799000001", "text": "no server part"},
        {"type": "send", "ref": "r2", "to": CONTACT_JID},
        {"type": "send", "ref": "r2", "to": None, "text": "x"},
    ],
)
async def test_bad_send_frame_is_answered_with_send_error(h: Harness, frame: Frame) -> None:
    client, _ = await h.link_by_qr()
    await client.send(frame)
    error = await client.expect("send_error")
    assert error["ref"] == "r2"
    assert error["reached"] is False
    assert h.sim.received(CONTACT) == []


# ----- faults --------------------------------------------------------------------------------
async def test_fault_disconnect_closes_the_stream(h: Harness) -> None:
    client, device = await h.link_by_qr()
    assert await h.sim.fault(PHONE, "disconnect") == 1
    await client.expect_closed()
    assert device["id"] in h.sim.devices
    again = await h.resume(device)
    await again.expect("connected")


async def test_fault_logout_removes_the_device(h: Harness) -> None:
    client, device = await h.link_by_qr()
    assert await h.sim.fault(PHONE, "logout") == 1
    frame = await client.expect("logged_out")
    assert frame["reason"] == "logged_out_from_phone"
    assert frame["code"] == 401
    await client.expect_closed()
    assert h.sim.devices_of(PHONE) == []

    later = await h.resume(device)
    assert (await later.expect("logged_out"))["reason"] == "device_removed"
    await later.expect_closed()
    with pytest.raises(SimError):
        await h.sim.deliver(CONTACT, PHONE, "gone")


async def test_device_logout_frame_removes_the_device(h: Harness) -> None:
    client, device = await h.link_by_qr()
    await client.send({"type": "logout"})
    assert await client.expect("logged_out") == {
        "type": "logged_out",
        "reason": "logout",
        "code": 401,
    }
    await client.expect_closed()
    assert h.sim.devices == {}
    later = await h.resume(device)
    await later.expect("logged_out")


async def test_fault_stream_replaced(h: Harness) -> None:
    client, device = await h.link_by_qr()
    await h.sim.fault(PHONE, "stream_replaced")
    await client.expect("stream_replaced")
    await client.expect_closed()
    assert device["id"] in h.sim.devices


async def test_fault_temp_ban_refuses_hello_while_banned(h: Harness) -> None:
    client, device = await h.link_by_qr()
    await h.sim.fault(PHONE, "temp_ban", seconds=0.5)
    frame = await client.expect("temp_ban")
    assert 0 < frame["retryAfter"] <= 0.5
    await client.expect_closed()

    refused = await h.resume(device)
    assert (await refused.expect("temp_ban"))["retryAfter"] > 0
    await refused.expect_closed()
    assert h.sim.summary()["live"] == 0

    await asyncio.sleep(0.6)
    again = await h.resume(device)
    await again.expect("connected")


async def test_fault_on_an_unlinked_phone_is_refused(h: Harness) -> None:
    with pytest.raises(SimError) as info:
        await h.sim.fault("+40712999999", "disconnect")
    assert info.value.status == 404


async def test_fault_reaches_every_device_of_the_phone(h: Harness) -> None:
    one, _ = await h.link_by_qr()
    two, _ = await h.link_by_qr()
    assert await h.sim.fault(PHONE, "disconnect") == 2
    await one.expect_closed()
    await two.expect_closed()


# ----- phones that ask for a passkey ------------------------------------------------------
async def test_a_passkey_phone_scanning_a_qr_asks_the_device_for_a_passkey() -> None:
    async with running(SimConfig(qr_first_ttl=0.2, qr_ttl=0.1)) as h:
        h.sim.set_passkey(PHONE, True)
        assert h.sim.requires_passkey(PHONE) and not h.sim.requires_passkey(OTHER_PHONE)
        client = await h.connect(QR_HELLO)
        qr = await client.expect("qr")
        with pytest.raises(SimError) as info:
            h.sim.scan(qr["code"], PHONE)
        assert (info.value.status, info.value.code) == (409, "passkey_required")
        frame = await client.recv()
        while frame is not None and frame["type"] == "qr":  # a code may rotate meanwhile
            frame = await client.recv()
        assert frame == {"type": "passkey_request"}
        assert h.sim.devices == {}
        # As in whatsmeow, the device keeps showing codes, but none of them links it any
        # more (whatsmeow replaced the secret those codes carry), whoever scans.
        later = await client.expect("qr", timeout=2.0)
        with pytest.raises(SimError) as info:
            h.sim.scan(later["code"], OTHER_PHONE)
        assert (info.value.status, info.value.code) == (409, "passkey_pending")
        assert h.sim.devices == {} and h.sim.summary()["linking"] == 1
        await client.hang_up()
        # A new connection is a new link: a phone that asks no passkey links it.
        again = await h.connect(QR_HELLO)
        h.sim.scan((await again.expect("qr"))["code"], OTHER_PHONE)
        assert (await again.expect("paired"))["jid"] == OTHER_JID


async def test_a_passkey_phone_entering_a_pairing_code_asks_the_device_for_a_passkey() -> None:
    async with running(SimConfig()) as h:
        h.sim.set_passkey(PHONE, True)
        hello = {"type": "hello", "device": None, "login": "pairingCode", "phone": PHONE}
        client = await h.connect(hello)
        code = (await client.expect("pairing_code"))["code"]
        with pytest.raises(SimError) as info:
            h.sim.pair(code, PHONE)
        assert (info.value.status, info.value.code) == (409, "passkey_required")
        assert await client.expect("passkey_request") == {"type": "passkey_request"}
        h.sim.set_passkey(PHONE, False)
        with pytest.raises(SimError) as info:  # the code is spent
            h.sim.pair(code, PHONE)
        assert info.value.code == "passkey_pending"
        assert h.sim.devices == {}
        await client.expect_quiet()
        await client.send({"type": "stop"})
        await client.expect("stopped")
        # Once the phone asks no passkey, a new link works.
        again = await h.connect(hello)
        h.sim.pair((await again.expect("pairing_code"))["code"], PHONE)
        assert (await again.expect("paired"))["jid"] == JID


async def test_a_passkey_is_asked_only_while_linking(h: Harness) -> None:
    client, device = await h.link_by_qr()
    h.sim.set_passkey(PHONE, True)  # a device already linked is asked nothing
    await client.hang_up()
    again = await h.resume(device)
    await again.expect("connected")
    await again.expect_quiet()


# ----- persistence ---------------------------------------------------------------------------
async def test_devices_and_pending_messages_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "sim.json"
    config = SimConfig(state_path=state)
    async with running(config) as h:
        client, device = await h.link_by_qr()
        kept = await h.sim.deliver(CONTACT, PHONE, "keep me")
        acked = await h.sim.deliver(CONTACT, PHONE, "done")
        await client.expect("message")
        await client.expect("message")
        await client.send({"type": "ack", "id": acked})
        await client.send({"type": "send", "ref": "r", "to": CONTACT_JID, "text": "out"})
        await client.expect("sent")
        await wait_until("the ack", lambda: h.sim.summary()["pendingMessages"] == 1)
        # The background saver writes without waiting for close().
        await wait_until("the saver", lambda: state.exists() and kept in state.read_text())

    assert state.stat().st_mode & 0o777 == 0o600
    saved = json.loads(state.read_text())
    assert [d["id"] for d in saved["devices"]] == [device["id"]]

    async with running(config) as h2:
        assert set(h2.sim.devices) == {device["id"]}
        assert h2.sim.devices[device["id"]].phone == PHONE
        assert [m["text"] for m in h2.sim.received(CONTACT)] == ["out"]
        again = await h2.resume(device)
        await again.expect("connected")
        assert (await again.expect("message"))["id"] == kept
        await again.expect_quiet()
    assert state.stat().st_mode & 0o777 == 0o600


async def test_state_is_saved_on_close_without_start(tmp_path: Path) -> None:
    state = tmp_path / "nested" / "sim.json"
    h = Harness(SimWhatsApp(SimConfig(state_path=state)))
    try:
        _, device = await h.link_by_qr()
    finally:
        await h.aclose()
    assert device["id"] in state.read_text()
    assert not state.with_suffix(".json.tmp").exists()


async def test_missing_state_file_starts_empty(tmp_path: Path) -> None:
    sim = SimWhatsApp(SimConfig(state_path=tmp_path / "absent.json"))
    try:
        assert sim.devices == {} and sim.inbox == {}
    finally:
        await sim.close()


@pytest.mark.parametrize(
    "content",
    ["not json", "", "[]", '{"devices": []}', '{"inbox": {}}', '{"devices": null, "inbox": {}}'],
)
def test_unreadable_state_file_raises_a_clear_error(tmp_path: Path, content: str) -> None:
    state = tmp_path / "sim.json"
    state.write_text(content)
    with pytest.raises(RuntimeError, match="unreadable") as info:
        SimWhatsApp(SimConfig(state_path=state))
    assert str(state) in str(info.value)
    assert "move it away" in str(info.value)


def test_state_path_that_is_a_directory_raises_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="unreadable"):
        SimWhatsApp(SimConfig(state_path=tmp_path))


def test_state_file_with_a_malformed_device_raises_a_clear_error(tmp_path: Path) -> None:
    state = tmp_path / "sim.json"
    state.write_text(json.dumps({"devices": [{"id": "d1", "phone": PHONE}], "inbox": {}}))
    with pytest.raises(RuntimeError, match="unreadable"):
        SimWhatsApp(SimConfig(state_path=state))
