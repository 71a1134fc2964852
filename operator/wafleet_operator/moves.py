"""The operator's half of a move between shards (docs/design/mobility.md, steps 1, 3, 6).

Every step reads the account's resource (annotations and status) and writes one JSON
patch guarded by a ``test`` of the annotations it read (wafleet.kube.handoff), so a
SIGKILL between two steps, or a stale read, can only repeat a step, never skip one or
take it twice:

- ``wafleet.io/move-to`` and no handoff: check the target, open the move (``handoff``);
- the source wrote ``status.handoff`` with the generation: relabel onto the target;
- the source wrote an error, the move-to annotation was removed, or the source keeps its
  Lease but has not let go in ``HUNG_AFTER`` timeouts: cancel the move;
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
from wafleet.kube.account_cr import (
    API_VERSION,
    KIND,
    SHARD_LABEL,
    lease_is_fresh,
    shard_lease_name,
    shard_of,
)
from wafleet.kube.client import ACCOUNTS, EVENTS, Conflict, Invalid, KubeError, NotFound
from wafleet.kube.events import event_body
from wafleet.kube.handoff import (
    HANDOFF_ANNOTATION,
    MOVE_REASON_ANNOTATION,
    MOVE_TO_ANNOTATION,
    Handoff,
    guarded_patch,
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
    values,
)
from wafleet_operator.fleet_view import view_of
from wafleet_operator.metrics import move_reason
from wafleet_operator.move_planner import draining

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
# The target's phases that mean it has not yet made the session its own.
_STARTING = {Phase.MOVING.value, Phase.PENDING.value, Phase.CONNECTING.value, None}
HUNG_AFTER = 3  # timeouts after which a source that keeps its Lease has the move cancelled


def now() -> datetime:
    return datetime.now(UTC)


def stamp() -> str:
    return iso(now()) or ""


def _lease(state: OperatorState, indexes: Indexes, ordinal: int) -> Mapping[str, Any] | None:
    name = shard_lease_name(state.config.connector_statefulset, ordinal)
    found: Mapping[str, Any] | None = next(iter(indexes.leases.get(name, [])), None)
    return found


def lease_current(state: OperatorState, indexes: Indexes, ordinal: int) -> bool:
    """Whether shard ``ordinal``'s Lease is held and renewed (none yet: not current)."""
    lease = _lease(state, indexes, ordinal)
    return lease is not None and lease_is_fresh(dict(lease), now())


def lease_lost(state: OperatorState, indexes: Indexes, ordinal: int) -> bool:
    """A shard whose pod died: its Lease has a holder that stopped renewing it. A released
    Lease (no holder: the shard was stopped, or scaled away and is starting again) or none
    at all is a shard coming up, which takes the move once it runs."""
    lease = _lease(state, indexes, ordinal)
    if lease is None or not lease.get("holderIdentity"):
        return False
    return not lease_is_fresh(dict(lease), now())


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
    view = view_of(state, indexes)
    if target in mobility.drain or target in draining(view):
        return None, (
            f"shard {target} is draining (spec.drain of the WhatsAppFleet, or consolidation: "
            "the load fits without it)"
        )
    if target in view.dead:
        return None, f"shard {target} is failed over: its Lease stayed expired"
    if lease_lost(state, indexes, target):
        return None, (
            f"shard {target} is not running: its Lease is held but not renewed (its pod "
            "died, or cannot reach the API server)"
        )
    loads = state.fleet.loads(values(indexes.accounts))  # with moves the index lags behind
    if loads.get(target, 0) >= policy.sessions_per_shard:
        return None, (
            f"shard {target} is full ({loads.get(target, 0)} of "
            f"{policy.sessions_per_shard} accounts, moves into it included)"
        )
    return target, None


async def _open(state: OperatorState, body: kopf.Body, indexes: Indexes) -> None:
    asked = move_to_of(dict(body)) or ""
    shard = shard_of(dict(body))
    asking = {MOVE_TO_ANNOTATION: asked, HANDOFF_ANNOTATION: None}
    async with state.fleet.lock:  # capacity is decided under the placements' lock
        target, why = _refusal(state, body, indexes, asked)
        if target is not None and shard is not None:
            reason = _annotations(body).get(MOVE_REASON_ANNOTATION) or "requested"
            handoff = Handoff(
                id=uuid.uuid4().hex[:12], source=shard, target=target, at=stamp(), reason=reason
            )
            opened = {HANDOFF_ANNOTATION: handoff.to_json()}
            if not await _guarded(state, body, expect=asking, annotations=opened):
                return
            state.fleet.reserve(body["metadata"]["name"], target)
    if target is None or shard is None:
        dropped = {MOVE_TO_ANNOTATION: None, MOVE_REASON_ANNOTATION: None}
        if await _guarded(state, body, expect=asking, annotations=dropped) and why:
            state.counts.moved("refused")
            await announce(state, body, "MoveRefused", f"not moved: {why}", warning=True)
        return
    state.counts.moves_started[move_reason(reason)] += 1
    moving = f"moving from shard {shard} to shard {target}"
    await announce(state, body, "MoveStarted", f"{moving} ({reason})")
    await _set_phase(state, body, moving)
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
    opened = parse_iso(handoff.at) if handoff.at else None
    waited = 0.0 if opened is None else (now() - opened).total_seconds()
    timeout = policy_now(state, indexes).mobility.move_timeout
    if waited < timeout:
        return  # the source has time left
    if not lease_current(state, indexes, handoff.source):
        await relabel(state, body, handoff, 0, fenced=True)  # nothing drives the device now
    elif waited >= HUNG_AFTER * timeout:
        # It holds its Lease, so it may still act: only a cancel is safe (it keeps the
        # account, and runs it again if it had stopped it).
        why = (
            f"shard {handoff.source} holds its Lease but did not let the session go in "
            f"{waited:.0f} s (moves.timeout {timeout:g} s); it keeps the account"
        )
        await _cancel(state, body, why)


async def relabel(
    state: OperatorState,
    body: kopf.Body,
    handoff: Handoff,
    generation: int,
    *,
    fenced: bool = False,
) -> bool:
    """Put the account on the move's target, with the generation it must start from, if
    its handoff annotation is still the one ``body`` shows (none, for a failover of an
    account with no open move). ``fenced``: the source never answered."""
    moved = Handoff(
        id=handoff.id,
        source=handoff.source,
        target=handoff.target,
        at=handoff.at,
        generation=generation,
        reason=handoff.reason,
    )
    shown = _annotations(body)
    ok = await _guarded(
        state,
        body,
        # Still this move, and still wanted: a move-to removed meanwhile cancels it.
        expect={
            HANDOFF_ANNOTATION: shown.get(HANDOFF_ANNOTATION),
            MOVE_TO_ANNOTATION: shown.get(MOVE_TO_ANNOTATION),
        },
        annotations={HANDOFF_ANNOTATION: moved.to_json()},
        labels={SHARD_LABEL: str(handoff.target)},
    )
    if not ok:
        return False
    state.fleet.record(body["metadata"]["name"], handoff.target)
    source, target = handoff.source, handoff.target
    if fenced:
        await announce(
            state,
            body,
            "Fenced",
            f"shard {source} did not let the session go within the move timeout and its "
            f"Lease expired: shard {target} starts from the latest backup",
            warning=True,
        )
    elif handoff.reason == "failover":
        await announce(
            state,
            body,
            "FailedOver",
            f"shard {source} is gone (its Lease stayed expired): shard {target} starts from "
            "the latest backup",
            warning=True,
        )
    elif generation:
        await announce(
            state,
            body,
            "HandedOver",
            f"shard {source} let the session go (backup generation {generation}); now on "
            f"shard {target}",
        )
    else:
        await announce(
            state,
            body,
            "HandedOver",
            f"shard {source} had no session to hand over: shard {target} takes the latest "
            "backup, or links anew",
        )
    return True


async def _cancel(state: OperatorState, body: kopf.Body, why: str) -> None:
    if await _end(state, body):
        state.counts.moved("cancelled")
        await announce(state, body, "MoveCancelled", f"the move was cancelled: {why}", warning=True)


# ----- step 6: close -------------------------------------------------------------------
async def _close(state: OperatorState, body: kopf.Body, handoff: Handoff, phase: Any) -> None:
    if await _end(state, body):
        state.counts.moved("moved")
        moved = f"moved from shard {handoff.source} to shard {handoff.target}; it is {phase}"
        await announce(state, body, "Moved", moved)


async def _end(state: OperatorState, body: kopf.Body) -> bool:
    """Remove the move's annotations, if its handoff is still the one read."""
    shown = _annotations(body).get(HANDOFF_ANNOTATION)
    removed = {HANDOFF_ANNOTATION: None, MOVE_TO_ANNOTATION: None, MOVE_REASON_ANNOTATION: None}
    if not await _guarded(state, body, expect={HANDOFF_ANNOTATION: shown}, annotations=removed):
        return False
    state.fleet.release(body["metadata"]["name"])
    state.mover.kick()  # room for the next planned move
    return True


# ----- writes --------------------------------------------------------------------------
def _annotations(body: Mapping[str, Any]) -> Mapping[str, str]:
    found: Mapping[str, str] = body.get("metadata", {}).get("annotations") or {}
    return found


async def announce(
    state: OperatorState, body: kopf.Body, reason: str, message: str, *, warning: bool = False
) -> None:
    """An Event about the account: kopf's within a handler, else (the mover's loop, where
    kopf has no event queue) written directly."""
    try:
        (kopf.warn if warning else kopf.info)(body, reason=reason, message=message)
        return
    except LookupError:
        pass
    involved = {"apiVersion": API_VERSION, "kind": KIND, "metadata": dict(body["metadata"])}
    event = event_body(
        involved,
        warning=warning,
        reason=reason,
        message=message,
        component="wafleet-operator",
        instance=state.config.peering_name,
    )
    try:
        await state.kube.create(EVENTS, body["metadata"]["namespace"], event)
    except (KubeError, OSError) as exc:
        logger.debug("event not posted", extra={"error": str(exc)})


async def _guarded(
    state: OperatorState,
    body: Mapping[str, Any],
    *,
    expect: Mapping[str, str | None],
    annotations: Mapping[str, str | None] | None = None,
    labels: Mapping[str, str] | None = None,
) -> bool:
    """One JSON patch guarded by the annotations it depends on (wafleet.kube.handoff);
    False if one changed meanwhile (the account's next event brings this step back with
    the news) or the account is gone."""
    meta = body["metadata"]
    ops = guarded_patch(dict(body), expect=expect, annotations=annotations, labels=labels)
    try:
        await state.kube.patch(ACCOUNTS, meta["namespace"], meta["name"], ops, kind="json")
    except (Invalid, Conflict, NotFound):
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
