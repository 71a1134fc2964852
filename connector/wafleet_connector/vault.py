"""Session files and their backups: restore before a start, back up after linking, forget.

Without backups (standalone without a key) the vault only wipes files.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from wafleet.backups.base import BackupCorruptError, BackupKeyError, BackupTooOld, SessionBackups
from wafleet_connector.sessionfiles import wipe_session

logger = logging.getLogger(__name__)


class RestoreRefused(Exception):
    """The backup exists but cannot be opened (wrong or missing key, corrupt): a person must act."""


class SessionVault:
    def __init__(self, backups: SessionBackups | None) -> None:
        self._backups = backups
        self._pending: set[asyncio.Task[None]] = set()

    async def prepare(self, account_id: str, path: Path) -> bool:
        """Restore the session from its backup if it is not on the volume; True if restored.

        Raises RestoreRefused for a backup that cannot be opened (the local file is left
        alone) and lets other errors (an unreachable store) through as transient.
        """
        if self._backups is None:
            return False
        try:
            restored = await self._backups.restore_if_missing(account_id, path)
        except (BackupKeyError, BackupCorruptError) as exc:
            raise RestoreRefused(str(exc)) from exc
        if restored:
            logger.info("session restored from its backup", extra={"account": account_id})
        return restored

    async def take_over(self, account_id: str, path: Path, generation: int) -> int:
        """Put the session another shard handed over (its backup ``generation`` or newer) in
        place of whatever this volume holds for it; the generation placed. Generation 0 (the
        source was fenced, or had no session): the latest backup, and with none the file is
        wiped, never started from an earlier stay here (the account links anew). Raises
        RestoreRefused for a backup that cannot be opened, BackupTooOld (transient) while
        that generation is not there."""
        if self._backups is None:
            raise RestoreRefused(
                "a session handed over from another shard travels as a backup: this "
                "connector has no session backups configured (WAFLEET_STORE=firestore and "
                "WAFLEET_BACKUP_KEY)"
            )
        try:
            return await self._backups.restore_generation(account_id, path, generation)
        except BackupTooOld:
            if generation > 0:
                raise
            await asyncio.to_thread(wipe_session, path)
            logger.warning(
                "no session backup to take over: the account links anew",
                extra={"account": account_id},
            )
            return 0
        except (BackupKeyError, BackupCorruptError) as exc:
            raise RestoreRefused(str(exc)) from exc

    async def hand_over(self, account_id: str, path: Path) -> int:
        """Back the stopped session up now, for another shard to take; the generation that
        holds it (the current one when nothing changed since the last backup; 0 when this
        volume has no session: the next shard takes the latest backup, if any)."""
        if self._backups is None:
            raise RestoreRefused(
                "a session can move to another shard only through its backup: configure "
                "session backups (WAFLEET_STORE=firestore and WAFLEET_BACKUP_KEY)"
            )
        info = await self._backups.backup(account_id, path)
        return 0 if info is None else info.manifest.generation

    def backup_soon(self, account_id: str, path: Path) -> None:
        """Back the session up in the background (after linking, and periodically)."""
        if self._backups is None:
            return
        task = asyncio.create_task(self._backup(account_id, path), name=f"backup-{account_id}")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _backup(self, account_id: str, path: Path) -> None:
        assert self._backups is not None
        try:
            await self._backups.backup(account_id, path)
        except Exception as exc:
            logger.warning(
                "session backup failed", extra={"account": account_id, "error": str(exc)}
            )

    async def forget(self, account_id: str, path: Path) -> None:
        """The device is unlinked or the account deleted: wipe the file and its backups."""
        await asyncio.to_thread(wipe_session, path)
        if self._backups is not None:
            try:
                await self._backups.delete(account_id)
            except Exception as exc:
                logger.warning(
                    "session backup not deleted", extra={"account": account_id, "error": str(exc)}
                )

    async def close(self, within: float = 3.0) -> None:
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=within)
        if self._backups is not None:
            await self._backups.close()
