"""Decrypts the kept Baileys ciphertexts with python-axolotl, from a converted whatsmeow store.

Run in a subprocess (python-axolotl's generated pb2 files need the pure-Python protobuf
backend, which is process-wide):

    PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python python axolotl_probe.py STORE.db EXPECTED.json ...

It reads only the SQLite file (whatsmeow's v15 schema) and the kept ciphertexts of
expected.json, and prints one JSON object per pair on stdout. It compares nothing
itself: the test does.

The adapters from whatsmeow's rows to python-axolotl's records are pure field renames
(libsignal-go's Go JSON field names, research §4.4 and §5): no key is derived here, so
every semantic conversion (counters, message keys, prefixes) stays the converter's.
The JSON is read with Go's ``encoding/json`` rules (field names match exactly or
case-insensitively, ``[]byte`` is standard padded base64, ``null`` is nil), except that
an unknown field is an error here: Go would silently drop it.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import sqlite3
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

if os.environ.get("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION") != "python":
    sys.exit("axolotl_probe.py needs PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python")

from axolotl.axolotladdress import AxolotlAddress
from axolotl.ecc.djbec import DjbECPrivateKey, DjbECPublicKey
from axolotl.ecc.eckeypair import ECKeyPair
from axolotl.groups.groupcipher import GroupCipher
from axolotl.groups.senderkeyname import SenderKeyName
from axolotl.groups.state.senderkeyrecord import SenderKeyRecord
from axolotl.identitykey import IdentityKey
from axolotl.identitykeypair import IdentityKeyPair
from axolotl.invalidkeyidexception import InvalidKeyIdException
from axolotl.protocol.prekeywhispermessage import PreKeyWhisperMessage
from axolotl.protocol.senderkeymessage import SenderKeyMessage
from axolotl.protocol.whispermessage import WhisperMessage
from axolotl.sessioncipher import AESCipher, SessionCipher
from axolotl.state import storageprotos_pb2 as pb
from axolotl.state.prekeyrecord import PreKeyRecord
from axolotl.state.sessionrecord import SessionRecord
from axolotl.state.signedprekeyrecord import SignedPreKeyRecord
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey


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


def split_address(their_id: str) -> tuple[str, int]:
    """whatsmeow's SignalAddress.String() is name:device; name has no ':'."""
    name, sep, device = their_id.rpartition(":")
    if not sep or not device.isdigit():
        raise AdapterError(f"their_id {their_id!r} is not name:device")
    return name, int(device)


class Store:
    def __init__(
        self, db: sqlite3.Connection, our_jid: str, problems: dict[str, list[str]]
    ) -> None:
        device = db.execute(
            "SELECT registration_id, identity_key, signed_pre_key, signed_pre_key_id,"
            " signed_pre_key_sig FROM whatsmeow_device WHERE jid = ?",
            (our_jid,),
        ).fetchone()
        registration_id, identity_private, spk_private, spk_id, spk_sig = device
        self.registration_id = int(registration_id)
        self.identity = IdentityKeyPair(
            IdentityKey(DjbECPublicKey(public_of(identity_private))),
            DjbECPrivateKey(bytes(identity_private)),
        )
        self.signed_pre_key = SignedPreKeyRecord(
            int(spk_id), 0, key_pair(bytes(spk_private)), bytes(spk_sig)
        )
        self.pre_keys = {
            int(key_id): PreKeyRecord(int(key_id), key_pair(bytes(key)))
            for key_id, key in db.execute(
                "SELECT key_id, key FROM whatsmeow_pre_keys WHERE jid = ?", (our_jid,)
            )
        }
        self.identities = {
            their_id: bytes(identity)
            for their_id, identity in db.execute(
                "SELECT their_id, identity FROM whatsmeow_identity_keys WHERE our_jid = ?",
                (our_jid,),
            )
        }
        self.sessions: dict[tuple[str, int], SessionRecord] = {}
        for their_id, raw in db.execute(
            "SELECT their_id, session FROM whatsmeow_sessions WHERE our_jid = ?", (our_jid,)
        ):
            where = f"whatsmeow_sessions[{their_id}]"
            found = problems.setdefault(where, [])
            try:
                self.sessions[split_address(their_id)] = session_record(bytes(raw), where, found)
            except AdapterError as err:
                found.append(f"adapter: {err}")
        self.sender_keys: dict[tuple[str, str], tuple[SenderKeyRecord, Any]] = {}
        for chat_id, sender_id, raw in db.execute(
            "SELECT chat_id, sender_id, sender_key FROM whatsmeow_sender_keys WHERE our_jid = ?",
            (our_jid,),
        ):
            where = f"whatsmeow_sender_keys[{chat_id}, {sender_id}]"
            found = problems.setdefault(where, [])
            try:
                self.sender_keys[(chat_id, sender_id)] = sender_key_record(bytes(raw), where, found)
            except AdapterError as err:
                found.append(f"adapter: {err}")
        self.untrusted: list[str] = []

    # IdentityKeyStore: whatsmeow's IsTrustedIdentity (store.go): unknown is trusted,
    # a known key must be equal. python-axolotl passes the name only; whatsmeow keys by
    # name:device, so the probe binds the device before each decryption.
    device_id = 0

    def getIdentityKeyPair(self) -> IdentityKeyPair:
        return self.identity

    def getLocalRegistrationId(self) -> int:
        return self.registration_id

    def saveIdentity(self, recipientId: str, identityKey: IdentityKey) -> None:
        self.identities[f"{recipientId}:{self.device_id}"] = (
            identityKey.getPublicKey().getPublicKey()
        )

    def isTrustedIdentity(self, recipientId: str, identityKey: IdentityKey) -> bool:
        known = self.identities.get(f"{recipientId}:{self.device_id}")
        if known is None or known == identityKey.getPublicKey().getPublicKey():
            return True
        self.untrusted.append(f"{recipientId}:{self.device_id}")
        return False

    # SessionStore
    def loadSession(self, recipientId: str, deviceId: int) -> SessionRecord:
        return self.sessions.get((recipientId, deviceId)) or SessionRecord()

    def storeSession(self, recipientId: str, deviceId: int, record: SessionRecord) -> None:
        self.sessions[(recipientId, deviceId)] = record

    def containsSession(self, recipientId: str, deviceId: int) -> bool:
        return (recipientId, deviceId) in self.sessions

    # PreKeyStore
    def loadPreKey(self, preKeyId: int) -> PreKeyRecord:
        if preKeyId not in self.pre_keys:
            raise InvalidKeyIdException(f"no pre-key {preKeyId} in whatsmeow_pre_keys")
        return self.pre_keys[preKeyId]

    def removePreKey(self, preKeyId: int) -> None:
        self.pre_keys.pop(preKeyId, None)

    def containsPreKey(self, preKeyId: int) -> bool:
        return preKeyId in self.pre_keys

    # SignedPreKeyStore: whatsmeow keeps one and returns it only for its own id
    def loadSignedPreKey(self, signedPreKeyId: int) -> SignedPreKeyRecord:
        if signedPreKeyId != self.signed_pre_key.getId():
            raise InvalidKeyIdException(
                f"signed pre-key {signedPreKeyId} asked,"
                f" whatsmeow_device has {self.signed_pre_key.getId()}"
            )
        return self.signed_pre_key

    # SenderKeyStore
    def loadSenderKey(self, name: SenderKeyName) -> SenderKeyRecord:
        sender = name.getSender()
        found = self.sender_keys.get(
            (name.getGroupId(), f"{sender.getName()}:{sender.getDeviceId()}")
        )
        return found[0] if found else SenderKeyRecord()

    def storeSenderKey(self, name: SenderKeyName, record: SenderKeyRecord) -> None:
        sender = name.getSender()
        key = (name.getGroupId(), f"{sender.getName()}:{sender.getDeviceId()}")
        self.sender_keys[key] = (record, self.sender_keys.get(key, (None, None))[1])


def public_of(private: bytes) -> bytes:
    """X25519 base-point multiplication: what whatsmeow's scanDevice does to every private key."""
    return X25519PrivateKey.from_private_bytes(bytes(private)).public_key().public_bytes_raw()


def key_pair(private: bytes) -> ECKeyPair:
    return ECKeyPair(DjbECPublicKey(public_of(private)), DjbECPrivateKey(private))


# --- the decryptions ----------------------------------------------------------------


def describe(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}"
    nested: tuple[object, ...] = err.args
    if len(nested) > 1 and isinstance(nested[1], list):  # python-axolotl's "No valid sessions"
        text += " [" + "; ".join(f"{type(e).__name__}: {e}" for e in nested[1]) + "]"
    return text


def decrypt_signal(store: Store, message: dict[str, Any]) -> bytes:
    name, device = split_address(message["their_id"])
    store.device_id = device
    cipher = SessionCipher(store, store, store, store, name, device)
    raw = base64.b64decode(message["ciphertext"])
    if message["type"] == "pkmsg":
        return bytes(cipher.decryptPkmsg(PreKeyWhisperMessage(serialized=raw)))
    if message["type"] != "msg":
        raise AdapterError(f"unknown message type {message['type']!r}")
    plaintext = bytes(cipher.decryptMsg(WhisperMessage(serialized=raw)))
    # libsignal-go's DecryptAndGetKey checks the identity after decrypting (python-axolotl
    # only does it for pre-key messages): whatsmeow would reject an identity it knows
    # differently.
    remote = store.loadSession(name, device).getSessionState().getRemoteIdentityKey()
    if not store.isTrustedIdentity(name, remote):
        raise UntrustedIdentity(
            f"{message['their_id']}: identity differs from whatsmeow_identity_keys"
        )
    return plaintext


def decrypt_group(store: Store, message: dict[str, Any]) -> tuple[bytes, bytes | None]:
    """The plaintext by GroupCipher, and by the stored IV/CipherKey when the row has that key.

    whatsmeow decrypts a skipped iteration with the IV and CipherKey stored in the row
    (NewSenderMessageKeyFromStruct), python-axolotl re-derives them from Seed; the
    second decryption checks the stored pair as well.
    """
    name, device = split_address(message["sender_id"])
    raw = base64.b64decode(message["ciphertext"])
    parsed = SenderKeyMessage(serialized=raw)
    stored_plaintext = None
    found = store.sender_keys.get((message["group"], message["sender_id"]))
    if found is not None:
        for state in found[1].get("SenderKeyStates") or []:
            if state.get("KeyID") != parsed.getKeyId():
                continue
            for key in state.get("Keys") or []:
                if key.get("Iteration") == parsed.getIteration():
                    iv = go_bytes(key.get("IV"), "Keys.IV") or b""
                    cipher_key = go_bytes(key.get("CipherKey"), "Keys.CipherKey") or b""
                    try:
                        cipher = AESCipher(cipher_key, iv)
                        stored_plaintext = bytes(cipher.decrypt(parsed.getCipherText()))
                    except ValueError:  # a wrong key or IV: bad padding, or a bad key size
                        stored_plaintext = b""
    group_name = SenderKeyName(message["group"], AxolotlAddress(name, device))
    plaintext = GroupCipher(store, group_name).decrypt(raw)
    return bytes(plaintext), stored_plaintext


def pending_state(store: Store, item: dict[str, Any]) -> dict[str, Any]:
    """The pending pre-key of a session B opened and never got an answer on."""
    name, device = split_address(item["their_id"])
    record = store.sessions.get((name, device))
    sent = PreKeyWhisperMessage(serialized=base64.b64decode(item["pkmsg"]))
    out: dict[str, Any] = {
        "their_id": item["their_id"],
        "sent": {
            "pre_key_id": sent.getPreKeyId(),
            "signed_pre_key_id": sent.getSignedPreKeyId(),
            "base_key": b64(sent.getBaseKey().serialize()),
        },
        "stored": None,
    }
    if record is None:
        return out
    state = record.getSessionState()
    if state.hasUnacknowledgedPreKeyMessage():
        items = state.getUnacknowledgedPreKeyMessageItems()
        out["stored"] = {
            "pre_key_id": items.getPreKeyId(),
            "signed_pre_key_id": items.getSignedPreKeyId(),
            "base_key": b64(items.getBaseKey().serialize()),
            "alice_base_key": b64(state.getAliceBaseKey()),
        }
    else:
        out["stored"] = {}
    return out


def b64(raw: bytes) -> str:
    return base64.b64encode(bytes(raw)).decode()


def attempt(run: Callable[..., Any], *args: Any) -> tuple[Any, str | None]:
    try:
        return run(*args), None
    except Exception as err:
        return None, describe(err)


def main(db_path: Path, expected_path: Path) -> dict[str, Any]:
    expected = json.loads(expected_path.read_text())
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    jids = [row[0] for row in db.execute("SELECT jid FROM whatsmeow_device")]
    if len(jids) != 1:
        return {"fatal": f"whatsmeow_device holds {len(jids)} rows, expected 1"}
    our_jid = jids[0]
    problems: dict[str, list[str]] = {}
    try:
        store = Store(db, our_jid, problems)
    except AdapterError as err:
        return {"fatal": f"adapter: {err}"}
    sessions = {}
    for (name, device), record in sorted(store.sessions.items()):
        state = record.getSessionState().getStructure()  # (getRemoteRegistrationId is broken)
        sessions[f"{name}:{device}"] = {
            "session_version": state.sessionVersion,
            "local_registration_id": state.localRegistrationId,
            "remote_registration_id": state.remoteRegistrationId,
            "previous_states": len(record.getPreviousSessionStates()),
        }
    # each message on a freshly loaded store: a decryption moves the ratchets in memory,
    # and every proof must stand on the rows as the converter wrote them
    untrusted: list[str] = []

    def fresh() -> Store:
        loaded = Store(db, our_jid, {})
        loaded.untrusted = untrusted
        return loaded

    messages = []
    for message in expected["messages"]:
        entry: dict[str, Any] = {"label": message["label"], "type": message["type"]}
        if message["type"] == "skmsg":
            result, error = attempt(decrypt_group, fresh(), message)
            if result is not None:
                entry["plaintext"] = b64(result[0])
                entry["stored_key_plaintext"] = None if result[1] is None else b64(result[1])
        else:
            result, error = attempt(decrypt_signal, fresh(), message)
            if result is not None:
                entry["plaintext"] = b64(result)
        entry["error"] = error
        messages.append(entry)
    pending = []
    for item in expected.get("pending", []):
        result, error = attempt(pending_state, store, item)
        pending.append(result if error is None else {"their_id": item["their_id"], "error": error})
    return {
        "our_jid": our_jid,
        "registration_id": store.registration_id,
        "sessions": sessions,
        "messages": messages,
        "pending": pending,
        "untrusted": untrusted,
        "load_problems": {where: found for where, found in problems.items() if found},
    }


if __name__ == "__main__":
    pairs = sys.argv[1:]
    if not pairs or len(pairs) % 2:
        sys.exit("usage: axolotl_probe.py STORE.db EXPECTED.json [STORE.db EXPECTED.json ...]")
    for store_path, expected_path in zip(pairs[::2], pairs[1::2], strict=True):
        try:
            result = main(Path(store_path), Path(expected_path))
        except Exception:
            result = {"fatal": traceback.format_exc()}
        sys.stdout.write(json.dumps(result) + "\n")
