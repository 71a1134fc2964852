"""What the operator knows of the accounts, and its placement decisions (no kopf here)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from wafleet.kube.handoff import Handoff
from wafleet_operator.planner import (
    ShardPolicy,
    choose_shard,
    desired_replicas,
    first_claimant,
    no_capacity_message,
    shard_loads,
)


@dataclass(frozen=True)
class AccountInfo:
    """One account as the operator's index holds it."""

    name: str
    phone: str
    created: str  # metadata.creationTimestamp (RFC 3339 sorts as text)
    shard: int | None
    deleting: bool = False
    phase: str | None = None  # status.phase, as the connector (or the operator) wrote it
    move_to: str | None = None  # the wafleet.io/move-to annotation, as written
    move_reason: str | None = None  # why a planner asked for it (wafleet.io/move-reason)
    handoff: Handoff | None = None  # the open move (wafleet.io/handoff)
    handed_over: str | None = None  # the move whose source let go (status.handoff.id)

    @property
    def moving(self) -> bool:
        """A move is asked for or open: planners leave the account alone meanwhile."""
        return self.move_to is not None or self.handoff is not None


@dataclass(frozen=True)
class Assign:
    shard: int


@dataclass(frozen=True)
class Keep:
    """Already placed: placement is sticky."""

    shard: int


@dataclass(frozen=True)
class DuplicatePhone:
    owner: str


@dataclass(frozen=True)
class NoCapacity:
    message: str


Decision = Assign | Keep | DuplicatePhone | NoCapacity


class Fleet:
    """Placement state shared by the handlers of one operator process.

    The index (fed by the watch) lags behind the operator's own writes, so
    assignments made here are remembered until the index shows them; all
    decisions are taken under one lock, so no shard is ever filled past its
    capacity and no account is assigned twice.
    """

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self._recent: dict[str, int] = {}
        self._reserved: dict[str, int] = {}  # moves opened here: account -> target

    def placements(self, index: Iterable[AccountInfo]) -> dict[str, int]:
        """Shards by account: the index's view, plus own writes it does not show yet.

        Only the index may retire a remembered write: an event's body can be newer than
        the index, and trusting it would make the index's stale view count for others.
        """
        placed = {a.name: a.shard for a in index if a.shard is not None}
        for name, shard in list(self._recent.items()):
            if placed.get(name) == shard:
                del self._recent[name]  # the index has caught up
            else:
                placed[name] = shard
        return placed

    def reserved(self, index: Iterable[AccountInfo]) -> dict[str, int]:
        """Moves opened here that the index does not show yet: account -> target. A move
        holds room on its target from the moment it opens."""
        shown = {a.name for a in index if a.handoff is not None}
        for name in [n for n in self._reserved if n in shown]:
            del self._reserved[name]  # the index shows the handoff now
        return dict(self._reserved)

    def loads(self, index: Iterable[AccountInfo]) -> dict[int, int]:
        """Accounts per shard, counting each open move on its target too (room is held
        there) and on its source until it is relabelled."""
        everyone = list(index)
        loads = shard_loads(self.placements(everyone).values())
        for account in everyone:
            handoff = account.handoff
            if handoff is not None and not account.deleting and not handoff.relabelled:
                loads[handoff.target] = loads.get(handoff.target, 0) + 1
        for target in self.reserved(everyone).values():
            loads[target] = loads.get(target, 0) + 1
        return loads

    def record(self, name: str, shard: int) -> None:
        self._recent[name] = shard

    def reserve(self, name: str, target: int) -> None:
        self._reserved[name] = target

    def release(self, name: str) -> None:
        """The account's move closed or was cancelled."""
        self._reserved.pop(name, None)

    def forget(self, name: str) -> None:
        self._recent.pop(name, None)
        self._reserved.pop(name, None)

    def decide(
        self,
        account: AccountInfo,
        index: Iterable[AccountInfo],
        replicas: int,
        policy: ShardPolicy,
        excluded: Iterable[int] = (),
    ) -> Decision:
        """Where ``account`` (from the event's body) goes, given the index of all accounts
        and the policy in effect now (it can change between two decisions). ``excluded``:
        shards that take no new account (draining, or dead)."""
        if account.shard is not None:
            return Keep(account.shard)  # sticky: the common case, every status event
        everyone = list(index)
        placed = self.placements(everyone)
        if account.name in placed:
            return Keep(placed[account.name])
        claimants = {a.name: a for a in everyone if a.phone == account.phone and not a.deleting}
        claimants[account.name] = account
        claims = [(a.created, a.name) for a in claimants.values()]
        owner = first_claimant(claims)
        if owner is not None and owner != account.name:
            return DuplicatePhone(owner)
        shard = choose_shard(self.loads(everyone), replicas, policy, excluded)
        if shard is None:
            return NoCapacity(no_capacity_message(policy))
        return Assign(shard)

    def desired_replicas(self, accounts: Iterable[AccountInfo], policy: ShardPolicy) -> int:
        """Enough shards for every placed account and every move's target."""
        return desired_replicas(self.loads(accounts), policy)
