"""The one JSON error shape and request-body reading, shared by every HTTP app."""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response


class ApiError(Exception):
    """An error answered as ``{"success": false, "error": {"code", "message"}}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"success": False, "error": {"code": code, "message": message}}, status_code=status
    )


async def api_error_handler(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message)


_HTTP_CODES = {
    404: ("not_found", "no such route; see /openapi.json"),
    405: ("method_not_allowed", "this route does not take that method; see /openapi.json"),
}


async def http_error_handler(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code, message = _HTTP_CODES.get(exc.status_code, ("http_error", str(exc.detail)))
    response = error_response(exc.status_code, code, message)
    if exc.headers:
        response.headers.update(exc.headers)  # e.g. Allow on a 405
    return response


async def read_json_object(request: Request, max_bytes: int) -> dict[str, Any]:
    """The request body as a JSON object, refusing oversized or malformed bodies."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(413, "body_too_large", f"request body is over {max_bytes} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > max_bytes:
            raise ApiError(413, "body_too_large", f"request body is over {max_bytes} bytes")
    if not body:
        raise ApiError(400, "invalid_json", "request body is empty; send a JSON object")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "request body is not valid JSON") from None
    except RecursionError:
        raise ApiError(400, "invalid_json", "request body is nested too deeply") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "request body must be a JSON object")
    return data


def field_str(
    data: dict[str, Any], name: str, *, required: bool, max_length: int, default: str = ""
) -> str:
    """A string field of a JSON body, with errors that name the field."""
    value = data.get(name)
    if value is None:
        if required:
            raise ApiError(400, "missing_field", f"field '{name}' is required")
        return default
    if not isinstance(value, str):
        raise ApiError(400, "invalid_field", f"field '{name}' must be a string")
    if len(value) > max_length:
        raise ApiError(
            400, "invalid_field", f"field '{name}' is longer than {max_length} characters"
        )
    if required and not value.strip():
        raise ApiError(400, "missing_field", f"field '{name}' must not be empty")
    return value
