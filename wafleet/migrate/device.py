"""``creds.json`` → the ``whatsmeow_device`` row, and what whatsmeow stores about itself at pairing.

whatsmeow keeps only the 32-byte *private* keys of the device and derives each public key
with X25519 when it loads the row (``scanDevice``). So each private key must give exactly the
public key Baileys registered with WhatsApp at pairing, or the server and the contacts would
see another device: that is checked here, and a mismatch makes the account unconvertible.

At pairing whatsmeow also stores the LID↔phone mapping of its own account and the identity
key of the primary device (its account signature key) under ``<lidUser>_1:0``
(``pair.go``); Baileys keeps the latter in ``signalIdentities``.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from wafleet.migrate.baileys_model import Creds, KeyPair
from wafleet.migrate.errors import Unconvertible
from wafleet.migrate.jids import LID_SERVER, PN_SERVER, BadJid, Jid, identity_address, parse_jid
from wafleet.migrate.signal_convert import strip05
from wafleet.migrate.whatsmeow_store import DeviceRow, IdentityRow, LidMapRow

CREDS = "creds.json"
MAX_SIGNED_PRE_KEY_ID = 2**24 - 1
NOT_LINKED = "not linked: creds.json has no {} (the pairing never finished)"


@dataclass(frozen=True)
class OwnDevice:
    row: DeviceRow
    jid: Jid
    lid: Jid | None
    identity_public: bytes  # 32 bytes
    notes: tuple[str, ...]


def public_of(private: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def checked_private(pair: KeyPair, name: str, file: str = CREDS) -> bytes:
    """``pair.private`` if it is 32 bytes and gives ``pair.public`` (32, or 33 with 0x05)."""
    if len(pair.private) != 32:
        raise Unconvertible(file, f"{name}.private is {len(pair.private)} bytes, not 32")
    public = strip05(pair.public)
    if len(public) != 32:
        raise Unconvertible(file, f"{name}.public is {len(pair.public)} bytes, not 32 or 33")
    if public_of(pair.private) != public:
        raise Unconvertible(file, f"{name}.private does not give {name}.public")
    return pair.private


def _length(value: bytes, size: int, name: str) -> bytes:
    if len(value) != size:
        raise Unconvertible(CREDS, f"{name} is {len(value)} bytes, not {size}")
    return value


def push_name_for(creds: Creds, push_name: str | None) -> str:
    """The push name written: the one given, else ``me.name``; never empty."""
    for candidate in (push_name, creds.me.name if creds.me else None):
        if candidate and candidate.strip():
            return candidate.strip()
    raise Unconvertible(
        CREDS, "no push name: me.name is empty and none was given (whatsmeow needs one)"
    )


def _jids(creds: Creds, notes: list[str]) -> tuple[Jid, Jid | None]:
    if creds.me is None:
        raise Unconvertible(CREDS, NOT_LINKED.format("me"))
    try:
        jid = parse_jid(creds.me.id, server=PN_SERVER)
    except BadJid as error:
        raise Unconvertible(CREDS, f"me.id {error}") from None
    if jid.device == 0:
        raise Unconvertible(CREDS, "me.id has device 0, the phone's own: not a linked device")
    if creds.me.lid is None:
        notes.append("creds.json has no me.lid: the device row has no LID")
        return jid, None
    try:
        lid = parse_jid(creds.me.lid, server=LID_SERVER)
    except BadJid as error:
        raise Unconvertible(CREDS, f"me.lid {error}") from None
    if lid.device == 0:
        notes.append("me.lid has no device; the device of me.id is used")
        lid = Jid(lid.user, jid.device, lid.server)
    elif lid.device != jid.device:
        raise Unconvertible(CREDS, "me.lid and me.id name different devices")
    return jid, lid


def build_device(creds: Creds, push_name: str | None) -> OwnDevice:
    notes: list[str] = []
    jid, lid = _jids(creds, notes)
    account = creds.account
    if account is None:
        raise Unconvertible(CREDS, NOT_LINKED.format("account"))
    if account.device_signature is None:
        raise Unconvertible(CREDS, NOT_LINKED.format("account.deviceSignature"))
    if not account.details:
        raise Unconvertible(CREDS, "account.details is empty")
    if not creds.adv_secret_key:
        raise Unconvertible(CREDS, "advSecretKey is empty")
    spk = creds.signed_pre_key
    if spk.key_id > MAX_SIGNED_PRE_KEY_ID:
        raise Unconvertible(CREDS, f"signedPreKey.keyId is {spk.key_id}, beyond 2^24 - 1")
    identity = creds.signed_identity_key
    row = DeviceRow(
        jid=str(jid),
        lid=None if lid is None else str(lid),
        registration_id=creds.registration_id,
        noise_key=checked_private(creds.noise_key, "noiseKey"),
        identity_key=checked_private(identity, "signedIdentityKey"),
        signed_pre_key=checked_private(spk.key_pair, "signedPreKey.keyPair"),
        signed_pre_key_id=spk.key_id,
        signed_pre_key_sig=_length(spk.signature, 64, "signedPreKey.signature"),
        adv_key=creds.adv_secret_key,
        adv_details=account.details,
        adv_account_sig=_length(account.account_signature, 64, "account.accountSignature"),
        adv_account_sig_key=_length(
            strip05(account.account_signature_key), 32, "account.accountSignatureKey"
        ),
        adv_device_sig=_length(account.device_signature, 64, "account.deviceSignature"),
        platform=creds.platform or "",
        business_name="",  # whatsmeow learns it again from the server
        push_name=push_name_for(creds, push_name),
    )
    return OwnDevice(row, jid, lid, strip05(identity.public), tuple(notes))


def own_identities(creds: Creds, device: OwnDevice) -> tuple[list[IdentityRow], list[str]]:
    """The primary device's identity key(s): ``signalIdentities``, else the account key."""
    rows: list[IdentityRow] = []
    notes: list[str] = []
    for i, identity in enumerate(creds.signal_identities):
        try:
            owner = parse_jid(identity.name)
        except BadJid as error:
            raise Unconvertible(CREDS, f"signalIdentities[{i}].identifier.name {error}") from None
        key = _length(strip05(identity.key), 32, f"signalIdentities[{i}].identifierKey")
        rows.append(IdentityRow(identity_address(owner, identity.device_id), key))
    if not rows and device.lid is not None:
        owner = Jid(device.lid.user, 0, LID_SERVER)
        rows.append(IdentityRow(identity_address(owner, 0), device.row.adv_account_sig_key))
        notes.append("no signalIdentities: the primary's identity is the account signature key")
    return rows, notes


def own_lid_mapping(device: OwnDevice) -> LidMapRow | None:
    return None if device.lid is None else LidMapRow(device.lid.user, device.jid.user)
