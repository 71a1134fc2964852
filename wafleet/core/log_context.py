"""Fields every log line of a context carries: the request id, the process's shard.

- ``REQUEST_ID`` is set by the API for the time of one request (``bind_request_id``),
  so every line logged while serving it, the access log's included, names it.
- ``set_process_fields(shard=3)`` adds fields to every line of this process (a connector
  pod names its shard once at startup).

:class:`ContextFields` is the filter that puts them on each record; a field the record
already has (``extra={"requestId": ...}``) is left as it is.
"""

from __future__ import annotations

import logging
import re
import secrets
from contextvars import ContextVar, Token

REQUEST_ID: ContextVar[str | None] = ContextVar("wafleet_request_id", default=None)
# What a client may send as X-Request-ID and have it kept: short, printable, no spaces.
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

_process_fields: dict[str, str | int] = {}


def set_process_fields(**fields: str | int) -> None:
    """Put these fields on every log line of this process from now on."""
    _process_fields.update(fields)


def new_request_id() -> str:
    return secrets.token_hex(8)


def request_id_from(header: str | None) -> str:
    """The client's X-Request-ID when it is fit to log, else a new id."""
    if header is not None and REQUEST_ID_PATTERN.match(header):
        return header
    return new_request_id()


def bind_request_id(value: str) -> Token[str | None]:
    return REQUEST_ID.set(value)


def unbind_request_id(token: Token[str | None]) -> None:
    REQUEST_ID.reset(token)


class ContextFields(logging.Filter):
    """Adds ``requestId`` (when a request is being served) and the process's fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _process_fields.items():
            if not hasattr(record, key):
                setattr(record, key, value)
        request_id = REQUEST_ID.get()
        if request_id is not None and not hasattr(record, "requestId"):
            record.requestId = request_id
        return True
