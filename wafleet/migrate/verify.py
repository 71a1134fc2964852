"""Checking a converted store offline, independently of the conversion's own code paths.

- neonize loads it (whatsmeow's own loader, in a child: ``neonize_probe``): exactly one device,
  with the JID of ``creds.me.id``, the push name chosen, and initialized;
- the device's private keys give the public keys Baileys registered (X25519, which is what
  whatsmeow's ``scanDevice`` applies to them), and every pre-key gives its public key;
- the signatures verify (XEdDSA): the signed pre-key's by the identity key, the account
  signature by the account key (``[6,0]`` or, hosted, ``[6,5]`` ‖ details ‖ identity), the device
  signature by the identity key (``[6,1]`` ‖ details ‖ identity ‖ account key);
- every session and sender-key row passes the libsignal-go structural check.

Several stores are checked with one child (``verify_many``): the child costs most of the time.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from wafleet.migrate import xeddsa
from wafleet.migrate.baileys_model import AuthState
from wafleet.migrate.device import public_of, push_name_for
from wafleet.migrate.errors import Unconvertible
from wafleet.migrate.jids import PN_SERVER, BadJid, parse_jid
from wafleet.migrate.neonize_probe import ProbeResult, probe
from wafleet.migrate.signal_convert import strip05
from wafleet.migrate.signal_validate import InvalidStructure, validate_sender_key, validate_session

ACCOUNT_SIG_PREFIX = bytes([6, 0])
HOSTED_ACCOUNT_SIG_PREFIX = bytes([6, 5])
DEVICE_SIG_PREFIX = bytes([6, 1])
HOSTED = 1  # ADVEncryptionType.HOSTED
DEVICE_TYPE_FIELD = 5  # ADVDeviceIdentity.deviceType


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class Expected:
    target: Path
    state: AuthState
    push_name: str | None = None


@dataclass(frozen=True)
class Verification:
    target: Path
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data):
            raise ValueError("truncated varint")
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return value, at


def varint_fields(data: bytes) -> dict[int, int]:
    """The varint fields of a protobuf message (enough to read ADVDeviceIdentity)."""
    fields: dict[int, int] = {}
    at = 0
    while at < len(data):
        tag, at = _varint(data, at)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            fields[number], at = _varint(data, at)
        elif wire == 2:
            size, at = _varint(data, at)
            at += size
        elif wire in (1, 5):
            at += 8 if wire == 1 else 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
    return fields


def _device_checks(db: sqlite3.Connection, state: AuthState) -> list[Check]:
    row = db.execute(
        "SELECT noise_key, identity_key, signed_pre_key, signed_pre_key_sig, adv_details,"
        " adv_account_sig, adv_account_sig_key, adv_device_sig FROM whatsmeow_device"
    ).fetchone()
    if row is None:
        return [Check("device row", False, "the store has no device row")]
    noise, identity, spk, spk_sig, details, account_sig, account_key, device_sig = row
    creds = state.creds
    expected = {
        "noise key": (noise, creds.noise_key.public),
        "identity key": (identity, creds.signed_identity_key.public),
        "signed pre-key": (spk, creds.signed_pre_key.key_pair.public),
    }
    checks = [
        Check(name, len(priv) == 32 and public_of(priv) == strip05(pub), "X25519 public")
        for name, (priv, pub) in expected.items()
    ]
    identity_pub = public_of(identity) if len(identity) == 32 else b""
    spk_pub = public_of(spk) if len(spk) == 32 else b""
    try:
        hosted = varint_fields(details).get(DEVICE_TYPE_FIELD) == HOSTED
    except ValueError:
        hosted = False
    prefix = HOSTED_ACCOUNT_SIG_PREFIX if hosted else ACCOUNT_SIG_PREFIX
    signatures = {
        "signed pre-key signature": (identity_pub, b"\x05" + spk_pub, spk_sig),
        "account signature": (account_key, prefix + details + identity_pub, account_sig),
        "device signature": (
            identity_pub,
            DEVICE_SIG_PREFIX + details + identity_pub + account_key,
            device_sig,
        ),
    }
    checks += [
        Check(name, xeddsa.verify(key, message, sig), "XEdDSA")
        for name, (key, message, sig) in signatures.items()
    ]
    return checks


def _row_checks(db: sqlite3.Connection, state: AuthState) -> list[Check]:
    publics = {p.key_id: strip05(p.pair.public) for p in state.pre_keys}
    bad = [
        key_id
        for key_id, key in db.execute("SELECT key_id, key FROM whatsmeow_pre_keys")
        if publics.get(key_id) != public_of(key)
    ]
    checks = [Check("pre-keys", not bad, f"ids not matching Baileys: {bad[:5]}" if bad else "")]
    for table, column, validate in (
        ("whatsmeow_sessions", "session", validate_session),
        ("whatsmeow_sender_keys", "sender_key", validate_sender_key),
    ):
        problems = []
        for (value,) in db.execute(f"SELECT {column} FROM {table}"):  # noqa: S608 - constants
            try:
                validate(value)
            except InvalidStructure as error:
                problems.append(str(error))
        checks.append(Check(f"{table} rows load", not problems, "; ".join(problems[:3])))
    return checks


def _neonize_checks(result: ProbeResult, state: AuthState, push_name: str | None) -> list[Check]:
    if result.error is not None:
        return [Check("neonize loads the store", False, result.error)]
    if len(result.devices) != 1:
        return [Check("neonize loads one device", False, f"{len(result.devices)} devices")]
    (device,) = result.devices
    checks = [Check("neonize loads one device", True), Check("initialized", device.initialized)]
    try:
        me_id = state.creds.me.id if state.creds.me else ""
        jid = str(parse_jid(me_id, server=PN_SERVER))
        checks.append(Check("jid", device.jid == jid, "as creds.me.id"))
    except BadJid as error:
        checks.append(Check("jid", False, f"creds me.id {error}"))
    try:
        name = push_name_for(state.creds, push_name)
        checks.append(Check("push name", device.push_name == name))
    except Unconvertible as error:
        checks.append(Check("push name", False, error.what))
    return checks


def verify_many(items: Sequence[Expected]) -> list[Verification]:
    """Each target checked against its auth state; neonize runs once for all of them."""
    results = probe([item.target for item in items]) if items else []
    out = []
    for item, result in zip(items, results, strict=True):
        checks = _neonize_checks(result, item.state, item.push_name)
        uri = item.target.resolve().as_uri() + "?mode=ro"
        try:
            with closing(sqlite3.connect(uri, uri=True)) as db:
                checks += _device_checks(db, item.state) + _row_checks(db, item.state)
        except sqlite3.DatabaseError as error:
            checks.append(Check("store readable", False, str(error)))
        out.append(Verification(item.target, tuple(checks)))
    return out


def verify(target: Path, state: AuthState, *, push_name: str | None = None) -> Verification:
    return verify_many([Expected(target, state, push_name)])[0]
