"""Property tests of the JSON-body routes of the API: whatever the body (lone surrogates,
controls, bidi characters, huge numbers, wrong types, nesting), the answer is never a 5xx
and a refusal is the one JSON error shape; a valid body succeeds."""

from __future__ import annotations

import string
import uuid
from typing import Any

import httpx
from contract.strategies import (
    bad_name_chars,
    bodies,
    check_answer,
    encode,
    names,
    numbers,
    phones,
    spelled_phones,
    texts,
    visible_ascii,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from support.api_errors import account_ids

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ADD = "/api/whatsapp/add-account"
SEND = "/api/whatsapp/send-message"
JSON = {"Content-Type": "application/json"}
SPEC = ("id", "phone", "name", "login")


def post(client: TestClient, path: str, body: object, **headers: str) -> httpx.Response:
    return client.post(path, content=encode(body), headers={**JSON, **headers})


def answer(response: httpx.Response) -> dict[str, Any] | None:
    return check_answer(response.status_code, response.headers["content-type"], response.text)


# ----- add-account ---------------------------------------------------------------------------
ADD_FIELDS = {"phone": phones, "name": names, "login": st.sampled_from(["qr", "pairingCode"])}


@SETTINGS
@given(body=bodies(ADD_FIELDS))
def test_add_account_answers_any_body_without_a_5xx(client: TestClient, body: Any) -> None:
    answer(post(client, ADD, body))


@SETTINGS
@given(raw=st.binary(max_size=200))
def test_add_account_answers_any_bytes_without_a_5xx(client: TestClient, raw: bytes) -> None:
    answer(client.post(ADD, content=raw, headers=JSON))


@settings(SETTINGS, max_examples=60)
@given(
    phone=spelled_phones,
    name=names,
    login=st.sampled_from(["qr", "pairingCode", None]),
)
def test_a_valid_account_is_created(
    client: TestClient, phone: tuple[str, str], name: str, login: str | None
) -> None:
    spelled, e164 = phone
    response = post(client, ADD, {"phone": spelled, "name": name, "login": login})
    assert response.status_code == 200, response.text
    answered = response.json()
    account = answered["account"]
    assert account["phone"] == e164
    if answered["created"]:  # else an earlier example added this phone: the same account
        assert account["name"] == (name.strip() or f"Account {e164[-4:]}")
        assert account["login"] == (login or "qr")
    stored = client.get(f"/api/whatsapp/accounts/{account['id']}").json()["account"]
    assert {k: stored[k] for k in SPEC} == {k: account[k] for k in SPEC}


@SETTINGS
@given(phone=phones, before=names, bad=bad_name_chars, after=names)
def test_a_name_with_a_control_or_format_character_is_refused(
    client: TestClient, phone: str, before: str, bad: str, after: str
) -> None:
    name = (before + bad + after)[:100]
    error = answer(post(client, ADD, {"phone": phone, "name": name}))
    assert error is not None and error["code"] == "invalid_field", error
    assert "field 'name'" in error["message"]


@SETTINGS
@given(
    e164=numbers(),
    letters=st.text(alphabet=string.ascii_letters, min_size=1, max_size=10),
    at=st.integers(min_value=3),
)
def test_a_phone_with_letters_is_refused_not_read_as_a_keypad(
    client: TestClient, e164: str, letters: str, at: int
) -> None:
    at = at % (len(e164) - 2) + 3
    spelled = e164[:at] + letters + e164[at:]
    error = answer(post(client, ADD, {"phone": spelled}))
    assert error is not None and error["code"] == "invalid_phone", error
    assert "letter" in error["message"], error
    assert account_ids(client) == []


# ----- send-message --------------------------------------------------------------------------
def send_fields(account_id: st.SearchStrategy[str]) -> dict[str, st.SearchStrategy[Any]]:
    return {
        "accountId": account_id,
        "to": phones,
        "message": texts,
        "idempotencyKey": st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126)),
    }


@SETTINGS
@given(data=st.data())
def test_send_message_answers_any_body_without_a_5xx(
    client: TestClient, account: dict[str, Any], data: st.DataObject
) -> None:
    ids = st.sampled_from([account["id"]]) | visible_ascii
    body = data.draw(bodies(send_fields(ids)))
    latin1 = st.characters(min_codepoint=0x20, max_codepoint=0xFF)
    key = data.draw(st.none() | st.text(alphabet=latin1, max_size=140).map(str.strip))
    headers = {} if key is None else {"Idempotency-Key": key.encode("latin-1")}
    answer(client.post(SEND, content=encode(body), headers={**JSON, **headers}))


@settings(SETTINGS, max_examples=60)
@given(to=phones, text=texts, key=st.sampled_from([None, ""]) | visible_ascii)
def test_a_valid_message_is_queued(
    client: TestClient, account: dict[str, Any], to: str, text: str, key: str | None
) -> None:
    if key:
        key = (key + uuid.uuid4().hex)[-128:]  # a new key: no repeat of an earlier example
    body = {"accountId": account["id"], "to": to, "message": text, "idempotencyKey": key}
    response = post(client, SEND, body)
    assert response.status_code == 200, response.text
    answered = response.json()
    assert answered["success"] is True
    assert answered["queued"] is True  # the account is not connected
    item = client.get(f"/api/whatsapp/outbox/{answered['outboxId']}").json()["item"]
    assert item["body"] == text
