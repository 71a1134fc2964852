"""Authentication of every route but the probes (pure ASGI middleware).

A request presents one credential, which ``BearerAuth.authenticate`` resolves to a
``Principal`` (``principal.py``) or refuses with the answer to send:

- the admin token, as ``Authorization: Bearer <token>`` (never in a URL: a ``?token=``
  is refused with a message that says how to do instead);
- a scoped API key (``wfk_...``), the same way; what it may do is checked by the routes;
- on the HTML QR pages only, a signed expiring link (``?exp=&sig=``, see ``links.py``)
  that opens its one page.

The principal is left in ``scope["state"]["principal"]`` (``request.state.principal``).

The web console's paths (``cookie_paths``: ``/`` and ``/console/...``) go through
untouched: the console authenticates them itself, with its session cookie and CSRF
tokens. Nothing here reads a cookie, so a cookie never authenticates an ``/api`` call.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from urllib.parse import parse_qs

from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from wafleet.core.apikeys import is_key_secret
from wafleet.core.http import error_response
from wafleet_api.links import QR_PAGE_PREFIX, QR_VISUAL_PATH, LinkCheck, LinkSigner, is_page_path
from wafleet_api.pages import link_refused_page
from wafleet_api.principal import ADMIN, KeyResolver, Principal

# Probes carry no token: /health (liveness) and /readyz (readiness) reveal nothing.
OPEN_PATHS = frozenset({"/health", "/readyz"})

MISSING_TOKEN = "missing bearer token; send 'Authorization: Bearer <admin token>'"  # noqa: S105
BAD_TOKEN = "the bearer token is not valid"  # noqa: S105 (messages, not secrets)


def mint_route(path: str) -> str:
    """The route that mints a link to the page at ``path``, as a person should call it."""
    if path == QR_VISUAL_PATH:
        return "POST /api/whatsapp/qr-visual/link"
    if path.startswith(QR_PAGE_PREFIX) and is_page_path(path):
        return f"POST {path}/link"
    return "POST /api/whatsapp/qr/{account_id}/link (or POST /api/whatsapp/qr-visual/link)"


def _token_in_url(path: str) -> str:
    return (
        "the admin token is not accepted in a URL, where access logs and browser history "
        "keep it; send it as 'Authorization: Bearer <admin token>'. To open a QR page in a "
        f"browser, mint a signed link with {mint_route(path)} and open the 'url' it answers"
    )


def _bearer_credential(scope: Scope) -> bytes | None:
    """The credential of an ``Authorization: Bearer`` header; None without one."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, credential = bytes(value).partition(b" ")
            if scheme.lower() == b"bearer":
                return credential.strip()
            return None  # another scheme (Basic from a proxy, ...) is not ours
    return None


def _unauthorized(code: str, message: str) -> Response:
    response = error_response(401, code, message)
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


def _link_refused(check: LinkCheck, path: str) -> Response:
    """An HTML page, for the person who followed the link, saying it expired or is not
    genuine. Both are 401: the link is the request's only credential, and it is not valid
    (403 would say a valid credential lacks a permission)."""
    expired = check is LinkCheck.EXPIRED
    page = link_refused_page(expired=expired, mint_route=mint_route(path))
    response = HTMLResponse(page, status_code=401)
    response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return response


class BearerAuth:
    def __init__(
        self,
        app: ASGIApp,
        token: str,
        *,
        links: LinkSigner | None = None,
        keys: KeyResolver | None = None,
        open_prefixes: tuple[str, ...] = (),
        cookie_paths: Callable[[str], bool] | None = None,
    ) -> None:
        self.app = app
        self._token = token.encode()
        self._links = links
        self._keys = keys
        self._open_prefixes = open_prefixes
        self._cookie_paths = cookie_paths

    async def _bearer_principal(self, credential: bytes) -> Principal | Response:
        if hmac.compare_digest(credential, self._token):
            return ADMIN
        text = credential.decode("latin-1")
        if self._keys is not None and is_key_secret(text):
            principal, why = await self._keys.resolve(text)
            return principal or _unauthorized("unauthorized", why)
        return _unauthorized("unauthorized", BAD_TOKEN)

    async def authenticate(self, scope: Scope) -> Principal | Response:
        credential = _bearer_credential(scope)
        if credential is not None:
            return await self._bearer_principal(credential)
        path: str = scope["path"]
        query: bytes = scope.get("query_string", b"")
        reads = scope.get("method") in ("GET", "HEAD")
        if self._links is not None and reads and is_page_path(path):
            check = self._links.check(path, query)
            if check is LinkCheck.VALID:
                return Principal("link", page=path)
            if check is not LinkCheck.ABSENT:
                return _link_refused(check, path)
        if "token" in parse_qs(query.decode("latin-1"), keep_blank_values=True):
            return _unauthorized("token_in_url", _token_in_url(path))
        return _unauthorized("unauthorized", MISSING_TOKEN)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in OPEN_PATHS or path.startswith(self._open_prefixes):
            await self.app(scope, receive, send)
            return
        if self._cookie_paths is not None and self._cookie_paths(path):
            await self.app(scope, receive, send)  # the console checks its own session
            return
        outcome = await self.authenticate(scope)
        if isinstance(outcome, Response):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await outcome(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = outcome
        await self.app(scope, receive, send)
