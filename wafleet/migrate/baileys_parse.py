"""Pure parsers: one parsed JSON value of a Baileys file → its typed value.

Each raises ``Garbled`` (no file name; ``baileys`` adds it) when the value is not what
Baileys 7 writes. Field names and shapes are those of Baileys' ``Types/Auth`` and
``Signal/Group``; session records are ``node_session``'s.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from wafleet.migrate.baileys_model import (
    Account,
    AppStateSyncKey,
    AppStateVersion,
    Creds,
    Fingerprint,
    KeyPair,
    Me,
    SenderKeyState,
    SignalIdentity,
    SignedPreKey,
    TcToken,
)
from wafleet.migrate.bufferjson import (
    b64decode,
    opt_bytes,
    opt_int,
    opt_str,
    to_bytes,
    to_int,
    to_list,
    to_obj,
    to_str,
)
from wafleet.migrate.errors import Garbled

# creds.json fields the conversion reads; every other field present is reported as dropped.
USED_CREDS_FIELDS = frozenset(
    {
        "noiseKey",
        "signedIdentityKey",
        "signedPreKey",
        "registrationId",
        "advSecretKey",
        "me",
        "account",
        "signalIdentities",
        "firstUnuploadedPreKeyId",
        "platform",
    }
)
USED_ME_FIELDS = frozenset({"id", "lid", "name"})
USED_SIGNED_PRE_KEY_FIELDS = frozenset({"keyPair", "signature", "keyId"})
MS_MAX = 2**63 - 1


def key_pair(value: Any, where: str) -> KeyPair:
    obj = to_obj(value, where)
    return KeyPair(
        private=to_bytes(obj.get("private"), f"{where}.private"),
        public=to_bytes(obj.get("public"), f"{where}.public"),
    )


def _me(value: Any) -> Me | None:
    if value is None:
        return None
    obj = to_obj(value, "me")
    return Me(
        id=to_str(obj.get("id"), "me.id"),
        lid=opt_str(obj.get("lid"), "me.lid") or None,
        name=opt_str(obj.get("name"), "me.name"),
    )


def _account(value: Any) -> Account | None:
    if value is None:
        return None
    obj = to_obj(value, "account")
    return Account(
        details=to_bytes(obj.get("details"), "account.details"),
        account_signature_key=to_bytes(
            obj.get("accountSignatureKey"), "account.accountSignatureKey"
        ),
        account_signature=to_bytes(obj.get("accountSignature"), "account.accountSignature"),
        device_signature=opt_bytes(obj.get("deviceSignature"), "account.deviceSignature"),
    )


def _signal_identities(value: Any) -> tuple[SignalIdentity, ...]:
    if value is None:
        return ()
    found = []
    for i, item in enumerate(to_list(value, "signalIdentities")):
        where = f"signalIdentities[{i}]"
        identifier = to_obj(to_obj(item, where).get("identifier"), f"{where}.identifier")
        found.append(
            SignalIdentity(
                name=to_str(identifier.get("name"), f"{where}.identifier.name"),
                device_id=to_int(identifier.get("deviceId", 0), f"{where}.identifier.deviceId"),
                key=to_bytes(item.get("identifierKey"), f"{where}.identifierKey"),
            )
        )
    return tuple(found)


def creds(value: Any) -> Creds:
    obj = to_obj(value, "creds")
    noise_key = key_pair(obj.get("noiseKey"), "noiseKey")
    identity_key = key_pair(obj.get("signedIdentityKey"), "signedIdentityKey")
    spk = to_obj(obj.get("signedPreKey"), "signedPreKey")
    adv = to_str(obj.get("advSecretKey"), "advSecretKey")
    return Creds(
        noise_key=noise_key,
        signed_identity_key=identity_key,
        signed_pre_key=SignedPreKey(
            key_pair=key_pair(spk.get("keyPair"), "signedPreKey.keyPair"),
            signature=to_bytes(spk.get("signature"), "signedPreKey.signature"),
            key_id=to_int(spk.get("keyId"), "signedPreKey.keyId"),
        ),
        registration_id=to_int(obj.get("registrationId"), "registrationId"),
        adv_secret_key=b64decode(adv, "advSecretKey"),
        me=_me(obj.get("me")),
        account=_account(obj.get("account")),
        signal_identities=_signal_identities(obj.get("signalIdentities")),
        platform=opt_str(obj.get("platform"), "platform"),
        first_unuploaded_pre_key_id=to_int(
            obj.get("firstUnuploadedPreKeyId", 1), "firstUnuploadedPreKeyId"
        ),
        other_fields=_other_fields(obj),
    )


def _other_fields(obj: Mapping[str, Any]) -> tuple[str, ...]:
    """The fields present that the conversion does not read (dotted inside me, signedPreKey)."""
    found = [k for k, v in obj.items() if k not in USED_CREDS_FIELDS and v is not None]
    for parent, used in (("me", USED_ME_FIELDS), ("signedPreKey", USED_SIGNED_PRE_KEY_FIELDS)):
        inner = obj.get(parent)
        if isinstance(inner, Mapping):
            found += [f"{parent}.{k}" for k, v in inner.items() if k not in used and v is not None]
    return tuple(sorted(found))


def _sender_key_state(value: Any, where: str) -> SenderKeyState:
    obj = to_obj(value, where)
    chain = to_obj(obj.get("senderChainKey"), f"{where}.senderChainKey")
    signing = to_obj(obj.get("senderSigningKey"), f"{where}.senderSigningKey")
    keys = obj.get("senderMessageKeys")
    message_keys = []
    for i, key in enumerate(keys if isinstance(keys, list) else []):  # as Baileys reads it
        key_where = f"{where}.senderMessageKeys[{i}]"
        key_obj = to_obj(key, key_where)
        message_keys.append(
            (
                to_int(key_obj.get("iteration"), f"{key_where}.iteration"),
                to_bytes(key_obj.get("seed"), f"{key_where}.seed"),
            )
        )
    private = opt_bytes(signing.get("private"), f"{where}.senderSigningKey.private")
    return SenderKeyState(
        key_id=to_int(obj.get("senderKeyId"), f"{where}.senderKeyId"),
        iteration=to_int(chain.get("iteration"), f"{where}.senderChainKey.iteration"),
        chain_seed=to_bytes(chain.get("seed"), f"{where}.senderChainKey.seed"),
        signing_public=to_bytes(signing.get("public"), f"{where}.senderSigningKey.public"),
        signing_private=private or None,  # Baileys writes an empty buffer for others' keys
        message_keys=tuple(message_keys),
    )


def sender_key_states(value: Any) -> tuple[SenderKeyState, ...]:
    """A ``sender-key`` file: a buffer holding the UTF-8 JSON of the record's states."""
    if isinstance(value, list):
        states: Any = value
    else:
        text = to_bytes(value, "sender key record")
        try:
            states = json.loads(text.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise Garbled("the sender key record's buffer is not UTF-8 JSON") from None
    return tuple(
        _sender_key_state(s, f"state[{i}]") for i, s in enumerate(to_list(states, "states"))
    )


def _fingerprint(value: Any) -> Fingerprint | None:
    if value is None:
        return None
    obj = to_obj(value, "fingerprint")
    indexes = obj.get("deviceIndexes") or []
    return Fingerprint(
        raw_id=opt_int(obj.get("rawId"), "fingerprint.rawId"),
        current_index=opt_int(obj.get("currentIndex"), "fingerprint.currentIndex"),
        device_indexes=tuple(
            to_int(v, f"fingerprint.deviceIndexes[{i}]")
            for i, v in enumerate(to_list(indexes, "fingerprint.deviceIndexes"))
        ),
    )


def app_state_sync_key(file: str, key_id: bytes, value: Any) -> AppStateSyncKey:
    obj = to_obj(value, "app state sync key")
    return AppStateSyncKey(
        file=file,
        key_id=key_id,
        key_data=to_bytes(obj.get("keyData"), "keyData"),
        timestamp=to_int(obj.get("timestamp", 0), "timestamp", low=-(2**63), high=MS_MAX),
        fingerprint=_fingerprint(obj.get("fingerprint")),
    )


def app_state_version(file: str, name: str, value: Any) -> AppStateVersion:
    obj = to_obj(value, "LTHash state")
    macs = []
    index_map: Mapping[str, Any] = to_obj(obj.get("indexValueMap", {}), "indexValueMap")
    for index_mac, entry in index_map.items():
        where = f"indexValueMap[{index_mac!r}]"
        value_mac = to_obj(entry, where).get("valueMac")
        macs.append((b64decode(index_mac, where), to_bytes(value_mac, f"{where}.valueMac")))
    return AppStateVersion(
        file=file,
        name=name,
        version=to_int(obj.get("version"), "version", high=MS_MAX),
        hash=to_bytes(obj.get("hash"), "hash"),
        macs=tuple(macs),
    )


def tc_token(file: str, jid: str, value: Any) -> TcToken:
    obj = to_obj(value, "tctoken")
    return TcToken(
        file=file,
        jid=jid,
        token=opt_bytes(obj.get("token"), "token") or b"",
        timestamp=opt_int(obj.get("timestamp"), "timestamp", high=MS_MAX),
        sender_timestamp=opt_int(obj.get("senderTimestamp"), "senderTimestamp", high=MS_MAX),
    )
