"""Reading a Baileys 7 auth state: a ``useMultiFileAuthState`` folder or the legacy ``files`` map.

File names are ``fixFileName("<category>-<id>.json")`` (Baileys
``Utils/use-multi-file-auth-state``): ``/`` became ``__`` and ``:`` became ``-``. Categories
are matched longest first (``sender-key-memory`` before ``sender-key``), and the id is turned
back only where its category can hold those characters:

- ``app-state-sync-key``: the id is base64, whose ``/`` became ``__``;
- ``sender-key``: ``<group>::<name>::<device>`` became ``<group>--<name>--<device>``; the name
  and device hold no ``-``, so the id is split from the right (old group ids hold one ``-``);
- ``tctoken``: a user JID, which holds neither.

A damaged ``creds.json`` raises ``Unconvertible`` naming it: without it there is no device. A
damaged key file (not JSON, not UTF-8, values that are not what Baileys writes) is left out and
kept in ``AuthState.ignored`` with the reason (``damaged: ...``): it costs what it held (a
contact's session, a pre-key, a sender key, which WhatsApp's retries set up again), never the
linked device, which may not be linkable again (passkeys). A file that cannot be read at all
(permissions, I/O) still raises: that is the machine's problem to fix, not damage. A file whose
*name* maps to nothing whatsmeow keeps (device lists, sender-key memory, the tctoken index,
unknown files) is kept in ``AuthState.ignored`` with the reason, for the report. Nothing here
writes anything.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from wafleet.migrate import baileys_parse as parse
from wafleet.migrate.baileys_model import (
    AppStateSyncKey,
    AppStateVersion,
    AuthState,
    Creds,
    IdentityKeyFile,
    IgnoredFile,
    LidMappingFile,
    PreKey,
    SenderKeyFile,
    SessionFile,
    TcToken,
)
from wafleet.migrate.bufferjson import b64decode, to_bytes, to_str
from wafleet.migrate.errors import Garbled, Unconvertible
from wafleet.migrate.node_session import session_entries

CREDS_FILE = "creds.json"
CATEGORIES = tuple(
    sorted(
        (
            "app-state-sync-version",
            "app-state-sync-key",
            "sender-key-memory",
            "sender-key",
            "identity-key",
            "lid-mapping",
            "device-list",
            "pre-key",
            "session",
            "tctoken",
        ),
        key=len,
        reverse=True,
    )
)
NO_EQUIVALENT = {
    "device-list": "a cached device list (whatsmeow fetches device lists again)",
    "sender-key-memory": "sender-key memory (whatsmeow keeps no record of who has our key)",
}
DAMAGED = "damaged"  # the start of the reason of a key file left out for its content
TC_TOKEN_INDEX = "__index"  # noqa: S105 - a file name, not a secret
SIGNAL_ADDRESS = re.compile(r"^[0-9]+(?:_[0-9]+)?\.[0-9]+$")
SENDER_NAME = re.compile(r"^[0-9]+(?:_[0-9]+)?$")
USER = re.compile(r"^[0-9]+$")
TOKEN_JID = re.compile(r"^([0-9]+)(?::[0-9]+)?@(s\.whatsapp\.net|c\.us|lid|hosted|hosted\.lid)$")

Loader = Callable[[], Any]
T = TypeVar("T")


def parse_file_name(name: str) -> tuple[str, str] | None:
    """(category, id as written in the name), or None for a name Baileys does not make."""
    if not name.endswith(".json"):
        return None
    stem = name.removesuffix(".json")
    for category in CATEGORIES:
        if stem.startswith(category + "-") and len(stem) > len(category) + 1:
            return category, stem[len(category) + 1 :]
    return None


class _Collector:
    """Gathers one account's files by category; each file is read only when dispatched."""

    def __init__(self) -> None:
        self.creds: Creds | None = None
        self.pre_keys: list[PreKey] = []
        self.sessions: list[SessionFile] = []
        self.identity_keys: list[IdentityKeyFile] = []
        self.sender_keys: list[SenderKeyFile] = []
        self.app_state_keys: list[AppStateSyncKey] = []
        self.app_state_versions: list[AppStateVersion] = []
        self.lid_mappings: list[LidMappingFile] = []
        self.tc_tokens: list[TcToken] = []
        self.ignored: list[IgnoredFile] = []

    def add(self, name: str, load: Loader) -> None:
        if name == CREDS_FILE:
            self.creds = _garbled_names(name, lambda: parse.creds(load()))
            return
        parsed = parse_file_name(name)
        if parsed is None:
            self.ignored.append(IgnoredFile(name, "not a Baileys auth-state file"))
            return
        category, key = parsed
        if category in NO_EQUIVALENT:
            self.ignored.append(IgnoredFile(name, NO_EQUIVALENT[category]))
            return
        try:
            reason = self._dispatch(name, category, key, load)
        except Garbled as error:
            # One damaged key file costs what it held (a contact's session, a pre-key, a
            # sender key: WhatsApp's retries set them up again), not the linked device.
            reason = f"{DAMAGED}: {error.what}; left out (WhatsApp sets up what it held again)"
        if reason is not None:
            self.ignored.append(IgnoredFile(name, reason))

    def _dispatch(self, name: str, category: str, key: str, load: Loader) -> str | None:
        """Reads the file into its list; returns why it was ignored, if it was."""
        if category == "pre-key":
            if not key.isdigit():
                return "the pre-key id is not a number"
            pair = parse.key_pair(load(), "pre-key")
            self.pre_keys.append(PreKey(name, int(key), pair))
        elif category in ("session", "identity-key"):
            if not SIGNAL_ADDRESS.match(key):
                return "the name is not a Signal address (<user>[_<domain>].<device>)"
            if category == "session":
                self.sessions.append(SessionFile(name, key, session_entries(load())))
            else:
                self.identity_keys.append(
                    IdentityKeyFile(name, key, to_bytes(load(), "identity key"))
                )
        elif category == "sender-key":
            return self._sender_key(name, key, load)
        elif category == "app-state-sync-key":
            try:
                key_id = b64decode(key.replace("__", "/"), "key id")
            except Garbled:
                return "the key id in the name is not base64"
            self.app_state_keys.append(parse.app_state_sync_key(name, key_id, load()))
        elif category == "app-state-sync-version":
            self.app_state_versions.append(parse.app_state_version(name, key, load()))
        elif category == "lid-mapping":
            return self._lid_mapping(name, key, load)
        else:  # tctoken
            return self._tc_token(name, key, load)
        return None

    def _sender_key(self, name: str, key: str, load: Loader) -> str | None:
        parts = key.rsplit("--", 2)
        if len(parts) != 3 or "@" not in parts[0] or not SENDER_NAME.match(parts[1]):
            return "the name is not <group>--<sender>--<device>"
        if not parts[2].isdigit():
            return "the sender device in the name is not a number"
        states = parse.sender_key_states(load())
        self.sender_keys.append(SenderKeyFile(name, parts[0], parts[1], int(parts[2]), states))
        return None

    def _lid_mapping(self, name: str, key: str, load: Loader) -> str | None:
        reverse = key.endswith("_reverse")
        user = key.removesuffix("_reverse")
        if not USER.match(user):
            return "the name is not lid-mapping-<user>[_reverse]"
        value = to_str(load(), "lid mapping")
        if not USER.match(value):
            raise Garbled("the lid mapping is not a bare user number")
        self.lid_mappings.append(LidMappingFile(name, user, value, reverse))
        return None

    def _tc_token(self, name: str, key: str, load: Loader) -> str | None:
        if key == TC_TOKEN_INDEX:
            return "the tctoken index Baileys keeps for pruning, not a token"
        match = TOKEN_JID.match(key.replace("-", ":"))
        if match is None:
            return "the name is not a user JID"
        server = "s.whatsapp.net" if match.group(2) == "c.us" else match.group(2)
        self.tc_tokens.append(parse.tc_token(name, f"{match.group(1)}@{server}", load()))
        return None

    def state(self, source: str, source_dir: Path | None) -> AuthState:
        if self.creds is None:
            raise Unconvertible(None, f"{source} has no {CREDS_FILE}: not linked")
        return AuthState(
            source=source,
            source_dir=source_dir,
            creds=self.creds,
            pre_keys=tuple(sorted(self.pre_keys, key=lambda k: k.key_id)),
            sessions=tuple(self.sessions),
            identity_keys=tuple(self.identity_keys),
            sender_keys=tuple(self.sender_keys),
            app_state_keys=tuple(self.app_state_keys),
            app_state_versions=tuple(self.app_state_versions),
            lid_mappings=tuple(self.lid_mappings),
            tc_tokens=tuple(self.tc_tokens),
            ignored=tuple(self.ignored),
        )


def _garbled_names(name: str, read: Callable[[], T]) -> T:
    try:
        return read()
    except Garbled as error:
        raise Unconvertible(name, error.what) from None


def _collect(source: str, files: list[tuple[str, Loader]]) -> _Collector:
    """creds.json first: without it nothing else matters."""
    if CREDS_FILE not in {name for name, _ in files}:
        raise Unconvertible(None, f"{source} has no {CREDS_FILE}: not linked")
    collector = _Collector()
    for name, load in sorted(files, key=lambda item: item[0] != CREDS_FILE):
        collector.add(name, load)
    return collector


def _json_file(path: Path) -> Loader:
    def load() -> Any:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise Garbled("is not UTF-8 text") from None
        except OSError as error:  # not damage: fix the permissions (or disk) and run again
            raise Unconvertible(path.name, f"cannot be read ({error.strerror})") from None
        try:
            return json.loads(text)
        except ValueError:
            raise Garbled("is not JSON") from None

    return load


def read_auth_dir(path: Path) -> AuthState:
    """The auth state in a ``useMultiFileAuthState`` folder (read only)."""
    source = f"folder {path}"
    if not path.is_dir():
        raise Unconvertible(None, f"{source} does not exist or is not a folder: not linked")
    files = sorted(p for p in path.iterdir() if p.is_file())
    return _collect(source, [(p.name, _json_file(p)) for p in files]).state(source, path)


def _sniffed(name: str, text: object) -> Loader:
    def load() -> Any:
        if isinstance(text, bytes):
            try:
                decoded = text.decode("utf-8")
            except UnicodeDecodeError:
                raise Garbled("is not UTF-8 text") from None
        elif isinstance(text, str):
            decoded = text
        else:
            raise Garbled(f"is a {type(text).__name__}, not text")
        try:
            return json.loads(decoded)
        except ValueError:
            pass
        try:
            return json.loads(base64.b64decode(decoded.strip(), validate=True).decode("utf-8"))
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise Garbled("is neither JSON text nor base64 of JSON text") from None

    return load


def read_backup_files(files: Mapping[str, str]) -> AuthState:
    """The auth state in the legacy ``wa_sessions/{id}`` document's ``files`` map.

    Each value is sniffed: JSON text is used as is, else base64 of JSON text, else the file is
    named in an ``Unconvertible``.
    """
    source = "the backup files"
    loaders = [(name, _sniffed(name, files[name])) for name in sorted(files)]
    return _collect(source, loaders).state(source, None)
