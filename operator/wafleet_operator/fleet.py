"""What the operator knows of the accounts, and its placement decisions (no kopf here)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

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

    def placements(self, index: Iterable[AccountInfo]) -> dict[str, int]:
        """Shards by account: the index's view, plus own writes it does not show yet.

        Only the index may retire a remembered write: an event's body can be newer than
        the index, and trusting it would make the index's stale view count for others.
        """
        placed = {a.name: a.shard for a in index if a.shard is not None}
        for name, shard in list(self._recent.items()):
            if name in placed:
                del self._recent[name]  # the index has caught up
            else:
                placed[name] = shard
        return placed

    def record(self, name: str, shard: int) -> None:
        self._recent[name] = shard

    def forget(self, name: str) -> None:
        self._recent.pop(name, None)

    def decide(
        self,
        account: AccountInfo,
        index: Iterable[AccountInfo],
        replicas: int,
        policy: ShardPolicy,
    ) -> Decision:
        """Where ``account`` (from the event's body) goes, given the index of all accounts
        and the policy in effect now (it can change between two decisions)."""
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
        shard = choose_shard(shard_loads(placed.values()), replicas, policy)
        if shard is None:
            return NoCapacity(no_capacity_message(policy))
        return Assign(shard)

    def desired_replicas(self, accounts: Iterable[AccountInfo], policy: ShardPolicy) -> int:
        return desired_replicas(shard_loads(self.placements(accounts).values()), policy)
