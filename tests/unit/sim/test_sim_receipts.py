"""Read receipts, and numbers that are not on WhatsApp."""

from __future__ import annotations

import pytest
from unit.sim.harness import (
    CONTACT,
    CONTACT2,
    CONTACT2_JID,
    CONTACT_JID,
    OTHER_PHONE,
    PHONE,
    QR_HELLO,
    Harness,
)

from wafleet.sim.service import SimError


def read_receipt(message_id: str) -> dict[str, str]:
    return {"type": "receipt", "id": message_id, "status": "read"}


# ----- read receipts -------------------------------------------------------------------------
async def test_reading_sends_a_read_receipt_to_the_live_sender(h: Harness) -> None:
    client, _ = await h.link_by_qr()
    first, _ = await client.send_text(CONTACT_JID, "one", ref="1")
    second, _ = await client.send_text(CONTACT_JID, "two", ref="2")
    assert await h.sim.read(CONTACT) == 2
    assert await client.expect("receipt") == read_receipt(first["id"])
    assert await client.expect("receipt") == read_receipt(second["id"])
    assert [m["read"] for m in h.sim.received(CONTACT)] == [True, True]


async def test_a_message_is_read_only_once(h: Harness) -> None:
    client, _ = await h.link_by_qr()
    sent, _ = await client.send_text(CONTACT_JID, "once")
    assert await h.sim.read(CONTACT) == 1
    assert await client.expect("receipt") == read_receipt(sent["id"])
    assert await h.sim.read(CONTACT) == 0
    await client.expect_quiet()  # no second receipt
    later, _ = await client.send_text(CONTACT_JID, "later")
    assert await h.sim.read(CONTACT) == 1
    assert await client.expect("receipt") == read_receipt(later["id"])


async def test_read_marks_only_the_messages_of_the_given_sender(h: Harness) -> None:
    one, _ = await h.link_by_qr(PHONE)
    two, _ = await h.link_by_qr(OTHER_PHONE)
    from_one, _ = await one.send_text(CONTACT_JID, "from one")
    from_two, _ = await two.send_text(CONTACT_JID, "from two")
    assert await h.sim.read(CONTACT, OTHER_PHONE) == 1
    assert await two.expect("receipt") == read_receipt(from_two["id"])
    await one.expect_quiet()
    assert {m["id"]: m["read"] for m in h.sim.received(CONTACT)} == {
        from_one["id"]: False,
        from_two["id"]: True,
    }
    assert await h.sim.read(CONTACT) == 1
    assert await one.expect("receipt") == read_receipt(from_one["id"])


async def test_read_touches_only_the_readers_inbox(h: Harness) -> None:
    client, _ = await h.link_by_qr()
    await client.send_text(CONTACT_JID, "to the first")
    to_second, _ = await client.send_text(CONTACT2_JID, "to the second")
    assert await h.sim.read(CONTACT2) == 1
    assert await client.expect("receipt") == read_receipt(to_second["id"])
    await client.expect_quiet()
    assert [m["read"] for m in h.sim.received(CONTACT)] == [False]


async def test_receipts_wait_for_an_offline_sender_and_follow_the_backlog(h: Harness) -> None:
    client, device = await h.link_by_qr()
    sent, _ = await client.send_text(CONTACT_JID, "read me later")
    await client.hang_up()
    assert await h.sim.read(CONTACT) == 1
    inbound = await h.sim.deliver(CONTACT, PHONE, "a reply")

    again = await h.resume(device)
    await again.expect("connected")
    assert (await again.expect("message"))["id"] == inbound  # the backlog first
    assert await again.expect("receipt") == read_receipt(sent["id"])
    await again.expect_quiet()
    await again.hang_up()

    third = await h.resume(device)  # a receipt is sent once, not on every connection
    await third.expect("connected")
    assert (await third.expect("message"))["id"] == inbound
    await third.expect_quiet()


async def test_receipts_wait_while_the_keepalive_is_unwell(h: Harness) -> None:
    client, _ = await h.link_by_qr()
    sent, _ = await client.send_text(CONTACT_JID, "x")
    await h.sim.fault(PHONE, "keepalive_timeout")
    await client.expect("keepalive_timeout")
    assert await h.sim.read(CONTACT) == 1
    await client.expect_quiet()
    await h.sim.fault(PHONE, "keepalive_restored")
    await client.expect("keepalive_restored")
    assert await client.expect("receipt") == read_receipt(sent["id"])


async def test_read_of_an_empty_inbox_marks_nothing(h: Harness) -> None:
    assert await h.sim.read(CONTACT) == 0


# ----- numbers not on WhatsApp ---------------------------------------------------------------
async def test_a_send_to_a_number_not_on_whatsapp_is_refused_unreached(h: Harness) -> None:
    client, _ = await h.link_by_qr()
    assert h.sim.is_registered(CONTACT)
    h.sim.set_registered(CONTACT, False)
    assert not h.sim.is_registered(CONTACT)
    answer = await client.send_text(CONTACT_JID, "hello?", ref="n1")
    assert answer == [
        {"type": "send_error", "ref": "n1", "error": "not on WhatsApp", "reached": False}
    ]
    assert h.sim.received(CONTACT) == []

    other, _ = await client.send_text(CONTACT2_JID, "others are fine")
    assert other["type"] == "sent"
    h.sim.set_registered(CONTACT, True)
    again, _ = await client.send_text(CONTACT_JID, "welcome back")
    assert again["type"] == "sent"
    assert [m["text"] for m in h.sim.received(CONTACT)] == ["welcome back"]


async def test_a_send_to_a_lid_of_a_number_that_left_whatsapp_is_refused(h: Harness) -> None:
    client, _ = await h.link_by_qr()
    lid = h.sim.lid(CONTACT)
    h.sim.set_registered(CONTACT, False)
    [error] = await client.send_text(lid, "x")
    assert (error["type"], error["error"], error["reached"]) == (
        "send_error",
        "not on WhatsApp",
        False,
    )


@pytest.mark.parametrize(
    ("to", "text"),
    [
        ("4071@s.whatsapp.net", "no such number"),  # not a valid phone number
        ("123456@g.us", "a group"),
        (CONTACT_JID, ""),
        (CONTACT_JID, "x" * 65537),
        (CONTACT_JID, "\ud800"),
    ],
)
async def test_sends_the_sim_refuses_are_not_reached(h: Harness, to: str, text: str) -> None:
    client, _ = await h.link_by_qr()
    [error] = await client.send_text(to, text, ref="e")
    assert error["type"] == "send_error"
    assert error["reached"] is False
    assert error["error"]
    assert h.sim.received(CONTACT) == []


async def test_a_number_not_on_whatsapp_cannot_write_link_or_read(h: Harness) -> None:
    await h.link_by_qr()
    h.sim.set_registered(CONTACT2, False)
    with pytest.raises(SimError) as info:
        await h.sim.deliver(CONTACT2, PHONE, "x")
    assert (info.value.status, info.value.code) == (409, "not_on_whatsapp")
    assert "+40799000002" not in info.value.message  # masked
    client = await h.connect(QR_HELLO)
    qr = await client.expect("qr")
    with pytest.raises(SimError) as info:
        h.sim.scan(qr["code"], CONTACT2)
    assert info.value.code == "not_on_whatsapp"
    with pytest.raises(SimError):
        await h.sim.read(CONTACT2)
    assert h.sim.devices_of(CONTACT2) == []


async def test_a_phone_with_linked_devices_cannot_leave_whatsapp(h: Harness) -> None:
    await h.link_by_qr()
    with pytest.raises(SimError) as info:
        h.sim.set_registered(PHONE, False)
    assert (info.value.status, info.value.code) == (409, "phone_has_devices")
    assert h.sim.is_registered(PHONE)
