"""Shards that stopped: finish the clean-up of their deleted accounts, flag the others."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import kopf

from wafleet.core.models import parse_iso
from wafleet.kube.account_cr import CLEANUP_FINALIZER, lease_is_fresh, shard_lease_name, shard_of
from wafleet.kube.client import ACCOUNTS, Conflict, NotFound
from wafleet_operator.actions import Indexes, OperatorState, info_of, statefulset


async def orphan_cleanup(
    state: OperatorState,
    body: kopf.Body,
    indexes: Indexes,
) -> tuple[float, str] | None:
    """None when done; else (seconds to wait, why) while the connector may still do it."""
    statefulsets, leases = indexes.statefulsets, indexes.leases
    meta = body["metadata"]
    shard = shard_of(dict(body))
    now = datetime.now(UTC)
    sts = statefulset(state, statefulsets)
    replicas = 0 if sts is None else int(sts["replicas"])
    lease_name = shard_lease_name(state.config.connector_statefulset, shard or 0)
    lease = next(iter(leases.get(lease_name, [])), None)
    alive = (
        shard is not None and shard < replicas and lease is not None and lease_is_fresh(lease, now)
    )
    deleted_at = parse_iso(meta.get("deletionTimestamp")) or now
    left = state.config.cleanup_timeout - (now - deleted_at).total_seconds()
    if alive:
        return 2.0, f"shard {shard} is running"
    if left > 0:
        return min(10.0, left), f"shard {shard} is gone or silent; taking over in {left:.0f} s"
    finalizers = [f for f in meta.get("finalizers", []) if f != CLEANUP_FINALIZER]
    try:
        await state.kube.patch(
            ACCOUNTS,
            meta["namespace"],
            meta["name"],
            {"metadata": {"finalizers": finalizers, "resourceVersion": meta["resourceVersion"]}},
        )
    except NotFound:
        return None
    except Conflict:
        return 1.0, "the account changed; again"
    kopf.warn(
        body,
        reason="CleanupOrphaned",
        message=f"shard {shard} is gone: removed the finalizer without logging the device out "
        "(its session files were on that shard's volume)",
    )
    return None


_NOT_RUNNING = {
    "Pending",
    "Suspended",
    "LoggedOut",
    "QRTimeout",
    "PasskeyRequired",
    "Replaced",
    "Failed",
    "Moving",  # the move's own state machine watches the shards' Leases
    None,
}


async def flag_if_shard_silent(state: OperatorState, body: kopf.Body, indexes: Indexes) -> None:
    """Pending, with the reason, if the account's shard Lease exists but is not renewed."""
    account = info_of(body)
    phase = (body.get("status") or {}).get("phase")
    if account.shard is None or account.deleting or phase in _NOT_RUNNING:
        return
    lease_name = shard_lease_name(state.config.connector_statefulset, account.shard)
    lease = next(iter(indexes.leases.get(lease_name, [])), None)
    if lease is None or lease_is_fresh(lease, datetime.now(UTC)):
        return  # never started yet (its own Pending), or alive
    reason = (
        f"the connector of shard {account.shard} stopped renewing its lease; "
        "the account runs again when it is back"
    )
    meta = body["metadata"]
    patch = {
        "metadata": {"resourceVersion": meta["resourceVersion"]},
        "status": {"phase": "Pending", "reason": reason},
    }
    with contextlib.suppress(NotFound, Conflict):  # gone, or the connector wrote first
        await state.kube.patch(
            ACCOUNTS, meta["namespace"], meta["name"], patch, subresource="status"
        )
