"""One account: a Baileys auth state → a new whatsmeow session store at ``target``.

Everything is converted in memory first (any garbled input raises ``Unconvertible`` naming its
file, before anything is written), then written in one transaction into a temporary file that
replaces nothing: the target is absent, or complete. The legacy folder is never written to,
and an existing target is never overwritten (``TargetExists``).
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from wafleet.core.logs import mask_phones
from wafleet.migrate.baileys_model import AuthState
from wafleet.migrate.device import (
    build_device,
    own_identities,
    own_lid_mapping,
)
from wafleet.migrate.errors import Unconvertible
from wafleet.migrate.report import DEVICE, ConversionReport, PartReport, dropped_items
from wafleet.migrate.signal_convert import LocalIdentity, add05
from wafleet.migrate.signal_tables import (
    identity_rows,
    sender_key_rows,
    session_rows,
    session_table,
)
from wafleet.migrate.tables import (
    app_state_key_rows,
    app_state_version_rows,
    lid_map_rows,
    pre_key_rows,
    privacy_token_rows,
)
from wafleet.migrate.whatsmeow_store import StoreRows, refuse_existing, write_store

__all__ = ["Conversion", "ConversionReport", "Unconvertible", "convert"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Conversion:
    jid: str  # the device JID written, as whatsmeow's JID.String() gives it
    lid: str | None
    report: ConversionReport


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def convert(state: AuthState, target: Path, *, push_name: str | None = None) -> Conversion:
    """Write ``state`` as a whatsmeow store at ``target`` (which must not exist).

    ``push_name`` overrides ``creds.me.name``. Raises ``Unconvertible`` for an account that
    cannot be converted (the target is then not created), ``TargetExists`` for an existing
    target, ``SchemaMismatch`` when neonize's schema is not the expected one.
    """
    if state.source_dir is not None and _inside(target, state.source_dir):
        raise ValueError("the target is inside the legacy session folder, which is never written")
    refuse_existing(target)
    device = build_device(state.creds, push_name)
    local = LocalIdentity(add05(device.identity_public), device.row.registration_id)
    own, own_notes = own_identities(state.creds, device)
    sessions, sessions_part = session_rows(state, local)
    identities, identities_part = identity_rows(state, sessions, own)
    sender_keys, sender_keys_part = sender_key_rows(state)
    pre_keys, pre_keys_part = pre_key_rows(state)
    app_keys, app_keys_part = app_state_key_rows(state)
    versions, versions_parts = app_state_version_rows(state)
    lid_map, lid_map_part = lid_map_rows(state, own_lid_mapping(device))
    tokens, tokens_part = privacy_token_rows(state)
    rows = StoreRows(
        device=device.row,
        pre_keys=tuple(pre_keys),
        sessions=tuple(session_table(sessions)),
        identities=tuple(identities),
        sender_keys=tuple(sender_keys),
        app_state_keys=tuple(app_keys),
        app_state_versions=tuple(versions),
        lid_map=tuple(lid_map),
        privacy_tokens=tuple(tokens),
    )
    try:
        write_store(rows, target)
    except sqlite3.IntegrityError as error:
        raise Unconvertible(None, f"whatsmeow's schema refused a row ({error})") from None
    name_note = []
    me_name = state.creds.me.name if state.creds.me else None
    if device.row.push_name != (me_name or "").strip():
        name_note.append("the push name given replaces me.name")
    if "," in device.row.push_name:
        name_note.append(
            "the push name holds a comma, which neonize's get_all_devices_from_db cannot parse"
            " (verify reports it; whatsmeow itself reads the name fine)"
        )
    device_part = PartReport(DEVICE, 1, (), (*device.notes, *own_notes, *name_note))
    report = ConversionReport(
        push_name=device.row.push_name,
        parts=(
            device_part,
            pre_keys_part,
            sessions_part,
            identities_part,
            sender_keys_part,
            app_keys_part,
            *versions_parts,
            lid_map_part,
            tokens_part,
        ),
        dropped=tuple(
            dropped_items(state.creds.other_fields, state.ignored, sessions=bool(sessions))
        ),
    )
    log.info(
        "converted the legacy session of %s: %d sessions, %d skipped",
        mask_phones(device.row.jid),
        sessions_part.converted,
        len(sessions_part.skipped),
    )
    return Conversion(device.row.jid, device.row.lid, report)
