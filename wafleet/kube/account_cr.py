"""The WhatsAppAccount custom resource <-> our records, written once for every component."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from wafleet.core.models import Account, AccountSpec, AccountStatus, Disconnect, iso, parse_iso
from wafleet.core.phases import Phase

API_VERSION = "wafleet.io/v1alpha1"
KIND = "WhatsAppAccount"
SHARD_LABEL = "wafleet.io/shard"
CLEANUP_FINALIZER = "wafleet.io/session-cleanup"
REGENERATE_ANNOTATION = "wafleet.io/regenerate-qr"
MANAGED_LABEL = "app.kubernetes.io/managed-by"

Obj = dict[str, Any]


def new_account_cr(spec: AccountSpec) -> Obj:
    """The CR the API creates for an onboarding call (name = the deterministic wafleet id;
    a legacy id, when the account has one, in ``spec.legacyId``)."""
    body: Obj = {
        "phone": spec.phone,
        "displayName": spec.name,
        "login": spec.login,
        "suspended": spec.suspended,
    }
    if spec.legacy_id is not None:
        body["legacyId"] = spec.legacy_id
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": spec.resource_name, "labels": {MANAGED_LABEL: "wafleet-api"}},
        "spec": body,
    }


def account_id_of(cr: Obj) -> str:
    """The id the account goes by in data and answers: its legacy id, else its name."""
    legacy = (cr.get("spec") or {}).get("legacyId")
    return legacy if isinstance(legacy, str) and legacy else str(cr["metadata"]["name"])


def spec_of(cr: Obj) -> AccountSpec:
    meta, spec = cr.get("metadata", {}), cr.get("spec", {})
    created = parse_iso(meta.get("creationTimestamp")) or datetime.now(UTC)
    return AccountSpec(
        id=account_id_of(cr),
        resource_name=str(meta["name"]),
        phone=str(spec.get("phone", "")),
        name=str(spec.get("displayName") or meta["name"]),
        login="pairingCode" if spec.get("login") == "pairingCode" else "qr",
        suspended=bool(spec.get("suspended", False)),
        created_at=created,
    )


def shard_of(cr: Obj) -> int | None:
    value = (cr.get("metadata", {}).get("labels") or {}).get(SHARD_LABEL)
    return int(value) if isinstance(value, str) and value.isdigit() else None


def status_of(cr: Obj) -> AccountStatus:
    status = cr.get("status") or {}
    qr = status.get("qr") or {}
    last = status.get("lastDisconnect")
    phase_value = str(status.get("phase"))
    phase = Phase(phase_value) if phase_value in Phase._value2member_map_ else Phase.PENDING
    return AccountStatus(
        phase=phase,
        reason=status.get("reason"),
        qr=qr.get("code"),
        qr_expires_at=parse_iso(qr.get("expiresAt")),
        pairing_code=status.get("pairingCode"),
        jid=status.get("jid"),
        last_event_at=parse_iso(status.get("lastEventAt")),
        last_message_at=parse_iso(status.get("lastMessageAt")),
        connected_at=parse_iso(status.get("connectedAt")),
        reconnects=int(status.get("reconnects") or 0),
        last_disconnect=None
        if not last
        else Disconnect(
            reason=str(last.get("reason", "")),
            code=last.get("code"),
            at=parse_iso(last.get("at")) or datetime.now(UTC),
        ),
        updated_at=parse_iso(status.get("lastEventAt")) or datetime.now(UTC),
    )


def account_of(cr: Obj) -> Account:
    return Account(spec=spec_of(cr), status=status_of(cr), shard=shard_of(cr))


def _condition(kind: str, true: bool, reason: str, message: str, now: str) -> Obj:
    return {
        "type": kind,
        "status": "True" if true else "False",
        "reason": reason,
        "message": message[:1024],
        "lastTransitionTime": now,
    }


def merge_conditions(old: list[Obj], new: list[Obj]) -> list[Obj]:
    """Update ``old`` with ``new`` in place, keeping order and the lastTransitionTime of
    conditions whose status did not change (so two writers never reorder each other)."""
    merged = [dict(condition) for condition in old]
    positions = {condition.get("type"): n for n, condition in enumerate(merged)}
    for condition in new:
        n = positions.get(condition["type"])
        if n is None:
            positions[condition["type"]] = len(merged)
            merged.append(condition)
        elif merged[n].get("status") == condition["status"]:
            merged[n] = {**condition, "lastTransitionTime": merged[n].get("lastTransitionTime")}
        else:
            merged[n] = condition
    return merged


def status_patch(status: AccountStatus, old_conditions: list[Obj], generation: int | None) -> Obj:
    """The status subresource body the connector writes for ``status``."""
    now = iso(datetime.now(UTC)) or ""
    last = status.last_disconnect
    connected = status.phase == Phase.CONNECTED
    conditions = [
        _condition(
            "Connected",
            connected,
            "Connected" if connected else status.phase.value,
            status.reason or ("the session is connected" if connected else status.phase.value),
            now,
        ),
        _condition(
            "SessionStored",
            status.jid is not None and status.phase != Phase.LOGGED_OUT,
            "Linked" if status.jid and status.phase != Phase.LOGGED_OUT else "NotLinked",
            "the device's session is on the shard's volume"
            if status.jid and status.phase != Phase.LOGGED_OUT
            else "no linked device yet",
            now,
        ),
    ]
    body: Obj = {
        "phase": status.phase.value,
        "reason": (status.reason or "")[:1024],
        "qr": None
        if status.qr is None
        else {"code": status.qr, "expiresAt": iso(status.qr_expires_at)},
        "pairingCode": status.pairing_code,
        "jid": status.jid,
        "lastEventAt": iso(status.last_event_at),
        "lastMessageAt": iso(status.last_message_at),
        "connectedAt": iso(status.connected_at),
        "reconnects": status.reconnects,
        "lastDisconnect": None
        if last is None
        else {"reason": last.reason[:1024], "code": last.code, "at": iso(last.at)},
        "conditions": merge_conditions(old_conditions, conditions),
    }
    if generation is not None:
        body["observedGeneration"] = generation
    return {"status": body}


def shard_lease_name(statefulset: str, ordinal: int) -> str:
    """The Lease a connector must hold to run shard ``ordinal``'s sessions."""
    return f"{statefulset}-shard-{ordinal}"


def lease_is_fresh(spec: Obj, now: datetime) -> bool:
    """True if a Lease's holder renewed it within its duration."""
    renewed = parse_iso(spec.get("renewTime"))
    duration = spec.get("leaseDurationSeconds")
    if renewed is None or not spec.get("holderIdentity") or not isinstance(duration, int):
        return False
    return (now - renewed).total_seconds() < duration
