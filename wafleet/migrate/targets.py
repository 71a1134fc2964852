"""Where migrated accounts go: the standalone registry and sessions folder, or a cluster.

Standalone: the account joins the registry (``data_dir/registry.db``) and its converted
store is placed at ``{sessions_dir}/{legacy id}.db``, where the session manager opens it.

Cluster: the connector's volume is not reachable from here, so the converted store becomes
the account's first session backup generation (``wa_sessions/{wa-name}``, encrypted with
the installation's backup key) and only then is the WhatsAppAccount created: the connector
that gets the account finds no session on its volume, restores the backup, and resumes the
device. The order matters: an account created first could start a new link before its
backup exists.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from wafleet.backups.base import SessionBackups
from wafleet.core.models import AccountSpec
from wafleet.kube.account_cr import account_id_of, new_account_cr
from wafleet.kube.client import ACCOUNTS, KubeClient, NotFound
from wafleet.stores.sqlite_registry import PhoneInUseError, SqliteRegistry


@dataclass(frozen=True)
class Holding:
    """What the target already holds for an account."""

    account: bool = False  # an account with this id exists
    device_jid: str | None = None  # the linked device in its session store, if any
    other: str | None = None  # another account owns the phone (or the wafleet name): its id
    settled: bool = False  # the account and its session are in place: nothing to do


class Target(Protocol):
    description: str

    async def holding(self, spec: AccountSpec) -> Holding: ...

    async def place(self, spec: AccountSpec, store: Path | None) -> None:
        """Create the account; with ``store``, the converted session first."""
        ...

    async def close(self) -> None: ...


def device_jid(path: Path) -> str | None:
    """The JID of the device in a whatsmeow store, None without one (read only)."""
    if not path.exists():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT jid FROM whatsmeow_device LIMIT 1").fetchone()
    except sqlite3.Error:
        return "(an unreadable session store)"
    return str(row[0]) if row else None


class StandaloneTarget:
    """Standalone mode's registry and sessions folder (stop wafleet while migrating)."""

    def __init__(self, registry: SqliteRegistry, sessions_dir: Path) -> None:
        self._registry = registry
        self._sessions = sessions_dir
        self._phones: dict[str, str] | None = None  # phone -> account id, read once
        self.description = f"standalone ({sessions_dir})"

    @classmethod
    async def open(cls, data_dir: Path, sessions_dir: Path) -> StandaloneTarget:
        registry = await SqliteRegistry(data_dir / "registry.db").open()
        return cls(registry, sessions_dir)

    def store_path(self, spec: AccountSpec) -> Path:
        return self._sessions / f"{spec.id}.db"

    async def holding(self, spec: AccountSpec) -> Holding:
        account = await self._registry.get(spec.id)
        other = None
        if account is None:
            if self._phones is None:  # one read for the run, not one per account
                self._phones = {a.spec.phone: a.id for a in await self._registry.list()}
            by_name = await self._registry.get(spec.resource_name)
            other = by_name.id if by_name is not None else self._phones.get(spec.phone)
        jid = device_jid(self.store_path(spec))
        return Holding(account is not None, jid, other, settled=account is not None and bool(jid))

    async def place(self, spec: AccountSpec, store: Path | None) -> None:
        if store is not None:
            self._sessions.mkdir(parents=True, exist_ok=True, mode=0o700)
            target = self.store_path(spec)
            temp = target.with_name(f".{target.name}.migrating")
            shutil.copyfile(store, temp)
            os.chmod(temp, 0o600)
            with temp.open("rb") as handle:
                os.fsync(handle.fileno())
            os.replace(temp, target)  # atomic: the manager never sees half a store
        try:
            await self._registry.create(spec)
        except PhoneInUseError as exc:
            raise RuntimeError(str(exc)) from None
        if self._phones is not None:
            self._phones[spec.phone] = spec.id

    async def close(self) -> None:
        await self._registry.close()


class ClusterTarget:
    """WhatsAppAccount resources, with the session seeded as the first backup."""

    def __init__(self, kube: KubeClient, namespace: str, backups: SessionBackups | None) -> None:
        self._kube = kube
        self._namespace = namespace
        self._backups = backups
        self.description = f"cluster (namespace {namespace})"

    async def holding(self, spec: AccountSpec) -> Holding:
        try:
            cr = await self._kube.get(ACCOUNTS, self._namespace, spec.resource_name)
        except NotFound:
            return Holding()
        if account_id_of(cr) != spec.id:
            return Holding(other=account_id_of(cr))
        # The device a seeded backup holds is not read back here (it is encrypted, and the
        # connector may have moved on from it); the account's status says which it runs.
        jid = (cr.get("status") or {}).get("jid")
        return Holding(account=True, device_jid=jid if isinstance(jid, str) else None, settled=True)

    async def place(self, spec: AccountSpec, store: Path | None) -> None:
        if store is not None:
            if self._backups is None:
                raise RuntimeError(
                    "a cluster migration seeds each session as a backup: set WAFLEET_STORE="
                    "firestore and the installation's WAFLEET_BACKUP_KEY"
                )
            await self._backups.backup(spec.resource_name, store)
        cr = new_account_cr(spec)
        cr["metadata"]["labels"]["app.kubernetes.io/managed-by"] = "wafleet-migrate-legacy"
        await self._kube.create(ACCOUNTS, self._namespace, cr)

    async def close(self) -> None:
        if self._backups is not None:
            await self._backups.close()
        await self._kube.close()
