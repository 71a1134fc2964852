"""The one JSON error shape and request-body reading, shared by every HTTP app."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route

logger = logging.getLogger(__name__)


# ----- what a string field may hold (the OpenAPI document publishes these patterns) -------
def _class(ranges: tuple[tuple[int, int], ...]) -> str:
    """A regex character class body: ECMA 262 and Python read ``\\uXXXX`` alike."""
    return "".join(
        f"\\u{low:04x}" if low == high else f"\\u{low:04x}-\\u{high:04x}" for low, high in ranges
    )


# What Python's str.strip() takes for whitespace (every character of str.isspace()).
WHITESPACE = (
    (0x09, 0x0D), (0x1C, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680),
    (0x2000, 0x200A), (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000),
)  # fmt: skip
# Not in a name: controls (C0, DEL, C1), line and paragraph separators, and the invisible
# format characters of the BMP (bidi marks, embeddings, overrides and isolates, zero-width
# space, word joiner, BOM, soft hyphen...) but ZWNJ and ZWJ (U+200C, U+200D), which some
# scripts and emoji sequences need.
NAME_FORBIDDEN = (
    (0x00, 0x1F), (0x7F, 0x9F), (0xAD, 0xAD), (0x600, 0x605), (0x61C, 0x61C), (0x6DD, 0x6DD),
    (0x70F, 0x70F), (0x890, 0x891), (0x8E2, 0x8E2), (0x180E, 0x180E), (0x200B, 0x200B),
    (0x200E, 0x200F), (0x2028, 0x202E), (0x2060, 0x2064), (0x2066, 0x206F), (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
)  # fmt: skip
_NUL = "\\u0000"
TEXT_PATTERN = f"^[^{_NUL}]*$"  # free text: anything but NUL (and lone surrogates)
REQUIRED_TEXT_PATTERN = f"^[^{_NUL}]*[^{_NUL}{_class(WHITESPACE)}][^{_NUL}]*$"
NAME_PATTERN = f"^[^{_class(NAME_FORBIDDEN)}]*$"
VISIBLE_ASCII_PATTERN = "^[!-~]+$"  # visible ASCII: ids and codes
PRINTABLE_ASCII_PATTERN = "^[ -~]*$"  # visible ASCII and spaces: keys

_NOT_UNICODE = re.compile("[\\ud800-\\udfff\\u0000]")
_NAME_FORBIDDEN = re.compile(f"[{_class(NAME_FORBIDDEN)}]")
_VISIBLE_ASCII = re.compile(VISIBLE_ASCII_PATTERN[1:-1])
_PRINTABLE_ASCII = re.compile(PRINTABLE_ASCII_PATTERN[1:-1])


def u_plus(char: str) -> str:
    """A character as its code point ("U+202E"), readable whatever it is."""
    return f"U+{ord(char):04X}"


class ApiError(Exception):
    """An error answered as ``{"success": false, "error": {"code", "message"}}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str) -> JSONResponse:
    # A message never fails to encode, whatever input it quotes (a lone surrogate: \ud800).
    message = message.encode("utf-8", "backslashreplace").decode("utf-8")
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


def _routes_at(request: Request) -> list[Route]:
    """The routes whose path matches the request's, whatever their methods."""
    router = getattr(request.app, "router", None)
    found: list[Route] = []
    for route in getattr(router, "routes", ()):
        if isinstance(route, Route) and route.matches(request.scope)[0] != Match.NONE:
            found.append(route)
    return found


def allowed_methods(request: Request) -> list[str]:
    """Every method the request's path takes, over all the routes that share it."""
    methods: set[str] = set()
    for route in _routes_at(request):
        methods |= route.methods or set()
    return sorted(methods)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code, message = _HTTP_CODES.get(exc.status_code, ("http_error", str(exc.detail)))
    response = error_response(exc.status_code, code, message)
    if exc.headers:
        response.headers.update(exc.headers)
    if exc.status_code == 405:
        # Starlette names only the methods of the first route on the path; list them all.
        methods = allowed_methods(request)
        if methods:
            response.headers["Allow"] = ", ".join(methods)
    return response


async def internal_error_handler(request: Request, exc: Exception) -> Response:
    """Any unexpected exception: logged with its traceback, answered as the JSON error.

    The log names the route's template (``/api/whatsapp/accounts/{account_id}``), not the
    request's path, which may carry a phone number.
    """
    routes = [r for r in _routes_at(request) if r.matches(request.scope)[0] == Match.FULL]
    where = routes[0].path if routes else "(no route)"
    logger.error(
        "unexpected error answering %s %s",
        request.method,
        where,
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    return error_response(
        500, "internal_error", "the server failed to answer this request; its log says why"
    )


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


def invalid(name: str, problem: str) -> ApiError:
    """A 400 ``invalid_field`` that names the field."""
    return ApiError(400, "invalid_field", f"field '{name}' {problem}")


def field_str(
    data: dict[str, Any], name: str, *, required: bool, max_length: int, default: str = ""
) -> str:
    """A string field of a JSON body, with errors that name the field.

    Any text but NUL or a lone surrogate (no Unicode character: it can be neither stored
    nor sent); a required field must hold more than whitespace.
    """
    value = data.get(name)
    if value is None:
        if required:
            raise ApiError(400, "missing_field", f"field '{name}' is required")
        return default
    if not isinstance(value, str):
        raise invalid(name, "must be a string")
    bad = _NOT_UNICODE.search(value)
    if bad is not None:
        what = "NUL" if bad.group() == "\0" else "a lone surrogate, which is not Unicode text"
        raise invalid(name, f"holds {u_plus(bad.group())} ({what})")
    if len(value) > max_length:
        raise invalid(name, f"is longer than {max_length} characters")
    if required and not value.strip():
        raise ApiError(400, "missing_field", f"field '{name}' must not be empty")
    return value


def field_name(data: dict[str, Any], name: str, *, max_length: int) -> str:
    """An optional display name, stripped: one line of visible text, without control or
    invisible format characters (bidi marks, overrides and isolates, zero-width space)."""
    value = field_str(data, name, required=False, max_length=max_length)
    bad = _NAME_FORBIDDEN.search(value)
    if bad is not None:
        raise invalid(
            name,
            f"holds {u_plus(bad.group())}, a control or invisible formatting character; "
            "a name is one line of visible text",
        )
    return value.strip()


def field_token(
    data: dict[str, Any], name: str, *, required: bool, max_length: int, spaces: bool = False
) -> str:
    """An ASCII string (an id, a code, a key): visible ASCII, and spaces if ``spaces``."""
    value = field_str(data, name, required=required, max_length=max_length)
    if value and not (_PRINTABLE_ASCII if spaces else _VISIBLE_ASCII).fullmatch(value):
        raise invalid(name, f"must be {ascii_rule(spaces)}")
    return value


def ascii_rule(spaces: bool) -> str:
    if spaces:
        return "printable ASCII (the characters from ' ' to '~')"
    return "visible ASCII (the characters from '!' to '~', no spaces)"


def is_token(value: str, *, spaces: bool = False) -> bool:
    """Whether ``value`` is what ``field_token`` takes (the empty string is)."""
    return not value or bool((_PRINTABLE_ASCII if spaces else _VISIBLE_ASCII).fullmatch(value))
