"""Decoding the values Baileys writes: BufferJSON buffers, base64 strings, numbers.

Baileys writes files with ``JSON.stringify(data, BufferJSON.replacer)``: every Buffer becomes
``{"type": "Buffer", "data": "<base64>"}``. Other shapes occur too, and are accepted wherever
bytes are expected:

- ``{"type": "Buffer", "data": [1, 2, ...]}``: Node's own ``Buffer.toJSON()``, found inside the
  sender-key records (Baileys stringifies those without the replacer);
- ``{"0": 1, "1": 2, ...}``: a ``Uint8Array`` stringified by plain ``JSON.stringify`` (the
  reviver turns these back into buffers);
- a plain base64 string: protobufjs ``toJSON`` output (``creds.account``, app-state keys) and
  libsignal-node's session records.

Each helper raises ``Garbled`` naming the path of the value (``where``); the reader adds the file.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from wafleet.migrate.errors import Garbled

MAX_UINT32 = 2**32 - 1
_URLSAFE = str.maketrans("-_", "+/")


def b64decode(text: str, where: str) -> bytes:
    """Base64 as Node's ``Buffer.from(text, 'base64')`` reads it (padding optional, url-safe ok)."""
    cleaned = text.strip().translate(_URLSAFE)
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise Garbled(f"{where} is not base64") from None


def _byte_list(values: list[Any], where: str) -> bytes:
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in values):
        raise Garbled(f"{where} holds a value that is not a byte")
    return bytes(values)


def to_bytes(value: Any, where: str) -> bytes:
    """Bytes from any of the shapes above."""
    if isinstance(value, str):
        return b64decode(value, where)
    if isinstance(value, Mapping):
        if value.get("type") == "Buffer" and "data" in value:
            data = value["data"]
            if isinstance(data, str):
                return b64decode(data, where)
            if isinstance(data, list):
                return _byte_list(data, where)
            raise Garbled(f"{where} is a Buffer whose data is neither base64 nor a byte list")
        if value and all(isinstance(k, str) and k.isdigit() for k in value):
            ordered = sorted(value.items(), key=lambda item: int(item[0]))
            return _byte_list([v for _, v in ordered], where)
    raise Garbled(f"{where} is not a buffer")


def opt_bytes(value: Any, where: str) -> bytes | None:
    return None if value is None else to_bytes(value, where)


def to_int(value: Any, where: str, *, low: int = 0, high: int = MAX_UINT32) -> int:
    """An integer from a JSON number, a decimal string (protobufjs int64) or a Long object."""
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value.strip())
    elif isinstance(value, Mapping) and {"low", "high"} <= value.keys():
        low_word, high_word = value["low"], value["high"]
        if isinstance(low_word, int) and isinstance(high_word, int):
            number = ((high_word & 0xFFFFFFFF) << 32) | (low_word & 0xFFFFFFFF)
            if not value.get("unsigned") and number >= 2**63:
                number -= 2**64
    if number is None:
        raise Garbled(f"{where} is not an integer")
    if not low <= number <= high:
        raise Garbled(f"{where} is {number}, outside {low}..{high}")
    return number


def opt_int(value: Any, where: str, *, low: int = 0, high: int = MAX_UINT32) -> int | None:
    return None if value is None else to_int(value, where, low=low, high=high)


def to_str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise Garbled(f"{where} is not a string")
    return value


def opt_str(value: Any, where: str) -> str | None:
    return None if value is None else to_str(value, where)


def to_obj(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise Garbled(f"{where} is not an object")
    return value


def to_list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise Garbled(f"{where} is not a list")
    return value
