"""Firestore plumbing shared by the stores: the client, non-atomic batch writes, compare-and-set.

- :func:`batch_write` sends many independent writes in one ``BatchWrite`` RPC (up
  to 500 writes per request) and returns each write's own status: a ``create``
  whose document exists fails alone with ``ALREADY_EXISTS`` while the others are
  applied (session backups' chunks, bulk deletes; the writes that log events
  are atomic commits instead, :mod:`wafleet.stores.firestore_seq`). The python
  client exposes ``BatchWrite`` only through its synchronous ``BulkWriter``;
  here the writes are built with the
  client's own encoders (:class:`WriteList`, so sentinels such as
  ``SERVER_TIMESTAMP`` and preconditions work) and sent through the async GAPIC
  client, as ``BulkWriteBatch.commit`` does.
- :func:`compare_and_set` is an optimistic single-document transaction: read,
  decide, write with an ``update_time`` precondition, retry on conflict. It takes
  no locks, so contending writers never wait on each other.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from google.api_core import exceptions
from google.cloud.firestore import AsyncClient
from google.cloud.firestore_v1.async_document import AsyncDocumentReference
from google.cloud.firestore_v1.base_batch import BaseBatch
from google.cloud.firestore_v1.base_document import DocumentSnapshot
from google.cloud.firestore_v1.types import write as write_pb

from wafleet.core.envconfig import ConfigError
from wafleet.core.settings import Settings

logger = logging.getLogger(__name__)

Snapshot = DocumentSnapshot[AsyncDocumentReference]

OK = 0
NOT_FOUND = 5
ALREADY_EXISTS = 6
FAILED_PRECONDITION = 9
_TRANSIENT = frozenset({4, 8, 10, 13, 14})  # deadline, exhausted, aborted, internal, unavailable
MAX_WRITES_PER_REQUEST = 500
MAX_BYTES_PER_REQUEST = 8 << 20  # the API's limit is 10 MiB
_WRITE_RETRIES = 4
CAS_ATTEMPTS = 25


class StoreError(RuntimeError):
    """A Firestore write failed for a reason other than a precondition."""


def make_client(
    project: str | None, database: str = "(default)", credentials_json: str | None = None
) -> AsyncClient:
    """An async client; ``FIRESTORE_EMULATOR_HOST`` in the environment selects the emulator.

    ``credentials_json`` is a service account key's content (WAFLEET_FIRESTORE_CREDENTIALS_JSON,
    or the legacy FIREBASE_SERVICE_ACCOUNT_JSON); None uses the environment's default
    credentials (the workload identity in a cluster, GOOGLE_APPLICATION_CREDENTIALS).
    """
    if credentials_json is None:
        return AsyncClient(project=project, database=database)
    from google.oauth2 import service_account  # noqa: PLC0415

    try:
        info = json.loads(credentials_json)
        make = service_account.Credentials.from_service_account_info
        credentials = make(info)  # type: ignore[no-untyped-call]
    except (ValueError, KeyError, TypeError) as exc:
        detail = f"{type(exc).__name__}: {exc}"[:200]
        raise ConfigError(
            f"WAFLEET_FIRESTORE_CREDENTIALS_JSON is not a usable service account key: {detail}"
        ) from None
    return AsyncClient(
        project=project or credentials.project_id, database=database, credentials=credentials
    )


def settings_client(settings: Settings) -> AsyncClient:
    """The client for the project, database and credentials ``settings`` name."""
    return make_client(
        settings.firestore_project,
        settings.firestore_database,
        settings.firestore_credentials_json,
    )


async def close_client(client: AsyncClient) -> None:
    """Close the client's gRPC channel if it was opened (the client has no close of its own)."""
    api = getattr(client, "_firestore_api_internal", None)
    if api is not None:
        await api.transport.close()
        client._firestore_api_internal = None


class WriteList(BaseBatch):
    """Collects ``Write`` protobufs through the client's encoders; never commits itself."""

    def commit(self) -> NoReturn:
        raise NotImplementedError("send the writes with batch_write()")

    @property
    def writes(self) -> list[write_pb.Write]:
        return self._write_pbs


@dataclass(frozen=True)
class WriteStatus:
    code: int
    message: str

    @property
    def ok(self) -> bool:
        return self.code == OK


def _requests(writes: Sequence[write_pb.Write]) -> list[list[int]]:
    """Split write indexes into requests under the count and size limits."""
    groups: list[list[int]] = []
    current: list[int] = []
    size = 0
    for index, write in enumerate(writes):
        write_size = write_pb.Write.pb(write).ByteSize()
        if current and (
            len(current) >= MAX_WRITES_PER_REQUEST or size + write_size > MAX_BYTES_PER_REQUEST
        ):
            groups.append(current)
            current, size = [], 0
        current.append(index)
        size += write_size
    if current:
        groups.append(current)
    return groups


async def _send(client: AsyncClient, writes: list[write_pb.Write]) -> list[WriteStatus]:
    response = await client._firestore_api.batch_write(
        request={"database": client._database_string, "writes": writes},
        metadata=client._rpc_metadata,
    )
    return [WriteStatus(int(s.code), str(s.message)) for s in response.status]


async def batch_write(client: AsyncClient, writes: Sequence[write_pb.Write]) -> list[WriteStatus]:
    """Apply independent writes (at most one per document) in as few RPCs as the limits allow.

    Returns one status per write, in order. Writes that fail for a transient reason
    are sent again a few times; precondition failures are returned, not raised.
    """
    results: list[WriteStatus | None] = [None] * len(writes)
    pending = list(range(len(writes)))
    for attempt in range(_WRITE_RETRIES + 1):
        groups = [[pending[i] for i in group] for group in _requests([writes[i] for i in pending])]
        answers = await asyncio.gather(
            *(_send(client, [writes[i] for i in group]) for group in groups)
        )
        retry: list[int] = []
        for group, statuses in zip(groups, answers, strict=True):
            for index, status in zip(group, statuses, strict=True):
                results[index] = status
                if status.code in _TRANSIENT and attempt < _WRITE_RETRIES:
                    retry.append(index)
        if not retry:
            break
        pending = retry
        await asyncio.sleep(0.05 * 2**attempt * (1 + random.random()))
    return [r if r is not None else WriteStatus(13, "not sent") for r in results]


def raise_unexpected(statuses: Sequence[WriteStatus], allowed: frozenset[int]) -> None:
    for status in statuses:
        if status.code != OK and status.code not in allowed:
            raise StoreError(f"Firestore write failed (code {status.code}): {status.message}")


Decision = Mapping[str, Any] | None


async def compare_and_set(
    client: AsyncClient,
    ref: AsyncDocumentReference,
    decide: Callable[[Snapshot], Decision],
) -> tuple[Snapshot, Decision]:
    """Read ``ref``, let ``decide`` return the fields to update (or None), write if unchanged.

    The update carries the read's ``update_time`` as a precondition, so it applies
    only if nobody wrote the document in between; otherwise it starts over.
    ``decide`` sees a snapshot that may not exist. Returns the snapshot decided on
    and the fields written (None: nothing written).
    """
    for attempt in range(CAS_ATTEMPTS):
        snapshot = await ref.get()
        fields = decide(snapshot)
        if fields is None or not snapshot.exists:
            return snapshot, None
        option = client.write_option(last_update_time=snapshot.update_time)
        try:
            await ref.update(dict(fields), option=option)
        except (exceptions.FailedPrecondition, exceptions.NotFound):
            await asyncio.sleep(0.005 * min(attempt + 1, 10) * random.random())
            continue
        return snapshot, fields
    raise StoreError(f"{ref.path}: gave up after {CAS_ATTEMPTS} conflicting writes")
