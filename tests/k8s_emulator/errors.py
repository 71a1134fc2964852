"""Status bodies and field errors with the API server's wording."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]

_TYPE_WORDS = {
    "FieldValueNotFound": "Not found",
    "FieldValueRequired": "Required value",
    "FieldValueDuplicate": "Duplicate value",
    "FieldValueInvalid": "Invalid value",
    "FieldValueNotSupported": "Unsupported value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueTooLong": "Too long",
    "FieldValueTooMany": "Too many",
    "FieldValueTypeInvalid": "Invalid value",
}
_NO_VALUE = {"FieldValueRequired", "FieldValueForbidden", "FieldValueTooLong"}


def go_quote(text: str) -> str:
    """Go's %q for a string (close enough: JSON escaping, printable unicode kept)."""
    return json.dumps(text, ensure_ascii=False)


class RawValue(str):
    """A bad value printed as is (Go prints some values, like 0x0, its own way)."""


def go_value(value: Any) -> str:
    """How field.Error prints a bad value."""
    if isinstance(value, RawValue):
        return str(value)
    if value is None:
        return go_quote("null")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


@dataclass
class FieldError:
    """k8s.io/apimachinery/pkg/util/validation/field.Error."""

    type: str
    field: str
    value: Any = None
    detail: str = ""
    show_value: bool = True

    def body(self) -> str:
        text = _TYPE_WORDS[self.type]
        if self.type not in _NO_VALUE and self.show_value:
            text += ": " + go_value(self.value)
        if self.detail:
            text += ": " + self.detail
        return text

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"


def required(path: str, detail: str = "") -> FieldError:
    return FieldError("FieldValueRequired", path, "", detail)


def invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError("FieldValueInvalid", path, value, detail)


def forbidden(path: str, detail: str) -> FieldError:
    return FieldError("FieldValueForbidden", path, "", detail)


class ApiError(Exception):
    """An error answered as a metav1.Status."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: JSON | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}
        self.list_continue = ""  # a Status' metadata.continue (an expired continue token)

    def status(self) -> JSON:
        body = status_body(self.code, self.reason, self.message, self.details)
        if self.list_continue:
            body["metadata"] = {"continue": self.list_continue}
        return body

    def response_headers(self) -> dict[str, str]:
        """Retry-After when the Status asks for it, as responsewriters.ErrorNegotiated sets."""
        headers = dict(self.headers)
        retry = (self.details or {}).get("retryAfterSeconds")
        if retry:
            headers.setdefault("Retry-After", str(retry))
        return headers


def status_body(code: int, reason: str, message: str, details: JSON | None = None) -> JSON:
    body: JSON = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success" if code < 300 else "Failure",
        "message": message,
        "reason": reason,
    }
    if not message:
        del body["message"]
    if not reason:
        del body["reason"]
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def qualified(plural: str, group: str) -> str:
    """A GroupResource as the server prints it: ``whatsappaccounts.wafleet.io``."""
    return f"{plural}.{group}" if group else plural


def _details(name: str, group: str, kind: str) -> JSON:
    details: JSON = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = kind
    return details


def not_found(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f"{qualified(plural, group)} {go_quote(name)} not found",
        _details(name, group, plural),
    )


def already_exists(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f"{qualified(plural, group)} {go_quote(name)} already exists",
        _details(name, group, plural),
    )


def conflict(plural: str, group: str, name: str, why: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f"Operation cannot be fulfilled on {qualified(plural, group)} {go_quote(name)}: {why}",
        _details(name, group, plural),
    )


STALE = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def invalid_object(kind: str, group: str, name: str, errors: list[FieldError]) -> ApiError:
    unique: list[FieldError] = []
    seen: set[str] = set()
    for error in errors:
        if str(error) not in seen:
            seen.add(str(error))
            unique.append(error)
    group_kind = f"{kind}.{group}" if group else kind
    summary = str(unique[0]) if len(unique) == 1 else "[" + ", ".join(map(str, unique)) + "]"
    details = _details(name, group, kind)
    details["causes"] = [{"reason": e.type, "message": e.body(), "field": e.field} for e in unique]
    return ApiError(422, "Invalid", f"{group_kind} {go_quote(name)} is invalid: {summary}", details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def method_not_allowed(verb: str) -> ApiError:
    return ApiError(
        405,
        "MethodNotAllowed",
        f"the server does not allow this method on the requested resource ({verb})",
    )


def unsupported_media_type(content_type: str, accepted: list[str]) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{', '.join(accepted)}",
    )


def unprocessable(server_message: str) -> ApiError:
    """NewGenericServerResponse(422, ...): what a failed JSON patch (``test``) answers."""
    return ApiError(
        422,
        "Invalid",
        "the server rejected our request due to an error in our request",
        {"causes": [{"reason": "UnexpectedServerResponse", "message": server_message}]},
    )


def internal(message: str) -> ApiError:
    return ApiError(
        500,
        "InternalError",
        f"Internal error occurred: {message}",
        {"causes": [{"message": message}]},
    )


def forbidden_status(message: str, name: str, group: str, plural: str) -> ApiError:
    return ApiError(403, "Forbidden", message, _details(name, group, plural))


def route_not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})
