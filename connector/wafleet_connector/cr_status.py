"""Account status -> the WhatsAppAccount CR's status subresource, and phase Events."""

from __future__ import annotations

import logging
from typing import Any

from wafleet.core.models import AccountStatus
from wafleet.core.phases import Phase
from wafleet.kube.account_cr import API_VERSION, KIND, status_patch
from wafleet.kube.client import ACCOUNTS, EVENTS, Conflict, KubeClient, KubeError, NotFound
from wafleet.kube.events import event_body

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
_WARNING_PHASES = {
    Phase.LOGGED_OUT,
    Phase.QR_TIMEOUT,
    Phase.PASSKEY_REQUIRED,
    Phase.FAILED,
    Phase.RECONNECTING,
    Phase.REPLACED,
}


class CrStatusWriter:
    """The connector's StatusWriter in a cluster (the manager debounces the calls)."""

    def __init__(self, kube: KubeClient, namespace: str, reporter: str) -> None:
        self._kube = kube
        self._namespace = namespace
        self._reporter = reporter
        self.crs: dict[str, Obj] = {}  # the latest CR of each account id, kept by the shard sync
        self.extra: dict[str, Obj] = {}  # more status fields per account (regenerateRequest)
        self._phases: dict[str, Phase] = {}

    async def write_statuses(self, statuses: dict[str, AccountStatus]) -> None:
        for account_id, status in statuses.items():
            cr = await self._write(account_id, status)
            if cr is None:
                continue
            if self._phases.get(account_id) != status.phase:
                self._phases[account_id] = status.phase
                await self._event(cr, status)

    async def _write(self, account_id: str, status: AccountStatus) -> Obj | None:
        """Patch the status over the CR as last seen; on a conflict, read it again and retry.

        The operator writes the same status (its Assigned condition), so every write
        carries the resourceVersion it was computed from and never drops the other's.
        """
        for _ in range(5):
            cr = self.crs.get(account_id)
            if cr is None:
                return None  # no longer ours
            old = cr.get("status") or {}
            patch = status_patch(
                status, list(old.get("conditions") or []), cr["metadata"].get("generation")
            )
            patch["status"].update(self.extra.get(account_id, {}))
            patch["metadata"] = {"resourceVersion": cr["metadata"]["resourceVersion"]}
            name = cr["metadata"]["name"]  # the id may be a legacy id; the API knows names
            try:
                written = await self._kube.patch(
                    ACCOUNTS, self._namespace, name, patch, subresource="status"
                )
            except NotFound:
                return None
            except Conflict:
                try:
                    fresh = await self._kube.get(ACCOUNTS, self._namespace, name)
                except NotFound:
                    return None
                if account_id in self.crs:
                    self.crs[account_id] = fresh
                continue
            if account_id in self.crs:
                self.crs[account_id] = written
            return written
        logger.warning("status not written after 5 conflicts", extra={"account": account_id})
        return None

    async def _event(self, cr: Obj, status: AccountStatus) -> None:
        involved = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {**cr["metadata"], "namespace": self._namespace},
        }
        event = event_body(
            involved,
            warning=status.phase in _WARNING_PHASES,
            reason=status.phase.value,
            message=status.reason or f"the account is {status.phase.value}",
            component="wafleet-connector",
            instance=self._reporter,
        )
        try:
            await self._kube.create(EVENTS, self._namespace, event)
        except (KubeError, OSError) as exc:
            logger.debug("event not posted", extra={"error": str(exc)})

    def forget(self, account_id: str) -> None:
        self.crs.pop(account_id, None)
        self.extra.pop(account_id, None)
        self._phases.pop(account_id, None)
