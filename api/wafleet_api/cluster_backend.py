"""The API's backend in a cluster: accounts are WhatsAppAccount CRs, read from a watch cache.

Onboarding creates the CR (idempotent: its name is the wafleet id; an account with a
legacy id carries it in ``spec.legacyId`` and is found by either), delete
deletes it (the connector's finalizer logs the device out), disconnect sets
``spec.suspended``, regenerate-qr asks the owning connector through an
annotation. Reads never call the API server: a list+watch keeps a cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from wafleet.core.models import Account, AccountSpec, OutboxItem, Thread
from wafleet.core.phases import Phase
from wafleet.kube.account_cr import REGENERATE_ANNOTATION, account_of, new_account_cr
from wafleet.kube.client import (
    ACCOUNTS,
    Conflict,
    KubeClient,
    KubeError,
    NotFound,
)
from wafleet.kube.listwatch import ListWatch
from wafleet.stores.base import EventLog, MessageStore, WebhookStore
from wafleet_api.account_index import AccountIndex, AccountSnapshot
from wafleet_api.backend import AccountNotFound, ActionRefused, BackendUnavailable

logger = logging.getLogger(__name__)

# Seconds beyond a watch's read timeout (after which a silent watch is replaced) that the
# cache may go without an event or bookmark before the API says it is not ready.
STALE_MARGIN = 30.0

Obj = dict[str, Any]


class AccountCache:
    """Every WhatsAppAccount of the namespace, kept current by one list + watch.

    resourceVersions are opaque: a write's response is applied unless the watch already
    delivered that very version (then the cache holds it or something newer).
    """

    SEEN = 16  # versions remembered per account

    def __init__(self, kube: KubeClient, namespace: str, watch_seconds: int = 300) -> None:
        self.items: dict[str, Obj] = {}
        self.index = AccountIndex()  # the live accounts of ``items``, decoded once per change
        self._seen: dict[str, list[str]] = {}
        self.watch = ListWatch(
            kube, ACCOUNTS, namespace, self._listed, self._event, watch_seconds=watch_seconds
        )

    @property
    def synced(self) -> asyncio.Event:
        return self.watch.synced

    def put(self, cr: Obj) -> None:
        """A CR our own write returned."""
        name = cr["metadata"]["name"]
        if str(cr["metadata"].get("resourceVersion")) not in self._seen.get(name, ()):
            self._store(name, cr)

    def drop(self, name: str) -> None:
        self.items.pop(name, None)
        self.index.remove(name)

    def _store(self, name: str, cr: Obj) -> None:
        self.items[name] = cr
        account = _decoded(cr)
        if account is None:
            self.index.remove(name)
        else:
            self.index.put(account)

    def _saw(self, cr: Obj) -> None:
        name = cr["metadata"]["name"]
        seen = self._seen.setdefault(name, [])
        seen.append(str(cr["metadata"].get("resourceVersion")))
        del seen[: -self.SEEN]

    async def _listed(self, items: list[Obj]) -> None:
        self.items = {cr["metadata"]["name"]: cr for cr in items}
        self.index.reset(a for a in map(_decoded, items) if a is not None)
        self._seen = {}
        for cr in items:
            self._saw(cr)

    async def _event(self, kind: str, cr: Obj) -> None:
        name = cr["metadata"]["name"]
        if kind == "DELETED":
            self.drop(name)
            self._seen.pop(name, None)
        elif kind in ("ADDED", "MODIFIED"):
            self._saw(cr)
            self._store(name, cr)

    async def run(self) -> None:
        await self.watch.run()

    def fresh(self, within: float) -> bool:
        """Synced, and the API server said something (an event, a bookmark) lately."""
        return self.synced.is_set() and self.watch.stale_for() <= within


def _live(cr: Obj | None) -> Obj | None:
    """A CR being deleted is gone as far as the API is concerned."""
    if cr is None or cr["metadata"].get("deletionTimestamp"):
        return None
    return cr


def _decoded(cr: Obj) -> Account | None:
    """The account of a live CR; None for one being deleted or one that does not decode."""
    if _live(cr) is None:
        return None
    try:
        return account_of(cr)
    except Exception:  # one odd resource must not stop the cache
        logger.warning(
            "account resource does not decode; left out of reads",
            extra={"account": str(cr.get("metadata", {}).get("name"))},
        )
        return None


StoreOpener = Callable[[], Awaitable[MessageStore]]
HooksOpener = Callable[[], Awaitable[WebhookStore]]


@contextlib.contextmanager
def _api_errors() -> Iterator[None]:
    """A throttled or failing API server is a 503 with Retry-After, not a 500."""
    try:
        yield
    except KubeError as exc:
        if not exc.transient:
            raise
        raise BackendUnavailable(
            f"the Kubernetes API cannot answer now ({exc.status} {exc.reason}); try again",
            exc.retry_after,
        ) from exc


class ClusterBackend:
    def __init__(
        self,
        kube: KubeClient,
        namespace: str,
        open_store: StoreOpener,
        open_hooks: HooksOpener,
        watch_seconds: int = 300,
    ) -> None:
        self._kube = kube
        self._namespace = namespace
        self._open_store = open_store
        self._open_hooks = open_hooks
        self._opened: MessageStore | None = None
        self._hooks: WebhookStore | None = None
        self.cache = AccountCache(kube, namespace, watch_seconds)
        self._task: asyncio.Task[None] | None = None

    @property
    def _store(self) -> MessageStore:
        assert self._opened is not None, "backend not started"
        return self._opened

    @property
    def event_log(self) -> EventLog:
        return self._store

    @property
    def webhook_store(self) -> WebhookStore:
        assert self._hooks is not None, "backend not started"
        return self._hooks

    def deliveries_changed(self) -> None:
        """Nothing to do here: the connector pods deliver, and they poll the store."""

    async def start(self) -> None:
        self._opened = await self._open_store()
        self._hooks = await self._open_hooks()
        self._task = asyncio.create_task(self.cache.run(), name="account-cache")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._hooks is not None:
            await self._hooks.close()
        if self._opened is not None:
            await self._opened.close()
        await self._kube.close()

    def ready(self) -> bool:
        """Unready until the first list, and while the cache has not heard from the API
        server for its watch read timeout plus STALE_MARGIN (a watch that fails on and on,
        or goes silent)."""
        return self.cache.fresh(self._kube.watch_read_timeout + STALE_MARGIN)

    def _name(self, account_id: str) -> str:
        """The resource name of an account known by its id (legacy or not) or its name."""
        account = self.cache.index.get(account_id)
        return account_id if account is None else account.spec.resource_name

    def _cr(self, account_id: str) -> Obj:
        cr = _live(self.cache.items.get(self._name(account_id)))
        if cr is None:
            raise AccountNotFound(account_id)
        return cr

    async def add(self, spec: AccountSpec) -> tuple[Account, bool]:
        with _api_errors():
            try:
                cr = await self._kube.create(ACCOUNTS, self._namespace, new_account_cr(spec))
                created = True
            except Conflict:
                cr = await self._kube.get(ACCOUNTS, self._namespace, spec.resource_name)
                created = False
            except KubeError as exc:
                if exc.status == 422:
                    message = f"the cluster refused the account: {exc.message}"
                    raise ActionRefused(message) from None
                raise
        self.cache.put(cr)
        return account_of(cr), created

    async def get(self, account_id: str) -> Account | None:
        return self.cache.index.get(account_id)

    def snapshot(self) -> AccountSnapshot:
        return self.cache.index.snapshot()

    def shard_of(self, account: Account) -> int | None:
        """The shard the operator placed the account on (None: not placed yet); the
        console tells a cluster, whose accounts have shards, by this method."""
        return account.shard

    async def _patch(self, account_id: str, patch: Obj) -> None:
        name = self._name(account_id)
        with _api_errors():
            try:
                written = await self._kube.patch(ACCOUNTS, self._namespace, name, patch)
            except NotFound:
                raise AccountNotFound(account_id) from None
        self.cache.put(written)

    async def regenerate_qr(self, account_id: str) -> None:
        account = account_of(self._cr(account_id))
        if account.spec.suspended:
            await self._patch(account_id, {"spec": {"suspended": False}})
        elif account.status.phase == Phase.CONNECTED:
            raise ActionRefused("the account is connected; there is no QR code to show")
        else:
            request = uuid.uuid4().hex
            await self._patch(
                account_id, {"metadata": {"annotations": {REGENERATE_ANNOTATION: request}}}
            )

    async def disconnect(self, account_id: str) -> None:
        self._cr(account_id)
        await self._patch(account_id, {"spec": {"suspended": True}})

    async def delete(self, account_id: str) -> None:
        name = self._cr(account_id)["metadata"]["name"]
        with _api_errors():
            try:
                result = await self._kube.delete(ACCOUNTS, self._namespace, name)
            except NotFound:
                raise AccountNotFound(account_id) from None
        if result.get("kind") == "WhatsAppAccount":
            self.cache.put(result)  # held by the connector's finalizer until logged out
        else:
            self.cache.drop(name)

    async def send(self, item: OutboxItem) -> tuple[OutboxItem, bool]:
        return await self._store.enqueue(item)

    async def outbox_item(self, item_id: str) -> OutboxItem | None:
        return await self._store.get_outbox(item_id)

    async def threads(
        self, *, account_id: str | None, thread_id: str | None, limit: int
    ) -> list[Thread]:
        return await self._store.list_threads(
            account_id=account_id, thread_id=thread_id, limit=limit
        )
