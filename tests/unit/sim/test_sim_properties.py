"""Property tests of the sim's control routes (the sim as its own app, ``wafleet sim``):
whatever the body or query, the answer is never a 5xx and a refusal is the one JSON
error shape naming the field; valid input succeeds, on a linked phone too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from contract.strategies import (
    bodies,
    check_answer,
    encode,
    json_values,
    nasty_text,
    phones,
    spelled_phones,
    texts,
    visible_ascii,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unit.sim.harness import CONTACT, PHONE, Harness

from wafleet.sim.faults import FAULT_KINDS, MAX_FAULT_SECONDS, TIMED_FAULTS
from wafleet.sim.messaging import ADDRESSING
from wafleet.sim.routes import create_sim_app

SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
JSON = {"Content-Type": "application/json"}
seconds = st.floats(min_value=0, max_value=MAX_FAULT_SECONDS, exclude_min=True)
BODY_FIELDS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "/sim/scan": {"qr": visible_ascii, "phone": phones},
    "/sim/pair": {"code": visible_ascii, "phone": phones},
    "/sim/messages": {
        "from": phones,
        "to": phones,
        "text": texts,
        "addressing": st.sampled_from(ADDRESSING),
    },
    "/sim/faults": {"phone": phones, "kind": st.sampled_from(FAULT_KINDS), "seconds": seconds},
    "/sim/read": {"phone": phones, "from": phones},
    "/sim/numbers": {"phone": phones, "registered": st.booleans()},
}
QUERY_ROUTES = ["/sim/messages", "/sim/devices", "/sim/lid", "/sim/status"]


@dataclass
class Api:
    h: Harness
    http: httpx.AsyncClient

    async def post(self, path: str, body: object) -> httpx.Response:
        return await self.http.post(path, content=encode(body), headers=JSON)


@pytest.fixture
async def api(h: Harness) -> AsyncIterator[Api]:
    transport = httpx.ASGITransport(app=create_sim_app(h.sim), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as http:
        yield Api(h, http)


def answer(response: httpx.Response) -> dict[str, Any] | None:
    return check_answer(response.status_code, response.headers["content-type"], response.text)


@SETTINGS
@given(data=st.data())
async def test_any_body_is_answered_without_a_5xx(api: Api, data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(sorted(BODY_FIELDS)))
    body = data.draw(bodies(BODY_FIELDS[path]) | json_values)
    error = answer(await api.post(path, body))
    if error is not None and error["code"] in ("invalid_field", "missing_field"):
        assert "'" in error["message"], error  # the field is named


@SETTINGS
@given(data=st.data())
async def test_any_query_is_answered_without_a_5xx(api: Api, data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(QUERY_ROUTES))
    phone = data.draw(st.none() | phones | nasty_text())
    params = {} if phone is None else {"phone": phone.encode("utf-8", "surrogatepass")}
    answer(await api.http.get(path, params=params))


@SETTINGS
@given(phone=spelled_phones, registered=st.booleans())
async def test_valid_numbers_are_marked(api: Api, phone: tuple[str, str], registered: bool) -> None:
    spelled, e164 = phone
    response = await api.post("/sim/numbers", {"phone": spelled, "registered": registered})
    assert response.json() == {"success": True, "phone": e164, "registered": registered}
    lid = await api.http.get("/sim/lid", params={"phone": spelled})
    assert lid.status_code == (200 if registered else 409), lid.text


@SETTINGS
@given(text=texts, addressing=st.sampled_from([*ADDRESSING, None]))
async def test_a_valid_message_reaches_a_linked_phone(
    api: Api, linked: None, text: str, addressing: str | None
) -> None:
    body = {"from": CONTACT, "to": PHONE, "text": text, "addressing": addressing}
    response = await api.post("/sim/messages", body)
    assert response.status_code == 200, response.text
    assert response.json()["success"] is True


@SETTINGS
@given(kind=st.sampled_from(FAULT_KINDS), seconds=st.none() | seconds)
async def test_a_fault_on_a_phone_with_no_device_is_a_404(
    api: Api, kind: str, seconds: float | None
) -> None:
    if kind not in TIMED_FAULTS:
        seconds = None
    response = await api.post("/sim/faults", {"phone": PHONE, "kind": kind, "seconds": seconds})
    error = answer(response)
    assert error is not None and error["code"] == "not_linked", error


@SETTINGS
@given(kind=st.sampled_from(["keepalive_timeout", "keepalive_restored", "logout_fails"]))
async def test_a_valid_fault_reaches_a_linked_phone(api: Api, linked: None, kind: str) -> None:
    body: dict[str, Any] = {"phone": PHONE, "kind": kind}
    if kind in TIMED_FAULTS:
        body["seconds"] = 30
    response = await api.post("/sim/faults", body)
    assert response.json() == {"success": True, "devices": 1}


@SETTINGS
@given(kind=st.sampled_from([k for k in FAULT_KINDS if k not in TIMED_FAULTS]), s=seconds)
async def test_seconds_for_a_fault_that_does_not_last_is_refused(
    api: Api, kind: str, s: float
) -> None:
    response = await api.post("/sim/faults", {"phone": PHONE, "kind": kind, "seconds": s})
    error = answer(response)
    assert error is not None and error["code"] == "invalid_field", error
    assert "'seconds'" in error["message"]


@SETTINGS
@given(qr=visible_ascii, phone=phones)
async def test_a_scan_of_a_code_no_device_shows_is_a_404(api: Api, qr: str, phone: str) -> None:
    response = await api.post("/sim/scan", {"qr": qr[:1024], "phone": phone})
    error = answer(response)
    assert error is not None and error["code"] == "qr_not_found", error


@pytest.fixture
async def linked(api: Api) -> None:
    await api.h.link_by_qr(PHONE)
