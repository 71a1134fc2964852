"""Hand-built Baileys 7 auth states, in the shapes Baileys and libsignal-node write them.

Keys are real: X25519 pairs from ``cryptography``; the identity and account keys can also sign
(XEdDSA), being made from an Ed25519 seed whose clamped scalar is the X25519 private key.
Session records follow libsignal-node's ``SessionEntry.serialize()`` field by field.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

PN_USER = "40712345678"
LID_USER = "123456789012345"
DEVICE = 12
ME_ID = f"{PN_USER}:{DEVICE}@s.whatsapp.net"
ME_LID = f"{LID_USER}:{DEVICE}@lid"
PEER = "40798765432"
PEER_LID = "987654321098765"
GROUP = "120363025246125888@g.us"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def buf(data: bytes) -> dict[str, str]:
    """A Buffer as ``BufferJSON.replacer`` writes it."""
    return {"type": "Buffer", "data": b64(data)}


def node_buf(data: bytes) -> dict[str, Any]:
    """A Buffer as Node's own ``Buffer.toJSON()`` writes it (inside sender-key records)."""
    return {"type": "Buffer", "data": list(data)}


@dataclass(frozen=True)
class XKey:
    """An X25519 key pair that can also make XEdDSA signatures."""

    private: bytes
    public: bytes
    seed: bytes | None = None

    @classmethod
    def generate(cls) -> XKey:
        private = X25519PrivateKey.generate()
        return cls(private.private_bytes_raw(), private.public_key().public_bytes_raw())

    @classmethod
    def signer(cls) -> XKey:
        seed = os.urandom(32)
        scalar = bytearray(hashlib.sha512(seed).digest()[:32])
        scalar[0] &= 248
        scalar[31] = (scalar[31] & 127) | 64
        private = X25519PrivateKey.from_private_bytes(bytes(scalar))
        return cls(bytes(scalar), private.public_key().public_bytes_raw(), seed)

    @property
    def public05(self) -> bytes:
        return b"\x05" + self.public

    def sign(self, message: bytes) -> bytes:
        assert self.seed is not None, "make the key with XKey.signer()"
        ed = Ed25519PrivateKey.from_private_bytes(self.seed)
        signature = bytearray(ed.sign(message))
        signature[63] |= ed.public_key().public_bytes_raw()[31] & 0x80
        return bytes(signature)

    def pair(self) -> dict[str, Any]:
        return {"private": buf(self.private), "public": buf(self.public)}


def hmac256(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def hkdf(ikm: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 with a zero salt, written out (independent of the code under test)."""
    prk = hmac256(bytes(32), ikm)
    out, block = b"", b""
    for i in range(1, -(-length // 32) + 1):
        block = hmac256(prk, block + info + bytes([i]))
        out += block
    return out[:length]


@dataclass
class Chain:
    """A libsignal-node chain: ``counter`` is the last derived index, ``key`` the next key."""

    ratchet: bytes  # 33-byte public
    chain_type: int
    counter: int = -1
    key: bytes | None = field(default_factory=lambda: os.urandom(32))
    message_keys: dict[int, bytes] = field(default_factory=dict)

    def fill(self, counter: int) -> None:
        """libsignal-node ``fillMessageKeys``: derive and keep keys up to ``counter``."""
        while self.counter < counter:
            assert self.key is not None
            self.message_keys[self.counter + 1] = hmac256(self.key, b"\x01")
            self.key = hmac256(self.key, b"\x02")
            self.counter += 1

    def serialize(self) -> dict[str, Any]:
        chain_key: dict[str, Any] = {"counter": self.counter}
        if self.key is not None:
            chain_key["key"] = b64(self.key)
        return {
            "chainKey": chain_key,
            "chainType": self.chain_type,
            "messageKeys": {str(i): b64(k) for i, k in sorted(self.message_keys.items())},
        }


def entry(
    *,
    remote_identity: bytes,
    sending: Chain | None = None,
    receiving: tuple[Chain, ...] = (),
    closed: int = -1,
    used: int = 1_700_000_000_000,
    registration_id: int | None = 4242,
    previous_counter: int = 0,
    base_key: bytes | None = None,
    pending: dict[str, Any] | None = None,
    ephemeral: XKey | None = None,
) -> dict[str, Any]:
    """A ``SessionEntry.serialize()``; ``sending`` defaults to a fresh chain on ``ephemeral``."""
    ephemeral = ephemeral or XKey.generate()
    if sending is None:
        sending = Chain(ephemeral.public05, 1)
    chains = {b64(sending.ratchet): sending.serialize()}
    chains.update({b64(c.ratchet): c.serialize() for c in receiving})
    data: dict[str, Any] = {
        "currentRatchet": {
            "ephemeralKeyPair": {
                "pubKey": b64(ephemeral.public05),
                "privKey": b64(ephemeral.private),
            },
            "lastRemoteEphemeralKey": b64(
                receiving[-1].ratchet if receiving else XKey.generate().public05
            ),
            "previousCounter": previous_counter,
            "rootKey": b64(os.urandom(32)),
        },
        "indexInfo": {
            "baseKey": b64(base_key or XKey.generate().public05),
            "baseKeyType": 2,
            "closed": closed,
            "used": used,
            "created": max(used - 1000, 0),
            "remoteIdentityKey": b64(remote_identity),
        },
        "_chains": chains,
    }
    if registration_id is not None:
        data["registrationId"] = registration_id
    if pending is not None:
        data["pendingPreKey"] = pending
    return data


def record(*entries: dict[str, Any]) -> dict[str, Any]:
    """``SessionRecord.serialize()``: entries keyed by their base key."""
    return {"_sessions": {e["indexInfo"]["baseKey"]: e for e in entries}, "version": "v1"}


def receiving_chain(counter: int = 3, skipped: tuple[int, ...] = (1,)) -> Chain:
    """A receiving chain that derived keys up to ``counter`` and still holds ``skipped``."""
    chain = Chain(XKey.generate().public05, 2)
    chain.fill(counter)
    chain.message_keys = {i: k for i, k in chain.message_keys.items() if i in skipped}
    return chain


def sender_key_state(key_id: int, *, own: bool = False, iteration: int = 2) -> dict[str, Any]:
    signing = XKey.generate()
    return {
        "senderKeyId": key_id,
        "senderChainKey": {"iteration": iteration, "seed": node_buf(os.urandom(32))},
        "senderSigningKey": {
            "public": node_buf(signing.public05),
            "private": node_buf(signing.private if own else b""),
        },
        "senderMessageKeys": [{"iteration": 0, "seed": node_buf(os.urandom(32))}],
    }


def sender_key_file(*states: dict[str, Any]) -> dict[str, str]:
    """A ``sender-key`` file: a buffer of the UTF-8 JSON of the states (no BufferJSON inside)."""
    return buf(json.dumps(list(states)).encode())


def advice_details(raw_id: int = 77, device_type: int | None = None) -> bytes:
    """An ``ADVDeviceIdentity`` (rawID, timestamp, keyIndex[, deviceType]) as protobuf."""
    out = bytes([0x08, raw_id, 0x10, 0x80, 0x01, 0x18, 0x02])
    return out + (bytes([0x28, device_type]) if device_type is not None else b"")


@dataclass
class Sample:
    """One linked account's auth state: the key material and the files Baileys would hold."""

    noise: XKey = field(default_factory=XKey.generate)
    identity: XKey = field(default_factory=XKey.signer)
    signed_pre_key: XKey = field(default_factory=XKey.generate)
    account_key: XKey = field(default_factory=XKey.signer)
    peer_identity: XKey = field(default_factory=XKey.generate)
    pre_keys: dict[int, XKey] = field(
        default_factory=lambda: {i: XKey.generate() for i in range(1, 6)}
    )
    files: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        details = advice_details()
        account_sig = self.account_key.sign(b"\x06\x00" + details + self.identity.public)
        device_sig = self.identity.sign(
            b"\x06\x01" + details + self.identity.public + self.account_key.public
        )
        self.files["creds.json"] = {
            "noiseKey": self.noise.pair(),
            "pairingEphemeralKeyPair": XKey.generate().pair(),
            "signedIdentityKey": self.identity.pair(),
            "signedPreKey": {
                "keyPair": self.signed_pre_key.pair(),
                "signature": buf(self.identity.sign(self.signed_pre_key.public05)),
                "keyId": 1,
            },
            "registrationId": 1234,
            "advSecretKey": b64(os.urandom(32)),
            "processedHistoryMessages": [],
            "nextPreKeyId": 6,
            "firstUnuploadedPreKeyId": 4,
            "accountSyncCounter": 1,
            "accountSettings": {"unarchiveChats": False},
            "registered": False,
            "me": {"id": ME_ID, "lid": ME_LID, "name": "Corner Shop"},
            "account": {
                "details": b64(details),
                "accountSignatureKey": b64(self.account_key.public),
                "accountSignature": b64(account_sig),
                "deviceSignature": b64(device_sig),
            },
            "signalIdentities": [
                {
                    "identifier": {"name": ME_LID, "deviceId": 0},
                    "identifierKey": buf(self.account_key.public05),
                }
            ],
            "platform": "smba",
            "myAppStateKeyId": "AAAAAAFk",
            "lastAccountSyncTimestamp": 1_700_000_000,
            "routingInfo": buf(b"\x08\x02"),
        }
        for key_id, key in self.pre_keys.items():
            self.files[f"pre-key-{key_id}.json"] = key.pair()
        self.files[f"session-{PEER}.0.json"] = record(
            entry(remote_identity=self.peer_identity.public05, receiving=(receiving_chain(),))
        )
        self.files[f"identity-key-{PEER}.0.json"] = buf(self.peer_identity.public05)
        self.files[f"sender-key-{GROUP}--{PEER_LID}_1--3.json"] = sender_key_file(
            sender_key_state(7, iteration=4), sender_key_state(9)
        )
        self.files["app-state-sync-key-AAAAAAFk.json"] = {
            "keyData": b64(os.urandom(32)),
            "fingerprint": {"rawId": 77, "currentIndex": 3, "deviceIndexes": [0, 12]},
            "timestamp": "1700000000123",
        }
        self.files["app-state-sync-version-regular_high.json"] = {
            "version": 42,
            "hash": buf(os.urandom(128)),
            "indexValueMap": {b64(os.urandom(32)): {"valueMac": buf(os.urandom(32))}},
        }
        self.files[f"lid-mapping-{PEER}.json"] = PEER_LID
        self.files[f"lid-mapping-{PEER_LID}_reverse.json"] = PEER
        self.files[f"tctoken-{PEER_LID}@lid.json"] = {
            "token": buf(b"token"),
            "timestamp": "1700000000",
            "senderTimestamp": 1_700_000_500,
        }
        self.files["tctoken-__index.json"] = {
            "token": buf(json.dumps([f"{PEER_LID}@lid"]).encode())
        }
        self.files[f"device-list-{PEER}.json"] = ["0", "3"]
        self.files[f"sender-key-memory-{GROUP}.json"] = {f"{PEER}:3@s.whatsapp.net": True}

    @property
    def creds(self) -> dict[str, Any]:
        creds: dict[str, Any] = self.files["creds.json"]
        return creds

    def texts(self) -> dict[str, str]:
        return {name: json.dumps(value) for name, value in self.files.items()}

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in self.texts().items():
            (folder / name).write_text(text)
        return folder

    def copy(self) -> Sample:
        return copy.deepcopy(self)
