"""Who a device is linked to: the phone that scans its QR code, as on WhatsApp.

The sim does not check the scanner against the phone the client meant; the connector
must see the mismatch in "paired"/"connected" and log that device out.
"""

from __future__ import annotations

import pytest
from unit.sim.harness import CONTACT, JID, OTHER_JID, OTHER_PHONE, PHONE, Harness

from wafleet.sim.service import SimError


async def test_a_qr_scanned_by_another_phone_links_the_device_to_that_phone(
    h: Harness,
) -> None:
    meant_for = {"type": "hello", "device": None, "login": "qr", "phone": PHONE}
    client = await h.connect(meant_for)
    qr = await client.expect("qr")
    device = h.sim.scan(qr["code"], OTHER_PHONE)
    assert device.phone == OTHER_PHONE
    paired = await client.expect("paired")
    assert paired["jid"] == OTHER_JID
    assert paired["device"] == {"id": device.id, "secret": device.secret}
    assert (await client.expect("connected"))["jid"] == OTHER_JID
    assert h.sim.devices_of(PHONE) == []
    assert [d.id for d in h.sim.devices_of(OTHER_PHONE)] == [device.id]

    # It is that phone's device in every way: its messages, and the jid on resume.
    message_id = await h.sim.deliver(CONTACT, OTHER_PHONE, "for the scanner")
    assert (await client.expect("message"))["id"] == message_id
    with pytest.raises(SimError):
        await h.sim.deliver(CONTACT, PHONE, "for the phone meant")
    await client.hang_up()
    again = await h.resume(paired["device"])
    assert (await again.expect("connected"))["jid"] == OTHER_JID


async def test_the_wrong_device_can_then_be_logged_out_by_the_client(h: Harness) -> None:
    client = await h.connect({"type": "hello", "device": None, "login": "qr", "phone": PHONE})
    qr = await client.expect("qr")
    h.sim.scan(qr["code"], OTHER_PHONE)
    await client.expect("paired")
    connected = await client.expect("connected")
    assert connected["jid"] != JID  # what the connector checks
    await client.send({"type": "logout"})
    assert (await client.expect("logged_out"))["reason"] == "logout"
    assert h.sim.devices_of(OTHER_PHONE) == []


async def test_a_pairing_code_entered_on_another_phone_is_refused(h: Harness) -> None:
    hello = {"type": "hello", "device": None, "login": "pairingCode", "phone": PHONE}
    client = await h.connect(hello)
    code = (await client.expect("pairing_code"))["code"]
    with pytest.raises(SimError) as info:
        h.sim.pair(code, OTHER_PHONE)
    assert (info.value.status, info.value.code) == (409, "wrong_phone")
    assert h.sim.devices == {}
    device = h.sim.pair(code, PHONE)  # the code still works on the right phone
    assert (await client.expect("paired"))["jid"] == JID
    assert device.phone == PHONE


@pytest.mark.parametrize(
    "hello",
    [
        {"type": "hello", "device": None, "login": "pairingCode"},
        {"type": "hello", "device": None, "login": "pairingCode", "phone": "not a phone"},
        {"type": "hello", "device": None, "login": "magic"},
        {"type": "hello", "device": "id-and-secret"},
    ],
)
async def test_a_hello_that_cannot_start_a_link_gets_an_error(
    h: Harness, hello: dict[str, object]
) -> None:
    client = await h.connect(hello)
    error = await client.expect("error")
    assert error["reason"]
    await client.expect_closed()
    assert h.sim.summary()["linking"] == 0


async def test_a_secret_that_is_not_a_string_is_logged_out(h: Harness) -> None:
    client, device = await h.link_by_qr()
    await client.hang_up()
    for secret in (None, 12, "\ud800é"):
        stranger = await h.resume({"id": device["id"], "secret": secret})
        assert (await stranger.expect("logged_out"))["reason"] == "device_removed"
        await stranger.expect_closed()
    assert device["id"] in h.sim.devices
