"""The OpenAPI description of the simulator's control API (served with the embedded sim,
under /sim/, without a token)."""

from __future__ import annotations

from typing import Any

from wafleet.core.http import REQUIRED_TEXT_PATTERN, VISIBLE_ASCII_PATTERN
from wafleet.core.phones import EXAMPLE_PHONE
from wafleet.sim.faults import FAULT_KINDS, MAX_FAULT_SECONDS, TIMED_FAULTS
from wafleet.sim.inputs import MAX_PHONE
from wafleet.sim.messaging import ADDRESSING
from wafleet.sim.model import MAX_TEXT
from wafleet.sim.routes import MAX_CODE, MAX_QR
from wafleet_api.openapi_types import STR, body, errors, nullable, ok, phone, query

CONTACT = "+40799000001"
_PHONE = phone(MAX_PHONE)
_PHONE_QUERY = [query("phone", _PHONE, "the simulated phone", required=True)]
_OBJ = {"type": "object"}


def _done(fields: tuple[str, ...] = (), **properties: dict[str, Any]) -> dict[str, Any]:
    """A success answer with these fields (``fields``: the required ones)."""
    return {
        "type": "object",
        "required": ["success", *fields],
        "properties": {"success": {"const": True}, **properties},
    }


_DONE = _done()
_LINKED = _done(("jid", "deviceId"), jid=STR, deviceId=STR)


def _code(max_length: int, what: str) -> dict[str, Any]:
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": max_length,
        "pattern": VISIBLE_ASCII_PATTERN,
        "description": f"{what}, as the device shows it (visible ASCII)",
    }


def _sim(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "security": [], **extra, "responses": responses}


_FAULT_BODY = body(
    {
        "phone": _PHONE,
        "kind": {"enum": list(FAULT_KINDS)},
        "seconds": {
            "type": ["number", "null"],
            "exclusiveMinimum": 0,
            "maximum": MAX_FAULT_SECONDS,
            "description": "how long it lasts; only for " + ", ".join(TIMED_FAULTS),
        },
    },
    ["phone", "kind"],
    {"phone": EXAMPLE_PHONE, "kind": "disconnect"},
)
# "seconds" goes only with the kinds that last.
_FAULT_BODY["content"]["application/json"]["schema"]["anyOf"] = [
    {"properties": {"kind": {"enum": list(TIMED_FAULTS)}}},
    {
        "properties": {
            "kind": {"enum": [k for k in FAULT_KINDS if k not in TIMED_FAULTS]},
            "seconds": {"type": "null"},
        }
    },
]

SIM_OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/sim/scan"): _sim(
        "Simulated phone: scan a QR code, linking the device showing it (409 "
        "passkey_required: the phone asks for a passkey instead, and links nothing)",
        {"200": ok(_LINKED), **errors(400, 404, 409, 413)},
        operationId="simScan",
        requestBody=body(
            {"qr": _code(MAX_QR, "The QR code's text"), "phone": _PHONE},
            ["qr", "phone"],
            {"qr": "2@abc,def,ghi,jkl", "phone": EXAMPLE_PHONE},
        ),
    ),
    ("post", "/sim/pair"): _sim(
        "Simulated phone: enter a pairing code (409 passkey_required, as for a scan)",
        {"200": ok(_LINKED), **errors(400, 404, 409, 413)},
        operationId="simPair",
        requestBody=body(
            {"code": _code(MAX_CODE, "The pairing code"), "phone": _PHONE},
            ["code", "phone"],
            {"code": "ABCD-EFGH", "phone": EXAMPLE_PHONE},
        ),
    ),
    ("post", "/sim/messages"): _sim(
        "Simulated contact: send a message to a linked account",
        {
            "200": ok(_done(("id",), id=STR)),
            **errors(400, 404, 409, 413),
        },
        operationId="simSendMessage",
        requestBody=body(
            {
                "from": _PHONE,
                "to": _PHONE,
                "text": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_TEXT,
                    "pattern": REQUIRED_TEXT_PATTERN,
                    "description": "Free text but NUL; not only whitespace",
                },
                "addressing": {"enum": [*ADDRESSING, None], "default": "pn"},
            },
            ["from", "to", "text"],
            {"from": CONTACT, "to": EXAMPLE_PHONE, "text": "Hello"},
        ),
    ),
    ("get", "/sim/messages"): _sim(
        "What a simulated phone received",
        {
            "200": ok(_done(("messages",), messages={"type": "array"})),
            **errors(400),
        },
        operationId="simReceived",
        parameters=_PHONE_QUERY,
    ),
    ("post", "/sim/faults"): _sim(
        "Inject a fault: " + ", ".join(FAULT_KINDS),
        {
            "200": ok(_done(("devices",), devices={"type": "integer"})),
            **errors(400, 404, 413),
        },
        operationId="simFault",
        requestBody=_FAULT_BODY,
    ),
    ("get", "/sim/devices"): _sim(
        "The devices linked to a simulated phone",
        {"200": ok(_done(("devices",), devices={"type": "array"})), **errors(400)},
        operationId="simDevices",
        parameters=_PHONE_QUERY,
    ),
    ("post", "/sim/read"): _sim(
        "Simulated phone: read its messages (all, or one account's): read receipts",
        {
            "200": ok(_done(("read",), read={"type": "integer"})),
            **errors(400, 409, 413),
        },
        operationId="simRead",
        requestBody=body(
            {"phone": _PHONE, "from": nullable(_PHONE)},
            ["phone"],
            {"phone": CONTACT, "from": EXAMPLE_PHONE},
        ),
    ),
    ("post", "/sim/numbers"): _sim(
        "Mark a phone number as on / not on WhatsApp",
        {
            "200": ok(_done(("registered",), registered={"type": "boolean"})),
            **errors(400, 409, 413),
        },
        operationId="simNumbers",
        requestBody=body(
            {"phone": _PHONE, "registered": {"type": "boolean"}},
            ["phone", "registered"],
            {"phone": CONTACT, "registered": True},
        ),
    ),
    ("post", "/sim/passkeys"): _sim(
        "Make a simulated phone ask for a passkey (WebAuthn) whenever it links a device",
        {
            "200": ok(_done(("phone", "required"), phone=_PHONE, required={"type": "boolean"})),
            **errors(400, 413),
        },
        operationId="simPasskeys",
        requestBody=body(
            {"phone": _PHONE, "required": {"type": "boolean"}},
            ["phone", "required"],
            {"phone": EXAMPLE_PHONE, "required": True},
        ),
    ),
    ("get", "/sim/lid"): _sim(
        "The LID jid (<digits>@lid) of a simulated phone",
        {"200": ok(_done(("lid",), lid=STR)), **errors(400, 409)},
        operationId="simLid",
        parameters=_PHONE_QUERY,
    ),
    ("get", "/sim/status"): _sim(
        "The simulator's counters",
        {"200": ok(_OBJ)},
        operationId="simStatus",
    ),
}
