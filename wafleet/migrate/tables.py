"""Pre-keys, app-state keys and versions, the LID map and privacy tokens → whatsmeow rows.

**App-state versions.** Baileys' ``app-state-sync-version-<name>`` (an ``LTHashState``) is the
same thing whatsmeow keeps in ``whatsmeow_app_state_version`` (version and 128-byte LTHash)
plus ``whatsmeow_app_state_mutation_macs`` (one row per index MAC, with its value MAC): both
implement WhatsApp's patch integrity the same way, so they are converted, and whatsmeow goes
on from the same version instead of downloading every collection's snapshot again. Baileys
keeps no version per MAC, so each MAC gets the state's version (whatsmeow reads the newest
one for an index, which is then that one).

**The LID map** (global in whatsmeow, one bare user each side, ``pn`` unique): the account's
own mapping from ``creds.me`` comes first, then the forward files (``lid-mapping-<pn>``) and
then the reverse ones (``lid-mapping-<lid>_reverse``) where they add a pair. When two forward
files claim one LID, its reverse file says which is current; without one the lowest number
wins, and the loser is reported.
"""

from __future__ import annotations

from wafleet.migrate.baileys_model import (
    AppStateSyncKey,
    AuthState,
    Fingerprint,
    LidMappingFile,
    TcToken,
)
from wafleet.migrate.device import checked_private
from wafleet.migrate.errors import Unconvertible
from wafleet.migrate.report import (
    APP_STATE_MUTATION_MACS,
    APP_STATE_SYNC_KEYS,
    APP_STATE_VERSIONS,
    LID_MAP,
    PRE_KEYS,
    PRIVACY_TOKENS,
    PartReport,
    Skip,
)
from wafleet.migrate.whatsmeow_store import (
    AppStateKeyRow,
    AppStateVersionRow,
    LidMapRow,
    PreKeyRow,
    PrivacyTokenRow,
)

MAX_PRE_KEY_ID = 2**24 - 1
LTHASH_SIZE = 128
MAC_SIZE = 32


def pre_key_rows(state: AuthState) -> tuple[list[PreKeyRow], PartReport]:
    first_unuploaded = state.creds.first_unuploaded_pre_key_id
    rows, skipped = [], []
    for pre_key in state.pre_keys:
        private = checked_private(pre_key.pair, "the pre-key's", pre_key.file)
        if pre_key.key_id > MAX_PRE_KEY_ID:
            skipped.append(Skip(pre_key.file, "its id is beyond 2^24 - 1, whatsmeow's limit"))
            continue
        rows.append(PreKeyRow(pre_key.key_id, private, pre_key.key_id < first_unuploaded))
    return rows, PartReport(PRE_KEYS, len(rows), tuple(skipped))


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def fingerprint_bytes(fingerprint: Fingerprint | None) -> bytes:
    """``AppStateSyncKeyFingerprint`` as protobuf (rawID = 1, currentIndex = 2, deviceIndexes = 3).

    The same bytes whatsmeow stores (``proto.Marshal`` of the message, message.go): the fields
    have explicit presence and ``deviceIndexes`` is packed. A missing fingerprint is ``b""``, as
    whatsmeow marshals a nil one. Written by hand because neonize's own protobuf module
    (``neonize.proto.waE2E``) cannot be imported without loading neonize's shared library into
    this process; a test compares these bytes with that module's, in a child process.
    """
    if fingerprint is None:
        return b""
    out = bytearray()
    if fingerprint.raw_id is not None:
        out += b"\x08" + _varint(fingerprint.raw_id)
    if fingerprint.current_index is not None:
        out += b"\x10" + _varint(fingerprint.current_index)
    if fingerprint.device_indexes:
        packed = b"".join(_varint(i) for i in fingerprint.device_indexes)
        out += b"\x1a" + _varint(len(packed)) + packed
    return bytes(out)


def app_state_key_rows(state: AuthState) -> tuple[list[AppStateKeyRow], PartReport]:
    newest: dict[bytes, AppStateSyncKey] = {}
    skipped = []
    for key in state.app_state_keys:
        if not key.key_data:
            raise Unconvertible(key.file, "keyData is empty")
        known = newest.get(key.key_id)
        if known is not None and known.timestamp >= key.timestamp:
            skipped.append(Skip(key.file, "a newer file holds the same key id"))
            continue
        if known is not None:
            skipped.append(Skip(known.file, "a newer file holds the same key id"))
        newest[key.key_id] = key
    rows = [
        AppStateKeyRow(k.key_id, k.key_data, k.timestamp, fingerprint_bytes(k.fingerprint))
        for k in newest.values()
    ]
    return rows, PartReport(APP_STATE_SYNC_KEYS, len(rows), tuple(skipped))


def app_state_version_rows(
    state: AuthState,
) -> tuple[list[AppStateVersionRow], list[PartReport]]:
    rows = []
    for version in state.app_state_versions:
        if len(version.hash) != LTHASH_SIZE:
            raise Unconvertible(version.file, f"hash is {len(version.hash)} bytes, not 128")
        for index_mac, value_mac in version.macs:
            if len(index_mac) != MAC_SIZE or len(value_mac) != MAC_SIZE:
                raise Unconvertible(version.file, "an index or value MAC is not 32 bytes")
        rows.append(AppStateVersionRow(version.name, version.version, version.hash, version.macs))
    macs = sum(len(r.macs) for r in rows)
    return rows, [
        PartReport(APP_STATE_VERSIONS, len(rows)),
        PartReport(APP_STATE_MUTATION_MACS, macs),
    ]


def _claims(files: list[LidMappingFile]) -> tuple[dict[str, str], dict[str, str]]:
    forward = {f.key: f.value for f in files if not f.reverse}  # pn -> lid
    reverse = {f.key: f.value for f in files if f.reverse}  # lid -> pn
    return forward, reverse


def lid_map_rows(state: AuthState, own: LidMapRow | None) -> tuple[list[LidMapRow], PartReport]:
    forward, reverse = _claims(list(state.lid_mappings))
    by_lid: dict[str, str] = {}
    by_pn: dict[str, str] = {}
    skipped: list[Skip] = []

    def add(lid: str, pn: str, item: str) -> None:
        if by_lid.get(lid) == pn:
            return
        if lid in by_lid or pn in by_pn:
            skipped.append(Skip(item, "another mapping of the same LID or number is kept"))
            return
        by_lid[lid], by_pn[pn] = pn, lid

    if own is not None:
        add(own.lid, own.pn, "creds.json me")
    claimed: dict[str, list[str]] = {}
    for pn, lid in sorted(forward.items(), key=lambda item: int(item[0])):
        claimed.setdefault(lid, []).append(pn)
    for lid, pns in claimed.items():
        current = reverse.get(lid)
        for pn in sorted(pns, key=lambda p: (p != current, int(p))):
            add(lid, pn, f"lid-mapping-{pn}.json")
    for lid, pn in sorted(reverse.items()):
        add(lid, pn, f"lid-mapping-{lid}_reverse.json")
    rows = [LidMapRow(lid, pn) for lid, pn in sorted(by_lid.items())]
    return rows, PartReport(LID_MAP, len(rows), tuple(skipped))


def privacy_token_rows(state: AuthState) -> tuple[list[PrivacyTokenRow], PartReport]:
    """One row per user JID (the newest token when two files name the same user)."""
    newest: dict[str, TcToken] = {}
    skipped = []
    for token in state.tc_tokens:
        if not token.token:
            skipped.append(Skip(token.file, "it holds no token (only Baileys' issue time)"))
            continue
        if token.timestamp is None:
            skipped.append(Skip(token.file, "it has no timestamp, which whatsmeow needs"))
            continue
        known = newest.get(token.jid)
        if known is not None and known.timestamp is not None and known.timestamp >= token.timestamp:
            skipped.append(Skip(token.file, "a newer file holds a token for the same user"))
            continue
        if known is not None:
            skipped.append(Skip(known.file, "a newer file holds a token for the same user"))
        newest[token.jid] = token
    rows = [
        PrivacyTokenRow(t.jid, t.token, t.timestamp or 0, t.sender_timestamp)
        for t in newest.values()
    ]
    return rows, PartReport(PRIVACY_TOKENS, len(rows), tuple(skipped))
