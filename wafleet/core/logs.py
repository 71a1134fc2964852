"""Structured logging: one line per record, the message then its fields as JSON."""

from __future__ import annotations

import json
import logging
import sys

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's coloured copy of the message
}


class FieldsFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        fields = {
            key: value if not isinstance(value, str) else value[:500]
            for key, value in record.__dict__.items()
            if key not in _STANDARD and isinstance(value, str | int | float | bool | None)
        }
        if fields:
            base += " " + json.dumps(fields, default=str, sort_keys=True)
        return base


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(FieldsFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
