"""The legacy ``accounts/{accountId}`` documents: the mapping from our records, and the writer.

The legacy server kept one document per account that the customer's app reads
(``reference/legacy-backend-audit.md`` section 10.1). wafleet writes it from the
account's phase, in the legacy field names and status values (``LEGACY_STATUS``);
timestamps are Firestore Timestamps truncated to milliseconds, as everywhere in
the legacy schema wafleet writes (``firestore_codec``), ``updatedAt`` the server's
time of the write. Fields only the legacy server wrote (``claimedBy``,
``claimedAt``, ``leaseUntil``) are left as they are. See docs/firestore.md.

Who may write a document: the component that runs the account. Every write is
conditional on the document's version this writer last saw (``update_time``, or
"does not exist"), so a write that a connector sent before it released the
account can never land over one of the new owner: it fails, and the writer then
asks ``still_ours`` before it tries again from a fresh read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from google.api_core import exceptions
from google.cloud.firestore import SERVER_TIMESTAMP, AsyncClient
from google.cloud.firestore_v1.async_document import AsyncDocumentReference

from wafleet.core.models import AccountSpec, AccountStatus, Disconnect
from wafleet.core.phases import LEGACY_STATUS, Phase
from wafleet.core.qr_png import qr_png_data_url
from wafleet.stores.firestore_codec import ms
from wafleet.stores.firestore_io import CAS_ATTEMPTS, StoreError, close_client

logger = logging.getLogger(__name__)

ACCOUNTS = "accounts"
DELETED = "deleted"  # the legacy delete endpoint's status
DELETED_PHASE = "Deleted"  # our ``phase`` field beside it (no runner phase: the account is gone)
RPC_TIMEOUT = 10.0  # seconds per Firestore call; the caller retries with backoff
# Phases whose reason is not an error: everything else (failures, and phases that wait
# for a person's command, e.g. LoggedOut, QRTimeout, Suspended) shows it as lastError.
_PROGRESS = frozenset(
    {Phase.PENDING, Phase.CONNECTING, Phase.QR_READY, Phase.PAIRING_CODE_READY, Phase.CONNECTED}
)
_UNKNOWN_STATUS = "disconnected"  # a phase LEGACY_STATUS does not name yet
_ABSENT = None  # the cached version of a document known not to exist


@dataclass(frozen=True)
class WorkerInfo:
    """The legacy ``worker`` map: what writes the document (service, pod, version)."""

    service: str  # "wafleet-connector" or "wafleet-standalone"
    instance_id: str  # the pod name (a StatefulSet's is stable across restarts) or host name
    version: str

    def as_map(self) -> dict[str, str]:
        return {"service": self.service, "instanceId": self.instance_id, "version": self.version}


@dataclass(frozen=True)
class AccountState:
    """What the document says of one account: equal states need no write.

    ``last_event_at`` goes along with every write but is left out of the comparison:
    every status report moves it, and a report that changed nothing else is not worth
    a write. The QR code is kept raw here and rendered as a PNG only when written.
    Phone, QR and pairing code stay out of ``repr`` (logs).
    """

    account_id: str
    name: str
    phone: str = field(repr=False)
    created_at: datetime
    phase: Phase
    status: str
    qr: str | None = field(repr=False)
    pairing_code: str | None = field(repr=False)
    jid: str | None = field(repr=False)
    last_message_at: datetime | None
    last_disconnect: Disconnect | None
    last_error: str | None
    last_event_at: datetime | None = field(compare=False)


def _disconnect(last: Disconnect | None) -> Disconnect | None:
    return None if last is None else Disconnect(last.reason, last.code, ms(last.at))


def account_state(spec: AccountSpec, status: AccountStatus) -> AccountState:
    phase = status.phase
    return AccountState(
        account_id=spec.id,
        name=spec.name,
        phone=spec.phone,
        created_at=ms(spec.created_at),
        phase=phase,
        status=LEGACY_STATUS.get(phase, _UNKNOWN_STATUS),
        qr=status.qr if phase == Phase.QR_READY else None,
        pairing_code=status.pairing_code if phase == Phase.PAIRING_CODE_READY else None,
        jid=status.jid,
        last_message_at=None if status.last_message_at is None else ms(status.last_message_at),
        last_disconnect=_disconnect(status.last_disconnect),
        last_error=None if phase in _PROGRESS else status.reason,
        last_event_at=None if status.last_event_at is None else ms(status.last_event_at),
    )


def account_doc(state: AccountState, worker: WorkerInfo, qr_code: str | None) -> dict[str, Any]:
    """The fields written for ``state``; ``qr_code`` is its QR as a data URL (or None).

    History fields (``waJid``, ``lastMessageAt``, ``lastEventAt``, the last disconnect)
    are left out while unknown, so a document the legacy server wrote keeps its values
    until wafleet has newer ones; state fields (``qrCode``, ``pairingCode``,
    ``lastError``) are always written, null when they do not apply.
    """
    doc: dict[str, Any] = {
        "accountId": state.account_id,
        "name": state.name,
        "phone": state.phone,
        "phoneE164": state.phone,
        "status": state.status,
        "phase": state.phase.value,
        "qrCode": qr_code,
        "pairingCode": state.pairing_code,
        "lastError": state.last_error,
        "createdAt": state.created_at,
        "updatedAt": SERVER_TIMESTAMP,
        "worker": worker.as_map(),
    }
    if state.jid is not None:
        doc["waJid"] = state.jid
    if state.last_event_at is not None:
        doc["lastEventAt"] = state.last_event_at
    if state.last_message_at is not None:
        doc["lastMessageAt"] = state.last_message_at
    if state.last_disconnect is not None:
        doc["lastDisconnectedAt"] = state.last_disconnect.at
        doc["lastDisconnectReason"] = state.last_disconnect.reason
        doc["lastDisconnectCode"] = state.last_disconnect.code
    return doc


def deleted_fields(worker: WorkerInfo) -> dict[str, Any]:
    """What a delete changes: the legacy ``status: deleted`` and ``updatedAt``, and the
    codes that no longer open anything; the rest stays for the app to read."""
    return {
        "status": DELETED,
        "phase": DELETED_PHASE,
        "qrCode": None,
        "pairingCode": None,
        "lastError": None,
        "updatedAt": SERVER_TIMESTAMP,
        "worker": worker.as_map(),
    }


def _instance_of(data: Mapping[str, Any] | None) -> object:
    worker = (data or {}).get("worker")
    return worker.get("instanceId") if isinstance(worker, Mapping) else None


_CONFLICTS = (exceptions.AlreadyExists, exceptions.FailedPrecondition, exceptions.NotFound)


class FirestoreAccounts:
    """Writes ``accounts/{id}`` for the accounts one component runs (see the module doc).

    Not safe for two concurrent writes of one account: the caller (the accounts
    mirror) sends one at a time per account.
    """

    def __init__(
        self,
        client: AsyncClient,
        worker: WorkerInfo,
        *,
        owns_client: bool = False,
        timeout: float = RPC_TIMEOUT,
    ) -> None:
        self._client = client
        self.worker = worker
        self._owns_client = owns_client
        self._timeout = timeout
        # The update_time of each document as last written or read here; None: absent.
        self._versions: dict[str, datetime | None] = {}

    def _ref(self, account_id: str) -> AsyncDocumentReference:
        return self._client.collection(ACCOUNTS).document(account_id)

    def state(self, spec: AccountSpec, status: AccountStatus) -> AccountState:
        return account_state(spec, status)

    async def _version(self, ref: AsyncDocumentReference, account_id: str) -> datetime | None:
        """The cached version, or a fresh read's (None: the document does not exist)."""
        if account_id not in self._versions:
            snapshot = await ref.get(timeout=self._timeout)
            self._versions[account_id] = snapshot.update_time if snapshot.exists else _ABSENT
        return self._versions[account_id]

    async def write(self, state: AccountState, still_ours: Callable[[], bool]) -> bool:
        """Write ``state``; False if someone else wrote meanwhile and it is no longer ours.

        Raises on other failures (unreachable, permission): the caller retries.
        """
        account_id = state.account_id
        ref = self._ref(account_id)
        qr_code = None if state.qr is None else await asyncio.to_thread(qr_png_data_url, state.qr)
        doc = account_doc(state, self.worker, qr_code)
        for _ in range(CAS_ATTEMPTS):
            version = await self._version(ref, account_id)
            try:
                if version is _ABSENT:
                    result = await ref.create(doc, timeout=self._timeout)
                else:
                    option = self._client.write_option(last_update_time=version)
                    result = await ref.update(doc, option=option, timeout=self._timeout)
            except _CONFLICTS:
                # Written (or deleted) by someone else since we looked, or a retried
                # commit of ours that had landed: look again, if the account is still ours.
                self._versions.pop(account_id, None)
                if not still_ours():
                    return False
                continue
            self._versions[account_id] = result.update_time
            return True
        raise StoreError(f"accounts/{account_id}: gave up after {CAS_ATTEMPTS} conflicting writes")

    async def mark_deleted(self, account_id: str) -> bool:
        """Set ``status: deleted``; False when there is no document, or when another
        instance wrote it since this one last did (the account was added again
        elsewhere: its new owner's document stands)."""
        ref = self._ref(account_id)
        fields = deleted_fields(self.worker)
        contested = False
        for _ in range(CAS_ATTEMPTS):
            if self._versions.get(account_id) is _ABSENT:
                self._versions.pop(account_id, None)  # absent when last seen: look again
            if account_id not in self._versions:
                snapshot = await ref.get(timeout=self._timeout)
                if not snapshot.exists:
                    return False
                if contested and _instance_of(snapshot.to_dict()) != self.worker.instance_id:
                    return False
                self._versions[account_id] = snapshot.update_time
            option = self._client.write_option(last_update_time=self._versions[account_id])
            try:
                await ref.update(fields, option=option, timeout=self._timeout)
            except exceptions.NotFound:
                self._versions.pop(account_id, None)
                return False
            except exceptions.FailedPrecondition:
                self._versions.pop(account_id, None)
                contested = True
                continue
            self._versions.pop(account_id, None)  # the account is gone from here
            return True
        raise StoreError(f"accounts/{account_id}: gave up after {CAS_ATTEMPTS} conflicting writes")

    def forget(self, account_id: str) -> None:
        """Drop what is cached of the account (it is no longer written from here)."""
        self._versions.pop(account_id, None)

    async def close(self) -> None:
        if self._owns_client:
            self._owns_client = False
            await close_client(self._client)
