"""Decrypts the kept Baileys ciphertexts with python-axolotl, from a converted whatsmeow store.

Run in a subprocess (python-axolotl's generated pb2 files need the pure-Python protobuf
backend, which is process-wide):

    PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python python axolotl_probe.py STORE.db EXPECTED.json ...

It reads only the SQLite file (whatsmeow's v15 schema) and the kept ciphertexts of
expected.json, and prints one JSON object per pair on stdout. It compares nothing
itself: the test does.

The adapters from whatsmeow's rows to python-axolotl's records (axolotl_adapter.py, beside
this script) are pure field renames
(libsignal-go's Go JSON field names, research §4.4 and §5): no key is derived here, so
every semantic conversion (counters, message keys, prefixes) stays the converter's.
The JSON is read with Go's ``encoding/json`` rules (field names match exactly or
case-insensitively, ``[]byte`` is standard padded base64, ``null`` is nil), except that
an unknown field is an error here: Go would silently drop it.
"""

from __future__ import annotations

import base64
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
from axolotl.state.prekeyrecord import PreKeyRecord
from axolotl.state.sessionrecord import SessionRecord
from axolotl.state.signedprekeyrecord import SignedPreKeyRecord
from axolotl_adapter import (  # beside this script: the field renames
    AdapterError,
    UntrustedIdentity,
    go_bytes,
    sender_key_record,
    session_record,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey


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
