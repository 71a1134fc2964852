"""libsignal-node's ``SessionRecord.serialize()`` → typed session entries (pure; ``Garbled``).

The record is ``{"version": "v1", "_sessions": {<base key>: <SessionEntry>}}`` (libsignal-node
``src/session_record.js``, unchanged since 2018). Buffers there are plain base64 strings. A
record without ``version`` is migrated as node does (``migrateV1``: entries lacking a
``registrationId`` take the record's); any other version is refused, as node refuses it.
"""

from __future__ import annotations

from typing import Any

from wafleet.migrate.baileys_model import (
    RECEIVING,
    SENDING,
    NodeChain,
    NodePendingPreKey,
    NodeSessionEntry,
)
from wafleet.migrate.bufferjson import b64decode, opt_bytes, opt_int, to_bytes, to_int, to_obj
from wafleet.migrate.errors import Garbled

SESSION_RECORD_VERSION = "v1"
MS_MAX = 2**63 - 1


def _chain(name: str, value: Any, where: str) -> NodeChain:
    obj = to_obj(value, where)
    chain_key = to_obj(obj.get("chainKey"), f"{where}.chainKey")
    chain_type = to_int(obj.get("chainType"), f"{where}.chainType")
    if chain_type not in (SENDING, RECEIVING):
        raise Garbled(f"{where}.chainType is {chain_type}, neither sending (1) nor receiving (2)")
    message_keys = []
    for index, seed in to_obj(obj.get("messageKeys", {}), f"{where}.messageKeys").items():
        counter = to_int(index, f"{where}.messageKeys key {index!r}")
        message_keys.append((counter, to_bytes(seed, f"{where}.messageKeys[{index}]")))
    return NodeChain(
        ratchet_key=b64decode(name, f"{where} (its name)"),
        chain_type=chain_type,
        counter=to_int(chain_key.get("counter"), f"{where}.chainKey.counter", low=-1),
        key=opt_bytes(chain_key.get("key"), f"{where}.chainKey.key"),
        message_keys=tuple(message_keys),
    )


def _pending(value: Any, where: str) -> NodePendingPreKey | None:
    if value is None:
        return None
    obj = to_obj(value, where)
    return NodePendingPreKey(
        signed_key_id=to_int(obj.get("signedKeyId"), f"{where}.signedKeyId"),
        base_key=to_bytes(obj.get("baseKey"), f"{where}.baseKey"),
        pre_key_id=opt_int(obj.get("preKeyId"), f"{where}.preKeyId"),
    )


def _entry(value: Any, where: str, fallback_registration_id: int | None) -> NodeSessionEntry:
    obj = to_obj(value, where)
    ratchet = to_obj(obj.get("currentRatchet"), f"{where}.currentRatchet")
    pair = to_obj(ratchet.get("ephemeralKeyPair"), f"{where}.currentRatchet.ephemeralKeyPair")
    info = to_obj(obj.get("indexInfo"), f"{where}.indexInfo")
    chains = to_obj(obj.get("_chains", {}), f"{where}._chains")
    registration_id = opt_int(obj.get("registrationId"), f"{where}.registrationId")
    if not registration_id and fallback_registration_id is not None:
        registration_id = fallback_registration_id  # node's v1 migration fills only these
    return NodeSessionEntry(
        registration_id=registration_id,
        ephemeral_public=to_bytes(pair.get("pubKey"), f"{where}.ephemeralKeyPair.pubKey"),
        ephemeral_private=to_bytes(pair.get("privKey"), f"{where}.ephemeralKeyPair.privKey"),
        last_remote_ephemeral=to_bytes(
            ratchet.get("lastRemoteEphemeralKey"), f"{where}.currentRatchet.lastRemoteEphemeralKey"
        ),
        previous_counter=to_int(
            ratchet.get("previousCounter"), f"{where}.currentRatchet.previousCounter", low=-1
        ),
        root_key=to_bytes(ratchet.get("rootKey"), f"{where}.currentRatchet.rootKey"),
        base_key=to_bytes(info.get("baseKey"), f"{where}.indexInfo.baseKey"),
        base_key_type=to_int(info.get("baseKeyType"), f"{where}.indexInfo.baseKeyType"),
        closed=to_int(info.get("closed"), f"{where}.indexInfo.closed", low=-1, high=MS_MAX),
        used=to_int(info.get("used", 0), f"{where}.indexInfo.used", high=MS_MAX),
        created=to_int(info.get("created", 0), f"{where}.indexInfo.created", high=MS_MAX),
        remote_identity_key=to_bytes(
            info.get("remoteIdentityKey"), f"{where}.indexInfo.remoteIdentityKey"
        ),
        chains=tuple(
            _chain(name, chain, f"{where}._chains[{name!r}]") for name, chain in chains.items()
        ),
        pending_pre_key=_pending(obj.get("pendingPreKey"), f"{where}.pendingPreKey"),
    )


def session_entries(value: Any) -> tuple[NodeSessionEntry, ...]:
    """``SessionRecord.serialize()``; a record without ``version`` gets node's v1 migration."""
    obj = to_obj(value, "session record")
    version = obj.get("version")
    fallback: int | None = None
    if version is None:  # libsignal-node's migrateV1: the record-level registrationId
        fallback = opt_int(obj.get("registrationId"), "registrationId") or None
    elif version != SESSION_RECORD_VERSION:
        raise Garbled(f"session record version is {version!r}, not {SESSION_RECORD_VERSION!r}")
    sessions = to_obj(obj.get("_sessions", {}), "_sessions")
    return tuple(
        _entry(entry, f"_sessions[{name!r}]", fallback) for name, entry in sessions.items()
    )
