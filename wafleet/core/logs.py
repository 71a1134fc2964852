"""Structured logging: one line per record, the message then its fields as JSON, or
(``WAFLEET_LOG_FORMAT=json``) one JSON object per line for log collectors.

No secret and no customer phone number reaches a log line:

- every line has the registered secrets (the admin token, the link key), bearer
  credentials (``Authorization: Bearer ...``) and the values of secret query parameters
  (``sig``, ``token``, ...) replaced by ``***``;
- the access log (uvicorn's ``uvicorn.access`` records) also has the phone numbers of
  its paths and queries masked as ``mask_phone`` does ("+407****78").
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from urllib.parse import unquote, unquote_plus

from wafleet.core.log_context import ContextFields
from wafleet.core.phones import mask_phone

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's coloured copy of the message
}

MASK = "***"
# Query parameters whose values are credentials (a cursor is not: it is an opaque
# position in a listing, worth seeing when a client pages wrongly).
SECRET_PARAMS = frozenset(
    {"sig", "token", "access_token", "key", "api_key", "apikey", "secret", "password"}
)
PHONE_PARAMS = frozenset({"phone"})
NUMERIC_PARAMS = frozenset({"exp", "limit"})  # numbers that are not phone numbers

_SECRET_QUERY = re.compile(r"(?i)([?&;](?:" + "|".join(sorted(SECRET_PARAMS)) + r")=)[^&\s\"';]*")
_BEARER = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{8,}")
_AUTH_HEADER = re.compile(
    r"(?i)\b(authorization|cookie|x-api-key)([\"']?\s*[:=]\s*[\"']?)[^\"'\r\n]+"
)
# An E.164-looking run of digits, bare or after "+" (plain or percent-encoded), that is
# not part of a longer word: ids made of hex digits keep theirs.
_PHONE = re.compile(r"(?<![0-9A-Za-z])(\+|%2[Bb])?([0-9]{7,15})(?![0-9A-Za-z])")

_secrets: set[str] = set()
_patterns: list[re.Pattern[str]] = []


def redact_secret(value: str) -> None:
    """Never write ``value`` in a log line (from now on, in this process)."""
    if len(value) >= 8:
        _secrets.add(value)


def redact_pattern(pattern: str) -> None:
    """Never write a match of ``pattern`` (e.g. the shape of an API key) in a log line."""
    compiled = re.compile(pattern.removeprefix("^").removesuffix("$"))
    if compiled.pattern not in {p.pattern for p in _patterns}:
        _patterns.append(compiled)


def redact(text: str) -> str:
    """``text`` without registered secrets, bearer credentials or secret query values."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern in _patterns:
        text = pattern.sub(MASK, text)
    text = _AUTH_HEADER.sub(lambda m: m.group(1) + m.group(2) + MASK, text)
    text = _BEARER.sub(lambda m: m.group(1) + m.group(2) + MASK, text)
    return _SECRET_QUERY.sub(lambda m: m.group(1) + MASK, text)


def _mask_digits(match: re.Match[str]) -> str:
    prefix, digits = match.group(1), match.group(2)
    if prefix is None:
        return mask_phone(digits)
    return prefix + mask_phone("+" + digits)[1:]  # the "+" as it was written


def mask_phones(text: str) -> str:
    return _PHONE.sub(_mask_digits, text)


def _mask_param(pair: str) -> str:
    name, sep, value = pair.partition("=")
    key = unquote_plus(name).lower()
    if not sep:
        return mask_phones(pair)
    if key in SECRET_PARAMS:
        return f"{name}={MASK}"
    if key in PHONE_PARAMS and value:
        return f"{name}={mask_phone(unquote(value).strip())}"  # a raw "+" is the phone's
    if key in NUMERIC_PARAMS:
        return pair
    return f"{name}={mask_phones(value)}"


def mask_target(target: str) -> str:
    """A request target (path and query, as uvicorn logs it) fit for a log line."""
    path, sep, query = target.partition("?")
    masked = mask_phones(path)
    if sep:
        masked += "?" + "&".join(_mask_param(pair) for pair in query.split("&"))
    return masked


class AccessLogMask(logging.Filter):
    """Masks the request target of uvicorn's access records.

    uvicorn logs ``'%s - "%s %s HTTP/%s" %d'`` with the arguments
    ``(client_addr, method, full_path, http_version, status_code)``; the third is replaced.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], mask_target(args[2]), args[3], args[4])
        else:  # another shape (another uvicorn version): mask the whole message
            record.msg, record.args = mask_phones(record.getMessage()), None
        return True


def _fields(record: logging.LogRecord) -> dict[str, object]:
    """The record's own fields (its ``extra``): scalars, long strings cut at 500."""
    return {
        key: value if not isinstance(value, str) else value[:500]
        for key, value in record.__dict__.items()
        if key not in _STANDARD and isinstance(value, str | int | float | bool | None)
    }


class FieldsFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        fields = _fields(record)
        if fields:
            base += " " + json.dumps(fields, default=str, sort_keys=True)
        return redact(base)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the record's fields (an
    account id, the shard, the request id...) and the traceback, masked as text lines are."""

    def __init__(self) -> None:
        super().__init__()
        self.converter = time.gmtime  # the "Z" in each line is true

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _fields(record).items():
            line.setdefault(key, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # Masked after encoding: every secret the text format hides, this hides too (the
        # secrets wafleet registers are printable ASCII, written alike in JSON).
        return redact(json.dumps(line, default=str, ensure_ascii=False))


ACCESS_LOGGER = "uvicorn.access"


def setup_logging(level: str, fmt: str = "text") -> None:
    """Log to stderr at ``level``, as text lines or (``fmt="json"``) JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    elif fmt == "text":
        handler.setFormatter(FieldsFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        raise ValueError(f"log format {fmt!r} is not one of: text, json")
    handler.addFilter(ContextFields())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    access = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, AccessLogMask) for f in access.filters):
        access.addFilter(AccessLogMask())
    # httpx logs every request it sends at INFO, URL included: a webhook's URL may carry a
    # token of its receiver, and one line per delivery would drown everything else.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(max(root.level, logging.WARNING))
