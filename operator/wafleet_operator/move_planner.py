"""Planned moves between shards: drain, consolidation, rebalance, failover (no kopf, no I/O).

The operator calls these from a periodic loop over its index (docs/design/mobility.md);
each request becomes a ``wafleet.io/move-to`` annotation (``plan``) or a direct relabel
(``failover``). Two rules keep them safe across rounds whose writes the index shows late:

- room is counted where accounts will be: a move holds room on its target from the moment
  it is asked for, and on its source until it is relabelled (both must fit meanwhile);
- planned moves are paced (``moves.concurrency``) and never touch an account that is
  moving, deleting, or not settled in a phase a move can start from.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from wafleet.core.phases import Phase
from wafleet_operator.fleet import AccountInfo
from wafleet_operator.planner import MobilityPolicy, ShardPolicy, choose_shard

# Settled phases: connected, or waiting for a person. Pending, Connecting, Reconnecting,
# Moving and Failed may be starting or stuck; such an account gets its turn later.
MOVABLE_PHASES = frozenset(
    {
        Phase.CONNECTED,
        Phase.QR_READY,
        Phase.PAIRING_CODE_READY,
        Phase.LOGGED_OUT,
        Phase.QR_TIMEOUT,
        Phase.PASSKEY_REQUIRED,
        Phase.SUSPENDED,
        Phase.REPLACED,
    }
)


@dataclass(frozen=True)
class MoveRequest:
    name: str  # the account (resource name)
    source: int
    target: int
    reason: str  # drain, rebalance, consolidate, failover


@dataclass(frozen=True)
class FleetView:
    """What the planners decide from: the index, the StatefulSet, the fleet's policies."""

    accounts: Sequence[AccountInfo]  # every account from the operator's index
    replicas: int  # the StatefulSet's replicas now
    policy: ShardPolicy
    mobility: MobilityPolicy
    dead: frozenset[int] = frozenset()  # Lease expired longer than failover.after


def _placed(accounts: Iterable[AccountInfo]) -> Iterator[tuple[int, AccountInfo]]:
    """Accounts that hold a shard: deleting ones are on their way out, unplaced hold none."""
    for account in accounts:
        if account.shard is not None and not account.deleting:
            yield account.shard, account


def _held(shard: int, account: AccountInfo) -> set[int]:
    """Shards an account needs room on: an open move's target, and its source until the
    relabel (the source still runs or owns the session until then)."""
    if account.handoff is None:
        return {shard}
    if account.handoff.relabelled:
        return {account.handoff.target}
    return {shard, account.handoff.target}


def loads_with_moves(accounts: Iterable[AccountInfo]) -> dict[int, int]:
    """Load per shard, an open move counting on both ends until it is relabelled."""
    return dict(Counter(o for shard, a in _placed(accounts) for o in _held(shard, a)))


def _asked_target(shard: int, account: AccountInfo, policy: ShardPolicy) -> int | None:
    """A ``move-to`` not opened yet: its target's room is as good as taken (the operator
    opens it soon), unless it is not a shard the operator could open it to."""
    text = (account.move_to or "").strip()
    if account.handoff is not None or not (text.isascii() and text.isdigit()):
        return None
    target = int(text)
    return target if target != shard and target < policy.max_shards else None


def _reserved(view: FleetView) -> Counter[int]:
    """``loads_with_moves``, plus the room that moves asked for and not opened yet hold."""
    loads = Counter(loads_with_moves(view.accounts))
    for shard, account in _placed(view.accounts):
        asked = _asked_target(shard, account, view.policy)
        if asked is not None:
            loads[asked] += 1
    return loads


def _destination(shard: int, account: AccountInfo, policy: ShardPolicy) -> int:
    """Where the account will be once its move (open or asked for) is done."""
    if account.handoff is not None:
        return account.handoff.target
    asked = _asked_target(shard, account, policy)
    return shard if asked is None else asked


def _movable(account: AccountInfo) -> bool:
    return not account.moving and account.phase in MOVABLE_PHASES


def draining(view: FleetView) -> frozenset[int]:
    """Shards being emptied: the listed ones that exist and, with rebalance and
    consolidation, those the load fits without and occupied ones beyond maxShards (it was
    lowered). Without consolidation a lowered maxShards moves nobody: it only stops new
    placements there (drain such a shard to empty it)."""
    loads = _reserved(view)
    occupied = {ordinal for ordinal, count in loads.items() if count > 0}
    existing = max(view.replicas, max(occupied, default=-1) + 1)
    listed = {ordinal for ordinal in view.mobility.drain if 0 <= ordinal < existing}
    consolidation = view.mobility.rebalance and view.mobility.consolidate
    beyond = {o for o in occupied if o >= view.policy.max_shards} if consolidation else set()
    highest = _highest_kept(view)
    active = occupied | set(range(view.replicas))
    consolidating = {o for o in active if highest is not None and o > highest}
    return frozenset(listed | beyond | consolidating)


def _highest_kept(view: FleetView) -> int | None:
    """Under consolidation, the highest shard the fleet keeps (None: no consolidation).

    The fleet needs k = max(minShards, ceil(load / sessionsPerShard), 1) shards: the k
    lowest ordinals that are neither listed for drain nor dead (those take nobody, so they
    cannot count among the k). Every shard above the highest of them drains."""
    mobility, policy = view.mobility, view.policy
    if not (mobility.rebalance and mobility.consolidate):
        return None
    load = sum(1 for _ in _placed(view.accounts))
    needed = max(policy.min_shards, math.ceil(load / policy.sessions_per_shard), 1)
    kept = [
        ordinal
        for ordinal in range(policy.max_shards)
        if ordinal not in mobility.drain and ordinal not in view.dead
    ][:needed]
    return kept[-1] if kept else None


def _closed(view: FleetView) -> frozenset[int]:
    """Shards no move may target: draining, listed for drain (even before they run), dead,
    and under consolidation every ordinal above the kept ones, running or not (else a move
    could open a shard that the next round drains again)."""
    highest = _highest_kept(view)
    above = range(highest + 1, view.policy.max_shards) if highest is not None else range(0)
    return draining(view) | view.mobility.drain | view.dead | frozenset(above)


def plan(view: FleetView) -> list[MoveRequest]:
    """Planned moves, at most the free part of ``moves.concurrency``: drain and
    consolidation first (highest shard first, by name within one), rebalance only when
    no account of a draining shard waits to move. Failover's targets, computed from the
    same view, hold their room here too, so both batches together never overfill a shard.
    A move that fits nowhere is skipped (asked again next round)."""
    free = view.mobility.concurrency - sum(1 for account in view.accounts if account.moving)
    if free <= 0:
        return []
    reserved = _reserved(view)
    failed_over = {request.name: request.target for request in _failover(view, reserved)}
    where = Counter(
        failed_over.get(account.name, _destination(shard, account, view.policy))
        for shard, account in _placed(view.accounts)
    )
    empties, closed = draining(view), _closed(view)
    waiting = sorted(
        (
            (shard, account)
            for shard, account in _placed(view.accounts)
            if shard in empties and shard not in view.dead and _movable(account)
        ),
        key=lambda pair: (-pair[0], pair[1].name),
    )
    requests: list[MoveRequest] = []
    for shard, account in waiting:
        if len(requests) >= free:
            break
        target = choose_shard(reserved, view.replicas, view.policy, excluded=closed | {shard})
        if target is not None:
            reason = "drain" if shard in view.mobility.drain else "consolidate"
            requests.append(MoveRequest(account.name, shard, target, reason))
            reserved[target] += 1
    if waiting or not view.mobility.rebalance:
        return requests
    return _rebalance(view, free, reserved, where, closed)


def _rebalance(
    view: FleetView,
    free: int,
    reserved: Counter[int],
    where: Counter[int],
    closed: frozenset[int],
) -> list[MoveRequest]:
    """Fullest to emptiest, one account at a time, while the spread of the running shards
    exceeds maxSkew. Spread is measured where accounts will be (so open moves are not
    undone), room where they hold it. A move is made only between shards two or more apart:
    each one lowers the sum of squared loads, so repeated rounds converge (no ping-pong)."""
    policy = view.policy
    top = min(max(view.replicas, policy.min_shards), policy.max_shards)
    shards = [ordinal for ordinal in range(top) if ordinal not in closed]
    if len(shards) < 2:
        return []
    names: dict[int, list[str]] = {ordinal: [] for ordinal in shards}
    for shard, account in _placed(view.accounts):
        if shard in names and _movable(account):
            names[shard].append(account.name)
    for listed in names.values():
        listed.sort(reverse=True)  # pop() takes the first by name
    requests: list[MoveRequest] = []
    while len(requests) < free:
        spread = max(where[o] for o in shards) - min(where[o] for o in shards)
        sources = [o for o in shards if names[o]]
        targets = [o for o in shards if reserved[o] < policy.sessions_per_shard]
        if spread <= view.mobility.max_skew or not sources or not targets:
            break
        source = max(sources, key=lambda o: (where[o], o))
        target = min(targets, key=lambda o: (where[o], o))
        if where[source] - where[target] < 2:
            break
        requests.append(MoveRequest(names[source].pop(), source, target, "rebalance"))
        where[source] -= 1
        where[target] += 1
        reserved[target] += 1
    return requests


def failover(view: FleetView) -> list[MoveRequest]:
    """Every account of a dead shard, onto live shards with room (by shard, then name).
    Not paced: a dead shard's accounts are all offline already."""
    return _failover(view, _reserved(view))


def _failover(view: FleetView, reserved: Counter[int]) -> list[MoveRequest]:
    """``failover``, taking the room it uses from ``reserved``. A move already opened or
    asked for keeps its target when that one is alive (its room is held already): its
    source will never answer, so the relabel is all that is left of it."""
    if not view.mobility.failover or not view.dead:
        return []
    closed = _closed(view)
    requests: list[MoveRequest] = []
    for shard, account in sorted(_placed(view.accounts), key=lambda p: (p[0], p[1].name)):
        if shard not in view.dead:
            continue
        target = _kept_target(shard, account, view, closed)
        if target is None:
            target = choose_shard(reserved, view.replicas, view.policy, excluded=closed)
            if target is None:
                continue  # nothing fits: asked again next round
            reserved[target] += 1
        requests.append(MoveRequest(account.name, shard, target, "failover"))
    return requests


def _kept_target(
    shard: int, account: AccountInfo, view: FleetView, closed: frozenset[int]
) -> int | None:
    """The target a dead shard's account is already headed to, when it may still go there:
    an open move's target while alive, or an open shard a ``move-to`` asked for."""
    handoff = account.handoff
    if handoff is not None:
        alive = handoff.target != shard and handoff.target not in view.dead
        return handoff.target if alive else None
    asked = _asked_target(shard, account, view.policy)
    return asked if asked is not None and asked not in closed else None
