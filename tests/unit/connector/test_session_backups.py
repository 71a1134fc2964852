"""Session backups through the session manager: a new volume resumes from the backup."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import shutil
from pathlib import Path

from support.shard import account, close_shard, open_shard
from wafleet.backups.factory import open_backups
from wafleet.core.models import AccountSpec
from wafleet.core.phases import Phase
from wafleet.core.settings import Settings
from wafleet.sim.service import SimConfig, SimError, SimWhatsApp

KEY = base64.b64encode(bytes(range(32))).decode()
OTHER_KEY = base64.b64encode(bytes(range(1, 33))).decode()


def settings(tmp_path: Path, key: str) -> Settings:
    return Settings(data_dir=tmp_path / "shared", backup_key=key)


async def link_and_back_up(tmp_path: Path, sim: SimWhatsApp, spec: AccountSpec) -> None:
    """Link the account on node A, wait until its backup is written, stop node A."""
    first = await open_shard(
        tmp_path / "node-a", sim=sim, backups=open_backups(settings(tmp_path, KEY))
    )
    try:
        await first.link(spec)
        for _ in range(200):
            if list((tmp_path / "shared" / "backups").glob(f"*{spec.id}*")):
                return
            await asyncio.sleep(0.02)
        raise AssertionError("no backup was written after linking")
    finally:
        await close_shard(first)


async def test_a_lost_volume_is_restored_without_a_new_scan(tmp_path: Path) -> None:
    sim = SimWhatsApp(SimConfig(qr_first_ttl=5, qr_ttl=5))
    spec = account(1)
    await link_and_back_up(tmp_path, sim, spec)
    # The shard comes back on another node with an empty volume.
    second = await open_shard(
        tmp_path / "node-b", sim=sim, backups=open_backups(settings(tmp_path, KEY))
    )
    try:
        second.manager.ensure(spec)
        await second.wait_phase(spec.id, Phase.CONNECTED)
        assert (tmp_path / "node-b" / "sessions" / f"{spec.id}.db").exists()
        assert sim.summary()["devices"] == 1, "a second device was linked"
    finally:
        await close_shard(second)


async def test_a_wrong_key_fails_clearly_and_touches_nothing(tmp_path: Path) -> None:
    sim = SimWhatsApp(SimConfig(qr_first_ttl=5, qr_ttl=5))
    spec = account(2)
    await link_and_back_up(tmp_path, sim, spec)
    wrong = await open_shard(
        tmp_path / "node-b", sim=sim, backups=open_backups(settings(tmp_path, OTHER_KEY))
    )
    try:
        wrong.manager.ensure(spec)
        await wrong.wait_phase(spec.id, Phase.FAILED)
        status = wrong.manager.status(spec.id)
        assert status is not None
        assert "WAFLEET_BACKUP_KEY" in (status.reason or "")
        assert "regenerate-qr" in (status.reason or "")
        assert not (tmp_path / "node-b" / "sessions" / f"{spec.id}.db").exists()
        # A person decides to link a new device instead.
        await wrong.manager.command(spec.id, "regenerate")
        await wrong.wait_phase(spec.id, Phase.QR_READY)
    finally:
        await close_shard(wrong)
    shutil.rmtree(tmp_path / "node-b", ignore_errors=True)


async def test_a_session_moved_over_after_a_passkey_request_resumes_on_regenerate(
    tmp_path: Path,
) -> None:
    # The account's phone asks for a passkey, so the account waits in PasskeyRequired. Its
    # existing linked session is then moved over (as `wafleet migrate-legacy` seeds it: the
    # account's backup), and regenerate-qr resumes it with no new link.
    sim = SimWhatsApp(SimConfig(qr_first_ttl=5, qr_ttl=5))
    spec = account(3)
    shard = await open_shard(
        tmp_path / "node-b", sim=sim, backups=open_backups(settings(tmp_path, KEY))
    )
    try:
        sim.set_passkey(spec.phone, True)
        shard.manager.ensure(spec)
        await shard.wait_phase(spec.id, Phase.QR_READY)
        status = shard.manager.status(spec.id)
        assert status is not None and status.qr is not None
        with contextlib.suppress(SimError):
            sim.scan(status.qr, spec.phone)
        await shard.wait_phase(spec.id, Phase.PASSKEY_REQUIRED)
        session = tmp_path / "node-b" / "sessions" / f"{spec.id}.db"
        assert not session.exists(), "the failed link left a store that blocks a restore"
        # The session linked elsewhere (here: another node, with a phone asking no passkey)
        # becomes the account's backup.
        sim.set_passkey(spec.phone, False)
        await link_and_back_up(tmp_path, sim, spec)
        devices = sim.summary()["devices"]
        await shard.manager.command(spec.id, "regenerate")
        await shard.wait_phase(spec.id, Phase.CONNECTED)  # no code shown: nobody scans here
        assert sim.summary()["devices"] == devices, "a new device was linked"
        assert session.exists()
    finally:
        await close_shard(shard)
