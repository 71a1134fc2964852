"""The API application: ``create_app(settings, backend)``."""

from __future__ import annotations

import math
import os
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from wafleet.core.apikeys import SECRET_PATTERN
from wafleet.core.http import (
    ApiError,
    api_error_handler,
    error_response,
    http_error_handler,
    internal_error_handler,
)
from wafleet.core.logs import redact_pattern, redact_secret
from wafleet.core.settings import Settings
from wafleet.core.signing_key import load_or_create_link_key
from wafleet.stores.factory import open_key_store
from wafleet_api import (
    console,
    routes_accounts,
    routes_events,
    routes_keys,
    routes_links,
    routes_messages,
    routes_system,
    routes_webhooks,
)
from wafleet_api.auth import BearerAuth
from wafleet_api.backend import AccountBackend, BackendUnavailable
from wafleet_api.console.paths import is_console_path
from wafleet_api.event_feed import EventFeed
from wafleet_api.headers import SecurityHeaders
from wafleet_api.links import LinkSigner
from wafleet_api.principal import KeyResolver
from wafleet_api.qr import QrRenderer
from wafleet_api.request_ids import RequestIds
from wafleet_api.request_metrics import RequestMetrics
from wafleet_api.view_cache import ViewCache


async def unavailable_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BackendUnavailable)
    response = error_response(503, "backend_unavailable", str(exc))
    response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after or 1)))
    return response


def create_app(
    settings: Settings,
    backend: AccountBackend,
    *,
    admin_token: str,
    extra_routes: Sequence[BaseRoute] = (),
    open_prefixes: tuple[str, ...] = (),
    link_key: bytes | None = None,
) -> Starlette:
    """The API over ``backend``; its lifespan starts and stops the backend.

    ``extra_routes`` are served beside the API (standalone mode adds the sim's),
    and paths under ``open_prefixes`` need no token. QR page links are signed with
    ``link_key``, by default WAFLEET_LINK_KEY or the key kept in the data directory.
    """
    if link_key is None:
        link_key = load_or_create_link_key(settings.link_key, settings.data_dir).value
    links = LinkSigner(link_key, settings.link_max_ttl)
    redact_secret(admin_token)
    redact_pattern(SECRET_PATTERN)  # API keys, wherever a log line would quote one
    redact_secret(link_key.decode(errors="replace"))

    keys = KeyResolver()
    web_console = console.Console(
        console.ConsoleConfig(
            link_key=link_key,
            admin_token=admin_token,
            session_ttl=settings.console_session_ttl,
            max_body_bytes=settings.max_body_bytes,
        )
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.views = ViewCache()
        app.state.qr_renderer = QrRenderer()
        keys.open(await open_key_store(settings))
        try:
            await backend.start()
            try:
                yield
            finally:
                await backend.close()
        finally:
            await keys.close()
            app.state.qr_renderer.close()

    def storage_writable() -> bool:
        return os.access(settings.data_dir, os.W_OK)

    app = Starlette(
        routes=[
            *routes_accounts.routes(),
            *routes_links.routes(),
            *routes_keys.routes(),
            *routes_messages.routes(),
            *routes_events.routes(),
            *routes_webhooks.routes(),
            *routes_system.routes(),
            *extra_routes,
            *console.routes(),  # "/" and a Mount at /console: no REST route
        ],
        middleware=[
            Middleware(RequestIds),  # outermost: every line logged for a request names it
            Middleware(RequestMetrics),  # latency by route template (wafleet_api.request_metrics)
            Middleware(SecurityHeaders),  # refusals get the headers too
            Middleware(GZipMiddleware, minimum_size=1024, compresslevel=1),  # cheap CPU
            Middleware(
                BearerAuth,
                token=admin_token,
                links=links,
                keys=keys,
                open_prefixes=open_prefixes,
                cookie_paths=is_console_path,  # the console's own session cookie
            ),
        ],
        exception_handlers={
            ApiError: api_error_handler,
            HTTPException: http_error_handler,
            BackendUnavailable: unavailable_handler,
            Exception: internal_error_handler,  # JSON, never Starlette's plain text
        },
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.backend = backend
    app.state.links = links
    app.state.keys = keys
    app.state.console = web_console
    app.state.event_feed = EventFeed()
    app.state.started_at = time.monotonic()
    app.state.storage_writable = storage_writable
    return app
