"""What a conversion did: per part, what was converted and what was skipped, and why.

``dropped`` lists what Baileys holds that whatsmeow has no place for (not an error), as
sentences with phone numbers masked. Skipped items are named by their file (raw); ``lines()``
gives the whole report as text with phone numbers masked, fit for a log or a terminal.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from wafleet.core.logs import mask_phones
from wafleet.migrate.baileys_model import IgnoredFile

DEVICE = "device"
PRE_KEYS = "pre_keys"
SESSIONS = "sessions"
IDENTITY_KEYS = "identity_keys"
SENDER_KEYS = "sender_keys"
APP_STATE_SYNC_KEYS = "app_state_sync_keys"
APP_STATE_VERSIONS = "app_state_versions"
APP_STATE_MUTATION_MACS = "app_state_mutation_macs"
LID_MAP = "lid_map"
PRIVACY_TOKENS = "privacy_tokens"

CREDS_DROPPED = {
    "pairingEphemeralKeyPair": "used only while pairing with a code",
    "pairingCode": "used only while pairing with a code",
    "myAppStateKeyId": "whatsmeow uses its newest app-state key (by timestamp)",
    "nextPreKeyId": "whatsmeow numbers new pre-keys after the highest one it holds",
    "lastAccountSyncTimestamp": "Baileys' own bookkeeping",
    "processedHistoryMessages": "Baileys' own bookkeeping of history sync",
    "accountSyncCounter": "Baileys' own bookkeeping",
    "accountSettings": "Baileys' client settings",
    "registered": "Baileys' own flag",
    "lastPropHash": "Baileys' cache of the server's A/B props",
    "routingInfo": "whatsmeow keeps no routing info",
    "additionalData": "Baileys' own data",
    "me.notify": "whatsmeow keeps only the push name",
    "me.verifiedName": "whatsmeow learns the business name again from the server",
    "signedPreKey.timestampS": "whatsmeow keeps no time for its signed pre-key",
}
SESSION_FIELDS_DROPPED = (
    "session records' indexInfo.created/used/closed/baseKeyType and "
    "currentRatchet.lastRemoteEphemeralKey: libsignal-go keeps no such fields (the open "
    "session becomes the current state, the others previous states by last use)"
)


@dataclass(frozen=True)
class Skip:
    item: str  # the file (or row) left out
    reason: str


@dataclass(frozen=True)
class PartReport:
    name: str
    converted: int
    skipped: tuple[Skip, ...] = ()
    notes: tuple[str, ...] = ()  # converted, with something worth knowing


@dataclass(frozen=True)
class ConversionReport:
    push_name: str  # the push name written
    parts: tuple[PartReport, ...]
    dropped: tuple[str, ...]  # "<what>: <why>", phone numbers masked

    def part(self, name: str) -> PartReport:
        for part in self.parts:
            if part.name == name:
                return part
        raise KeyError(name)

    def lines(self) -> list[str]:
        out = []
        for part in self.parts:
            skipped = f", {len(part.skipped)} skipped" if part.skipped else ""
            out.append(f"{part.name}: {part.converted} converted{skipped}")
            out.extend(f"  skipped {s.item}: {s.reason}" for s in part.skipped)
            out.extend(f"  note: {note}" for note in part.notes)
        out.extend(f"dropped {d}" for d in self.dropped)
        return [mask_phones(line) for line in out]


def dropped_items(
    creds_fields: Iterable[str], ignored: Iterable[IgnoredFile], *, sessions: bool
) -> list[str]:
    """What was left behind, one "<what>: <why>" each (ignored files grouped by reason)."""
    dropped = [
        f"creds.json {name}: {CREDS_DROPPED.get(name, 'no whatsmeow equivalent')}"
        for name in creds_fields
    ]
    if sessions:
        dropped.append(SESSION_FIELDS_DROPPED)
    by_reason: dict[str, list[str]] = {}
    for item in ignored:
        by_reason.setdefault(item.reason, []).append(item.file)
    for reason, files in by_reason.items():
        what = files[0] if len(files) == 1 else f"{len(files)} files ({files[0]}, ...)"
        dropped.append(f"{what}: {reason}")
    return [mask_phones(line) for line in dropped]
