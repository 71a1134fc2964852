"""A Baileys 7 auth state as typed values: what ``baileys`` reads, before any conversion.

Bytes are as Baileys holds them (publics with or without the 0x05 type byte, unchecked
lengths); checking what whatsmeow needs is the converter's job. Every item keeps the name of
the file it came from, so that a report or an error can name it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SENDING, RECEIVING = 1, 2  # libsignal-node ChainType


@dataclass(frozen=True)
class KeyPair:
    private: bytes
    public: bytes


@dataclass(frozen=True)
class SignedPreKey:
    key_pair: KeyPair
    signature: bytes
    key_id: int


@dataclass(frozen=True)
class Me:
    id: str
    lid: str | None
    name: str | None


@dataclass(frozen=True)
class Account:
    """``creds.account``: the ADVSignedDeviceIdentity the phone signed at pairing."""

    details: bytes
    account_signature_key: bytes
    account_signature: bytes
    device_signature: bytes | None


@dataclass(frozen=True)
class SignalIdentity:
    name: str  # a JID string (Baileys stores the LID of the primary device)
    device_id: int
    key: bytes


@dataclass(frozen=True)
class Creds:
    noise_key: KeyPair
    signed_identity_key: KeyPair
    signed_pre_key: SignedPreKey
    registration_id: int
    adv_secret_key: bytes
    me: Me | None
    account: Account | None
    signal_identities: tuple[SignalIdentity, ...]
    platform: str | None
    first_unuploaded_pre_key_id: int
    other_fields: tuple[str, ...]  # fields present that whatsmeow has no place for


@dataclass(frozen=True)
class PreKey:
    file: str
    key_id: int
    pair: KeyPair


@dataclass(frozen=True)
class NodeChain:
    """One ``_chains`` entry of a libsignal-node session."""

    ratchet_key: bytes  # the entry's name: the sender's ratchet public key
    chain_type: int  # SENDING or RECEIVING
    counter: int  # index of the last derived message key; -1 when none was
    key: bytes | None  # the key for ``counter + 1``; None once the chain is closed
    message_keys: tuple[tuple[int, bytes], ...]  # (counter, seed) not used yet


@dataclass(frozen=True)
class NodePendingPreKey:
    signed_key_id: int
    base_key: bytes
    pre_key_id: int | None


@dataclass(frozen=True)
class NodeSessionEntry:
    """One ``SessionEntry`` (libsignal-node ``session_record.js``)."""

    registration_id: int | None  # the remote's
    ephemeral_public: bytes  # currentRatchet.ephemeralKeyPair
    ephemeral_private: bytes
    last_remote_ephemeral: bytes
    previous_counter: int
    root_key: bytes
    base_key: bytes
    base_key_type: int
    closed: int  # -1 while open, else the time it was closed (ms)
    used: int
    created: int
    remote_identity_key: bytes
    chains: tuple[NodeChain, ...]  # in the file's order (insertion order)
    pending_pre_key: NodePendingPreKey | None

    @property
    def is_open(self) -> bool:
        return self.closed == -1


@dataclass(frozen=True)
class SessionFile:
    file: str
    address: str  # libsignal-node ProtocolAddress: "<name>.<device>"
    entries: tuple[NodeSessionEntry, ...]  # in the file's order


@dataclass(frozen=True)
class IdentityKeyFile:
    file: str
    address: str
    key: bytes


@dataclass(frozen=True)
class SenderKeyState:
    key_id: int
    iteration: int
    chain_seed: bytes
    signing_public: bytes
    signing_private: bytes | None  # only our own sender keys have one
    message_keys: tuple[tuple[int, bytes], ...]  # (iteration, seed), oldest first


@dataclass(frozen=True)
class SenderKeyFile:
    file: str
    group: str
    sender: str  # the Signal address name ("<user>" or "<user>_<domain>")
    device: int
    states: tuple[SenderKeyState, ...]  # Baileys' order: oldest first


@dataclass(frozen=True)
class Fingerprint:
    raw_id: int | None
    current_index: int | None
    device_indexes: tuple[int, ...]


@dataclass(frozen=True)
class AppStateSyncKey:
    file: str
    key_id: bytes
    key_data: bytes
    timestamp: int
    fingerprint: Fingerprint | None


@dataclass(frozen=True)
class AppStateVersion:
    file: str
    name: str
    version: int
    hash: bytes
    macs: tuple[tuple[bytes, bytes], ...]  # (index MAC, value MAC)


@dataclass(frozen=True)
class LidMappingFile:
    file: str
    key: str  # the PN user, or the LID user for a reverse file
    value: str
    reverse: bool


@dataclass(frozen=True)
class TcToken:
    file: str
    jid: str
    token: bytes
    timestamp: int | None
    sender_timestamp: int | None


@dataclass(frozen=True)
class IgnoredFile:
    file: str
    reason: str


@dataclass(frozen=True)
class AuthState:
    source: str  # what was read, for messages ("folder /x/y", "backup files")
    source_dir: Path | None  # the folder, when read from one (never written to)
    creds: Creds
    pre_keys: tuple[PreKey, ...] = ()
    sessions: tuple[SessionFile, ...] = ()
    identity_keys: tuple[IdentityKeyFile, ...] = ()
    sender_keys: tuple[SenderKeyFile, ...] = ()
    app_state_keys: tuple[AppStateSyncKey, ...] = ()
    app_state_versions: tuple[AppStateVersion, ...] = ()
    lid_mappings: tuple[LidMappingFile, ...] = ()
    tc_tokens: tuple[TcToken, ...] = ()
    ignored: tuple[IgnoredFile, ...] = ()
