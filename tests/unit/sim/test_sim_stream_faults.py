"""Faults of a live stream: keepalive timeouts and their recovery, an outdated client."""

from __future__ import annotations

import pytest
from unit.sim.harness import CONTACT, JID, PHONE, QR_HELLO, Harness, running

from wafleet.sim.service import SimConfig, SimError


# ----- keepalive ---------------------------------------------------------------------------
async def test_keepalive_timeout_keeps_the_stream_and_holds_new_messages(h: Harness) -> None:
    client, _ = await h.link_by_qr()
    assert await h.sim.fault(PHONE, "keepalive_timeout") == 1
    assert await client.expect("keepalive_timeout") == {
        "type": "keepalive_timeout",
        "errorCount": 1,
    }
    held = await h.sim.deliver(CONTACT, PHONE, "while unwell")
    await client.expect_quiet()  # not pushed, and the stream is still open
    assert h.sim.summary() == {
        "devices": 1,
        "live": 1,
        "linking": 0,
        "pendingMessages": 1,
        "replacements": 0,
    }

    await h.sim.fault(PHONE, "keepalive_timeout")
    assert (await client.expect("keepalive_timeout"))["errorCount"] == 2

    await h.sim.fault(PHONE, "keepalive_restored")
    assert await client.expect("keepalive_restored") == {"type": "keepalive_restored"}
    assert (await client.expect("message"))["id"] == held
    await client.expect_quiet()

    live = await h.sim.deliver(CONTACT, PHONE, "well again")
    assert (await client.expect("message"))["id"] == live  # pushed live once more


async def test_keepalive_restored_sends_only_what_this_stream_has_not_had(h: Harness) -> None:
    client, _ = await h.link_by_qr()
    before = await h.sim.deliver(CONTACT, PHONE, "seen, not acked")
    assert (await client.expect("message"))["id"] == before
    await h.sim.fault(PHONE, "keepalive_timeout")
    await client.expect("keepalive_timeout")
    during = await h.sim.deliver(CONTACT, PHONE, "held")

    await h.sim.fault(PHONE, "keepalive_restored")
    await client.expect("keepalive_restored")
    assert (await client.expect("message"))["id"] == during
    await client.expect_quiet()  # `before` is not sent twice on one stream
    assert h.sim.summary()["pendingMessages"] == 2


async def test_errorcount_starts_again_after_a_restore(h: Harness) -> None:
    client, _ = await h.link_by_qr()
    await h.sim.fault(PHONE, "keepalive_timeout")
    await h.sim.fault(PHONE, "keepalive_timeout")
    await h.sim.fault(PHONE, "keepalive_restored")
    assert [(await client.recv() or {}).get("errorCount") for _ in range(3)] == [1, 2, None]
    await h.sim.fault(PHONE, "keepalive_timeout")
    assert (await client.expect("keepalive_timeout"))["errorCount"] == 1


async def test_keepalive_restored_on_a_well_stream_sends_nothing(h: Harness) -> None:
    client, _ = await h.link_by_qr()
    assert await h.sim.fault(PHONE, "keepalive_restored") == 1
    await client.expect_quiet()


async def test_a_new_stream_starts_well_after_a_keepalive_timeout(h: Harness) -> None:
    client, device = await h.link_by_qr()
    await h.sim.fault(PHONE, "keepalive_timeout")
    await client.expect("keepalive_timeout")
    held = await h.sim.deliver(CONTACT, PHONE, "held")
    await client.hang_up()

    again = await h.resume(device)
    await again.expect("connected")
    assert (await again.expect("message"))["id"] == held
    live = await h.sim.deliver(CONTACT, PHONE, "live")
    assert (await again.expect("message"))["id"] == live


async def test_keepalive_timeout_touches_only_that_phone(h: Harness) -> None:
    sick, _ = await h.link_by_qr(PHONE)
    fine, _ = await h.link_by_qr("+40712000002")
    await h.sim.fault(PHONE, "keepalive_timeout")
    await sick.expect("keepalive_timeout")
    message_id = await h.sim.deliver(CONTACT, "+40712000002", "hi")
    assert (await fine.expect("message"))["id"] == message_id


async def test_device_sends_still_work_while_the_keepalive_is_unwell(h: Harness) -> None:
    client, _ = await h.link_by_qr()
    await h.sim.fault(PHONE, "keepalive_timeout")
    await client.expect("keepalive_timeout")
    answer = await client.send_text("40799000001@s.whatsapp.net", "out")
    assert [f["type"] for f in answer] == ["sent", "receipt"]


# ----- client outdated (whatsmeow's connect failure 405) ----------------------------------
async def test_client_outdated_closes_live_streams_and_keeps_the_device(h: Harness) -> None:
    client, device = await h.link_by_qr()
    assert await h.sim.fault(PHONE, "client_outdated") == 1
    assert await client.expect("client_outdated") == {"type": "client_outdated"}
    await client.expect_closed()
    assert device["id"] in h.sim.devices
    assert h.sim.summary()["live"] == 0


async def test_hellos_are_refused_while_the_client_is_outdated(h: Harness) -> None:
    client, device = await h.link_by_qr()
    await h.sim.fault(PHONE, "client_outdated", seconds=30)
    await client.expect("client_outdated")
    await client.expect_closed()
    for _ in range(2):
        refused = await h.resume(device)
        assert await refused.expect("client_outdated") == {"type": "client_outdated"}
        await refused.expect_closed()
    assert device["id"] in h.sim.devices
    assert h.sim.summary()["live"] == 0


async def test_a_device_connects_again_once_client_outdated_runs_out(h: Harness) -> None:
    client, device = await h.link_by_qr()
    await h.sim.fault(PHONE, "client_outdated", seconds=0.2)
    await client.expect("client_outdated")
    await client.expect_closed()
    waiting = await h.sim.deliver(CONTACT, PHONE, "kept for later")
    again = await h.resume_when_allowed(device)
    assert (await again.expect("message"))["id"] == waiting


async def test_client_outdated_lasts_the_configured_default() -> None:
    async with running(SimConfig(client_outdated_seconds=0.2)) as h:
        client, device = await h.link_by_qr()
        await h.sim.fault(PHONE, "client_outdated")
        await client.expect("client_outdated")
        refused = await h.resume(device)
        await refused.expect("client_outdated")
        await h.resume_when_allowed(device)


async def test_a_new_link_of_an_outdated_phone_is_refused_after_pairing(h: Harness) -> None:
    first, _ = await h.link_by_qr()
    await h.sim.fault(PHONE, "client_outdated")
    await first.expect("client_outdated")
    client = await h.connect(QR_HELLO)
    qr = await client.expect("qr")
    h.sim.scan(qr["code"], PHONE)
    assert (await client.expect("paired"))["jid"] == JID
    await client.expect("client_outdated")
    await client.expect_closed()


async def test_client_outdated_on_an_unlinked_phone_is_refused(h: Harness) -> None:
    with pytest.raises(SimError) as info:
        await h.sim.fault(PHONE, "client_outdated")
    assert (info.value.status, info.value.code) == (404, "not_linked")


async def test_unknown_fault_kind_is_refused(h: Harness) -> None:
    await h.link_by_qr()
    with pytest.raises(SimError) as info:
        await h.sim.fault(PHONE, "meteor")
    assert (info.value.status, info.value.code) == (400, "invalid_field")
