"""What the handlers do, on the API: place accounts, report it, scale, finish orphan clean-ups."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import kopf

from wafleet.core.models import iso, parse_iso
from wafleet.core.phones import mask_phone
from wafleet.kube.account_cr import (
    CLEANUP_FINALIZER,
    SHARD_LABEL,
    lease_is_fresh,
    merge_conditions,
    shard_lease_name,
    shard_of,
)
from wafleet.kube.client import ACCOUNTS, STATEFULSETS, Conflict, KubeClient, NotFound, Resource
from wafleet.kube.config import load_connection
from wafleet_operator.fleet import (
    AccountInfo,
    Assign,
    Decision,
    DuplicatePhone,
    Fleet,
    Keep,
    NoCapacity,
)
from wafleet_operator.settings import OperatorSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Indexes:
    """kopf's indexes, as the handlers receive them by keyword."""

    accounts: Mapping[str, Iterable[AccountInfo]]
    statefulsets: Mapping[str, Iterable[Any]]
    leases: Mapping[str, Iterable[Any]]

    @classmethod
    def of(cls, kwargs: Mapping[str, Any]) -> Indexes:
        return cls(kwargs["accounts"], kwargs["statefulsets"], kwargs["leases"])


@dataclass
class OperatorState:
    """What the handlers share (kept in kopf's memo as ``memo.state``)."""

    config: OperatorSettings
    fleet: Fleet
    kube: KubeClient
    scaled_to: int | None = None  # the replicas last written, until the index shows them

    @classmethod
    def connect(cls, config: OperatorSettings) -> OperatorState:
        return cls(config=config, fleet=Fleet(config.policy), kube=KubeClient(load_connection()))


PEERINGS = Resource("kopf.dev", "v1", "kopfpeerings")


async def ensure_peering(state: OperatorState) -> None:
    """Create the KopfPeering object replicas meet through, if nobody has yet."""
    body = {
        "apiVersion": "kopf.dev/v1",
        "kind": "KopfPeering",
        "metadata": {"name": state.config.peering_name},
    }
    # Conflict: it exists (another replica, the chart, or an earlier run made it).
    with contextlib.suppress(Conflict):
        await state.kube.create(PEERINGS, state.config.namespace, body)


def _values(index: Mapping[str, Iterable[Any]]) -> Iterator[Any]:
    """Every value of a kopf index, lazily (a placed account never needs them)."""
    return (value for _, store in index.items() for value in store)


def _statefulset(
    state: OperatorState, statefulsets: Mapping[str, Iterable[Any]]
) -> dict[str, Any] | None:
    for entry in statefulsets.get(state.config.connector_statefulset, []):
        found: dict[str, Any] = entry
        return found
    return None


def info_of(body: Mapping[str, Any]) -> AccountInfo:
    meta = body.get("metadata", {})
    return AccountInfo(
        name=str(meta.get("name")),
        phone=str(body.get("spec", {}).get("phone", "")),
        created=str(meta.get("creationTimestamp", "")),
        shard=shard_of(dict(body)),
        deleting=meta.get("deletionTimestamp") is not None,
    )


async def reconcile(
    state: OperatorState,
    body: kopf.Body,
    indexes: Indexes,
) -> None:
    info = info_of(body)
    accounts, statefulsets = indexes.accounts, indexes.statefulsets
    sts = _statefulset(state, statefulsets)
    replicas = 0 if sts is None else int(sts["replicas"])
    if state.scaled_to is not None:
        # Place by the size just asked for, not the index's: a shard being scaled away
        # is empty, hence least loaded, and must not take new accounts.
        replicas = state.scaled_to
    async with state.fleet.lock:
        decision = state.fleet.decide(info, _values(accounts), replicas)
        if isinstance(decision, Assign):
            await _label(state, body, decision.shard)
    await _report(state, body, decision)
    if isinstance(decision, Assign):
        kopf.info(body, reason="Assigned", message=f"assigned to shard {decision.shard}")
        await scale(state, indexes)


async def _label(state: OperatorState, body: kopf.Body, shard: int) -> None:
    """Label the account with its shard, and add the connector's finalizer, atomically."""
    meta = body["metadata"]
    finalizers = list(meta.get("finalizers") or [])
    if CLEANUP_FINALIZER not in finalizers:
        finalizers.append(CLEANUP_FINALIZER)
    patch = {
        "metadata": {
            "labels": {SHARD_LABEL: str(shard)},
            "finalizers": finalizers,
            "resourceVersion": meta["resourceVersion"],  # fails if anyone wrote in between
        }
    }
    try:
        await state.kube.patch(ACCOUNTS, meta["namespace"], meta["name"], patch)
    except Conflict:
        raise kopf.TemporaryError(
            "the account changed while it was placed; again", delay=1
        ) from None
    state.fleet.record(meta["name"], shard)


def _assigned_condition(decision: Decision, phone: str) -> tuple[bool, str, str]:
    if isinstance(decision, Assign | Keep):
        return True, "Assigned", f"on shard {decision.shard}"
    if isinstance(decision, DuplicatePhone):
        return (
            False,
            "DuplicatePhone",
            f"phone {mask_phone(phone)} already belongs to account {decision.owner}; "
            "delete one of the two",
        )
    assert isinstance(decision, NoCapacity)
    return False, "NoCapacity", decision.message


async def _report(state: OperatorState, body: kopf.Body, decision: Decision) -> None:
    status = dict(body.get("status") or {})
    phone = str(body.get("spec", {}).get("phone", ""))
    assigned, reason, message = _assigned_condition(decision, phone)
    condition = {
        "type": "Assigned",
        "status": "True" if assigned else "False",
        "reason": reason,
        "message": message,
        "lastTransitionTime": iso(datetime.now(UTC)),
    }
    old_conditions = list(status.get("conditions") or [])
    new: dict[str, Any] = {
        "conditions": merge_conditions(old_conditions, [condition]),
        "phoneMasked": mask_phone(phone),
    }
    if isinstance(decision, Assign | Keep):
        new["shard"] = decision.shard
    if not assigned:  # once assigned, the phase is the connector's to write
        new["phase"] = "Pending"
        new["reason"] = message
    if all(status.get(key) == value for key, value in new.items()):
        return  # nothing changed: no write, no event loop
    meta = body["metadata"]
    # The connector writes this status too: only write over what this body shows.
    patch = {"metadata": {"resourceVersion": meta["resourceVersion"]}, "status": new}
    try:
        await state.kube.patch(
            ACCOUNTS, meta["namespace"], meta["name"], patch, subresource="status"
        )
    except (NotFound, Conflict):
        return  # gone, or changed since: its next event brings this back with the news
    if not assigned:
        previous = {c.get("type"): c for c in old_conditions}.get("Assigned", {})
        if previous.get("reason") != reason:
            kopf.warn(body, reason=reason, message=message)


async def scale(state: OperatorState, indexes: Indexes) -> None:
    """Set the connector StatefulSet's replicas to what the placements need."""
    accounts = indexes.accounts
    sts = _statefulset(state, indexes.statefulsets)
    if sts is None:
        logger.warning("connector StatefulSet %s not found", state.config.connector_statefulset)
        return
    desired = state.fleet.desired_replicas(_values(accounts))
    current = int(sts["replicas"])
    if state.scaled_to == current:
        state.scaled_to = None  # the index has caught up with our last write
    if desired in (current, state.scaled_to):
        return
    await state.kube.patch(
        STATEFULSETS,
        state.config.namespace,
        state.config.connector_statefulset,
        {"spec": {"replicas": desired}},
    )
    state.scaled_to = desired
    kopf.info(sts["body"], reason="Scaled", message=f"connector shards: {current} -> {desired}")


async def orphan_cleanup(
    state: OperatorState,
    body: kopf.Body,
    indexes: Indexes,
) -> tuple[float, str] | None:
    statefulsets, leases = indexes.statefulsets, indexes.leases
    """None when done; else (seconds to wait, why) while the connector may still do it."""
    meta = body["metadata"]
    shard = shard_of(dict(body))
    now = datetime.now(UTC)
    sts = _statefulset(state, statefulsets)
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
