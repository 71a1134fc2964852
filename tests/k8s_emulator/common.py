"""Options and results shared by the object operations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]
NAMESPACES = ("", "namespaces")


@dataclass
class Options:
    dry_run: bool = False
    field_validation: str = "Warn"  # Strict, Warn or Ignore
    patch: bool = False
    patch_type: str = ""  # the patch's content type, for the shape of decode errors
    patch_body: Any = None  # the patch as sent (a strategic merge patch's errors print it)


@dataclass
class Result:
    obj: JSON
    code: int = 200
    warnings: list[str] = field(default_factory=list)
