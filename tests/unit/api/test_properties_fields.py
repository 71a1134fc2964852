"""The field rules of ``wafleet.core.http``: the patterns the OpenAPI document publishes are
exactly what the server takes, and an unexpected error is the JSON 500, logged."""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable
from typing import Any

import pytest
from contract.strategies import forbidden_in_name, nasty_chars, nasty_text
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from wafleet.core.http import (
    NAME_FORBIDDEN,
    NAME_PATTERN,
    PRINTABLE_ASCII_PATTERN,
    REQUIRED_TEXT_PATTERN,
    VISIBLE_ASCII_PATTERN,
    WHITESPACE,
    ApiError,
    field_name,
    field_str,
    field_token,
)

SETTINGS = settings(max_examples=300, deadline=None)
SURROGATES = re.compile("[\ud800-\udfff]")


def fullmatch(pattern: str, value: str) -> bool:
    """As a JSON Schema validator reads the pattern: ``$`` is the end of the string."""
    return re.search(pattern.replace("$", r"\Z"), value) is not None


def takes(read: Callable[[], Any]) -> bool:
    try:
        read()
    except ApiError as exc:
        assert exc.status == 400 and exc.code in ("invalid_field", "missing_field"), exc
        return False
    return True


def chars(ranges: tuple[tuple[int, int], ...]) -> set[int]:
    return {c for low, high in ranges for c in range(low, high + 1)}


def test_whitespace_is_what_python_strips() -> None:
    assert chars(WHITESPACE) == {c for c in range(0x110000) if chr(c).isspace()}


def test_a_name_refuses_every_control_and_bmp_format_character_but_zwnj_and_zwj() -> None:
    wanted = {
        c
        for c in range(0x10000)
        if unicodedata.category(chr(c)) in ("Cc", "Cf", "Zl", "Zp") and c not in (0x200C, 0x200D)
    }
    assert chars(NAME_FORBIDDEN) == wanted
    assert {0x202A, 0x202E, 0x2066, 0x2069, 0x200E, 0x200F, 0x0000, 0x000A} <= wanted


@SETTINGS
@given(value=nasty_text(40))
def test_name_pattern_is_what_field_name_takes(value: str) -> None:
    taken = takes(lambda: field_name({"name": value}, "name", max_length=100))
    schema = fullmatch(NAME_PATTERN, value) and not SURROGATES.search(value)
    assert taken == schema, ascii(value)
    assert taken == (not any(forbidden_in_name(c) for c in value)), ascii(value)


@SETTINGS
@given(value=nasty_text(40))
def test_required_text_pattern_is_what_a_required_field_takes(value: str) -> None:
    taken = takes(lambda: field_str({"text": value}, "text", required=True, max_length=100))
    schema = fullmatch(REQUIRED_TEXT_PATTERN, value) and not SURROGATES.search(value)
    assert taken == schema, ascii(value)


@SETTINGS
@given(value=st.text(alphabet=nasty_chars | st.characters(max_codepoint=127), max_size=20))
def test_ascii_patterns_are_what_field_token_takes(value: str) -> None:
    visible = takes(lambda: field_token({"k": value}, "k", required=True, max_length=64))
    assert visible == fullmatch(VISIBLE_ASCII_PATTERN, value), ascii(value)
    printable = takes(
        lambda: field_token({"k": value}, "k", required=False, max_length=64, spaces=True)
    )
    assert printable == fullmatch(PRINTABLE_ASCII_PATTERN, value), ascii(value)


def test_free_text_keeps_new_lines_tabs_and_right_to_left_marks() -> None:
    hebrew, arabic = "\u05e9\u05dc\u05d5\u05dd", "\u0645\u0631\u062d\u0628\u0627"
    text = f"Bună ziua,\n\t{hebrew} \u200f{hebrew}\u200e!\r\n\u202b{arabic}\u202c \U0001f600"
    assert field_str({"m": text}, "m", required=True, max_length=100) == text


# ----- the JSON 500 --------------------------------------------------------------------------
def test_an_unexpected_error_is_the_json_500_and_is_logged(
    make_client: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    client: TestClient = make_client(raise_server_exceptions=False)
    backend = client.app.state.backend  # type: ignore[attr-defined]

    async def broken(account_id: str) -> None:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(backend, "get", broken)
    with caplog.at_level(logging.ERROR, logger="wafleet.core.http"):
        response = client.get("/api/whatsapp/accounts/wa-abcdefghijklmnopabcd")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "success": False,
        "error": {
            "code": "internal_error",
            "message": "the server failed to answer this request; its log says why",
        },
    }
    assert "the disk is on fire" not in response.text
    [record] = [r for r in caplog.records if r.name == "wafleet.core.http"]
    assert record.getMessage() == (
        "unexpected error answering GET /api/whatsapp/accounts/{account_id}"
    )
    assert record.exc_info is not None and "the disk is on fire" in str(record.exc_info[1])


def test_an_unexpected_error_in_the_sim_is_the_json_500(
    make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client: TestClient = make_client(raise_server_exceptions=False)
    sim = client.app.state.sim  # type: ignore[attr-defined]

    def broken() -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(sim, "summary", broken)
    response = client.get("/sim/status")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"


def test_the_apps_do_not_run_in_debug_mode(client: TestClient) -> None:
    assert client.app.debug is False  # type: ignore[attr-defined]
