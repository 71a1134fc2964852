"""LID addressing: contacts named "<lid>@lid", with or without their phone number."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from unit.sim.harness import CONTACT, CONTACT2, CONTACT_JID, PHONE, Harness, running

from wafleet.sim.lids import LidDirectory, lid_jid, lid_of, parse_target
from wafleet.sim.service import SimConfig, SimError


# ----- the LID of a phone --------------------------------------------------------------------
def test_a_lid_is_15_digits_stable_and_not_the_phone() -> None:
    lid = lid_of(CONTACT)
    assert re.fullmatch(r"[1-9][0-9]{14}", lid)
    assert lid == lid_of(CONTACT)  # deterministic: nothing to persist
    assert lid != CONTACT.lstrip("+")
    assert lid != lid_of(CONTACT2)
    assert lid_jid(CONTACT) == lid + "@lid"


def test_lids_differ_for_many_phones() -> None:
    phones = [f"+40712{n:06d}" for n in range(2000)]
    lids = {lid_of(p) for p in phones}
    assert len(lids) == len(phones)
    assert all(lid_of(p) != p.lstrip("+") for p in phones)


@pytest.mark.parametrize(
    ("jid", "user", "is_lid"),
    [
        ("40799000001@s.whatsapp.net", "40799000001", False),
        ("40799000001:3@s.whatsapp.net", "40799000001", False),
        ("123456789012345@lid", "123456789012345", True),
    ],
)
def test_parse_target_reads_user_jids(jid: str, user: str, is_lid: bool) -> None:
    target = parse_target(jid)
    assert target is not None
    assert (target.user, target.is_lid) == (user, is_lid)


@pytest.mark.parametrize(
    "jid", ["40799000001", "123@g.us", "@lid", "abc@lid", "0123@s.whatsapp.net", "1@lid@lid"]
)
def test_parse_target_refuses_other_jids(jid: str) -> None:
    assert parse_target(jid) is None


def test_the_directory_resolves_only_phones_it_has_met() -> None:
    directory = LidDirectory([CONTACT])
    assert directory.resolve(lid_of(CONTACT)) == CONTACT
    assert directory.resolve(lid_of(CONTACT2)) is None
    assert directory.remember(CONTACT2) is True
    assert directory.remember(CONTACT2) is False
    assert directory.phones() == sorted([CONTACT, CONTACT2])


# ----- inbound addressing ----------------------------------------------------------------
async def test_inbound_addressing_pn_lid_and_lid_only(h: Harness) -> None:
    client, _ = await h.link_by_qr()
    await h.sim.deliver(CONTACT, PHONE, "by number")
    await h.sim.deliver(CONTACT, PHONE, "by lid", addressing="lid")
    await h.sim.deliver(CONTACT, PHONE, "lid only", addressing="lid_only")
    by_number = await client.expect("message")
    assert by_number["from"] == CONTACT_JID
    assert "fromPn" not in by_number
    by_lid = await client.expect("message")
    assert by_lid["from"] == lid_of(CONTACT) + "@lid"
    assert by_lid["fromPn"] == CONTACT_JID
    lid_only = await client.expect("message")
    assert lid_only["from"] == lid_of(CONTACT) + "@lid"
    assert "fromPn" not in lid_only
    assert CONTACT.lstrip("+") not in str(lid_only)  # the number is not revealed


async def test_unknown_addressing_is_refused(h: Harness) -> None:
    await h.link_by_qr()
    with pytest.raises(SimError) as info:
        await h.sim.deliver(CONTACT, PHONE, "x", addressing="email")
    assert (info.value.status, info.value.code) == (400, "invalid_field")
    assert "addressing" in info.value.message
    assert h.sim.summary()["pendingMessages"] == 0


# ----- sending to a LID --------------------------------------------------------------------
async def test_a_send_to_a_looked_up_lid_lands_in_that_phones_inbox(h: Harness) -> None:
    client, _ = await h.link_by_qr()
    lid = h.sim.lid(CONTACT)
    assert lid == lid_of(CONTACT) + "@lid"
    sent, receipt = await client.send_text(lid, "to a lid")
    assert sent["type"] == "sent"
    assert receipt == {"type": "receipt", "id": sent["id"], "status": "delivered"}
    [entry] = h.sim.received(CONTACT)
    assert (entry["id"], entry["from"], entry["to"], entry["text"]) == (
        sent["id"],
        PHONE,
        CONTACT,
        "to a lid",
    )


async def test_a_reply_to_a_lid_only_sender_reaches_it(h: Harness) -> None:
    client, _ = await h.link_by_qr()
    await h.sim.deliver(CONTACT2, PHONE, "who am I?", addressing="lid_only")
    inbound = await client.expect("message")
    sent, _ = await client.send_text(inbound["from"], "a reply")
    assert sent["type"] == "sent"
    assert [m["text"] for m in h.sim.received(CONTACT2)] == ["a reply"]


async def test_a_send_to_an_unknown_lid_is_a_send_error_not_reached(h: Harness) -> None:
    client, _ = await h.link_by_qr()
    unknown = lid_of("+40799000055") + "@lid"  # a valid-looking LID nobody was shown
    [error] = await client.send_text(unknown, "anyone?", ref="u1")
    assert error["type"] == "send_error"
    assert error["ref"] == "u1"
    assert error["reached"] is False
    assert "LID" in error["error"]
    assert h.sim.received("+40799000055") == []


async def test_no_lid_for_a_number_not_on_whatsapp(h: Harness) -> None:
    h.sim.set_registered(CONTACT, False)
    with pytest.raises(SimError) as info:
        h.sim.lid(CONTACT)
    assert (info.value.status, info.value.code) == (409, "not_on_whatsapp")


async def test_lids_learned_before_a_restart_still_resolve(tmp_path: Path) -> None:
    config = SimConfig(state_path=tmp_path / "sim.json")
    async with running(config) as h:
        _, device = await h.link_by_qr()
        lid = h.sim.lid(CONTACT)
    async with running(config) as h2:
        client = await h2.resume(device)
        await client.expect("connected")
        sent, _ = await client.send_text(lid, "after the restart")
        assert sent["type"] == "sent"
        assert [m["text"] for m in h2.sim.received(CONTACT)] == ["after the restart"]
