"""libsignal-node sessions and Baileys sender keys → the Go JSON libsignal-go stores.

whatsmeow stores a session as ``encoding/json`` of ``record.SessionStructure`` (Go field
names, ``[]byte`` as standard base64), and a sender key as JSON of ``SenderKeyStructure``.

**One node ``SessionEntry`` → one Go ``StateStructure``.** The translations that are not renames:

- *chain index*: node's ``chainKey.counter`` is the index of the last message key it derived
  (-1 for none), and ``chainKey.key`` is the key for ``counter + 1``. Go's ``ChainKey.Index``
  is the index of the key it holds, so ``Index = counter + 1``;
- *message keys*: node keeps the 32-byte seed ``HMAC(chainKey, 0x01)`` and derives at use
  time; Go keeps the derived keys: ``HKDF-SHA256(seed, salt = 32 zero bytes,
  info = "WhisperMessageKeys", 80)`` → cipher key ``[0:32]``, MAC key ``[32:64]``, IV ``[64:80]``
  (the IV is the first 16 bytes of node's third 32-byte block: the same bytes). Kept in index
  order, at most the newest 2000 per chain;
- ``PreviousCounter = max(previousCounter, 0)`` (node writes -1 before anything was sent);
- the sending chain is the one named by ``currentRatchet.ephemeralKeyPair.pubKey``; the
  receiving chains keep node's order (oldest first, as Go appends them), the newest 5 kept;
- ``PendingPreKey.PreKeyID`` is empty when node has no ``preKeyId`` (or 0: node tests it
  for truth).

**Closed receiving chains** (node deletes ``chainKey.key`` when the ratchet steps past a
chain; it keeps the chain for its unused message keys): Go has no "closed" flag, so such a
chain is written with a *dummy chain key of 32 zero bytes* and its real index. Its stored
message keys still decrypt late messages; a message past the chain's end derives keys from the
dummy, fails the MAC and is refused, which is what node does ("Chain closed"). Dropping the
chain instead would lose those message keys, and would make Go treat a late message on it as a
new ratchet step.

**Records.** The current state is node's ``getOpenSession()``: the first open entry in the
record's order. The other entries become the previous states, most recently used first (node
``getSessions()``), at most 40; a closed entry that Go cannot represent (no sending chain) is
left out and noted. A record with **no open entry is skipped** (and reported): node would not
encrypt with it either, and would fetch a new pre-key bundle, as whatsmeow does when it has no
session; a message on one of its old states then gets a retry receipt. Promoting a closed
state would make whatsmeow send on a ratchet node had given up. An open entry without a
sending chain cannot be written as a Go state (whose ``SenderChain`` must exist): its record
is skipped too.

**Sender keys**: Baileys appends states (newest last), Go prepends them (newest first), so the
order is reversed. Message keys: ``HKDF-SHA256(seed, zero salt, "WhisperGroup", 48)`` →
IV ``[0:16]``, cipher key ``[16:48]`` (Baileys' ``SenderMessageKey`` takes the same bytes).
Iterations are the same on both sides.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from wafleet.migrate.baileys_model import (
    RECEIVING,
    SENDING,
    NodeChain,
    NodeSessionEntry,
    SenderKeyFile,
    SessionFile,
)
from wafleet.migrate.errors import Garbled
from wafleet.migrate.jids import whatsmeow_address
from wafleet.migrate.signal_validate import (
    MAX_MESSAGE_KEYS,
    MAX_PREVIOUS_STATES,
    MAX_RECEIVER_CHAINS,
    MAX_SENDER_KEY_STATES,
    InvalidStructure,
    validate_sender_key,
    validate_session,
)

MESSAGE_KEYS_INFO = b"WhisperMessageKeys"
GROUP_INFO = b"WhisperGroup"
CLOSED_CHAIN_KEY = bytes(32)
SESSION_VERSION = 3
MAX_UINT32 = 2**32 - 1


@dataclass(frozen=True)
class LocalIdentity:
    public: bytes  # 33 bytes, with the type byte
    registration_id: int


@dataclass(frozen=True)
class ConvertedSession:
    address: str  # whatsmeow's their_id
    session: bytes  # Go JSON
    remote_identity: bytes  # 32 bytes: the current state's, for whatsmeow_identity_keys
    notes: tuple[str, ...]


class Skipped(Exception):
    """A record or sender key that whatsmeow cannot use; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def add05(key: bytes) -> bytes:
    return key if len(key) == 33 else b"\x05" + key


def strip05(key: bytes) -> bytes:
    return key[1:] if len(key) == 33 and key[0] == 0x05 else key


def hkdf(seed: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=SHA256(), length=length, salt=None, info=info).derive(seed)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def go_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("ascii")


def message_keys(seed: bytes, index: int) -> dict[str, Any]:
    derived = hkdf(seed, MESSAGE_KEYS_INFO, 80)
    return {
        "CipherKey": _b64(derived[:32]),
        "MacKey": _b64(derived[32:64]),
        "IV": _b64(derived[64:80]),
        "Index": index,
    }


def _chain(chain: NodeChain, private: bytes | None) -> dict[str, Any]:
    """A receiving chain (``private`` None) or the sending chain (its ratchet private key)."""
    index = chain.counter + 1
    if index > MAX_UINT32:
        raise Garbled(f"a chain counter is {chain.counter}, beyond a uint32")
    keys: list[dict[str, Any]] = []
    if private is None:  # a sending chain has none: node deletes each key as it uses it
        ordered = sorted(chain.message_keys)[-MAX_MESSAGE_KEYS:]
        keys = [message_keys(seed, counter) for counter, seed in ordered]
    return {
        "SenderRatchetKeyPublic": _b64(add05(chain.ratchet_key)),
        "SenderRatchetKeyPrivate": None if private is None else _b64(private),
        "ChainKey": {"Key": _b64(chain.key or CLOSED_CHAIN_KEY), "Index": index},
        "MessageKeys": keys,
    }


def _state(entry: NodeSessionEntry, local: LocalIdentity, notes: list[str]) -> dict[str, Any]:
    sending = [
        c
        for c in entry.chains
        if c.chain_type == SENDING and strip05(c.ratchet_key) == strip05(entry.ephemeral_public)
    ]
    if not sending or sending[0].key is None:
        raise Skipped("it has no sending chain (libsignal-go needs one)")
    receiving = [c for c in entry.chains if c.chain_type == RECEIVING]
    if len(receiving) > MAX_RECEIVER_CHAINS:
        notes.append(f"{len(receiving) - MAX_RECEIVER_CHAINS} oldest receiving chains dropped")
    pending = entry.pending_pre_key
    return {
        "LocalIdentityPublic": _b64(local.public),
        "LocalRegistrationID": local.registration_id,
        "NeedsRefresh": False,
        "PendingKeyExchange": None,
        "PendingPreKey": None
        if pending is None
        else {
            "PreKeyID": {"Value": pending.pre_key_id or 0, "IsEmpty": not pending.pre_key_id},
            "SignedPreKeyID": pending.signed_key_id,
            "BaseKey": _b64(add05(pending.base_key)),
        },
        "PreviousCounter": max(entry.previous_counter, 0),
        "ReceiverChains": [_chain(c, None) for c in receiving[-MAX_RECEIVER_CHAINS:]],
        "RemoteIdentityPublic": _b64(add05(entry.remote_identity_key)),
        "RemoteRegistrationID": entry.registration_id or 0,
        "RootKey": _b64(entry.root_key),
        "SenderBaseKey": _b64(add05(entry.base_key)),
        "SenderChain": _chain(sending[0], entry.ephemeral_private),
        "SessionVersion": SESSION_VERSION,
    }


def convert_session(file: SessionFile, local: LocalIdentity) -> ConvertedSession:
    """One ``session-*.json`` → a ``whatsmeow_sessions`` value (checked by the validator).

    Raises ``Skipped`` for a record whatsmeow cannot use, ``Garbled`` for one that is broken.
    """
    current = next((e for e in file.entries if e.is_open), None)
    if current is None:
        what = "no session state" if not file.entries else "no open session (all are closed)"
        raise Skipped(f"the record has {what}; whatsmeow will fetch a new pre-key bundle")
    notes: list[str] = []
    if current.registration_id is None:
        notes.append("the open session has no registrationId; 0 written")
    try:
        state = _state(current, local, notes)
    except Skipped as skipped:
        raise Skipped(f"the open session cannot be used: {skipped.reason}") from None
    others = sorted((e for e in file.entries if e is not current), key=lambda e: -e.used)
    previous = []
    for entry in others:
        try:
            previous.append(_state(entry, local, notes))
        except Skipped as skipped:
            notes.append(f"a closed session left out: {skipped.reason}")
    if len(previous) > MAX_PREVIOUS_STATES:
        notes.append(f"{len(previous) - MAX_PREVIOUS_STATES} least recently used states dropped")
    data = go_json({"SessionState": state, "PreviousStates": previous[:MAX_PREVIOUS_STATES]})
    try:
        validate_session(data)
    except InvalidStructure as error:
        raise Garbled(f"the converted session would not load in libsignal-go: {error}") from None
    return ConvertedSession(
        address=whatsmeow_address(file.address),
        session=data,
        remote_identity=strip05(current.remote_identity_key),
        notes=tuple(notes),
    )


def sender_message_key(seed: bytes, iteration: int) -> dict[str, Any]:
    derived = hkdf(seed, GROUP_INFO, 48)
    return {
        "Iteration": iteration,
        "IV": _b64(derived[:16]),
        "CipherKey": _b64(derived[16:48]),
        "Seed": _b64(seed),
    }


def convert_sender_key(file: SenderKeyFile) -> bytes:
    """One ``sender-key-*.json`` → a ``whatsmeow_sender_keys`` value (checked)."""
    if not file.states:
        raise Skipped("the record has no sender key state yet")
    states = []
    for state in reversed(file.states[-MAX_SENDER_KEY_STATES:]):
        private = state.signing_private
        states.append(
            {
                "Keys": [
                    sender_message_key(seed, iteration)
                    for iteration, seed in state.message_keys[-MAX_MESSAGE_KEYS:]
                ],
                "KeyID": state.key_id,
                "SenderChainKey": {
                    "Iteration": state.iteration,
                    "ChainKey": _b64(state.chain_seed),
                },
                "SigningKeyPrivate": None if private is None else _b64(private),
                "SigningKeyPublic": _b64(add05(state.signing_public)),
            }
        )
    data = go_json({"SenderKeyStates": states})
    try:
        validate_sender_key(data)
    except InvalidStructure as error:
        raise Garbled(f"the converted sender key would not load in libsignal-go: {error}") from None
    return data
