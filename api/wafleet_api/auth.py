"""Bearer-token authentication for every route but the probes (pure ASGI middleware)."""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from wafleet.core.http import error_response

# Probes carry no token: /health (liveness) and /readyz (readiness) reveal nothing.
OPEN_PATHS = frozenset({"/health", "/readyz"})
# Pages a person opens in a browser may carry the token as ?token= instead of a header.
PAGE_PREFIXES = ("/api/whatsapp/qr/", "/api/whatsapp/qr-visual")


class BearerAuth:
    def __init__(self, app: ASGIApp, token: str, open_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self._token = token.encode()
        self._open_prefixes = open_prefixes

    def _presented(self, scope: Scope) -> bytes | None:
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                scheme, _, credential = value.partition(b" ")
                if scheme.lower() == b"bearer":
                    return bytes(credential.strip())
                return None
        path: str = scope["path"]
        if path.startswith(PAGE_PREFIXES):
            token = parse_qs(scope.get("query_string", b"").decode()).get("token")
            if token:
                return str(token[0]).encode()
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in OPEN_PATHS or path.startswith(self._open_prefixes):
            await self.app(scope, receive, send)
            return
        presented = self._presented(scope)
        if presented is None or not hmac.compare_digest(presented, self._token):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            message = (
                "missing bearer token; send 'Authorization: Bearer <admin token>'"
                if presented is None
                else "the bearer token is not valid"
            )
            response = error_response(401, "unauthorized", message)
            response.headers["WWW-Authenticate"] = "Bearer"
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
