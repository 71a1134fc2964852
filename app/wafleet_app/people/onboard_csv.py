"""The batch onboarding file: a CSV with a header, one account per row.

Columns: ``phone`` (required), ``name`` and ``login`` (``qr`` or ``pairingCode``;
empty: qr), in any order and case. A row that cannot be added (not a phone number, a
number already on an earlier line, an unknown login) is kept as a ``BadRow`` with its
line number and the reason, and the other rows go on; only a file that cannot be read as
such a table at all (no header, no ``phone`` column, an unknown column) is an error.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from wafleet.core.phones import InvalidPhone, normalize_phone
from wafleet_app.people.errors import UsageError

COLUMNS = ("phone", "name", "login")
LOGINS: dict[str, Literal["qr", "pairingCode"]] = {"qr": "qr", "pairingcode": "pairingCode"}
MAX_NAME = 100


@dataclass(frozen=True)
class Row:
    line: int  # where the row starts in the file (1: the header)
    phone: str  # E.164
    name: str | None
    login: Literal["qr", "pairingCode"]


@dataclass(frozen=True)
class BadRow:
    line: int
    reason: str  # never the whole phone number: masked, as in every message


@dataclass(frozen=True)
class Sheet:
    rows: tuple[Row, ...]
    bad: tuple[BadRow, ...]

    @property
    def total(self) -> int:
        return len(self.rows) + len(self.bad)


def _header(names: list[str] | None) -> list[str]:
    if not names:
        raise UsageError("the file is empty: it needs a header line such as 'phone,name,login'")
    header = [name.strip().lower() for name in names]
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        raise UsageError(
            f"unknown column '{unknown[0][:40]}' in the header; the columns are "
            f"{', '.join(COLUMNS)} (phone required)"
        )
    if "phone" not in header:
        raise UsageError("the header has no 'phone' column (the columns: phone, name, login)")
    if len(set(header)) != len(header):
        raise UsageError("a column is named twice in the header")
    return header


def _is_local(raw: str) -> bool:
    """A number written without its country code ("0712 345 678")."""
    lead = raw.lstrip("( ")
    return lead[:1].isdigit() and not lead.startswith("00") and "@" not in raw


def _row(
    line: int, values: dict[str, str], region: str | None, seen: dict[str, int]
) -> Row | BadRow:
    raw_phone = values.get("phone", "").strip()
    if not raw_phone:
        return BadRow(line, "no phone number")
    if region is None and _is_local(raw_phone):
        return BadRow(
            line,
            "no country code: write it as '+<country><number>' such as +40712345678, "
            "or pass --region for local numbers",
        )
    try:
        phone = normalize_phone(raw_phone, region)
    except InvalidPhone as exc:
        return BadRow(line, f"not a phone number: {exc}")
    if phone in seen:
        return BadRow(line, f"a duplicate: the same number as line {seen[phone]}")
    login = LOGINS.get(values.get("login", "").strip().lower() or "qr")
    if login is None:
        return BadRow(line, "login must be 'qr' or 'pairingCode' (or empty: qr)")
    name = values.get("name", "").strip() or None
    if name is not None and len(name) > MAX_NAME:
        return BadRow(line, f"the name is longer than {MAX_NAME} characters")
    seen[phone] = line
    return Row(line=line, phone=phone, name=name, login=login)


def parse_sheet(text: str, region: str | None = None) -> Sheet:
    """The rows of a CSV text (blank lines skipped); ``region`` reads local numbers."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    try:
        header = _header(next(reader, None))
    except csv.Error as exc:
        raise UsageError(f"the header line is not CSV: {exc}") from None
    rows: list[Row] = []
    bad: list[BadRow] = []
    seen: dict[str, int] = {}
    line = reader.line_num + 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            bad.append(BadRow(line, f"not CSV: {exc}"))
            line = reader.line_num + 1
            continue
        if any(field.strip() for field in fields):
            if len(fields) > len(header):
                bad.append(BadRow(line, f"{len(fields)} fields, the header has {len(header)}"))
            else:
                result = _row(line, dict(zip(header, fields, strict=False)), region, seen)
                if isinstance(result, Row):
                    rows.append(result)
                else:
                    bad.append(result)
        line = reader.line_num + 1
    return Sheet(rows=tuple(rows), bad=tuple(bad))


def read_sheet(path: Path, region: str | None = None) -> Sheet:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"no file {path}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text (save the CSV as UTF-8)") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    return parse_sheet(text, region)
