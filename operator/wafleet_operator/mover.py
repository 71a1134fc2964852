"""The planned moves, on the API: drain, consolidation, rebalance and failover.

A loop of the operator (like the fleet status report, and for the same reason: a kopf
timer on the fleet object would put kopf's finalizer on it) runs the planners of
move_planner.py over the indexes every few seconds. A planned move is asked for as a
person asks for one, with the ``wafleet.io/move-to`` annotation (and its reason in
``wafleet.io/move-reason``); moves.py takes it from there. Failover does not ask: the
dead shard cannot hand anything over, so the account is relabelled at once with
generation 0 and its new shard restores the latest backup.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import kopf

from wafleet.kube.client import ACCOUNTS, Conflict, Invalid, NotFound
from wafleet.kube.handoff import (
    HANDOFF_ANNOTATION,
    MOVE_REASON_ANNOTATION,
    MOVE_TO_ANNOTATION,
    Handoff,
    guarded_patch,
    handoff_of,
    move_to_of,
)
from wafleet_operator import moves
from wafleet_operator.actions import Indexes, OperatorState
from wafleet_operator.fleet_view import view_of
from wafleet_operator.move_planner import MoveRequest, failover, plan

logger = logging.getLogger(__name__)


async def run_planners(state: OperatorState, indexes: Indexes) -> None:
    """One round: fail over dead shards, then ask for the paced planned moves."""
    view = view_of(state, indexes)
    async with state.fleet.lock:
        for request in failover(view):
            await _fail_over(state, request)
    for request in plan(view):
        await _ask(state, request)


async def _ask(state: OperatorState, request: MoveRequest) -> None:
    """Write the move-to annotation, unless the account changed since the index saw it."""
    namespace = state.config.namespace
    try:
        body = await state.kube.get(ACCOUNTS, namespace, request.name)
    except NotFound:
        return
    meta = body["metadata"]
    current = (meta.get("labels") or {}).get("wafleet.io/shard")
    if move_to_of(body) is not None or handoff_of(body) is not None:
        return  # a move is asked for already (a person's, or an earlier round's)
    if current != str(request.source) or meta.get("deletionTimestamp"):
        return
    ops = guarded_patch(
        body,
        expect={MOVE_TO_ANNOTATION: None, HANDOFF_ANNOTATION: None},
        annotations={
            MOVE_TO_ANNOTATION: str(request.target),
            MOVE_REASON_ANNOTATION: request.reason,
        },
    )
    try:
        await state.kube.patch(ACCOUNTS, namespace, request.name, ops, kind="json")
    except (Invalid, Conflict, NotFound):
        return
    logger.info(
        "move planned",
        extra={"account": request.name, "from": request.source, "to": request.target},
    )


async def _fail_over(state: OperatorState, request: MoveRequest) -> None:
    """Relabel the dead shard's account onto a live one, to start from its latest backup."""
    namespace = state.config.namespace
    try:
        body: Any = await state.kube.get(ACCOUNTS, namespace, request.name)
    except NotFound:
        return
    meta = body["metadata"]
    if meta.get("deletionTimestamp"):
        return
    current = (meta.get("labels") or {}).get("wafleet.io/shard")
    if current != str(request.source):
        return  # moved meanwhile
    open_move = handoff_of(body)
    if open_move is not None and open_move.target == request.target:
        move_id, at = open_move.id, open_move.at  # its source never answered: same move
    else:
        move_id, at = uuid.uuid4().hex[:12], moves.stamp()
    handoff = Handoff(
        id=move_id, source=request.source, target=request.target, at=at, reason="failover"
    )
    if await moves.relabel(state, kopf.Body(body), handoff, 0):
        state.fleet.reserve(request.name, request.target)
        if open_move is None or open_move.target != request.target:
            state.counts.moves_started["failover"] += 1
        logger.warning(
            "account failed over",
            extra={"account": request.name, "from": request.source, "to": request.target},
        )
