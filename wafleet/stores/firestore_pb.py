"""Reads and atomic commits straight from protobuf: the event log's hot path, without proto-plus.

The client's encoders (``WriteBatch.create`` / ``update``) and decoders (``get_all``'s
snapshots, deep-copied on every ``to_dict``) go through proto-plus wrappers, which costs
about a third of a millisecond of CPU per document written and a fifth per document read:
for a journal batch of 500 inbound messages (500 message and 500 event documents written,
the messages and their threads read) that was most of the time the batch took.
:class:`Commit` builds the same ``Write`` messages with the raw protobuf classes and sends
them in one ``Commit`` request (atomic: every write applies or none does);
:func:`get_docs` reads documents in one ``BatchGetDocuments`` request and decodes the raw
answers into :class:`Doc`.

It covers what the stores write: documents of top-level fields whose values are None,
bool, int, float, str, bytes, datetimes, lists and maps of these (nested to any depth),
and ``SERVER_TIMESTAMP`` as a top-level field (the commit time). ``create`` carries the
precondition "does not exist"; ``update`` replaces the named top-level fields only, with
"unchanged since ``update_time``" as its precondition (what ``WriteBatch.update`` with
``write_option(last_update_time=...)`` does).
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from google.cloud.firestore import SERVER_TIMESTAMP, AsyncClient
from google.cloud.firestore_v1.async_document import AsyncDocumentReference
from google.cloud.firestore_v1.types import firestore as firestore_types
from google.cloud.firestore_v1.types import write as write_types

_Write: Any = write_types.Write.pb()
_CommitRequest: Any = firestore_types.CommitRequest.pb()
_BatchGetRequest: Any = firestore_types.BatchGetDocumentsRequest.pb()
_BatchGetResponse: Any = firestore_types.BatchGetDocumentsResponse
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_REQUEST_TIME = write_types.DocumentTransform.FieldTransform.ServerValue.REQUEST_TIME
_NULL_VALUE = 0  # google.protobuf.NullValue.NULL_VALUE


def _timestamp(value: Any, into: Any) -> None:
    """Set the ``Timestamp`` message ``into`` to ``value`` (a datetime, or a ``Timestamp``)."""
    if not isinstance(value, datetime):
        into.CopyFrom(value)  # a Timestamp read: copied to the nanosecond
        return
    to_pb = getattr(value, "timestamp_pb", None)  # DatetimeWithNanoseconds keeps its nanos
    if to_pb is not None:
        into.CopyFrom(to_pb())
        return
    if value.tzinfo is not None:
        into.seconds = calendar.timegm(value.utctimetuple())
    else:  # naive: taken as UTC, as the client's encoder does
        into.seconds = calendar.timegm(value.timetuple())
    into.nanos = value.microsecond * 1000


def encode(value: object, into: Any) -> None:
    """Set the ``Value`` message ``into`` to ``value``."""
    if value is None:
        into.null_value = _NULL_VALUE
    elif isinstance(value, bool):
        into.boolean_value = value
    elif isinstance(value, int):
        into.integer_value = value
    elif isinstance(value, float):
        into.double_value = value
    elif isinstance(value, str):
        into.string_value = value
    elif isinstance(value, bytes):
        into.bytes_value = value
    elif isinstance(value, datetime):
        _timestamp(value, into.timestamp_value)
    elif isinstance(value, Mapping):
        fields = into.map_value.fields
        into.map_value.SetInParent()  # an empty map is a map, not nothing
        for key, item in value.items():
            encode(item, fields[str(key)])
    elif isinstance(value, list | tuple):
        into.array_value.SetInParent()
        for item in value:
            encode(item, into.array_value.values.add())
    else:
        raise TypeError(f"cannot store a {type(value).__name__} in Firestore")


def decode(value: Any) -> Any:
    """The Python value of a ``Value`` message (timestamps as UTC datetimes, to the µs)."""
    kind = value.WhichOneof("value_type")
    if kind == "map_value":
        return {key: decode(item) for key, item in value.map_value.fields.items()}
    if kind == "array_value":
        return [decode(item) for item in value.array_value.values]
    if kind == "timestamp_value":
        stamp = value.timestamp_value
        return _EPOCH + timedelta(seconds=stamp.seconds, microseconds=stamp.nanos // 1000)
    if kind == "null_value" or kind is None:
        return None
    return getattr(value, kind)  # boolean, integer, double, string, bytes, reference, ...


@dataclass
class Doc:
    """A document as read: ``update_time`` (a ``Timestamp``) is None when it does not exist."""

    path: str  # relative to the database's documents, as ``DocumentReference.path``
    exists: bool
    update_time: Any = None
    fields: dict[str, Any] = field(default_factory=dict)


async def get_docs(
    client: AsyncClient, refs: Sequence[AsyncDocumentReference], fields: Sequence[str] | None
) -> list[Doc]:
    """Read ``refs`` (each once) in one request; ``fields``: only these (None: all)."""
    if not refs:
        return []
    request = _BatchGetRequest(
        database=client._database_string, documents=[ref._document_path for ref in refs]
    )
    if fields is not None:
        request.mask.SetInParent()  # no fields at all: whether it exists, and its version
        request.mask.field_paths.extend(fields)
    stream = await client._firestore_api.batch_get_documents(
        request=firestore_types.BatchGetDocumentsRequest.wrap(request),
        metadata=client._rpc_metadata,
    )
    prefix = len(client._database_string) + len("/documents/")
    docs: list[Doc] = []
    async for response in stream:
        raw = _BatchGetResponse.pb(response)
        if raw.HasField("found"):
            found = raw.found
            values = {name: decode(value) for name, value in found.fields.items()}
            docs.append(Doc(found.name[prefix:], True, found.update_time, values))
        elif raw.missing:
            docs.append(Doc(raw.missing[prefix:], False))
    return docs


class Commit:
    """Writes collected for one atomic ``Commit`` request."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        self._writes: list[Any] = []

    def __len__(self) -> int:
        return len(self._writes)

    def _write(self, ref: AsyncDocumentReference, fields: Mapping[str, Any]) -> Any:
        write = _Write()
        write.update.name = ref._document_path
        write.update.SetInParent()
        stamped: list[str] = []
        for name, value in fields.items():
            if value is SERVER_TIMESTAMP:
                stamped.append(name)
            else:
                encode(value, write.update.fields[name])
        for name in stamped:
            transform = write.update_transforms.add()
            transform.field_path = name
            transform.set_to_server_value = _REQUEST_TIME
        self._writes.append(write)
        return write

    def create(self, ref: AsyncDocumentReference, fields: Mapping[str, Any]) -> None:
        self._write(ref, fields).current_document.exists = False

    def update(
        self, ref: AsyncDocumentReference, fields: Mapping[str, Any], update_time: Any
    ) -> None:
        """``update_time``: the version read (a ``Timestamp``, or a datetime)."""
        write = self._write(ref, fields)
        write.update_mask.SetInParent()  # only these fields: never the whole document
        write.update_mask.field_paths.extend(
            name for name, value in fields.items() if value is not SERVER_TIMESTAMP
        )
        _timestamp(update_time, write.current_document.update_time)

    async def commit(self) -> None:
        """Send the writes (nothing when there are none); raises as ``WriteBatch.commit``."""
        if not self._writes:
            return
        request = _CommitRequest(database=self._client._database_string, writes=self._writes)
        await self._client._firestore_api.commit(
            request=firestore_types.CommitRequest.wrap(request),
            metadata=self._client._rpc_metadata,
        )
