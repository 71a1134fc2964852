"""Probes, metrics and the API description."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from wafleet import __version__
from wafleet_api.metrics import api_metrics
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
    """Every series of this process (wafleet_api.metrics): for the admin token or a key
    covering every account, since they name every account."""
    require_every_account(request, "metrics cover every account")
    body, content_type = await api_metrics(request.app).render(request.headers.get("accept"))
    return Response(body, headers={"Content-Type": content_type})


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document(request.app.routes))


def routes() -> list[BaseRoute]:
    return [
        Route("/health", health, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
