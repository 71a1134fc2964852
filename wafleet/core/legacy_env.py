"""The legacy server's environment variables, read where they mean what a WAFLEET_* does.

A fleet moving over from the legacy Node.js server can start standalone mode with the
environment it already has. Each legacy variable is translated to its WAFLEET_* variable
and named in a start-up line, so the configuration can be moved over at leisure; a
WAFLEET_* variable that is set as well wins.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from wafleet.core.envconfig import ConfigError


def _same(value: str) -> str:
    return value


def _milliseconds(value: str) -> str:
    try:
        milliseconds = int(value)
    except ValueError:
        raise ConfigError(
            f"WHATSAPP_CONNECT_TIMEOUT_MS={value!r} is not a whole number of milliseconds"
        ) from None
    return f"{milliseconds / 1000:g}"


@dataclass(frozen=True)
class _Variable:
    legacy: str
    wafleet: str
    convert: Callable[[str], str] = _same
    secret: bool = False


LEGACY_VARIABLES: tuple[_Variable, ...] = (
    _Variable("PORT", "WAFLEET_PORT"),
    _Variable("ADMIN_TOKEN", "WAFLEET_ADMIN_TOKEN", secret=True),
    _Variable("SESSIONS_PATH", "WAFLEET_SESSIONS_DIR"),
    _Variable("FIREBASE_SERVICE_ACCOUNT_JSON", "WAFLEET_FIRESTORE_CREDENTIALS_JSON", secret=True),
    _Variable("WHATSAPP_CONNECT_TIMEOUT_MS", "WAFLEET_CONNECT_TIMEOUT", _milliseconds),
)


@dataclass(frozen=True)
class LegacyEnvironment:
    """The environment with the legacy variables translated, and what to tell the user."""

    env: dict[str, str]
    notices: list[str] = field(default_factory=list)


def service_account_project(text: str, variable: str) -> str | None:
    """The project of a service account key given inline in ``variable``; ConfigError if the
    text is not such a key."""
    try:
        info = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{variable} is not JSON (expected the content of a service account key file): "
            f"{exc.msg} at character {exc.pos}"
        ) from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise ConfigError(
            f'{variable} is not a service account key (its "type" is not "service_account")'
        )
    project = info.get("project_id")
    return project if isinstance(project, str) and project else None


def translate_legacy(env: Mapping[str, str]) -> LegacyEnvironment:
    """``env`` plus the WAFLEET_* variables its legacy variables stand for."""
    merged = dict(env)
    notices: list[str] = []
    for variable in LEGACY_VARIABLES:
        value = (env.get(variable.legacy) or "").strip()
        if not value:
            continue
        if (env.get(variable.wafleet) or "").strip():
            notices.append(
                f"{variable.legacy} is ignored: {variable.wafleet} is set and wins; "
                f"remove {variable.legacy}"
            )
            continue
        merged[variable.wafleet] = variable.convert(value)
        notices.append(f"{variable.legacy} is read as {variable.wafleet}; set that instead")
    credentials = merged.get("WAFLEET_FIRESTORE_CREDENTIALS_JSON", "").strip()
    if credentials and "FIREBASE_SERVICE_ACCOUNT_JSON" in env:
        project = service_account_project(credentials, "FIREBASE_SERVICE_ACCOUNT_JSON")
        if not (env.get("WAFLEET_STORE") or "").strip():
            merged["WAFLEET_STORE"] = "firestore"
            notices.append(
                "FIREBASE_SERVICE_ACCOUNT_JSON is set: messages, outbox and incidents go to "
                "Firestore, as on the legacy server (WAFLEET_STORE=firestore)"
            )
        if project and not (env.get("WAFLEET_FIRESTORE_PROJECT") or "").strip():
            merged["WAFLEET_FIRESTORE_PROJECT"] = project
    return LegacyEnvironment(merged, notices)
