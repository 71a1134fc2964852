"""A structural check of the Go JSON rows, mirroring how libsignal-go loads them.

libsignal-go (``go.mau.fi/libsignal``, the JSON serializers whatsmeow uses) decodes a session
with ``encoding/json`` into ``record.SessionStructure`` and then builds it with
``NewStateFromStructure`` / ``NewChainFromStructure`` (``state/record``). Those do no length
checks: ``ecc.DecodePoint`` indexes ``bytes[0]`` (an empty key panics), a missing
``SenderChain`` or ``ChainKey`` is a nil dereference, and a message key's IV reaches
``cipher.NewCBCDecrypter``, which panics on a wrong length. A panic there ends the whole Go
engine, so every row written is first checked here, on the very bytes written. Sender keys
likewise (``groups/state/record``: ``NewSenderKeyStateFromStructure``).

What is required, beyond what Go checks:

- every public key is 33 bytes starting with the type byte 0x05;
- a sending chain has its 32-byte private ratchet key, a receiving chain none;
- chain keys, root keys and message cipher/MAC keys are 32 bytes, IVs 16;
- counts stay within libsignal-go's limits (5 receiver chains, 2000 message keys per chain,
  40 previous states; 5 sender-key states, 2000 message keys each);
- ``PendingPreKey.PreKeyID`` is an object (never null) and ``PendingKeyExchange`` is null.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

MAX_UINT32 = 2**32 - 1
MAX_RECEIVER_CHAINS = 5
MAX_MESSAGE_KEYS = 2000
MAX_PREVIOUS_STATES = 40
MAX_SENDER_KEY_STATES = 5
DJB_TYPE = 0x05


class InvalidStructure(ValueError):
    """The row would not load in libsignal-go; ``path`` names the field."""

    def __init__(self, path: str, what: str) -> None:
        self.path = path
        self.what = what
        super().__init__(f"{path} {what}")


def _obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidStructure(path, "is missing or not an object")
    return value


def _list(value: Any, path: str, limit: int) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidStructure(path, "is not a list")
    if len(value) > limit:
        raise InvalidStructure(path, f"has {len(value)} items, more than {limit}")
    return value


def _uint32(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_UINT32:
        raise InvalidStructure(path, "is not a uint32")
    return value


def _bytes(value: Any, path: str, length: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise InvalidStructure(path, "is missing or not base64")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidStructure(path, "is not standard base64") from None
    if length is not None and len(raw) != length:
        raise InvalidStructure(path, f"is {len(raw)} bytes, not {length}")
    return raw


def _point(value: Any, path: str) -> None:
    raw = _bytes(value, path, 33)
    if raw[0] != DJB_TYPE:
        raise InvalidStructure(path, f"has the key type {raw[0]}, not {DJB_TYPE}")


def _chain(value: Any, path: str, *, sending: bool) -> None:
    chain = _obj(value, path)
    _point(chain.get("SenderRatchetKeyPublic"), f"{path}.SenderRatchetKeyPublic")
    private = chain.get("SenderRatchetKeyPrivate")
    if sending:
        _bytes(private, f"{path}.SenderRatchetKeyPrivate", 32)
    elif private is not None:
        raise InvalidStructure(f"{path}.SenderRatchetKeyPrivate", "is set on a receiving chain")
    key = _obj(chain.get("ChainKey"), f"{path}.ChainKey")
    _bytes(key.get("Key"), f"{path}.ChainKey.Key", 32)
    _uint32(key.get("Index"), f"{path}.ChainKey.Index")
    keys = _list(chain.get("MessageKeys"), f"{path}.MessageKeys", MAX_MESSAGE_KEYS)
    for i, item in enumerate(keys):
        where = f"{path}.MessageKeys[{i}]"
        message_key = _obj(item, where)
        _bytes(message_key.get("CipherKey"), f"{where}.CipherKey", 32)
        _bytes(message_key.get("MacKey"), f"{where}.MacKey", 32)
        _bytes(message_key.get("IV"), f"{where}.IV", 16)
        _uint32(message_key.get("Index"), f"{where}.Index")


def _pending(value: Any, path: str) -> None:
    if value is None:
        return
    pending = _obj(value, path)
    pre_key_id = _obj(pending.get("PreKeyID"), f"{path}.PreKeyID")
    _uint32(pre_key_id.get("Value"), f"{path}.PreKeyID.Value")
    if not isinstance(pre_key_id.get("IsEmpty"), bool):
        raise InvalidStructure(f"{path}.PreKeyID.IsEmpty", "is not a boolean")
    _uint32(pending.get("SignedPreKeyID"), f"{path}.SignedPreKeyID")
    _point(pending.get("BaseKey"), f"{path}.BaseKey")


def validate_state(value: Any, path: str) -> None:
    state = _obj(value, path)
    for name in ("LocalIdentityPublic", "RemoteIdentityPublic", "SenderBaseKey"):
        _point(state.get(name), f"{path}.{name}")
    _uint32(state.get("LocalRegistrationID"), f"{path}.LocalRegistrationID")
    _uint32(state.get("RemoteRegistrationID"), f"{path}.RemoteRegistrationID")
    _uint32(state.get("PreviousCounter"), f"{path}.PreviousCounter")
    if not isinstance(state.get("NeedsRefresh", False), bool):
        raise InvalidStructure(f"{path}.NeedsRefresh", "is not a boolean")
    if state.get("PendingKeyExchange") is not None:
        raise InvalidStructure(f"{path}.PendingKeyExchange", "is set (never written here)")
    _pending(state.get("PendingPreKey"), f"{path}.PendingPreKey")
    _bytes(state.get("RootKey"), f"{path}.RootKey", 32)
    if state.get("SessionVersion") != 3:
        raise InvalidStructure(f"{path}.SessionVersion", "is not 3")
    _chain(state.get("SenderChain"), f"{path}.SenderChain", sending=True)
    chains = _list(state.get("ReceiverChains"), f"{path}.ReceiverChains", MAX_RECEIVER_CHAINS)
    for i, chain in enumerate(chains):
        _chain(chain, f"{path}.ReceiverChains[{i}]", sending=False)


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        raise InvalidStructure("row", "is not JSON") from None


def validate_session(data: bytes) -> None:
    """A ``whatsmeow_sessions.session`` value: Go JSON of ``record.SessionStructure``."""
    record = _obj(_json(data), "session")
    validate_state(record.get("SessionState"), "SessionState")
    previous = _list(record.get("PreviousStates"), "PreviousStates", MAX_PREVIOUS_STATES)
    for i, state in enumerate(previous):
        validate_state(state, f"PreviousStates[{i}]")


def _sender_key_state(value: Any, path: str) -> None:
    state = _obj(value, path)
    _uint32(state.get("KeyID"), f"{path}.KeyID")
    _point(state.get("SigningKeyPublic"), f"{path}.SigningKeyPublic")
    if state.get("SigningKeyPrivate") is not None:
        _bytes(state.get("SigningKeyPrivate"), f"{path}.SigningKeyPrivate", 32)
    chain = _obj(state.get("SenderChainKey"), f"{path}.SenderChainKey")
    _uint32(chain.get("Iteration"), f"{path}.SenderChainKey.Iteration")
    _bytes(chain.get("ChainKey"), f"{path}.SenderChainKey.ChainKey", 32)
    for i, item in enumerate(_list(state.get("Keys"), f"{path}.Keys", MAX_MESSAGE_KEYS)):
        where = f"{path}.Keys[{i}]"
        key = _obj(item, where)
        _uint32(key.get("Iteration"), f"{where}.Iteration")
        _bytes(key.get("IV"), f"{where}.IV", 16)
        _bytes(key.get("CipherKey"), f"{where}.CipherKey", 32)
        _bytes(key.get("Seed"), f"{where}.Seed", 32)


def validate_sender_key(data: bytes) -> None:
    """A ``whatsmeow_sender_keys.sender_key`` value: Go JSON of ``SenderKeyStructure``."""
    record = _obj(_json(data), "sender key")
    states = _list(record.get("SenderKeyStates"), "SenderKeyStates", MAX_SENDER_KEY_STATES)
    if not states:
        raise InvalidStructure("SenderKeyStates", "is empty")
    for i, state in enumerate(states):
        _sender_key_state(state, f"SenderKeyStates[{i}]")
