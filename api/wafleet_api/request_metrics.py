"""Request latency by route template, method and status class: a pure ASGI middleware.

The route label is the matched route's path template (``/api/whatsapp/accounts/{account_id}``),
never the raw path, so no account id or phone number reaches a label. Starlette 1.x puts
the matched route in ``scope["route"]`` as it routes (the same scope dict this middleware
passed on, so it is there once the app returns). Requests answered before routing (401
and 403 of the auth middleware, inside this one) or inside a ``Mount`` are matched here
against the app's routes instead; a path no route matches is ``unmatched``.

The histogram is the app's (:func:`wafleet_api.metrics.api_metrics`, found through
``scope["app"]``); give ``metrics`` to time an app that is not a Starlette app of the API.
A request already timed by an outer RequestMetrics is not timed twice.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wafleet_api.metrics import ApiMetrics, api_metrics

UNMATCHED = "unmatched"
_TIMED = "wafleet.request_timed"  # a scope key: an outer RequestMetrics times this request


def _walk(routes: Sequence[BaseRoute], scope: Scope) -> str | None:
    """The template of the route ``scope`` matches (a full match first, else a partial
    one: a path served with another method, answered 405)."""
    partial: str | None = None
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.NONE:
            continue
        path = getattr(route, "path", None)
        if not isinstance(path, str):
            continue
        template = path
        if isinstance(route, Mount):
            inner = _walk(route.routes, {**scope, **child}) if route.routes else None
            template = path + inner if inner else f"{path}/{{path:path}}"
        if match is Match.FULL:
            return template
        partial = partial or template
    return partial


def route_template(scope: Scope, original: Scope) -> str:
    """The template of the route that served (or would have served) the request."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    in_mount = scope.get("root_path", "") != original.get("root_path", "")
    if isinstance(path, str) and not in_mount:
        return path
    app = scope.get("app")
    routes: Sequence[BaseRoute] = getattr(app, "routes", None) or []
    return _walk(routes, original) or UNMATCHED


class RequestMetrics:
    """Times every HTTP request, whatever answers it (a route, an error handler, a
    middleware's refusal), until its response ends or it fails."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics | None = None) -> None:
        self.app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get(_TIMED):
            await self.app(scope, receive, send)
            return
        scope[_TIMED] = True
        original: dict[str, Any] = dict(scope)  # before routing rewrites root_path & co
        started = time.perf_counter()
        status = 500  # what the client gets when the app fails before answering

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            metrics = self._metrics
            app = scope.get("app")
            if metrics is None and app is not None:
                metrics = api_metrics(app)
            if metrics is not None:
                template = route_template(scope, original)
                metrics.observe(template, scope["method"], status, time.perf_counter() - started)
