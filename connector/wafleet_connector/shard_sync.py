"""Keep the session manager in step with the accounts labelled with this shard.

Lists then watches WhatsAppAccounts with ``wafleet.io/shard=<N>`` (the label
selector is applied by the API server), and for each change: runs new
accounts, suspends/resumes, regenerates a QR on request (an annotation), and
on deletion logs the device out, wipes its session and releases the finalizer. An account
that moves between shards is held while this shard gives it up or takes it over
(handoff.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from wafleet.kube.account_cr import (
    CLEANUP_FINALIZER,
    REGENERATE_ANNOTATION,
    SHARD_LABEL,
    account_id_of,
    spec_of,
    status_of,
)
from wafleet.kube.client import ACCOUNTS, Conflict, KubeClient, NotFound
from wafleet.kube.listwatch import ListWatch
from wafleet_connector.cr_status import CrStatusWriter
from wafleet_connector.handoff import HandoffSteps, role_of
from wafleet_connector.manager import SessionManager, UnknownAccount
from wafleet_connector.runner import CommandRefused, UnlinkPending

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
WATCH_SECONDS = 240


def _newer(a: Obj, b: Obj) -> bool:
    """Whether resource ``a`` was written after ``b`` (resourceVersions are opaque strings;
    the API server's are increasing integers, and anything else counts as newer)."""
    try:
        return int(a["metadata"]["resourceVersion"]) > int(b["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return True


class ShardSync:
    def __init__(
        self,
        kube: KubeClient,
        namespace: str,
        ordinal: int,
        manager: SessionManager,
        statuses: CrStatusWriter,
        *,
        watch_seconds: int = WATCH_SECONDS,
    ) -> None:
        self._kube = kube
        self._namespace = namespace
        self._manager = manager
        self._statuses = statuses
        self._ordinal = ordinal
        self._active = False  # run() is listing or watching (the shard holds its Lease)
        self.handoffs = HandoffSteps(kube, namespace, ordinal, manager, self._again)
        self._names: dict[str, str] = {}  # account id -> resource name, where they differ
        # Awaited with the account id once its device is unlinked, before the finalizer is
        # released (the accounts mirror marks accounts/{id} deleted: a re-add, maybe on
        # another shard, can only come after). Keep it bounded; what it raises is logged.
        self.on_cleaned_up: Callable[[str], Awaitable[object]] | None = None
        self.watch = ListWatch(
            kube,
            ACCOUNTS,
            namespace,
            self._listed,
            self._event,
            label_selector=f"{SHARD_LABEL}={ordinal}",
            watch_seconds=watch_seconds,
        )

    @property
    def synced(self) -> asyncio.Event:
        return self.watch.synced

    async def run(self) -> None:
        """List, then watch from the list's resourceVersion (ListWatch: resumes, relists).
        Handoff steps in flight end with it (the shard's Lease was lost, or it stops)."""
        self._active = True
        try:
            await self.watch.run()
        finally:
            self._active = False
            await self.handoffs.close()

    async def _listed(self, items: list[Obj]) -> None:
        seen = set()
        for cr in items:
            seen.add(account_id_of(cr))
            await self.apply(cr)
        for gone in set(self._manager.account_ids()) - seen:
            await self._release(gone)

    async def _event(self, kind: str, cr: Obj) -> None:
        if kind == "DELETED":
            await self._release(account_id_of(cr))
        elif kind in ("ADDED", "MODIFIED"):
            await self.apply(cr)

    async def apply(self, cr: Obj) -> None:
        # The manager and the status writer know accounts by id (a legacy id, or the name);
        # only calls to the API server use the name.
        name = account_id_of(cr)
        self._names[name] = cr["metadata"]["name"]
        self._statuses.crs[name] = cr
        role = role_of(cr, self._ordinal)
        if cr["metadata"].get("deletionTimestamp"):
            await self.handoffs.cancel(name)  # a delete ends a move: the device is unlinked
            if role.step == "take" and name not in self._manager.account_ids():
                await self.handoffs.restore_to_unlink(cr)  # the session is in the backup
            await self._delete(cr)
            return
        if role.step is not None:
            self.handoffs.start(cr, role.step)
        if role.hold and role.step != "take":
            # Given away: this shard writes nothing more for it (a status write in flight
            # would put back the phase of the session it stopped over the move's).
            self._statuses.forget(name)
        if role.hold or self.handoffs.busy(name):
            return  # moving: given up here, or not yet taken over
        self._manager.ensure(spec_of(cr), status_of(cr))
        request = (cr["metadata"].get("annotations") or {}).get(REGENERATE_ANNOTATION)
        handled = self._statuses.extra.get(name, {}).get("regenerateRequest") or (
            cr.get("status") or {}
        ).get("regenerateRequest")
        if request and request != handled:
            self._statuses.extra.setdefault(name, {})["regenerateRequest"] = request
            with contextlib.suppress(CommandRefused, UnknownAccount):
                await self._manager.command(name, "regenerate")

    async def _again(self, account_id: str, written: Obj | None) -> None:
        """A handoff step ended: apply the account's latest resource (the one the step
        wrote, unless the watch brought a newer one meanwhile)."""
        current = self._statuses.crs.get(account_id)
        if current is None or not self._active:
            return  # it left this shard meanwhile, or the shard stopped (no Lease)
        if written is not None and _newer(written, current):
            self._statuses.crs[account_id] = current = written
        await self.apply(current)

    async def _release(self, name: str) -> None:
        """The account left this shard (or is gone): stop it, keep its session."""
        with contextlib.suppress(UnknownAccount):
            await self._manager.release(name)
        self._statuses.forget(name)
        self._names.pop(name, None)

    async def _delete(self, cr: Obj) -> None:
        meta = cr["metadata"]
        name = account_id_of(cr)
        if CLEANUP_FINALIZER not in (meta.get("finalizers") or []):
            await self._release(name)
            return
        if name not in self._manager.account_ids():
            # No runner (e.g. the connector restarted): one unlinks whatever the file holds.
            self._manager.ensure(spec_of(cr), status_of(cr))
        try:
            await self._manager.remove(name)  # logs the device out, then wipes the session
        except UnlinkPending as exc:
            logger.warning(
                "delete waits for the device to be unlinked",
                extra={"account": name, "why": str(exc)},
            )
            return  # the runner retries; when it is done, deleted() releases the finalizer
        except UnknownAccount:
            pass
        await self.deleted(name)

    async def deleted(self, account_id: str) -> None:
        """The device is unlinked and the session wiped: release the finalizer.

        The metadata is read fresh rather than taken from the watch event: the event is
        often older than the status the runner wrote while unlinking, so its
        resourceVersion would only buy a Conflict.
        """
        self._statuses.forget(account_id)
        if self.on_cleaned_up is not None:
            try:
                await self.on_cleaned_up(account_id)
            except Exception:
                logger.exception("clean-up hook failed", extra={"account": account_id})
        name = self._names.pop(account_id, account_id)
        try:
            meta = (await self._kube.get(ACCOUNTS, self._namespace, name))["metadata"]
        except NotFound:
            return
        finalizers = [f for f in meta.get("finalizers", []) if f != CLEANUP_FINALIZER]
        for _ in range(5):
            try:
                await self._kube.patch(
                    ACCOUNTS,
                    self._namespace,
                    name,
                    {
                        "metadata": {
                            "finalizers": finalizers,
                            "resourceVersion": meta["resourceVersion"],
                        }
                    },
                )
                logger.info("account cleaned up", extra={"account": name})
                return
            except NotFound:
                return
            except Conflict:
                meta = (await self._kube.get(ACCOUNTS, self._namespace, name))["metadata"]
                finalizers = [f for f in meta.get("finalizers", []) if f != CLEANUP_FINALIZER]
        # Still held: the next event of this account (or the operator's clean-up) retries.
        logger.warning("finalizer not released after 5 conflicts", extra={"account": name})
