"""Serialized account views, built once per account version and reused by every read.

An account's JSON (and its QR PNG) is encoded when the account changes, not per
request: a list answer is the cached parts joined. Whole answers are cached under the
very account objects they were built from, gzipped once for the clients that accept gzip.
"""

from __future__ import annotations

import functools
import gzip
import json
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from wafleet.core.models import Account
from wafleet_api.account_index import AccountSnapshot
from wafleet_api.views import account_view, dashboard_account

GZIP_LEVEL = 1  # what GZipMiddleware uses too: level 9 cost more CPU than it saved
GZIP_MIN_BYTES = 1024  # smaller answers go as they are


def encode(value: Any) -> bytes:
    """JSON as Starlette's JSONResponse writes it."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Body:
    """One answer's bytes, and the same gzipped once asked for."""

    raw: bytes
    gzipped: bytes | None = None

    def with_gzip(self) -> Body:
        if self.gzipped is not None or len(self.raw) < GZIP_MIN_BYTES:
            return self
        return Body(self.raw, gzip.compress(self.raw, compresslevel=GZIP_LEVEL, mtime=0))


class _Parts:
    """One view's encoded bytes per account, kept while the account object is the same."""

    def __init__(self, view: Callable[[Account], Any]) -> None:
        self._view = view
        self._parts: dict[str, tuple[Account, bytes]] = {}

    def of(self, account: Account) -> bytes:
        hit = self._parts.get(account.id)
        if hit is not None and hit[0] is account:
            return hit[1]
        data = encode(self._view(account))
        self._parts[account.id] = (account, data)
        return data

    def array(self, accounts: Sequence[Account]) -> bytes:
        return b"[" + b",".join(self.of(a) for a in accounts) + b"]"

    def prune(self, snapshot: AccountSnapshot) -> None:
        """Forget accounts that are gone (done now and then, not on every read)."""
        if len(self._parts) > 2 * len(snapshot.accounts) + 64:
            live = {a.id for a in snapshot.accounts}
            self._parts = {k: v for k, v in self._parts.items() if k in live}


def _account_view(qr: str, account: Account) -> dict[str, Any]:
    return account_view(account, qr)


def _same(cached: Sequence[Account], accounts: Sequence[Account]) -> bool:
    return len(cached) == len(accounts) and all(
        a is b for a, b in zip(cached, accounts, strict=True)
    )


class _Answers:
    """Whole answers by key, valid while they are built from the very same account objects.

    Compared by identity, so a page whose accounts did not change is served again even
    though other accounts did (some account changes with every QR rotation in the
    fleet). Bounded: cursors come from clients.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._answers: OrderedDict[Hashable, tuple[tuple[Account, ...], Body]] = OrderedDict()

    def get(self, key: Hashable, accounts: Sequence[Account], build: Callable[[], bytes]) -> Body:
        hit = self._answers.get(key)
        if hit is not None and _same(hit[0], accounts):
            self._answers.move_to_end(key)
            return hit[1]
        body = Body(build())
        self._answers[key] = (tuple(accounts), body)
        self._answers.move_to_end(key)
        while len(self._answers) > self._size:
            self._answers.popitem(last=False)
        return body

    def gzipped(self, key: Hashable, body: Body) -> Body:
        """``body`` with its gzip form, remembered if ``body`` is still the cached one."""
        zipped = body.with_gzip()
        hit = self._answers.get(key)
        if hit is not None and hit[1] is body:
            self._answers[key] = (hit[0], zipped)
        return zipped


class ViewCache:
    """The API's answer cache; lives on ``app.state`` and is shared by all requests."""

    ANSWERS = 256

    def __init__(self) -> None:
        self._account = {
            form: _Parts(functools.partial(_account_view, form)) for form in ("png", "raw", "none")
        }
        self._dashboard = _Parts(dashboard_account)
        self._answers = _Answers(self.ANSWERS)

    def account(self, account: Account, qr: str = "png") -> bytes:
        return self._account[qr].of(account)

    def accounts(self, accounts: Sequence[Account], qr: str) -> bytes:
        """A JSON array of the accounts' views."""
        return self._account[qr].array(accounts)

    def dashboard_array(self, accounts: Sequence[Account]) -> bytes:
        return self._dashboard.array(accounts)

    def answer(
        self,
        key: Hashable,
        accounts: Sequence[Account],
        build: Callable[[], bytes],
        want_gzip: bool,
    ) -> Body:
        """The answer ``build()`` makes of ``accounts``, from the cache when they are the same."""
        body = self._answers.get(key, accounts, build)
        return self._answers.gzipped(key, body) if want_gzip else body

    def prune(self, snapshot: AccountSnapshot) -> None:
        """Forget the parts of accounts that are gone (cheap unless many are)."""
        for parts in (*self._account.values(), self._dashboard):
            parts.prune(snapshot)
