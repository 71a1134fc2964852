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

from wafleet.core.http import ApiError, api_error_handler, error_response, http_error_handler
from wafleet.core.settings import Settings
from wafleet_api import routes_accounts, routes_messages, routes_system
from wafleet_api.auth import BearerAuth
from wafleet_api.backend import AccountBackend, BackendUnavailable


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
) -> Starlette:
    """The API over ``backend``; its lifespan starts and stops the backend.

    ``extra_routes`` are served beside the API (standalone mode adds the sim's),
    and paths under ``open_prefixes`` need no token.
    """

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await backend.start()
        try:
            yield
        finally:
            await backend.close()

    def storage_writable() -> bool:
        return os.access(settings.data_dir, os.W_OK)

    app = Starlette(
        routes=[
            *routes_accounts.routes(),
            *routes_messages.routes(),
            *routes_system.routes(),
            *extra_routes,
        ],
        middleware=[
            Middleware(GZipMiddleware, minimum_size=1024, compresslevel=1),  # cheap CPU
            Middleware(BearerAuth, token=admin_token, open_prefixes=open_prefixes),
        ],
        exception_handlers={
            ApiError: api_error_handler,
            HTTPException: http_error_handler,
            BackendUnavailable: unavailable_handler,
        },
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.backend = backend
    app.state.started_at = time.monotonic()
    app.state.storage_writable = storage_writable
    return app
