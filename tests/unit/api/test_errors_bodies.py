"""Bad input, part 2: request bodies of every JSON route, and add-account fields."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from support.api_errors import (
    MAX_BODY,
    NO_COUNTRY,
    NOT_VALID,
    PHONE,
    Json,
    account_ids,
    assert_error,
)
from wafleet.sim.routes import MAX_BODY as SIM_MAX_BODY

# ----- request bodies (every JSON-body route) ---------------------------------------------
BODY_ROUTES: list[tuple[str, int]] = [
    ("/api/whatsapp/add-account", MAX_BODY),
    ("/api/whatsapp/send-message", MAX_BODY),
    ("/sim/scan", SIM_MAX_BODY),
    ("/sim/pair", SIM_MAX_BODY),
    ("/sim/messages", SIM_MAX_BODY),
    ("/sim/faults", SIM_MAX_BODY),
]
EMPTY = "request body is empty; send a JSON object"
NOT_JSON = "request body is not valid JSON"
NOT_OBJECT = "request body must be a JSON object"


@pytest.mark.parametrize(("path", "limit"), BODY_ROUTES)
def test_a_body_nested_too_deeply_is_a_400(client: TestClient, path: str, limit: int) -> None:
    depth = min(limit // 2 - 2, 50_000)
    content = b"[" * depth + b"]" * depth
    response = client.post(path, content=content, headers={"content-type": "application/json"})
    assert_error(response, 400, "invalid_json", "request body is nested too deeply")


@pytest.mark.parametrize(("path", "limit"), BODY_ROUTES)
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", EMPTY),
        (b"{", NOT_JSON),
        (b"{'phone': '+40712345678'}", NOT_JSON),
        (b"phone=%2B40712345678", NOT_JSON),
        (b"\xff\xfe\x00", NOT_JSON),
        (b"[]", NOT_OBJECT),
        (b'[{"phone": "+40712345678"}]', NOT_OBJECT),
        (b"null", NOT_OBJECT),
        (b"42", NOT_OBJECT),
        (b'"+40712345678"', NOT_OBJECT),
        (b"true", NOT_OBJECT),
    ],
    ids=[
        "empty",
        "truncated",
        "single-quotes",
        "form",
        "not-utf8",
        "array",
        "array-of-object",
        "null",
        "number",
        "string",
        "bool",
    ],
)
def test_bad_bodies(
    client: TestClient, path: str, limit: int, content: bytes, message: str
) -> None:
    response = client.post(path, content=content, headers={"Content-Type": "application/json"})
    assert_error(response, 400, "invalid_json", message)


@pytest.mark.parametrize(("path", "limit"), BODY_ROUTES)
def test_oversized_body_with_content_length(client: TestClient, path: str, limit: int) -> None:
    body = json.dumps({"phone": PHONE, "pad": "x" * limit}).encode()
    response = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.request.headers["content-length"] == str(len(body))
    assert_error(response, 413, "body_too_large", f"request body is over {limit} bytes")


@pytest.mark.parametrize(("path", "limit"), BODY_ROUTES)
def test_oversized_chunked_body(client: TestClient, path: str, limit: int) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"phone": "+40712345678", "pad": "'
        for _ in range(limit // 1024 + 1):
            yield b"x" * 1024
        yield b'"}'

    response = client.post(path, content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_error(response, 413, "body_too_large", f"request body is over {limit} bytes")


def test_body_of_exactly_the_limit_is_accepted(client: TestClient) -> None:
    body = json.dumps({"phone": PHONE}).encode()
    body += b" " * (MAX_BODY - len(body))
    assert len(body) == MAX_BODY
    response = client.post("/api/whatsapp/add-account", content=body)
    assert response.status_code == 200, response.text


def test_oversized_body_creates_nothing(client: TestClient) -> None:
    body = json.dumps({"phone": PHONE, "name": "x" * MAX_BODY})
    response = client.post("/api/whatsapp/add-account", content=body)
    assert response.status_code == 413
    assert account_ids(client) == []


# ----- add-account fields -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({}, "missing_field", "field 'phone' is required"),
        ({"name": "Ana"}, "missing_field", "field 'phone' is required"),
        ({"phone": None}, "missing_field", "field 'phone' is required"),
        ({"Phone": PHONE}, "missing_field", "field 'phone' is required"),
        ({"phone": ""}, "missing_field", "field 'phone' must not be empty"),
        ({"phone": "   "}, "missing_field", "field 'phone' must not be empty"),
        ({"phone": 40712345678}, "invalid_field", "field 'phone' must be a string"),
        ({"phone": 4.07e10}, "invalid_field", "field 'phone' must be a string"),
        ({"phone": [PHONE]}, "invalid_field", "field 'phone' must be a string"),
        ({"phone": {"e164": PHONE}}, "invalid_field", "field 'phone' must be a string"),
        ({"phone": True}, "invalid_field", "field 'phone' must be a string"),
        ({"phone": "+4" + "0" * 40}, "invalid_field", "field 'phone' is longer than 40 characters"),
        ({"phone": PHONE, "name": 7}, "invalid_field", "field 'name' must be a string"),
        ({"phone": PHONE, "name": ["a"]}, "invalid_field", "field 'name' must be a string"),
        (
            {"phone": PHONE, "name": "n" * 101},
            "invalid_field",
            "field 'name' is longer than 100 characters",
        ),
        ({"phone": PHONE, "login": 1}, "invalid_field", "field 'login' must be a string"),
        (
            {"phone": PHONE, "login": "x" * 21},
            "invalid_field",
            "field 'login' is longer than 20 characters",
        ),
        *(
            (
                {"phone": PHONE, "name": f"Ana{char}Shop"},
                "invalid_field",
                f"field 'name' holds U+{ord(char):04X}, a control or invisible formatting "
                "character; a name is one line of visible text",
            )
            for char in "\n\t\x1b\x7f\x85\u2028\u202a\u202e\u2066\u2069\u200e\u200f\u200b\ufeff"
        ),
        *(
            (
                {"phone": PHONE, field: f"x{char}"},
                "invalid_field",
                f"field '{field}' holds U+{ord(char):04X} ({what})",
            )
            for field in ("phone", "name", "login")
            for char, what in [
                ("\ud800", "a lone surrogate, which is not Unicode text"),
                ("\udfff", "a lone surrogate, which is not Unicode text"),
                ("\x00", "NUL"),
            ]
        ),
    ],
)
def test_add_account_bad_fields(client: TestClient, body: Json, code: str, message: str) -> None:
    content = json.dumps(body)  # lone surrogates as \ud800 escapes, as a client may send
    response = client.post("/api/whatsapp/add-account", content=content)
    assert_error(response, 400, code, message)
    assert account_ids(client) == []


@pytest.mark.parametrize(
    ("phone", "e164"),
    [
        ("(+40)712345678", PHONE),
        ("(+40) 712-345-678", PHONE),
        ("(0040) 712 345 678", PHONE),
        ("+40 712/345/678", PHONE),
        (" 40712345678@s.whatsapp.net\n", PHONE),
    ],
)
def test_add_account_reads_the_spellings_of_a_number(
    client: TestClient, phone: str, e164: str
) -> None:
    response = client.post("/api/whatsapp/add-account", json={"phone": phone})
    assert response.status_code == 200, response.text
    assert response.json()["account"]["phone"] == e164


@pytest.mark.parametrize(
    "name",
    [
        "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",  # right-to-left text is a name
        "\u0645\u0631\u062d\u0628\u0627 123",
        "Ana \u200d\U0001f469\u200d\U0001f4bb",  # ZWJ emoji sequences
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # ZWNJ, as Persian writes it
        "Zoë & Łukasz",
    ],
)
def test_add_account_takes_names_in_any_script(client: TestClient, name: str) -> None:
    response = client.post("/api/whatsapp/add-account", json={"phone": PHONE, "name": name})
    assert response.status_code == 200, response.text
    assert response.json()["account"]["name"] == name


@pytest.mark.parametrize("login", ["sms", "QR", "pairingcode", "pairing_code", " qr", ""])
def test_add_account_bad_login(client: TestClient, login: str) -> None:
    response = client.post("/api/whatsapp/add-account", json={"phone": PHONE, "login": login})
    assert_error(response, 400, "invalid_field", "field 'login' must be 'qr' or 'pairingCode'")
    assert account_ids(client) == []


SPELLING = (
    "write it with the digits 0-9, a leading '+', spaces and ( ) - . / only, "
    "such as '+40712345678' (letters are not read as keypad digits)"
)
NOT_A_NUMBER = (
    "is not a phone number; write it in E.164 form such as '+40712345678', "
    "or as a WhatsApp JID such as '40712345678@s.whatsapp.net'"
)
INVALID_PHONES: list[tuple[str, str]] = [
    # letters, never read as keypad digits; other characters
    ("abc", f"phone holds a letter 'a'; {SPELLING}"),
    ("+abcdefgh", f"phone holds a letter 'a'; {SPELLING}"),
    ("+4O7I2345678", f"phone holds a letter 'O'; {SPELLING}"),
    ("+40712ABCDEF", f"phone holds a letter 'A'; {SPELLING}"),
    ("+40712345678 ext. 9", f"phone holds a letter 'e'; {SPELLING}"),
    ("+40\u00a0712345678", f"phone holds a character U+00A0; {SPELLING}"),
    ("+\uff14\uff10712345678", f"phone holds a character U+FF14; {SPELLING}"),
    ("+40#712345678", f"phone holds a character '#'; {SPELLING}"),
    (
        "abc@s.whatsapp.net",
        "phone holds a letter 'a'; a WhatsApp JID has only digits before '@s.whatsapp.net'",
    ),
    # too short
    ("+4071", f"phone '*****' {NOT_VALID}"),
    ("+40712", f"phone '******' {NOT_VALID}"),
    ("+4071234", f"phone '+407****34' {NOT_VALID}"),
    # too long for E.164
    ("+407123456789012", f"phone '+407****12' {NOT_VALID}"),
    ("+" + "4" * 33, "phone is too long; give it in E.164 form such as '+40712345678'"),
    # no country code, and no default region set
    ("0712345678", f"phone '0712****78' {NO_COUNTRY}"),
    ("712345678", f"phone '7123****78' {NO_COUNTRY}"),
    ("40712345678", f"phone '4071****78' {NO_COUNTRY}"),
    # unknown country code
    (
        "+999123456789",
        "phone '+999****89' is not a phone number: "
        "(0) Could not interpret numbers after plus-sign.",
    ),
    # a group JID is not a phone
    ("123456789-1600000000@g.us", f"phone holds a character '@'; {SPELLING}"),
    ("+", f"phone '*' {NOT_A_NUMBER}"),
    ("(-)", f"phone '***' {NOT_A_NUMBER}"),
]


@pytest.mark.parametrize(("phone", "detail"), INVALID_PHONES)
def test_add_account_invalid_phone(client: TestClient, phone: str, detail: str) -> None:
    response = client.post("/api/whatsapp/add-account", json={"phone": phone})
    assert_error(response, 400, "invalid_phone", f"field 'phone': {detail}")
    assert account_ids(client) == []


@pytest.mark.parametrize(("phone", "detail"), INVALID_PHONES)
def test_invalid_phone_error_never_echoes_the_number(
    client: TestClient, phone: str, detail: str
) -> None:
    response = client.post("/api/whatsapp/add-account", json={"phone": phone})
    if len(phone) > 6:
        assert phone not in response.text
