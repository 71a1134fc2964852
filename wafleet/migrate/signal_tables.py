"""Sessions, identity keys and sender keys → whatsmeow rows, with their report parts.

**Identity keys.** whatsmeow refuses to encrypt or decrypt when the identity it stores for an
address differs from the one in the session (``IsTrustedIdentity``), so the session decides:
the row for an address with a converted session is the current state's remote identity key.
An ``identity-key-*`` file (Baileys rc13+) that disagrees is noted and overridden; one without
a session is kept as it is. The primary device's own identity (``signalIdentities``) is added
the same way. An address with no row is trusted on first use by whatsmeow, so nothing is lost
where Baileys had no identity file (before rc13).
"""

from __future__ import annotations

from wafleet.migrate.baileys_model import AuthState
from wafleet.migrate.errors import Garbled, Unconvertible
from wafleet.migrate.jids import whatsmeow_address
from wafleet.migrate.report import IDENTITY_KEYS, SENDER_KEYS, SESSIONS, PartReport, Skip
from wafleet.migrate.signal_convert import (
    ConvertedSession,
    LocalIdentity,
    Skipped,
    convert_sender_key,
    convert_session,
    strip05,
)
from wafleet.migrate.whatsmeow_store import IdentityRow, SenderKeyRow, SessionRow


def session_rows(
    state: AuthState, local: LocalIdentity
) -> tuple[list[ConvertedSession], PartReport]:
    converted: list[ConvertedSession] = []
    skipped: list[Skip] = []
    notes: list[str] = []
    for file in state.sessions:
        try:
            session = convert_session(file, local)
        except Skipped as skip:
            skipped.append(Skip(file.file, skip.reason))
            continue
        except Garbled as error:
            raise Unconvertible(file.file, error.what) from None
        converted.append(session)
        notes.extend(f"{file.file}: {note}" for note in session.notes)
    return converted, PartReport(SESSIONS, len(converted), tuple(skipped), tuple(notes))


def identity_rows(
    state: AuthState, sessions: list[ConvertedSession], own: list[IdentityRow]
) -> tuple[list[IdentityRow], PartReport]:
    keys: dict[str, bytes] = {}
    origin: dict[str, str] = {}
    for file in state.identity_keys:
        key = strip05(file.key)
        if len(key) != 32:
            raise Unconvertible(file.file, f"the identity key is {len(file.key)} bytes, not 33")
        address = whatsmeow_address(file.address)
        keys[address], origin[address] = key, file.file
    for row in own:
        keys[row.their_id], origin[row.their_id] = row.identity, "creds.json signalIdentities"
    notes = []
    for session in sessions:
        known = keys.get(session.address)
        if known is not None and known != session.remote_identity:
            notes.append(
                f"{origin[session.address]} differs from the session's identity key for "
                f"{session.address}; the session's is kept (whatsmeow checks one against the other)"
            )
        keys[session.address] = session.remote_identity
    rows = [IdentityRow(address, key) for address, key in sorted(keys.items())]
    return rows, PartReport(IDENTITY_KEYS, len(rows), (), tuple(notes))


def sender_key_rows(state: AuthState) -> tuple[list[SenderKeyRow], PartReport]:
    rows: list[SenderKeyRow] = []
    skipped: list[Skip] = []
    for file in state.sender_keys:
        try:
            data = convert_sender_key(file)
        except Skipped as skip:
            skipped.append(Skip(file.file, skip.reason))
            continue
        except Garbled as error:
            raise Unconvertible(file.file, error.what) from None
        rows.append(SenderKeyRow(file.group, f"{file.sender}:{file.device}", data))
    return rows, PartReport(SENDER_KEYS, len(rows), tuple(skipped))


def session_table(sessions: list[ConvertedSession]) -> list[SessionRow]:
    return [SessionRow(s.address, s.session) for s in sessions]
