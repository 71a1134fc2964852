"""Decoding Baileys' value shapes: every Buffer form it writes, integers, and what is refused."""

from __future__ import annotations

from typing import Any

import pytest

from wafleet.migrate.bufferjson import b64decode, to_bytes, to_int, to_list, to_obj, to_str
from wafleet.migrate.errors import Garbled

DATA = bytes(range(250, 256)) + b"\x00\x01"


@pytest.mark.parametrize(
    "value",
    [
        {"type": "Buffer", "data": "+vv8/f7/AAE="},  # BufferJSON.replacer
        {"type": "Buffer", "data": list(DATA)},  # Node's Buffer.toJSON()
        {str(i): b for i, b in reversed(list(enumerate(DATA)))},  # a Uint8Array, keys unordered
        "+vv8/f7/AAE=",  # protobufjs toJSON / libsignal-node
        "+vv8/f7/AAE",  # unpadded, as Node accepts
        "-vv8_f7_AAE=",  # url-safe, as Node accepts
    ],
)
def test_every_buffer_shape_gives_the_same_bytes(value: Any) -> None:
    assert to_bytes(value, "x") == DATA


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "k.v is not a buffer"),
        (12, "k.v is not a buffer"),
        ({"type": "Buffer"}, "k.v is not a buffer"),
        ({"type": "Buffer", "data": 5}, "neither base64 nor a byte list"),
        ({"type": "Buffer", "data": [1, 256]}, "not a byte"),
        ({"type": "Buffer", "data": [1, True]}, "not a byte"),
        ({"0": 1, "1": "a"}, "not a byte"),
        ({"0": 1, "x": 2}, "not a buffer"),
        ("not base64!", "k.v is not base64"),
    ],
)
def test_what_is_not_a_buffer_is_refused_naming_the_value(value: Any, message: str) -> None:
    with pytest.raises(Garbled, match=message):
        to_bytes(value, "k.v")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (7, 7),
        (7.0, 7),
        ("1700000000123", 1700000000123),
        ({"low": 5, "high": 1, "unsigned": False}, 2**32 + 5),
        ({"low": -1, "high": -1, "unsigned": False}, -1),
        ({"low": -1, "high": -1, "unsigned": True}, 2**64 - 1),
    ],
)
def test_integers_from_numbers_strings_and_longs(value: Any, expected: int) -> None:
    assert to_int(value, "n", low=-(2**63), high=2**64) == expected


@pytest.mark.parametrize("value", [True, "12a", 1.5, None, [], {"low": "1", "high": 0}])
def test_what_is_not_an_integer_is_refused(value: Any) -> None:
    with pytest.raises(Garbled, match="n is not an integer"):
        to_int(value, "n")


def test_an_integer_out_of_range_is_refused_with_its_range() -> None:
    with pytest.raises(Garbled, match=r"n is 4294967296, outside 0\.\.4294967295"):
        to_int(2**32, "n")
    with pytest.raises(Garbled, match="outside"):
        to_int(-2, "n", low=-1)


def test_strings_objects_lists() -> None:
    assert to_str("a", "s") == "a"
    assert to_obj({"a": 1}, "o") == {"a": 1}
    assert to_list([1], "l") == [1]
    with pytest.raises(Garbled, match="s is not a string"):
        to_str(1, "s")
    with pytest.raises(Garbled, match="o is not an object"):
        to_obj([], "o")
    with pytest.raises(Garbled, match="l is not a list"):
        to_list({}, "l")
    with pytest.raises(Garbled, match="b is not base64"):
        b64decode("@@@@", "b")
