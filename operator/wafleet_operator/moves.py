"""The operator's half of a move between shards (docs/design/mobility.md, steps 1, 3, 6).

Every step reads the account's resource (annotations and status) and writes one patch
with the resourceVersion it read, so a SIGKILL between two steps, or two operator
replicas, can only repeat a step, never skip one or take it twice:

- ``wafleet.io/move-to`` and no handoff: check the target, open the move (``handoff``);
- the source wrote ``status.handoff`` with the generation: relabel onto the target;
- the source wrote an error, or the move-to annotation was removed: cancel the move;
- the source did not answer within ``moves.timeout`` and its shard's Lease expired (so
  nothing drives the device any more): relabel with generation 0 (the latest backup);
- the target wrote ``restored`` and left the Pending/Connecting phases: close the move.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf

from wafleet.core.models import iso, parse_iso
from wafleet.core.phases import Phase
from wafleet.kube.account_cr import SHARD_LABEL, lease_is_fresh, shard_lease_name, shard_of
from wafleet.kube.client import ACCOUNTS, Conflict, NotFound
from wafleet.kube.handoff import (
    HANDOFF_ANNOTATION,
    MOVE_REASON_ANNOTATION,
    MOVE_TO_ANNOTATION,
    Handoff,
    handoff_of,
    handoff_status_of,
    move_to_of,
    parse_ordinal,
)
from wafleet_operator.actions import (
    Indexes,
    OperatorState,
    policy_now,
    scale,
    statefulset,
    values,
)
from wafleet_operator.fleet import AccountInfo
from wafleet_operator.move_planner import loads_with_moves

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
# The target's phases that mean it has not yet made the session its own.
_STARTING = {Phase.MOVING.value, Phase.PENDING.value, Phase.CONNECTING.value, None}


def now() -> datetime:
    return datetime.now(UTC)


def stamp() -> str:
    return iso(now()) or ""


def lease_current(state: OperatorState, indexes: Indexes, ordinal: int) -> bool | None:
    """Whether shard ``ordinal``'s Lease is held and renewed; None when it has none yet."""
    name = shard_lease_name(state.config.connector_statefulset, ordinal)
    lease = next(iter(indexes.leases.get(name, [])), None)
    return None if lease is None else lease_is_fresh(dict(lease), now())


async def step(state: OperatorState, body: kopf.Body, indexes: Indexes) -> None:
    """Take the next step of the account's move, if it has one to take."""
    meta = body.get("metadata", {})
    if meta.get("deletionTimestamp"):
        return  # a delete ends a move: the connector unlinks the device where it is
    handoff = handoff_of(dict(body))
    if handoff is None:
        if move_to_of(dict(body)) is not None:
            await _open(state, body, indexes)
        return
    if not handoff.relabelled:
        await _from_source(state, body, indexes, handoff)
        return
    done = handoff_status_of(dict(body))
    phase = (body.get("status") or {}).get("phase")
    restored = done is not None and done.id == handoff.id and done.restored == handoff.generation
    if restored and phase not in _STARTING:
        await _close(state, body, handoff, phase)


# ----- step 1: open ---------------------------------------------------------------------
def _refusal(
    state: OperatorState, body: kopf.Body, indexes: Indexes, asked: str
) -> tuple[int | None, str | None]:
    """(the target, None), or (None, why it cannot go there); (None, None): nothing to do."""
    shard = shard_of(dict(body))
    resolved = policy_now(state, indexes)
    policy, mobility = resolved.policy, resolved.mobility
    target = parse_ordinal(asked)
    if target is None:
        return None, f"{MOVE_TO_ANNOTATION} must be a shard ordinal such as 1, not {asked[:40]!r}"
    if shard is None:
        return None, "the account has no shard yet: it is placed where there is room"
    if target == shard:
        return None, None
    if target >= policy.max_shards:
        return None, (
            f"shard {target} is beyond maxShards {policy.max_shards} "
            f"(ordinals 0 to {policy.max_shards - 1}); raise maxShards first"
        )
    if target in mobility.drain:
        return None, f"shard {target} is draining (spec.drain of the WhatsAppFleet)"
    if lease_current(state, indexes, target) is False:
        sts = statefulset(state, indexes.statefulsets)
        if sts is not None and target < int(sts["replicas"]):
            return None, f"shard {target} is not running (its Lease is not renewed)"
    loads = loads_with_moves(list(values(indexes.accounts)))
    if loads.get(target, 0) >= policy.sessions_per_shard:
        return None, (
            f"shard {target} is full ({loads.get(target, 0)} of "
            f"{policy.sessions_per_shard} accounts, moves into it included)"
        )
    return target, None


async def _open(state: OperatorState, body: kopf.Body, indexes: Indexes) -> None:
    asked = move_to_of(dict(body)) or ""
    shard = shard_of(dict(body))
    async with state.fleet.lock:  # capacity is decided under the placements' lock
        target, why = _refusal(state, body, indexes, asked)
        if target is None or shard is None:
            await _annotate(state, body, {MOVE_TO_ANNOTATION: None, MOVE_REASON_ANNOTATION: None})
            if why is not None:
                kopf.warn(body, reason="MoveRefused", message=f"not moved: {why}")
            return
        reason = _annotations(body).get(MOVE_REASON_ANNOTATION) or "requested"
        handoff = Handoff(
            id=uuid.uuid4().hex[:12], source=shard, target=target, at=stamp(), reason=reason
        )
        if not await _annotate(state, body, {HANDOFF_ANNOTATION: handoff.to_json()}):
            return
        state.fleet.reserve(body["metadata"]["name"], target)
    kopf.info(
        body,
        reason="MoveStarted",
        message=f"moving from shard {shard} to shard {target} ({reason})",
    )
    await _set_phase(state, body, f"moving from shard {shard} to shard {target}")
    await scale(state, indexes)  # the target may be a shard not running yet


# ----- step 3: relabel, or cancel ------------------------------------------------------
async def _from_source(
    state: OperatorState, body: kopf.Body, indexes: Indexes, handoff: Handoff
) -> None:
    done = handoff_status_of(dict(body))
    if move_to_of(dict(body)) is None:
        await _cancel(state, body, "the move-to annotation was removed")
        return
    if done is not None and done.id == handoff.id:
        if done.error is not None:
            await _cancel(state, body, done.error)
        elif done.generation is not None:
            await relabel(state, body, handoff, done.generation)
        return
    opened = parse_ordinal_time(handoff.at)
    waited = 0.0 if opened is None else (now() - opened).total_seconds()
    timeout = policy_now(state, indexes).mobility.move_timeout
    if waited < timeout or lease_current(state, indexes, handoff.source):
        return  # the source has time left, or still holds its Lease (and so may act)
    await relabel(state, body, handoff, 0)


def parse_ordinal_time(text: str) -> datetime | None:
    return parse_iso(text) if text else None


async def relabel(state: OperatorState, body: kopf.Body, handoff: Handoff, generation: int) -> bool:
    """Put the account on the move's target, with the generation it must start from."""
    moved = Handoff(
        id=handoff.id,
        source=handoff.source,
        target=handoff.target,
        at=handoff.at,
        generation=generation,
        reason=handoff.reason,
    )
    patch = {
        "metadata": {
            "labels": {SHARD_LABEL: str(handoff.target)},
            "annotations": {HANDOFF_ANNOTATION: moved.to_json()},
            "resourceVersion": body["metadata"]["resourceVersion"],
        }
    }
    if not await _patch(state, body, patch):
        return False
    state.fleet.record(body["metadata"]["name"], handoff.target)
    if generation:
        message = f"shard {handoff.source} let the session go (backup generation {generation})"
        kopf.info(body, reason="HandedOver", message=f"{message}; now on shard {handoff.target}")
    else:
        kopf.warn(
            body,
            reason="Fenced",
            message=f"shard {handoff.source} did not let the session go and its Lease expired: "
            f"shard {handoff.target} starts from the latest backup",
        )
    return True


async def _cancel(state: OperatorState, body: kopf.Body, why: str) -> None:
    removed = {HANDOFF_ANNOTATION: None, MOVE_TO_ANNOTATION: None, MOVE_REASON_ANNOTATION: None}
    if await _annotate(state, body, removed):
        state.fleet.release(body["metadata"]["name"])
        kopf.warn(body, reason="MoveCancelled", message=f"the move was cancelled: {why}"[:1000])


# ----- step 6: close -------------------------------------------------------------------
async def _close(state: OperatorState, body: kopf.Body, handoff: Handoff, phase: Any) -> None:
    removed = {HANDOFF_ANNOTATION: None, MOVE_TO_ANNOTATION: None, MOVE_REASON_ANNOTATION: None}
    if await _annotate(state, body, removed):
        state.fleet.release(body["metadata"]["name"])
        kopf.info(
            body,
            reason="Moved",
            message=f"moved from shard {handoff.source} to shard {handoff.target}; it is {phase}",
        )


# ----- writes --------------------------------------------------------------------------
def _annotations(body: Mapping[str, Any]) -> Mapping[str, str]:
    found: Mapping[str, str] = body.get("metadata", {}).get("annotations") or {}
    return found


async def _annotate(state: OperatorState, body: kopf.Body, annotations: Obj) -> bool:
    meta = body["metadata"]
    patch = {"metadata": {"annotations": annotations, "resourceVersion": meta["resourceVersion"]}}
    return await _patch(state, body, patch)


async def _patch(state: OperatorState, body: kopf.Body, patch: Obj) -> bool:
    """One write over the resource as read; False if it changed meanwhile (its next event
    brings this step back) or is gone."""
    meta = body["metadata"]
    try:
        await state.kube.patch(ACCOUNTS, meta["namespace"], meta["name"], patch)
    except (Conflict, NotFound):
        return False
    return True


async def _set_phase(state: OperatorState, body: kopf.Body, reason: str) -> None:
    """Phase Moving at once, whatever the source does next (it writes the same)."""
    meta = body["metadata"]
    patch = {"status": {"phase": Phase.MOVING.value, "reason": reason}}
    try:
        await state.kube.patch(
            ACCOUNTS, meta["namespace"], meta["name"], patch, subresource="status"
        )
    except (Conflict, NotFound):
        return


def info_moving(accounts: list[AccountInfo]) -> int:
    """How many accounts have a move asked for or open."""
    return sum(1 for a in accounts if a.moving)
