"""whatsmeow's rows as python-axolotl records: libsignal-go's Go JSON, renamed field by field.

Used by axolotl_probe.py, in its subprocess: python-axolotl's generated pb2 files need the
pure-Python protobuf backend (PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python). The renames
are pure (research §4.4 and §5): no key is derived here, so every semantic conversion
(counters, message keys, prefixes) stays the converter's. The JSON is read with Go's
``encoding/json`` rules (field names match exactly or case-insensitively, ``[]byte`` is
standard padded base64, ``null`` is nil), except that an unknown field is an error here: Go
would silently drop it.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from axolotl.groups.state.senderkeyrecord import SenderKeyRecord
from axolotl.state import storageprotos_pb2 as pb
from axolotl.state.sessionrecord import SessionRecord


class AdapterError(Exception):
    """A whatsmeow row that the rename adapter cannot map faithfully."""


class UntrustedIdentity(Exception):
    """libsignal-go's ErrUntrustedIdentity."""


# --- Go encoding/json, the way libsignal-go's JSON serializers decode ----------------


def go_bytes(value: object, where: str) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise AdapterError(f"{where}: []byte must be a base64 string, got {type(value).__name__}")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as err:
        raise AdapterError(f"{where}: not standard base64 ({err})") from None


def go_uint(value: object, where: str, bits: int = 32) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**bits:
        raise AdapterError(f"{where}: uint{bits} expected, got {value!r}")
    return value


def go_int(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise AdapterError(f"{where}: int expected, got {value!r}")
    return value


def go_bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise AdapterError(f"{where}: bool expected, got {value!r}")
    return value


def go_struct(value: object, names: tuple[str, ...], where: str) -> dict[str, Any] | None:
    """Go's field matching: exact name first, else case-insensitive; absent is the zero value."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise AdapterError(f"{where}: object expected, got {type(value).__name__}")
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = key if key in names else next((n for n in names if n.lower() == key.lower()), None)
        if name is None:
            raise AdapterError(f"{where}: unknown field {key!r} (libsignal-go would drop it)")
        if name in out:
            raise AdapterError(f"{where}: field {name} given twice")
        out[name] = item
    return out


def go_list(value: object, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise AdapterError(f"{where}: array expected")
    return value


# --- whatsmeow_sessions.session (record.SessionStructure) -> RecordStructure --------

STATE = (
    "LocalIdentityPublic",
    "LocalRegistrationID",
    "NeedsRefresh",
    "PendingKeyExchange",
    "PendingPreKey",
    "PreviousCounter",
    "ReceiverChains",
    "RemoteIdentityPublic",
    "RemoteRegistrationID",
    "RootKey",
    "SenderBaseKey",
    "SenderChain",
    "SessionVersion",
)
CHAIN = ("SenderRatchetKeyPublic", "SenderRatchetKeyPrivate", "ChainKey", "MessageKeys")


def is_point(key: bytes | None) -> bool:
    """What ecc.DecodePoint(key, 0) accepts without an error or a panic."""
    return bool(key) and key is not None and key[0] == 5


def chain_to_pb(value: object, out: Any, where: str, problems: list[str]) -> None:
    c = go_struct(value, CHAIN, where)
    if c is None:
        problems.append(f"{where} is null: NewChainFromStructure dereferences it (panic)")
        return
    public = go_bytes(c.get("SenderRatchetKeyPublic"), f"{where}.SenderRatchetKeyPublic")
    if not is_point(public):
        problems.append(
            f"{where}.SenderRatchetKeyPublic is not a 0x05 point: DecodePoint fails or panics"
        )
    if public is not None:
        out.senderRatchetKey = public
    private = go_bytes(c.get("SenderRatchetKeyPrivate"), f"{where}.SenderRatchetKeyPrivate")
    if private is not None:
        out.senderRatchetKeyPrivate = private
    chain_key = go_struct(c.get("ChainKey"), ("Key", "Index"), f"{where}.ChainKey")
    if chain_key is None:
        problems.append(f"{where}.ChainKey is null: chain.NewKeyFromStruct dereferences it (panic)")
    else:
        key = go_bytes(chain_key.get("Key"), f"{where}.ChainKey.Key")
        if key is None or len(key) != 32:
            problems.append(f"{where}.ChainKey.Key is not 32 bytes")
        if key is not None:
            out.chainKey.key = key
        out.chainKey.index = go_uint(chain_key.get("Index", 0), f"{where}.ChainKey.Index")
    for i, item in enumerate(go_list(c.get("MessageKeys"), f"{where}.MessageKeys")):
        at = f"{where}.MessageKeys[{i}]"
        mk = go_struct(item, ("CipherKey", "MacKey", "IV", "Index"), at)
        if mk is None:
            problems.append(f"{at} is null (panic)")
            continue
        keys = out.messageKeys.add()
        keys.index = go_uint(mk.get("Index", 0), f"{at}.Index")
        for go_name, pb_name in (("CipherKey", "cipherKey"), ("MacKey", "macKey"), ("IV", "iv")):
            raw = go_bytes(mk.get(go_name), f"{at}.{go_name}")
            if raw is not None:
                setattr(keys, pb_name, raw)


def state_to_pb(value: object, where: str, problems: list[str]) -> Any:
    s = go_struct(value, STATE, where)
    if s is None:
        problems.append(f"{where} is null: NewStateFromStructure dereferences it (panic)")
        return pb.SessionStructure()
    out = pb.SessionStructure()
    out.sessionVersion = go_int(s.get("SessionVersion", 0), f"{where}.SessionVersion")
    for go_name, pb_name in (
        ("LocalIdentityPublic", "localIdentityPublic"),
        ("RemoteIdentityPublic", "remoteIdentityPublic"),
        ("SenderBaseKey", "aliceBaseKey"),
    ):
        raw = go_bytes(s.get(go_name), f"{where}.{go_name}")
        if not is_point(raw):
            problems.append(f"{where}.{go_name} is not a 0x05 point: DecodePoint fails or panics")
        if raw is not None:
            setattr(out, pb_name, raw)
    root = go_bytes(s.get("RootKey"), f"{where}.RootKey")
    if root is None or len(root) != 32:
        problems.append(f"{where}.RootKey is not 32 bytes")
    if root is not None:
        out.rootKey = root
    out.previousCounter = go_uint(s.get("PreviousCounter", 0), f"{where}.PreviousCounter")
    out.localRegistrationId = go_uint(
        s.get("LocalRegistrationID", 0), f"{where}.LocalRegistrationID"
    )
    out.remoteRegistrationId = go_uint(
        s.get("RemoteRegistrationID", 0), f"{where}.RemoteRegistrationID"
    )
    out.needsRefresh = go_bool(s.get("NeedsRefresh", False), f"{where}.NeedsRefresh")
    if s.get("PendingKeyExchange") is not None:
        raise AdapterError(f"{where}.PendingKeyExchange: Baileys has no key exchange to migrate")
    chain_to_pb(s.get("SenderChain"), out.senderChain, f"{where}.SenderChain", problems)
    for i, item in enumerate(go_list(s.get("ReceiverChains"), f"{where}.ReceiverChains")):
        chain_to_pb(item, out.receiverChains.add(), f"{where}.ReceiverChains[{i}]", problems)
    pending = go_struct(
        s.get("PendingPreKey"), ("PreKeyID", "SignedPreKeyID", "BaseKey"), f"{where}.PendingPreKey"
    )
    if pending is not None:
        pre_key = go_struct(
            pending.get("PreKeyID"), ("Value", "IsEmpty"), f"{where}.PendingPreKey.PreKeyID"
        )
        if pre_key is not None and not go_bool(pre_key.get("IsEmpty", False), "PreKeyID.IsEmpty"):
            out.pendingPreKey.preKeyId = go_uint(pre_key.get("Value", 0), "PreKeyID.Value")
        out.pendingPreKey.signedPreKeyId = go_uint(
            pending.get("SignedPreKeyID", 0), f"{where}.PendingPreKey.SignedPreKeyID"
        )
        base = go_bytes(pending.get("BaseKey"), f"{where}.PendingPreKey.BaseKey")
        if not is_point(base):
            problems.append(f"{where}.PendingPreKey.BaseKey is not a 0x05 point")
        if base is not None:
            out.pendingPreKey.baseKey = base
    return out


def session_record(raw: bytes, where: str, problems: list[str]) -> SessionRecord:
    try:
        doc = json.loads(raw)
    except ValueError as err:
        raise AdapterError(f"{where}: not JSON ({err})") from None
    top = go_struct(doc, ("SessionState", "PreviousStates"), where)
    if top is None:
        raise AdapterError(f"{where}: null record")
    record = pb.RecordStructure()
    record.currentSession.CopyFrom(
        state_to_pb(top.get("SessionState"), f"{where}.SessionState", problems)
    )
    for i, item in enumerate(go_list(top.get("PreviousStates"), f"{where}.PreviousStates")):
        record.previousSessions.add().CopyFrom(
            state_to_pb(item, f"{where}.PreviousStates[{i}]", problems)
        )
    return SessionRecord(serialized=record.SerializeToString())


# --- whatsmeow_sender_keys.sender_key (record.SenderKeyStructure) -------------------

SENDER_STATE = ("Keys", "KeyID", "SenderChainKey", "SigningKeyPrivate", "SigningKeyPublic")


def sender_key_record(raw: bytes, where: str, problems: list[str]) -> tuple[SenderKeyRecord, Any]:
    try:
        doc = json.loads(raw)
    except ValueError as err:
        raise AdapterError(f"{where}: not JSON ({err})") from None
    top = go_struct(doc, ("SenderKeyStates",), where)
    if top is None:
        raise AdapterError(f"{where}: null record")
    record = pb.SenderKeyRecordStructure()
    for i, item in enumerate(go_list(top.get("SenderKeyStates"), f"{where}.SenderKeyStates")):
        at = f"{where}.SenderKeyStates[{i}]"
        st = go_struct(item, SENDER_STATE, at)
        if st is None:
            problems.append(f"{at} is null (panic)")
            continue
        out = record.senderKeyStates.add()
        out.senderKeyId = go_uint(st.get("KeyID", 0), f"{at}.KeyID")
        chain = go_struct(
            st.get("SenderChainKey"), ("Iteration", "ChainKey"), f"{at}.SenderChainKey"
        )
        if chain is None:
            problems.append(f"{at}.SenderChainKey is null: NewSenderChainKeyFromStruct panics")
        else:
            out.senderChainKey.iteration = go_uint(chain.get("Iteration", 0), f"{at}.Iteration")
            seed = go_bytes(chain.get("ChainKey"), f"{at}.SenderChainKey.ChainKey")
            if seed is None or len(seed) != 32:
                problems.append(f"{at}.SenderChainKey.ChainKey is not 32 bytes")
            out.senderChainKey.seed = seed or b""
        public = go_bytes(st.get("SigningKeyPublic"), f"{at}.SigningKeyPublic")
        if not is_point(public):
            problems.append(
                f"{at}.SigningKeyPublic is not a 0x05 point: DecodePoint fails or panics"
            )
        out.senderSigningKey.public = public or b""
        private = go_bytes(st.get("SigningKeyPrivate"), f"{at}.SigningKeyPrivate")
        if private:
            out.senderSigningKey.private = private
        for j, key in enumerate(go_list(st.get("Keys"), f"{at}.Keys")):
            mk = go_struct(key, ("Iteration", "IV", "CipherKey", "Seed"), f"{at}.Keys[{j}]")
            if mk is None:
                problems.append(f"{at}.Keys[{j}] is null (panic)")
                continue
            smk = out.senderMessageKeys.add()
            smk.iteration = go_uint(mk.get("Iteration", 0), f"{at}.Keys[{j}].Iteration")
            smk.seed = go_bytes(mk.get("Seed"), f"{at}.Keys[{j}].Seed") or b""
    return SenderKeyRecord(serialized=record.SerializeToString()), doc


# --- an in-memory axolotl store built from the whatsmeow rows -----------------------
