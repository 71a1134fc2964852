"""``wafleet connector``: one StatefulSet pod, running the sessions of its shard.

Its port serves ``/health``, ``/readyz`` and ``/metrics`` (the shard's sessions and Lease,
the webhook dispatcher of this pod, the process). ``/metrics`` asks for no credential,
as kube components' metrics ports do: the port is reached inside the cluster only (the
headless Service, no Ingress), and the metrics name no phone number and no secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wafleet.backups.factory import open_backups
from wafleet.core.metrics import Metrics
from wafleet.events.dispatch import DispatchConfig, Dispatcher
from wafleet.events.metrics import DeliveryCollector
from wafleet.kube.account_cr import shard_lease_name
from wafleet.kube.client import KubeClient
from wafleet.kube.config import load_connection
from wafleet.stores.base import MessageStore, WebhookStore
from wafleet.stores.factory import open_store, open_webhook_store
from wafleet_connector.accounts_mirror import AccountsMirror, open_accounts_mirror
from wafleet_connector.cluster_settings import ConnectorSettings
from wafleet_connector.cr_status import CrStatusWriter
from wafleet_connector.lease import LeaseTiming, ShardLease
from wafleet_connector.manager import ManagerConfig, SessionManager
from wafleet_connector.metrics import ShardCollector
from wafleet_connector.shard_sync import ShardSync
from wafleet_connector.transports import build_transport

logger = logging.getLogger(__name__)


class Connector:
    """Lease first, then the accounts of the shard; the reverse on the way out."""

    def __init__(self, settings: ConnectorSettings) -> None:
        self.settings = settings
        self.kube: KubeClient | None = None
        self.lease: ShardLease | None = None
        self.sync: ShardSync | None = None
        self._store: MessageStore | None = None
        self._hooks: WebhookStore | None = None
        self._dispatcher: Dispatcher | None = None
        self._manager: SessionManager | None = None
        self._mirror: AccountsMirror | None = None
        self._task: asyncio.Task[None] | None = None
        self.deliveries = DeliveryCollector()  # its dispatcher is set once started
        self.metrics = Metrics()
        self.metrics.add(
            ShardCollector(str(settings.ordinal), lambda: self._manager, lambda: self.lease)
        )
        self.metrics.add(self.deliveries)

    async def start(self) -> None:
        settings = self.settings
        settings.base.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.kube = KubeClient(
            load_connection(), watch_read_timeout=settings.base.kube_watch_timeout
        )
        self._store = await open_store(settings.base)
        statuses = CrStatusWriter(self.kube, settings.namespace, settings.pod_name)
        self._manager = SessionManager(
            ManagerConfig.from_settings(settings.base),
            build_transport(settings.base),
            self._store,
            statuses,
            open_backups(settings.base),
        )
        # accounts/{id} in Firestore, written from the phases of the accounts this pod runs.
        self._mirror = open_accounts_mirror(
            settings.base,
            self._manager.spec,
            service="wafleet-connector",
            instance_id=settings.pod_name,
        )
        if self._mirror is not None:
            self._manager.on_status = self._mirror.put
        await self._manager.start()
        # Every pod delivers webhooks, claiming lanes as it claims outbox items: whatever
        # account they are for (another pod's too), so deliveries go on through moves.
        self._hooks = await open_webhook_store(settings.base, worker_id=settings.pod_name)
        self._dispatcher = Dispatcher(
            self._store,
            self._hooks,
            self._store.record_incident,
            DispatchConfig.from_settings(settings.base),
        )
        self._dispatcher.start()
        self.deliveries.dispatcher = self._dispatcher
        self.sync = ShardSync(
            self.kube,
            settings.namespace,
            settings.ordinal,
            self._manager,
            statuses,
            watch_seconds=settings.base.kube_watch_seconds,
        )
        self._manager.on_deleted = self.sync.deleted
        if self._mirror is not None:
            self.sync.on_cleaned_up = self._mirror.mark_deleted
        self.lease = ShardLease(
            self.kube,
            namespace=settings.namespace,
            name=shard_lease_name(settings.statefulset, settings.ordinal),
            holder=settings.pod_name,
            timing=LeaseTiming(
                duration=settings.lease_seconds,
                fence=self._manager.config.session_stop_timeout + 2,
            ),
            on_lost=self._lost,
        )
        self.lease.start()
        self._task = asyncio.create_task(self._run(), name="shard")

    async def _run(self) -> None:
        assert self.lease is not None and self.sync is not None
        while True:
            await self.lease.held.wait()  # no session runs without the shard's lease
            self.sync.synced.clear()  # ready again only once this run has listed
            sync = asyncio.create_task(self.sync.run(), name="shard-sync")
            lost = asyncio.create_task(self._until_lost(), name="lease-watch")
            done, _ = await asyncio.wait({sync, lost}, return_when=asyncio.FIRST_COMPLETED)
            if sync in done and sync.exception() is not None:
                logger.error("shard sync failed; starting it again", exc_info=sync.exception())
            for task in (sync, lost):
                task.cancel()
            await asyncio.gather(sync, lost, return_exceptions=True)

    async def _until_lost(self) -> None:
        assert self.lease is not None
        await self.lease.lost.wait()

    async def _lost(self) -> None:
        """Fencing: every session stops before another pod may take the lease."""
        if self.sync is not None:
            await self.sync.handoffs.close()  # no restore may start a session after this
        if self._manager is not None and self.lease is not None:
            await self._manager.release_all(within=self.lease.timing.fence)

    def ready(self) -> bool:
        return (
            self.lease is not None
            and self.lease.held.is_set()
            and self.sync is not None
            and self.sync.synced.is_set()
        )

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._mirror is not None:
            await self._mirror.flush()  # bounded; the lease is still held, the accounts ours
        if self._manager is not None:
            await self._manager.close()  # sessions stopped, journal flushed, statuses written
        if self._mirror is not None:
            await self._mirror.close()
        if self.lease is not None:
            await self.lease.release()
        if self._dispatcher is not None:
            await self._dispatcher.close()  # bounded; unfinished deliveries are redone
        if self._hooks is not None:
            await self._hooks.close()
        if self._store is not None:
            await self._store.close()
        if self.kube is not None:
            await self.kube.close()


def create_connector_app(settings: ConnectorSettings) -> Starlette:
    connector = Connector(settings)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await connector.start()
        try:
            yield
        finally:
            await connector.close()

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "healthy", "shard": settings.ordinal})

    async def readyz(_: Request) -> Response:
        if connector.ready():
            return JSONResponse({"status": "ready", "shard": settings.ordinal})
        return JSONResponse({"status": "waiting for the shard lease"}, status_code=503)

    async def metrics(request: Request) -> Response:
        body, content_type = await connector.metrics.render(request.headers.get("accept"))
        return Response(body, headers={"Content-Type": content_type})

    app = Starlette(
        routes=[Route("/health", health), Route("/readyz", readyz), Route("/metrics", metrics)],
        lifespan=lifespan,
    )
    app.state.connector = connector
    return app
