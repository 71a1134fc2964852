"""Reading the control API's input: each bad value is a JSON 400 that names its field."""

from __future__ import annotations

import math
from typing import Any

from starlette.requests import Request

from wafleet.core.http import ApiError, field_str, field_token, read_json_object
from wafleet.core.phones import InvalidPhone, normalize_phone

MAX_PHONE = 40  # characters of a phone field, as the API's add-account takes


def _invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_field", message)


async def read_object(request: Request, max_bytes: int) -> dict[str, Any]:
    """The body as a JSON object (a body nested too deeply for the parser is a 400 too)."""
    return await read_json_object(request, max_bytes)


def text_field(data: dict[str, Any], name: str, *, max_length: int) -> str:
    """A required free text: any Unicode text (new lines, right-to-left marks...) but NUL."""
    return field_str(data, name, required=True, max_length=max_length)


def ascii_field(data: dict[str, Any], name: str, *, max_length: int) -> str:
    """A required string of visible ASCII, as QR and pairing codes are."""
    return field_token(data, name, required=True, max_length=max_length)


def phone_field(data: dict[str, Any], name: str) -> str:
    raw = field_str(data, name, required=True, max_length=MAX_PHONE)
    try:
        return normalize_phone(raw)
    except InvalidPhone as exc:
        raise ApiError(400, "invalid_phone", f"field '{name}': {exc}") from None


def choice_field(
    data: dict[str, Any], name: str, choices: tuple[str, ...], default: str | None = None
) -> str:
    """One of ``choices``; required unless there is a ``default``."""
    if data.get(name) is None and default is not None:
        return default
    value = field_str(data, name, required=True, max_length=64)
    if value not in choices:
        raise _invalid(f"field '{name}' must be one of: {', '.join(choices)}")
    return value


def bool_field(data: dict[str, Any], name: str) -> bool:
    value = data.get(name)
    if value is None:
        raise ApiError(400, "missing_field", f"field '{name}' is required")
    if not isinstance(value, bool):
        raise _invalid(f"field '{name}' must be true or false")
    return value


def seconds_field(data: dict[str, Any], name: str, *, maximum: float) -> float | None:
    """An optional positive, finite number of seconds, at most ``maximum``."""
    value = data.get(name)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise _invalid(f"field '{name}' must be a positive number")
    if value > maximum:
        raise _invalid(f"field '{name}' must be at most {maximum:g}")
    return float(value)


def query_phone(request: Request) -> str:
    raw = request.query_params.get("phone")
    if raw is None:
        raise ApiError(400, "missing_field", "query parameter 'phone' is required")
    if raw.startswith(" ") and not raw.lstrip().startswith("+"):
        raw = "+" + raw.lstrip()  # an unescaped "+" in a query string arrives as a space
    try:
        return normalize_phone(raw)
    except InvalidPhone as exc:
        raise ApiError(400, "invalid_phone", f"query parameter 'phone': {exc}") from None
