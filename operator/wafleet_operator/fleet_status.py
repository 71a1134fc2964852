"""The WhatsAppFleet status, as plain functions: shards, counts and conditions (no kopf).

``fleet_status`` computes the whole status from what the operator's indexes hold; the
reporter (fleet_report.py) writes it only when it differs from the status the object
shows. Conditions keep their lastTransitionTime while their status
stays the same, so an unchanged fleet computes an identical status and is not written.

Moves (docs/design/mobility.md) are read off the accounts: one row per account with a
``wafleet.io/move-to`` or an open ``wafleet.io/handoff``; the shards that drain are the
caller's (the move planner decides them), each shard row says whether it does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wafleet.core.models import iso
from wafleet.kube.account_cr import lease_is_fresh, merge_conditions
from wafleet.kube.handoff import parse_ordinal
from wafleet_operator.fleet import AccountInfo
from wafleet_operator.planner import ShardPolicy, no_capacity_message, room, shard_loads
from wafleet_operator.policy import FleetInfo, Resolved

Obj = dict[str, Any]
MESSAGE_MAX = 1024
MOVES_MAX = 1000  # rows of status.moves (the CRD's maxItems); movesInProgress counts all
REASON_MAX = 64
FLEET_FIELDS = (
    "accounts",
    "pending",
    "replicas",
    "policy",
    "shards",
    "moves",
    "movesInProgress",
    "draining",
)


@dataclass(frozen=True)
class LeaseView:
    """A shard's Lease as the status shows it."""

    holder: str | None = None
    current: bool = False


def lease_view(spec: Mapping[str, Any] | None, now: datetime) -> LeaseView:
    if spec is None:
        return LeaseView()
    holder = spec.get("holderIdentity")
    return LeaseView(
        holder=holder if isinstance(holder, str) and holder else None,
        current=lease_is_fresh(dict(spec), now),
    )


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _joined(parts: list[str], limit: int = MESSAGE_MAX - 100) -> str:
    """Parts joined with "; ", as many as fit, then how many were left out."""
    shown: list[str] = []
    for n, part in enumerate(parts):
        if sum(len(p) + 2 for p in [*shown, part]) > limit:
            return "; ".join(shown) + f"; and {len(parts) - n} more"
        shown.append(part)
    return "; ".join(shown)


def shard_rows(
    loads: Mapping[int, int],
    replicas: int,
    policy: ShardPolicy,
    leases: Mapping[int, LeaseView],
    draining: frozenset[int] = frozenset(),
) -> list[Obj]:
    """One row per shard: every running one, and any occupied one beyond them
    (``draining``: the ordinals being emptied)."""
    count = max(replicas, max((o for o, n in loads.items() if n > 0), default=-1) + 1)
    rows = []
    for ordinal in range(count):
        lease = leases.get(ordinal, LeaseView())
        row: Obj = {
            "ordinal": ordinal,
            "accounts": loads.get(ordinal, 0),
            "capacity": policy.sessions_per_shard if ordinal < policy.max_shards else 0,
            "leaseCurrent": lease.current,
            "draining": ordinal in draining,
        }
        if lease.holder is not None:
            row["leaseHolder"] = lease.holder
        rows.append(row)
    return rows


def _timestamp(text: str) -> str | None:
    """An RFC 3339 time as written, or None (status.moves[].since is a date-time: a bad
    one, say from a hand-edited annotation, would make the API server refuse the status)."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return text if "T" in text and parsed.tzinfo is not None else None


def _fits(reason: str | None) -> bool:
    """A planner's reason as the CRD takes it (a hand-edited one may not be)."""
    return bool(reason) and len(reason or "") <= 64


def move_rows(
    accounts: Iterable[AccountInfo], placements: Mapping[str, int]
) -> tuple[list[Obj], int]:
    """The moves in progress, by account (at most MOVES_MAX rows), and how many there are.

    An open handoff gives its source, target, reason and opening time; its step is
    ``Opened`` until the source has let the session go (``HandedOver``: its status names
    the move with a generation), then ``Restoring`` once the operator relabelled the
    account onto the target (a generation in the handoff). A ``move-to`` the operator has
    not opened yet is ``Opened`` too, from the account's shard to the ordinal asked (if it
    is one)."""
    rows: dict[str, Obj] = {}
    for account in accounts:
        if account.name in rows or not account.moving:
            continue
        handoff = account.handoff
        row: Obj = {"account": account.name}
        if handoff is not None:
            # What the CRD refuses is left out (a hand-edited annotation must not block the
            # whole status): a negative ordinal, a long reason, a time that is not one.
            ends = {"from": handoff.source, "to": handoff.target}
            row |= {key: ordinal for key, ordinal in ends.items() if ordinal >= 0}
            row["reason"] = handoff.reason[:REASON_MAX]
            if (since := _timestamp(handoff.at)) is not None:
                row["since"] = since
            let_go = account.handed_over == handoff.id
            row["step"] = (
                "Restoring" if handoff.relabelled else "HandedOver" if let_go else "Opened"
            )
        else:
            source = placements.get(account.name, account.shard)
            target = parse_ordinal(account.move_to or "")
            if source is not None:
                row["from"] = source
            if target is not None:
                row["to"] = target
            reason = account.move_reason if _fits(account.move_reason) else "requested"
            row |= {"reason": reason, "step": "Opened"}
        rows[account.name] = row
    ordered = [rows[name] for name in sorted(rows)]
    return ordered[:MOVES_MAX], len(ordered)


def ready_condition(
    loads: Mapping[int, int], replicas: int | None, leases: Mapping[int, LeaseView], sts: str
) -> tuple[bool, str, str]:
    """Ready: every placed account's shard is running and its Lease current."""
    if replicas is None:
        return False, "StatefulSetMissing", f"the connector StatefulSet {sts} was not found"
    occupied = sorted(o for o, n in loads.items() if n > 0)
    problems: list[str] = []
    reason = ""
    for ordinal in occupied:
        accounts = _plural(loads[ordinal], "account")
        lease = leases.get(ordinal, LeaseView())
        if ordinal >= replicas:
            problems.append(
                f"shard {ordinal} ({accounts}) is not running "
                f"(the StatefulSet has {_plural(replicas, 'replica')})"
            )
            reason = reason or "ShardNotRunning"
        elif not lease.current:
            held = f", last held by {lease.holder}" if lease.holder else ""
            problems.append(f"shard {ordinal} ({accounts}) has no current Lease{held}")
            reason = reason or "LeaseNotCurrent"
    if problems:
        return False, reason, _joined(problems)
    if not occupied:
        return True, "ShardsRunning", "no account is placed on a shard yet"
    placed = sum(loads[o] for o in occupied)
    return (
        True,
        "ShardsRunning",
        f"{_plural(placed, 'placed account')} on {_plural(len(occupied), 'shard')}, "
        "each shard running with a current Lease",
    )


def capacity_condition(
    loads: Mapping[int, int], policy: ShardPolicy, pending: int
) -> tuple[bool, str, str]:
    """CapacityAvailable: a new account would be placed now."""
    free = room(loads, policy)
    if free > 0:
        return (
            True,
            "RoomAvailable",
            f"room for {_plural(free, 'more account')} on up to "
            f"{_plural(policy.max_shards, 'shard')} of {policy.sessions_per_shard}",
        )
    waiting = f"; {pending} pending" if pending else ""
    return False, "NoCapacity", no_capacity_message(policy) + waiting


def policy_condition(resolved: Resolved) -> tuple[bool, str, str]:
    """PolicyApplied: the spec applies as written (over the operator's defaults)."""
    if resolved.as_asked:
        return True, "Applied", "in effect: " + resolved.describe()
    return False, "Adjusted", _joined([*resolved.notes, "in effect: " + resolved.describe()])


def _conditions(
    fleet: FleetInfo,
    shown: Mapping[str, Any],
    found: list[tuple[str, tuple[bool, str, str]]],
    now: datetime,
) -> list[Obj]:
    stamp = iso(now)
    new = [
        {
            "type": kind,
            "status": "True" if true else "False",
            "reason": reason,
            "message": message[:MESSAGE_MAX],
            "lastTransitionTime": stamp,
            "observedGeneration": fleet.generation,
        }
        for kind, (true, reason, message) in found
    ]
    old = [dict(c) for c in shown.get("conditions") or [] if isinstance(c, Mapping)]
    return merge_conditions(old, new)


def fleet_status(
    fleet: FleetInfo,
    resolved: Resolved,
    *,
    shown: Mapping[str, Any],
    accounts: Iterable[AccountInfo],
    placements: Mapping[str, int],
    replicas: int | None,
    leases: Mapping[int, LeaseView],
    statefulset: str,
    now: datetime,
    draining: frozenset[int] = frozenset(),
) -> Obj:
    """The status of the fleet object that governs ``statefulset`` (``shown``: the status
    it shows now, whose conditions keep their lastTransitionTime while unchanged;
    ``draining``: the shards being emptied). ``moves`` and ``draining`` are null when
    there are none: the merge patch removes them (an empty cell in ``kubectl get -o wide``)."""
    everyone = list(accounts)
    loads = shard_loads(placements.values())
    pending = sum(1 for a in everyone if a.name not in placements and not a.deleting)
    running = 0 if replicas is None else replicas
    policy = resolved.policy
    moves, moving = move_rows(everyone, placements)
    return {
        "observedGeneration": fleet.generation,
        "accounts": len({a.name for a in everyone} | set(placements)),
        "pending": pending,
        "replicas": running,
        "policy": resolved.as_status(),
        "shards": shard_rows(loads, running, policy, leases, draining),
        "moves": moves or None,
        "movesInProgress": moving,
        "draining": sorted(draining) or None,
        "conditions": _conditions(
            fleet,
            shown,
            [
                ("Ready", ready_condition(loads, replicas, leases, statefulset)),
                ("CapacityAvailable", capacity_condition(loads, policy, pending)),
                ("PolicyApplied", policy_condition(resolved)),
            ],
            now,
        ),
    }


def duplicate_status(
    fleet: FleetInfo, shown: Mapping[str, Any], owner: str, statefulset: str, now: datetime
) -> Obj:
    """The status of a fleet object that another, older one overrules."""
    message = (
        f"the fleet {owner} (the oldest) governs the StatefulSet {statefulset}; "
        "this one is ignored: delete it, or point spec.statefulSet elsewhere"
    )
    status: Obj = dict.fromkeys(FLEET_FIELDS)  # null: a merge patch removes them
    status["observedGeneration"] = fleet.generation
    status["conditions"] = _conditions(
        fleet,
        shown,
        [
            ("Ready", (False, "Duplicate", message)),
            ("CapacityAvailable", (False, "Duplicate", message)),
            ("PolicyApplied", (False, "Duplicate", message)),
        ],
        now,
    )
    return status
