"""What the handlers do, on the API: place accounts, report it, scale (liveness.py: dead
shards; fleet_report.py: the WhatsAppFleet status)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import kopf

from wafleet.core.models import iso
from wafleet.core.phones import mask_phone
from wafleet.kube.account_cr import (
    CLEANUP_FINALIZER,
    SHARD_LABEL,
    merge_conditions,
    shard_of,
)
from wafleet.kube.client import ACCOUNTS, STATEFULSETS, Conflict, KubeClient, NotFound, Resource
from wafleet.kube.config import load_connection
from wafleet.kube.handoff import (
    HANDOFF_ANNOTATION,
    MOVE_REASON_ANNOTATION,
    MOVE_TO_ANNOTATION,
    Handoff,
    handed_over,
)
from wafleet_operator.fleet import (
    AccountInfo,
    Assign,
    Decision,
    DuplicatePhone,
    Fleet,
    Keep,
    NoCapacity,
)
from wafleet_operator.metrics import COLLECTOR, OperatorCounts
from wafleet_operator.policy import FleetInfo, Resolved, governing, resolve
from wafleet_operator.reporter import Reporter
from wafleet_operator.settings import OperatorSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Indexes:
    """kopf's indexes, as the handlers receive them by keyword."""

    accounts: Mapping[str, Iterable[AccountInfo]]
    statefulsets: Mapping[str, Iterable[Any]]
    leases: Mapping[str, Iterable[Any]]
    fleets: Mapping[str, Iterable[FleetInfo]]

    @classmethod
    def of(cls, kwargs: Mapping[str, Any]) -> Indexes:
        return cls(kwargs["accounts"], kwargs["statefulsets"], kwargs["leases"], kwargs["fleets"])


@dataclass
class OperatorState:
    """What the handlers share (kept in kopf's memo as ``memo.state``)."""

    config: OperatorSettings
    fleet: Fleet
    kube: KubeClient
    scaled_to: int | None = None  # the replicas last written, until the index shows them
    reporter: Reporter = field(default_factory=Reporter)  # writes the WhatsAppFleet status
    mover: Reporter = field(default_factory=Reporter)  # runs the move planners (mover.py)
    counts: OperatorCounts = field(default_factory=OperatorCounts)  # for the metrics

    @classmethod
    def connect(cls, config: OperatorSettings) -> OperatorState:
        """The process's state: it counts into the process's metrics (metrics.py)."""
        return cls(
            config=config,
            fleet=Fleet(),
            kube=KubeClient(load_connection()),
            counts=COLLECTOR.counts,
        )


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


def values(index: Mapping[str, Iterable[Any]]) -> Iterator[Any]:
    """Every value of a kopf index, lazily (a placed account never needs them)."""
    return (value for _, store in index.items() for value in store)


def fleets_of(state: OperatorState, indexes: Indexes) -> list[FleetInfo]:
    """The WhatsAppFleet objects naming this operator's StatefulSet (or none: its own)."""
    own = state.config.connector_statefulset
    return [*indexes.fleets.get(own, []), *indexes.fleets.get("", [])]


def policy_now(state: OperatorState, indexes: Indexes) -> Resolved:
    """The policy in effect: the governing fleet object's spec over the env defaults."""
    fleet, _ = governing(fleets_of(state, indexes))
    return resolve(
        None if fleet is None else fleet.spec,
        state.config.policy,
        state.config.shard_limit,
        state.config.mobility,
    )


def statefulset(
    state: OperatorState, statefulsets: Mapping[str, Iterable[Any]]
) -> dict[str, Any] | None:
    for entry in statefulsets.get(state.config.connector_statefulset, []):
        found: dict[str, Any] = entry
        return found
    return None


def info_of(body: Mapping[str, Any]) -> AccountInfo:
    meta = body.get("metadata", {})
    annotations = meta.get("annotations") or {}
    phase = (body.get("status") or {}).get("phase")
    return AccountInfo(
        name=str(meta.get("name")),
        phone=str(body.get("spec", {}).get("phone", "")),
        created=str(meta.get("creationTimestamp", "")),
        shard=shard_of(dict(body)),
        deleting=meta.get("deletionTimestamp") is not None,
        phase=phase if isinstance(phase, str) else None,
        move_to=annotations.get(MOVE_TO_ANNOTATION),
        move_reason=annotations.get(MOVE_REASON_ANNOTATION),
        handoff=Handoff.parse(annotations.get(HANDOFF_ANNOTATION)),
        handed_over=handed_over((body.get("status") or {}).get("handoff")),
    )


async def reconcile(
    state: OperatorState,
    body: kopf.Body,
    indexes: Indexes,
    excluded: Callable[[], frozenset[int]] = frozenset,
) -> None:
    """Place the account if it has no shard (``excluded``: the shards that take nobody new,
    draining or dead, asked only for an account to place), and keep its status in step."""
    info = info_of(body)
    accounts, statefulsets = indexes.accounts, indexes.statefulsets
    sts = statefulset(state, statefulsets)
    replicas = 0 if sts is None else int(sts["replicas"])
    if state.scaled_to is not None:
        # Place by the size just asked for, not the index's: a shard being scaled away
        # is empty, hence least loaded, and must not take new accounts.
        replicas = state.scaled_to
    policy = policy_now(state, indexes).policy
    async with state.fleet.lock:
        skip = excluded() if info.shard is None else frozenset()
        decision = state.fleet.decide(info, values(accounts), replicas, policy, skip)
        if isinstance(decision, Assign):
            await _label(state, body, decision.shard)
    await _report(state, body, decision)
    if isinstance(decision, Assign):
        state.counts.placements += 1
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
    sts = statefulset(state, indexes.statefulsets)
    if sts is None:
        logger.warning("connector StatefulSet %s not found", state.config.connector_statefulset)
        return
    desired = state.fleet.desired_replicas(values(accounts), policy_now(state, indexes).policy)
    current = int(sts["replicas"])
    if state.scaled_to == current:
        state.scaled_to = None  # the index has caught up with our last write
    if desired in (current, state.scaled_to):
        return
    state.reporter.kick()
    await state.kube.patch(
        STATEFULSETS,
        state.config.namespace,
        state.config.connector_statefulset,
        {"spec": {"replicas": desired}},
    )
    state.scaled_to = desired
    kopf.info(sts["body"], reason="Scaled", message=f"connector shards: {current} -> {desired}")
