"""What survives a restart of the sim: receipts owed to devices, numbers not on
WhatsApp; and snapshots written by older versions still load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from unit.sim.harness import CONTACT, CONTACT2, CONTACT_JID, PHONE, running, wait_until

from wafleet.sim.service import SimConfig, SimWhatsApp


async def test_owed_receipts_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "sim.json"
    config = SimConfig(state_path=state)
    async with running(config) as h:
        client, device = await h.link_by_qr()
        sent, _ = await client.send_text(CONTACT_JID, "read while you are away")
        await client.hang_up()
        assert await h.sim.read(CONTACT) == 1
        await wait_until(
            "the saver", lambda: state.exists() and '"status": "read"' in state.read_text()
        )

    async with running(config) as h2:
        again = await h2.resume(device)
        await again.expect("connected")
        receipt = await again.expect("receipt")
        assert receipt == {"type": "receipt", "id": sent["id"], "status": "read"}
        await again.expect_quiet()
        assert await h2.sim.read(CONTACT) == 0  # still read after the restart
    saved = json.loads(state.read_text())
    assert saved["devices"][0]["receipts"] == []  # sent, so no longer owed


async def test_numbers_not_on_whatsapp_survive_a_restart(tmp_path: Path) -> None:
    config = SimConfig(state_path=tmp_path / "sim.json")
    async with running(config) as h:
        _, device = await h.link_by_qr()
        h.sim.set_registered(CONTACT, False)
    async with running(config) as h2:
        assert not h2.sim.is_registered(CONTACT)
        assert h2.sim.is_registered(CONTACT2)
        client = await h2.resume(device)
        await client.expect("connected")
        [error] = await client.send_text(CONTACT_JID, "x")
        assert (error["error"], error["reached"]) == ("not on WhatsApp", False)


async def test_phones_that_ask_for_a_passkey_survive_a_restart(tmp_path: Path) -> None:
    config = SimConfig(state_path=tmp_path / "sim.json")
    async with running(config) as h:
        h.sim.set_passkey(PHONE, True)
    async with running(config) as h2:
        assert h2.sim.requires_passkey(PHONE)
        assert not h2.sim.requires_passkey(CONTACT)
        h2.sim.set_passkey(PHONE, False)
    async with running(config) as h3:
        assert not h3.sim.requires_passkey(PHONE)


async def test_a_snapshot_of_an_older_version_loads(tmp_path: Path) -> None:
    state = tmp_path / "sim.json"
    old_message = {"id": "3EB0OLD", "from": PHONE, "to": CONTACT, "text": "old", "ts": "x"}
    pending = {"type": "message", "id": "3EB0IN", "from": CONTACT_JID, "text": "hi", "ts": "y"}
    device = {"id": "d1", "secret": "s1", "phone": PHONE, "pending": {"3EB0IN": pending}}
    state.write_text(json.dumps({"devices": [device], "inbox": {CONTACT: [old_message]}}))

    async with running(SimConfig(state_path=state)) as h:
        assert h.sim.devices["d1"].receipts == []
        assert h.sim.is_registered(CONTACT)
        assert not h.sim.requires_passkey(PHONE)
        client = await h.resume({"id": "d1", "secret": "s1"})
        await client.expect("connected")
        assert await client.expect("message") == pending
        assert await h.sim.read(CONTACT) == 1  # an old entry without "read" is unread
        assert await client.expect("receipt") == {
            "type": "receipt",
            "id": "3EB0OLD",
            "status": "read",
        }
        # A recipient of the old inbox is a known phone: its LID resolves.
        sent, _ = await client.send_text(h.sim.lid(CONTACT), "via lid")
        assert sent["type"] == "sent"
    saved = json.loads(state.read_text())
    assert set(saved) == {"devices", "inbox", "unregistered", "contacts", "passkey"}


@pytest.mark.parametrize(
    "extra",
    [
        {"unregistered": "+40799000001"},
        {"unregistered": [1]},
        {"contacts": None},
        {"passkey": "+40799000001"},
    ],
)
def test_a_malformed_new_part_raises_a_clear_error(tmp_path: Path, extra: object) -> None:
    state = tmp_path / "sim.json"
    assert isinstance(extra, dict)
    state.write_text(json.dumps({"devices": [], "inbox": {}, **extra}))
    with pytest.raises(RuntimeError, match="unreadable"):
        SimWhatsApp(SimConfig(state_path=state))


@pytest.mark.parametrize("receipts", ["r", [1], None])
def test_malformed_receipts_raise_a_clear_error(tmp_path: Path, receipts: object) -> None:
    state = tmp_path / "sim.json"
    device = {"id": "d1", "secret": "s", "phone": PHONE, "pending": {}, "receipts": receipts}
    state.write_text(json.dumps({"devices": [device], "inbox": {}}))
    with pytest.raises(RuntimeError, match="unreadable"):
        SimWhatsApp(SimConfig(state_path=state))
