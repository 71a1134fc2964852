"""Reading typed values from the environment, with errors that name the variable."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class ConfigError(ValueError):
    """A setting is invalid; the message names the variable and what to write instead."""


@dataclass(frozen=True)
class EnvReader:
    env: Mapping[str, str]
    prefix: str = "WAFLEET_"

    def name(self, key: str) -> str:
        return self.prefix + key

    def raw(self, key: str) -> str | None:
        value = self.env.get(self.name(key))
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def string(self, key: str, default: str) -> str:
        return self.raw(key) or default

    def optional(self, key: str) -> str | None:
        return self.raw(key)

    def integer(self, key: str, default: int, *, minimum: int, maximum: int) -> int:
        value = self.raw(key)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(f"{self.name(key)}={value!r} is not a whole number") from None
        if not minimum <= number <= maximum:
            raise ConfigError(
                f"{self.name(key)}={number} is out of range; use {minimum}..{maximum}"
            )
        return number

    def number(self, key: str, default: float, *, minimum: float, maximum: float) -> float:
        value = self.raw(key)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{self.name(key)}={value!r} is not a number") from None
        if not minimum <= number <= maximum:
            raise ConfigError(
                f"{self.name(key)}={number} is out of range; use {minimum}..{maximum}"
            )
        return number

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = (self.raw(key) or default).lower()
        if value not in choices:
            raise ConfigError(f"{self.name(key)}={value!r} is not one of: {', '.join(choices)}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{self.name(key)}={value!r} is not true or false")

    def path(self, key: str, default: str) -> Path:
        return Path(self.string(key, default)).expanduser()
