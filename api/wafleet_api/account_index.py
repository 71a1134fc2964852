"""Every account the API can see, in memory, in creation order.

Reads never go to a database or the Kubernetes API: each backend keeps an
``AccountIndex`` current (standalone from the session manager's status reports, the
cluster from its watch cache) and the routes answer from ``snapshot()``, which is built
again only after a change.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC

from wafleet.core.models import Account, AccountSpec, AccountStatus

SortKey = tuple[str, str]


def sort_key(account: Account) -> SortKey:
    """Creation order, the id breaking ties: stable, and what cursors point into."""
    created = account.spec.created_at.astimezone(UTC).isoformat(timespec="microseconds")
    return (created, account.spec.id)


@dataclass(frozen=True)
class AccountSnapshot:
    """The accounts at one moment (immutable: safe to share between requests)."""

    accounts: tuple[Account, ...]
    keys: tuple[SortKey, ...] = field(repr=False)

    def only(self, keep: Callable[[str], bool]) -> AccountSnapshot:
        """The accounts whose id ``keep`` accepts (what a key limited to accounts sees)."""
        pairs = [(a, k) for a, k in zip(self.accounts, self.keys, strict=True) if keep(a.id)]
        return AccountSnapshot(tuple(a for a, _ in pairs), tuple(k for _, k in pairs))

    def after(self, key: SortKey | None) -> int:
        """Index of the first account past ``key`` (0 for None)."""
        return 0 if key is None else bisect.bisect_right(self.keys, key)


class AccountIndex:
    """The accounts by id; ``snapshot()`` is rebuilt only after a change.

    An account with a legacy id is found by its wafleet name too (``get`` takes either):
    callers that knew it before its legacy id was shown, or by its Kubernetes name, still
    reach it.
    """

    def __init__(self, accounts: Iterable[Account] = ()) -> None:
        self._by_id: dict[str, Account] = {}
        self._alias: dict[str, str] = {}  # resource name -> id, where they differ
        self._snapshot: AccountSnapshot | None = None
        self.reset(accounts)

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, account_id: object) -> bool:
        return account_id in self._by_id or account_id in self._alias

    def get(self, account_id: str) -> Account | None:
        account = self._by_id.get(account_id)
        if account is None and account_id in self._alias:
            account = self._by_id.get(self._alias[account_id])
        return account

    def _changed(self) -> None:
        self._snapshot = None

    def reset(self, accounts: Iterable[Account]) -> None:
        self._by_id = {account.id: account for account in accounts}
        self._alias = {a.spec.resource_name: a.id for a in self._by_id.values() if a.spec.legacy_id}
        self._changed()

    def put(self, account: Account) -> None:
        """Add or replace an account; an equal account changes nothing (the snapshot stays)."""
        if self._by_id.get(account.id) != account:
            self._by_id[account.id] = account
            if account.spec.legacy_id is not None:
                self._alias[account.spec.resource_name] = account.id
            self._changed()

    def put_status(self, account_id: str, status: AccountStatus) -> None:
        """A new status for a known account (unknown ids are ignored: not ours yet)."""
        account = self._by_id.get(account_id)
        if account is not None and account.status != status:
            self._by_id[account_id] = replace(account, status=status)
            self._changed()

    def put_spec(self, spec: AccountSpec) -> None:
        account = self._by_id.get(spec.id)
        self.put(Account(spec) if account is None else replace(account, spec=spec))

    def remove(self, account_id: str) -> None:
        account = self.get(account_id)
        if account is not None:
            del self._by_id[account.id]
            self._alias.pop(account.spec.resource_name, None)
            self._changed()

    def snapshot(self) -> AccountSnapshot:
        if self._snapshot is None:
            ordered = sorted(self._by_id.values(), key=sort_key)
            self._snapshot = AccountSnapshot(tuple(ordered), tuple(sort_key(a) for a in ordered))
        return self._snapshot
