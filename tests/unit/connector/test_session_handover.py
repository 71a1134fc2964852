"""A session handed over from one shard to another through its backup (the move's core).

Shard A stops the session, stores what it delivered and backs it up; shard B starts from
that generation: never from an older one, never from what its own volume held. Two
shards share the backups, as connectors share Firestore; the sim is WhatsApp.
"""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path

import pytest

from support.shard import Shard, account, close_shard, open_shard
from wafleet.backups.base import BackupTooOld
from wafleet.backups.factory import open_backups
from wafleet.core.phases import Phase
from wafleet.core.settings import Settings
from wafleet.kube.account_cr import CLEANUP_FINALIZER, SHARD_LABEL
from wafleet.kube.handoff import HANDOFF_ANNOTATION, Handoff
from wafleet.sim.service import SimConfig, SimWhatsApp
from wafleet_connector.cr_status import CrStatusWriter
from wafleet_connector.shard_sync import ShardSync
from wafleet_connector.vault import RestoreRefused

KEY = base64.b64encode(bytes(range(32))).decode()
CONTACT = "+40799000001"


async def shard(tmp_path: Path, name: str, sim: SimWhatsApp) -> Shard:
    backups = open_backups(Settings(data_dir=tmp_path / "shared", backup_key=KEY))
    return await open_shard(tmp_path / name, sim=sim, backups=backups)


async def inbound(node: Shard, account_id: str) -> list[str]:
    await node.manager.journal.flush()
    threads = await node.store.list_threads(account_id=account_id, thread_id=None, limit=10)
    return [m.body for t in threads for m in t.messages if m.direction == "inbound"]


def stale_session(path: Path) -> None:
    """What a shard's volume may still hold from an earlier stay of the account."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE device (id TEXT, secret TEXT, jid TEXT)")
        db.execute("INSERT INTO device VALUES ('old-device', 'old-secret', 'x@s.whatsapp.net')")


async def test_a_handed_over_session_resumes_on_the_next_shard_as_the_same_device(
    tmp_path: Path,
) -> None:
    sim = SimWhatsApp(SimConfig(qr_first_ttl=5, qr_ttl=5))
    spec = account(1)
    a = await shard(tmp_path, "a", sim)
    b = await shard(tmp_path, "b", sim)
    try:
        await a.link(spec)
        await sim.deliver(CONTACT, spec.phone, "before the move")
        await a.wait_for("the first message", lambda: sim.summary()["pendingMessages"] == 0)
        [device] = sim.devices_of(spec.phone)

        generation = await a.manager.hand_over(spec)
        assert spec.id not in a.manager.account_ids()  # the source runs nothing for it
        assert await inbound(a, spec.id) == ["before the move"]  # stored before letting go
        await sim.deliver(CONTACT, spec.phone, "during the move")  # waits at WhatsApp

        stale_session(b.data_dir / "sessions" / f"{spec.id}.db")
        assert await b.manager.take_over(spec, generation) == generation
        b.manager.ensure(spec)
        await b.wait_phase(spec.id, Phase.CONNECTED)
        await b.wait_for(
            "the message sent during the move", lambda: sim.summary()["pendingMessages"] == 0
        )
        assert await inbound(b, spec.id) == ["during the move"]
        assert sim.devices_of(spec.phone) == [device]  # the same linked device, no new scan
        assert sim.summary()["replacements"] == 0  # never two clients on one device
    finally:
        await close_shard(a)
        await close_shard(b)


async def test_an_older_backup_is_never_started_from(tmp_path: Path) -> None:
    sim = SimWhatsApp(SimConfig(qr_first_ttl=5, qr_ttl=5))
    spec = account(2)
    a = await shard(tmp_path, "a", sim)
    b = await shard(tmp_path, "b", sim)
    try:
        await a.link(spec)
        generation = await a.manager.hand_over(spec)
        with pytest.raises(BackupTooOld):  # that generation is not there: nothing placed
            await b.manager.take_over(spec, generation + 1)
        assert not (b.data_dir / "sessions" / f"{spec.id}.db").exists()
        assert sim.summary()["live"] == 0  # nothing was started from the older backup
    finally:
        await close_shard(a)
        await close_shard(b)


async def test_without_backups_a_session_cannot_be_handed_over(tmp_path: Path) -> None:
    sim = SimWhatsApp(SimConfig(qr_first_ttl=5, qr_ttl=5))
    spec = account(3)
    node = await open_shard(tmp_path / "alone", sim=sim)
    try:
        await node.link(spec)
        with pytest.raises(RestoreRefused, match="only through its backup"):
            await node.manager.hand_over(spec)
        assert (node.data_dir / "sessions" / f"{spec.id}.db").exists()  # kept, not lost
    finally:
        await close_shard(node)


async def test_a_fenced_source_hands_over_the_latest_backup_or_a_new_link(tmp_path: Path) -> None:
    """Generation 0 (the source was fenced by its Lease, or had no session): the target
    takes the latest backup; with none, it never starts from what its volume held from
    an earlier stay: the file goes and the account links anew."""
    sim = SimWhatsApp(SimConfig(qr_first_ttl=5, qr_ttl=5))
    linked, never = account(4), account(5)
    a = await shard(tmp_path, "a", sim)
    b = await shard(tmp_path, "b", sim)
    try:
        await a.link(linked)
        [device] = sim.devices_of(linked.phone)
        await a.manager.hand_over(linked)  # a backup exists, as the periodic ones leave
        stale_session(b.data_dir / "sessions" / f"{linked.id}.db")
        assert await b.manager.take_over(linked, 0) > 0
        b.manager.ensure(linked)
        await b.wait_phase(linked.id, Phase.CONNECTED)
        assert sim.devices_of(linked.phone) == [device]

        stale = b.data_dir / "sessions" / f"{never.id}.db"
        stale_session(stale)
        assert await b.manager.take_over(never, 0) == 0
        assert not stale.exists()
        assert sim.summary()["replacements"] == 0
    finally:
        await close_shard(a)
        await close_shard(b)


class DeletingKube:
    """The API server as far as a delete's clean-up needs it: the account, its finalizer."""

    def __init__(self, cr: dict[str, object]) -> None:
        self.cr = cr
        self.released = False

    async def get(self, *_: object, **__: object) -> dict[str, object]:
        return self.cr

    async def patch(self, *_: object, **__: object) -> dict[str, object]:
        self.released = True  # the only metadata patch of a delete: the finalizer
        return self.cr


async def test_an_account_deleted_before_its_target_took_it_over_is_logged_out(
    tmp_path: Path,
) -> None:
    """Deleted between the relabel and the restore: the target holds no session for it,
    or an older one; it restores the handed-over backup first, so that the delete logs
    out the device (else the phone would keep a linked device nobody runs)."""
    sim = SimWhatsApp(SimConfig(qr_first_ttl=5, qr_ttl=5))
    spec = account(6)
    a = await shard(tmp_path, "a", sim)
    b = await shard(tmp_path, "b", sim)
    try:
        await a.link(spec)
        generation = await a.manager.hand_over(spec)
        assert sim.devices_of(spec.phone)
        moved = Handoff(id="m1", source=0, target=1, at="", generation=generation)
        cr = {
            "metadata": {
                "name": spec.resource_name,
                "namespace": "ns",
                "resourceVersion": "7",
                "deletionTimestamp": "2026-12-01T00:00:00Z",
                "finalizers": [CLEANUP_FINALIZER],
                "labels": {SHARD_LABEL: "1"},
                "annotations": {HANDOFF_ANNOTATION: moved.to_json()},
            },
            "spec": {"phone": spec.phone},
            "status": {"phase": "Moving", "handoff": {"id": "m1", "generation": generation}},
        }
        kube = DeletingKube(cr)
        writer = CrStatusWriter(kube, "ns", "b")  # type: ignore[arg-type]
        sync = ShardSync(kube, "ns", 1, b.manager, writer)  # type: ignore[arg-type]
        await sync.apply(cr)
        await b.wait_for("the device logged out", lambda: not sim.devices_of(spec.phone), 10)
        await b.wait_for("the finalizer released", lambda: kube.released, 10)
    finally:
        await close_shard(a)
        await close_shard(b)
