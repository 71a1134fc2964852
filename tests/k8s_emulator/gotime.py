"""Go's ``time.Parse`` for the two layouts Kubernetes uses, with Go's error texts.

metav1.Time parses with ``time.RFC3339`` ("2006-01-02T15:04:05Z07:00"): a
fraction of a second is accepted (and dropped on output, which is RFC 3339 in
UTC with whole seconds). metav1.MicroTime parses with ``RFC3339Micro``
("2006-01-02T15:04:05.000000Z07:00"): the fraction must have exactly six
digits, so "…00.123Z" and "…00Z" are errors. Both render in UTC.
"""

from __future__ import annotations

import calendar
import datetime
from dataclasses import dataclass

RFC3339 = "2006-01-02T15:04:05Z07:00"
RFC3339_MICRO = "2006-01-02T15:04:05.000000Z07:00"


class GoTimeError(ValueError):
    """time.ParseError: ``str()`` is Go's message."""


def go_time_quote(text: str) -> str:
    """The time package's own quote(): non-ASCII and control bytes as \\xNN."""
    out = ['"']
    for char in text:
        if ord(char) >= 0x80 or char < " ":
            out.extend(f"\\x{byte:02x}" for byte in char.encode())
        else:
            out.append("\\" + char if char in '"\\' else char)
    out.append('"')
    return "".join(out)


@dataclass
class _Parts:
    year: int = 0
    month: int = 0
    day: int = 0
    hour: int = 0
    minute: int = 0
    second: int = 0
    micros: int = 0
    offset: int = 0  # seconds east of UTC


class _Parser:
    def __init__(self, layout: str, value: str) -> None:
        self.layout = layout
        self.value = value
        self.rest = value

    def fail(self, layout_elem: str, value_elem: str) -> GoTimeError:
        return GoTimeError(
            f"parsing time {go_time_quote(self.value)} as {go_time_quote(self.layout)}: "
            f"cannot parse {go_time_quote(value_elem)} as {go_time_quote(layout_elem)}"
        )

    def range_error(self, what: str) -> GoTimeError:
        return GoTimeError(f"parsing time {go_time_quote(self.value)}: {what} out of range")

    def literal(self, text: str) -> None:
        if not self.rest.startswith(text):
            raise self.fail(text, self.rest)
        self.rest = self.rest[len(text) :]

    def number(self, elem: str, fixed: bool) -> int:
        rest = self.rest
        if not rest[:1].isdigit() or not rest[:1].isascii():
            raise self.fail(elem, rest)
        if not rest[1:2].isdigit() or not rest[1:2].isascii():
            if fixed:
                raise self.fail(elem, rest)
            self.rest = rest[1:]
            return int(rest[0])
        self.rest = rest[2:]
        return int(rest[:2])

    def year(self) -> int:
        rest = self.rest
        digits = rest[:4]
        if len(rest) < 4 or not (digits.isascii() and digits.isdigit()):
            raise self.fail("2006", rest)
        self.rest = rest[4:]
        return int(digits)

    def in_range(self, value: int, low: int, high: int, what: str) -> int:
        if not low <= value <= high:
            raise self.range_error(what)
        return value

    def fraction(self, parts: _Parts, micro_layout: bool) -> None:
        rest = self.rest
        if micro_layout:
            if len(rest) < 7 or rest[0] not in ".," or not _digits(rest[1:7]):
                raise self.fail(".000000", rest)
            parts.micros = int(rest[1:7])
            self.rest = rest[7:]
            return
        if len(rest) >= 2 and rest[0] in ".," and _digits(rest[1]):
            end = 2
            while end < len(rest) and _digits(rest[end]):
                end += 1
            parts.micros = int((rest[1:end] + "000000")[:6])
            self.rest = rest[end:]

    def zone(self, parts: _Parts) -> None:
        rest = self.rest
        if rest[:1] == "Z":
            self.rest = rest[1:]
            return
        if len(rest) < 6 or rest[3] != ":":
            raise self.fail("Z07:00", rest)
        sign, hours, minutes = rest[0], rest[1:3], rest[4:6]
        if not (_digits(hours) and _digits(minutes)) or sign not in "+-":
            raise self.fail("Z07:00", rest)
        if int(hours) > 24:
            raise self.range_error("time zone offset hour")
        if int(minutes) > 60:
            raise self.range_error("time zone offset minute")
        offset = int(hours) * 3600 + int(minutes) * 60
        parts.offset = -offset if sign == "-" else offset
        self.rest = rest[6:]

    def parse(self, micro_layout: bool) -> _Parts:
        parts = _Parts()
        parts.year = self.year()
        self.literal("-")
        parts.month = self.in_range(self.number("01", True), 1, 12, "month")
        self.literal("-")
        parts.day = self.number("02", True)
        self.literal("T")
        parts.hour = self.in_range(self.number("15", False), 0, 23, "hour")
        self.literal(":")
        parts.minute = self.in_range(self.number("04", True), 0, 59, "minute")
        self.literal(":")
        parts.second = self.in_range(self.number("05", True), 0, 59, "second")
        self.fraction(parts, micro_layout)
        self.zone(parts)
        if self.rest:
            raise GoTimeError(
                f"parsing time {go_time_quote(self.value)}: extra text: {go_time_quote(self.rest)}"
            )
        if not 1 <= parts.day <= calendar.monthrange(parts.year or 2000, parts.month)[1]:
            raise self.range_error("day")
        return parts


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def parse(value: str, micro: bool) -> datetime.datetime:
    """Parse like ``time.Parse(RFC3339[Micro], value)``; the result is in UTC."""
    layout = RFC3339_MICRO if micro else RFC3339
    parts = _Parser(layout, value).parse(micro)
    zone = datetime.timezone(datetime.timedelta(seconds=parts.offset))
    stamp = datetime.datetime(
        max(parts.year, 1),
        parts.month,
        parts.day,
        parts.hour,
        parts.minute,
        parts.second,
        parts.micros,
        tzinfo=zone,
    )
    return stamp.astimezone(datetime.UTC)


def render(stamp: datetime.datetime, micro: bool) -> str:
    """How metav1.Time / MicroTime marshal: UTC, whole seconds or exactly six digits."""
    utc = stamp.astimezone(datetime.UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{utc.microsecond:06d}Z" if micro else f"{text}Z"


def normalize(value: str, micro: bool) -> str:
    """Parse then render, as a value goes through the API server."""
    return render(parse(value, micro), micro)
