"""Probes, metrics and the API description."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from wafleet import __version__
from wafleet.core.phases import Phase
from wafleet_api.openapi import openapi_document
from wafleet_api.principal import require_every_account
from wafleet_api.routes_accounts import backend_of


async def health(request: Request) -> Response:
    started: float = request.app.state.started_at
    return JSONResponse(
        {
            "status": "healthy",
            "version": __version__,
            "uptime": int(time.monotonic() - started),
            "sessions_dir_writable": request.app.state.storage_writable(),
        }
    )


async def readyz(request: Request) -> Response:
    if backend_of(request).ready():
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "starting"}, status_code=503)


async def metrics(request: Request) -> Response:
    require_every_account(request, "metrics cover every account")
    accounts = backend_of(request).snapshot().accounts
    lines = [
        "# HELP wafleet_accounts Accounts by phase.",
        "# TYPE wafleet_accounts gauge",
    ]
    for phase in Phase:
        count = sum(1 for a in accounts if a.status.phase == phase)
        lines.append(f'wafleet_accounts{{phase="{phase.value}"}} {count}')
    lines += [
        "# HELP wafleet_account_reconnects_total Reconnects of all accounts.",
        "# TYPE wafleet_account_reconnects_total counter",
        f"wafleet_account_reconnects_total {sum(a.status.reconnects for a in accounts)}",
    ]
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document(request.app.routes))


def routes() -> list[BaseRoute]:
    return [
        Route("/health", health, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
