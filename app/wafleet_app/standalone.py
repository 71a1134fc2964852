"""Standalone mode: the API, one connector shard and the SQLite stores in one process.

Its one ``/metrics`` (the API's, with the API's authentication) shows every component it
runs: the API's series, the shard's (shard ``0``: its sessions; no Lease), the webhook
dispatcher's and the process's.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from starlette.applications import Starlette

from wafleet.backups.factory import open_backups
from wafleet.core.models import Account, AccountSpec, AccountStatus, OutboxItem, Thread
from wafleet.core.settings import Settings
from wafleet.core.token import AdminToken
from wafleet.events.dispatch import DispatchConfig, Dispatcher
from wafleet.events.metrics import DeliveryCollector
from wafleet.sim.routes import sim_routes
from wafleet.sim.service import SimWhatsApp, sim_config_from_env
from wafleet.stores.base import EventLog, MessageStore, WebhookStore
from wafleet.stores.factory import open_store, open_webhook_store
from wafleet.stores.sqlite_registry import PhoneInUseError, SqliteRegistry
from wafleet_api.account_index import AccountIndex, AccountSnapshot
from wafleet_api.app import create_app
from wafleet_api.backend import AccountNotFound, ActionRefused
from wafleet_api.metrics import api_metrics
from wafleet_connector.accounts_mirror import AccountsMirror, open_accounts_mirror
from wafleet_connector.manager import ManagerConfig, SessionManager, UnknownAccount
from wafleet_connector.metrics import ShardCollector
from wafleet_connector.runner import CommandRefused, UnlinkPending
from wafleet_connector.transports import build_transport

logger = logging.getLogger(__name__)

DEFAULT_EXECUTOR_THREADS = 64
PRUNE_EVERY = 3600.0  # seconds between two deletions of the events past the retention


class StandaloneBackend:
    """The API's backend over the SQLite registry and the in-process session manager."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sim: SimWhatsApp | None = None
        if settings.transport == "sim" and settings.sim_url is None:
            self.sim = SimWhatsApp(sim_config_from_env(state_path=settings.data_dir / "sim.json"))
        self._registry: SqliteRegistry | None = None
        self._store: MessageStore | None = None
        self._hooks: WebhookStore | None = None
        self._dispatcher: Dispatcher | None = None
        self._pruner: asyncio.Task[None] | None = None
        self._manager: SessionManager | None = None
        self._mirror: AccountsMirror | None = None  # accounts/{id} with store=firestore
        self._ready = False
        self._index = AccountIndex()
        self.shard_metrics = ShardCollector("0", lambda: self._manager)
        self.delivery_metrics = DeliveryCollector()  # its dispatcher is set once started

    # ----- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(
            ThreadPoolExecutor(DEFAULT_EXECUTOR_THREADS, thread_name_prefix="wafleet")
        )
        data_dir = self.settings.data_dir
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._registry = await SqliteRegistry(data_dir / "registry.db").open()
        self._store = await open_store(self.settings)
        self._hooks = await open_webhook_store(self.settings)
        if self.sim is not None:
            await self.sim.start()
        transport = build_transport(self.settings, self.sim)
        self._manager = SessionManager(
            ManagerConfig.from_settings(self.settings),
            transport,
            self._store,
            self,
            open_backups(self.settings),
        )
        self._manager.on_deleted = self._deleted
        self._mirror = open_accounts_mirror(
            self.settings, self._manager.spec, service="wafleet-standalone"
        )
        self._manager.on_status = self._on_status
        await self._manager.start()
        self._dispatcher = Dispatcher(
            self._store,
            self._hooks,
            self._store.record_incident,
            DispatchConfig.from_settings(self.settings),
        )
        self._dispatcher.start()
        self.delivery_metrics.dispatcher = self._dispatcher
        self._pruner = asyncio.create_task(self._prune_loop(), name="event-retention")
        accounts = await self._registry.list()
        self._index.reset(accounts)
        for account in accounts:
            self._manager.ensure(account.spec, account.status)
        self._ready = True
        logger.info("standalone started", extra={"accounts": len(accounts)})

    async def _prune_loop(self) -> None:
        """Drop the events older than the retention, now and every hour."""
        keep = timedelta(days=self.settings.event_retention_days)
        while True:
            try:
                dropped = await self.store.prune_events(datetime.now(UTC) - keep)
                if dropped:
                    logger.info("events past the retention dropped", extra={"count": dropped})
            except Exception as exc:
                logger.warning("dropping old events failed", extra={"error": str(exc)[:200]})
            await asyncio.sleep(PRUNE_EVERY)

    async def close(self) -> None:
        self._ready = False
        if self._pruner is not None:
            self._pruner.cancel()
        if self._mirror is not None:
            await self._mirror.flush()  # bounded
        if self._manager is not None:
            await self._manager.close()
        if self._dispatcher is not None:
            await self._dispatcher.close()  # bounded; unfinished deliveries are redone
        if self._mirror is not None:
            await self._mirror.close()
        if self.sim is not None:
            await self.sim.close()
        if self._hooks is not None:
            await self._hooks.close()
        if self._store is not None:
            await self._store.close()
        if self._registry is not None:
            await self._registry.close()
        logger.info("standalone stopped")

    def ready(self) -> bool:
        return self._ready

    @property
    def registry(self) -> SqliteRegistry:
        assert self._registry is not None, "backend not started"
        return self._registry

    @property
    def store(self) -> MessageStore:
        assert self._store is not None, "backend not started"
        return self._store

    @property
    def event_log(self) -> EventLog:
        return self.store

    @property
    def webhook_store(self) -> WebhookStore:
        assert self._hooks is not None, "backend not started"
        return self._hooks

    def deliveries_changed(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.kick()

    @property
    def manager(self) -> SessionManager:
        assert self._manager is not None, "backend not started"
        return self._manager

    def _on_status(self, account_id: str, status: AccountStatus) -> None:
        """Every status report: reads come from the index; the mirror writes Firestore."""
        self._index.put_status(account_id, status)
        if self._mirror is not None:
            self._mirror.put(account_id, status)

    def _mark_deleted(self, account_id: str) -> None:
        """accounts/{id} says ``deleted`` (written in the background, never raising)."""
        if self._mirror is not None:
            self._mirror.deleted(account_id)

    # ----- StatusWriter ----------------------------------------------------------------
    async def write_statuses(self, statuses: dict[str, AccountStatus]) -> None:
        for account_id, status in statuses.items():
            await self.registry.update_status(account_id, status)

    # ----- AccountBackend --------------------------------------------------------------
    # The registry is written through; reads come from the index, which the manager's
    # status reports keep current.
    async def add(self, spec: AccountSpec) -> tuple[Account, bool]:
        try:
            account, created = await self.registry.create(spec)
        except PhoneInUseError as exc:
            raise ActionRefused(str(exc)) from None
        if account.id in self._index:
            self._index.put_spec(account.spec)
        else:
            self._index.put(account)  # before ensure(): its status reports update the index
        self.manager.ensure(account.spec, account.status)  # reports its first status at once
        return self._index.get(account.id) or account, created

    async def get(self, account_id: str) -> Account | None:
        return self._index.get(account_id)

    def snapshot(self) -> AccountSnapshot:
        return self._index.snapshot()

    async def _set_suspended(self, account_id: str, suspended: bool) -> bool:
        account = await self.registry.set_suspended(account_id, suspended)
        if account is None:
            return False
        self._index.put_spec(account.spec)
        return True

    async def regenerate_qr(self, account_id: str) -> None:
        account = await self.registry.get(account_id)
        if account is None:
            raise AccountNotFound(account_id)
        try:
            if account.spec.suspended:
                await self._set_suspended(account_id, False)
                await self.manager.command(account_id, "resume")
            else:
                await self.manager.command(account_id, "regenerate")
        except UnknownAccount:
            raise AccountNotFound(account_id) from None
        except CommandRefused as exc:
            raise ActionRefused(str(exc)) from None

    async def disconnect(self, account_id: str) -> None:
        if not await self._set_suspended(account_id, True):
            raise AccountNotFound(account_id)
        try:
            await self.manager.command(account_id, "suspend")
        except UnknownAccount:
            raise AccountNotFound(account_id) from None
        except CommandRefused as exc:
            raise ActionRefused(str(exc)) from None

    async def delete(self, account_id: str) -> None:
        try:
            await self.manager.remove(account_id)
        except UnknownAccount:
            pass
        except UnlinkPending as exc:
            raise ActionRefused(
                f"{exc}; the account is kept until WhatsApp confirms the unlink, then deleted"
            ) from None
        deleted = await self.registry.delete(account_id)
        self._index.remove(account_id)
        if not deleted:
            raise AccountNotFound(account_id)
        self._mark_deleted(account_id)

    async def _deleted(self, account_id: str) -> None:
        """A delete that waited for the unlink is done: forget the account."""
        await self.registry.delete(account_id)
        self._index.remove(account_id)
        self._mark_deleted(account_id)

    async def send(self, item: OutboxItem) -> tuple[OutboxItem, bool]:
        stored, created = await self.store.enqueue(item)
        self.manager.notify_outbox(item.account_id)
        return stored, created

    async def outbox_item(self, item_id: str) -> OutboxItem | None:
        return await self.store.get_outbox(item_id)

    async def threads(
        self, *, account_id: str | None, thread_id: str | None, limit: int
    ) -> list[Thread]:
        return await self.store.list_threads(
            account_id=account_id, thread_id=thread_id, limit=limit
        )


def create_standalone_app(settings: Settings, token: AdminToken) -> Starlette:
    backend = StandaloneBackend(settings)
    embedded_sim = backend.sim is not None
    app = create_app(
        settings,
        backend,
        admin_token=token.value,
        extra_routes=sim_routes() if embedded_sim else (),
        open_prefixes=("/sim/",) if embedded_sim else (),
    )
    app.state.sim = backend.sim
    metrics = api_metrics(app)
    metrics.include(backend.shard_metrics)
    metrics.include(backend.delivery_metrics)
    return app
