"""Building blocks of the OpenAPI document: the error answers, bodies, parameters, phones."""

from __future__ import annotations

from typing import Any

from wafleet.core.phones import EXAMPLE_PHONE, PHONE_PATTERN

STR: dict[str, Any] = {"type": "string"}
NULLABLE_STR: dict[str, Any] = {"type": ["string", "null"]}

ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["success", "error"],
    "properties": {
        "success": {"const": False},
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {**STR, "description": "stable: invalid_phone, missing_field, ..."},
                "message": {**STR, "description": "what to fix"},
            },
        },
    },
}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    """A JSON response (whatever its status)."""
    return {"description": description, "content": json_content(schema)}


def _error(description: str, **headers: dict[str, Any]) -> dict[str, Any]:
    response = ok(_ERROR_REF, description)
    if headers:
        response["headers"] = {
            name.replace("_", "-"): {"required": True, "schema": schema}
            for name, schema in headers.items()
        }
    return response


# components/responses: each error status, in the one JSON error shape.
_ERROR_NAMES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    413: "TooLarge",
    503: "Unavailable",
}
JSON_ERRORS: dict[str, Any] = {
    "BadRequest": _error("Bad input; the message names the field or parameter and what to fix"),
    "Unauthorized": _error(
        "Missing or wrong bearer token", WWW_Authenticate={**STR, "pattern": "^Bearer"}
    ),
    "Forbidden": _error(
        "A scoped API key lacks the scope (missing_scope) or the account (account_not_allowed)"
    ),
    "NotFound": _error("No such account, outbox item, device or code"),
    "Conflict": _error("The action does not apply to the account (or phone) as it is"),
    "TooLarge": _error(
        "The body is over the server's limit (WAFLEET_MAX_BODY_BYTES; the sim's is 1 MiB)"
    ),
    "Unavailable": _error(
        "The cluster API cannot answer now; retry after Retry-After seconds",
        Retry_After={"type": "integer", "minimum": 1},
    ),
}


def errors(*codes: int) -> dict[str, Any]:
    """The error responses ``codes``, as references to components/responses."""
    return {str(code): {"$ref": f"#/components/responses/{_ERROR_NAMES[code]}"} for code in codes}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional field that may be null too (null is the same as leaving it out)."""
    kind = schema["type"]
    return {**schema, "type": [kind, "null"]}


def body(
    properties: dict[str, Any], required: list[str], example: dict[str, Any]
) -> dict[str, Any]:
    """A required JSON object body; fields not listed are ignored."""
    schema = {"type": "object", "properties": properties, "required": required}
    return {
        "required": True,
        "content": {"application/json": {"schema": schema, "example": example}},
    }


def query(
    name: str, schema: dict[str, Any], description: str = "", *, required: bool = False
) -> dict[str, Any]:
    parameter = {"name": name, "in": "query", "required": required, "schema": schema}
    if description:
        parameter["description"] = description
    return parameter


def phone(max_length: int) -> dict[str, Any]:
    """A phone number: the spelling PHONE_PATTERN, and valid for its country."""
    return {
        "type": "string",
        "format": "phone",
        "minLength": 1,
        "maxLength": max_length,
        "pattern": PHONE_PATTERN,
        "description": "A phone number valid for its country (format 'phone': as "
        "libphonenumber knows the numbering plans), written with '+' or '00' and the "
        "country code (a local number only where the server sets WAFLEET_DEFAULT_REGION), "
        "ASCII digits with spaces or ( ) - . / between them; or a WhatsApp JID "
        "('<digits>@s.whatsapp.net'). Letters are refused, never read as keypad digits",
        "examples": [EXAMPLE_PHONE, "+40 712 345 678", "(+40) 712-345-678"],
    }
