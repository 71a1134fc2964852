"""Who is at the console, and whether a request may go through: every console route is
wrapped by ``console_route``.

- The session cookie is read and, when it says someone signed in, resolved again on this
  very request: the admin (the cookie bound to the current admin token), or a scoped key
  read from the key store (``KeyResolver.store``, not the 5-second cache), so a revoked
  key's sessions end at their next request on every replica.
- The principal goes where the REST routes' checks look (``request.state.principal``):
  ``require``, ``visible`` and ``load_account`` decide what a key may see and do, as they
  do for the API.
- A POST must come from this site (``Origin``, else ``Sec-Fetch-Site``) and carry the
  session's CSRF token (a form field, or htmx's header); every htmx request carries it.
- No credential is taken from a URL, and no answer puts one in a URL.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from wafleet.core.apikeys import Scope
from wafleet.core.http import ApiError
from wafleet_api.console import paths
from wafleet_api.console.session import ADMIN, COOKIE_NAME, KEY_PREFIX, Session
from wafleet_api.console.state import Console, console_of
from wafleet_api.principal import ADMIN as ADMIN_PRINCIPAL
from wafleet_api.principal import KeyResolver, Principal

logger = logging.getLogger(__name__)

CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
CREDENTIAL_PARAMS = frozenset({"token", "key", "secret", "apikey", "api_key", "access_token"})
FORM_TYPE = "application/x-www-form-urlencoded"
SAFE = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class Visitor:
    """The person at the console for this request."""

    session: Session
    principal: Principal | None  # None: not signed in
    csrf: str
    form: dict[str, str] = field(default_factory=dict)  # a POST's fields

    @property
    def label(self) -> str:
        if self.principal is None:
            return ""
        if self.principal.key is not None:
            return f"key “{self.principal.key.name}”"
        return "admin"

    def can(self, scope: Scope) -> bool:
        return self.principal is not None and self.principal.has(scope)


Handler = Callable[[Request, Visitor], Awaitable[Response]]


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def set_session_cookie(response: Response, request: Request, session: Session) -> None:
    codec = console_of(request).codec
    response.set_cookie(
        COOKIE_NAME,
        codec.encode(session),
        max_age=codec.max_age(session),
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        COOKIE_NAME,
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


async def resolve(console: Console, keys: KeyResolver, session: Session) -> Principal | None:
    """The session's principal now, or None if its credential no longer holds."""
    codec = console.codec
    if session.who == ADMIN:
        return ADMIN_PRINCIPAL if session.binding == console.admin_binding else None
    key_id = session.key_id
    if key_id is None:
        return None
    key = await keys.store.get(key_id)
    if key is None or key.revoked_at is not None:
        return None
    if session.binding != codec.binding(key.secret_hash.encode()):
        return None
    return Principal("key", key)


def cross_site(request: Request) -> str | None:
    """Why a state-changing request is refused as coming from another site; None if not."""
    origin = request.headers.get("origin")
    if origin is not None:
        if urlsplit(origin).netloc.lower() != request.headers.get("host", "").lower():
            return "this form was sent from another site"
        return None
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return "this form was sent from another site"
    return None


async def read_form(request: Request, max_bytes: int) -> dict[str, str]:
    """A URL-encoded form (what the console's forms and htmx send), size-bounded."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        raise ApiError(415, "unsupported_media_type", "the console takes forms only")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > max_bytes:
            raise ApiError(413, "body_too_large", f"the form is over {max_bytes} bytes")
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "invalid_form", "the form could not be read") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    return form


def sign_in_redirect(request: Request, why: str = "") -> Response:
    """To the sign-in page, coming back here after (the path only: never a credential)."""
    here = request.url.path
    if is_htmx(request):  # a poll: where the person is is the page, not the fragment
        here = urlsplit(request.headers.get("hx-current-url", "/")).path
    query = {"next": paths.safe_next(here)}
    if why:
        query["why"] = why
    target = f"{paths.SIGN_IN}?{urlencode(query)}"
    if is_htmx(request):
        response: Response = Response(status_code=401, headers={"HX-Redirect": target})
    else:
        response = RedirectResponse(target, status_code=303)
    return response


def refused(
    request: Request, status: int, title: str, message: str, visitor: Visitor | None = None
) -> Response:
    """An HTML error page (with the header of a signed-in person, when there is one)."""
    values: dict[str, Any] = {"visitor": None, "csrf": ""}
    if visitor is not None and visitor.principal is not None:
        values = context(visitor)
    values.update(title=title, message=message, status=status)
    return console_of(request).renderer.page(request, "error.html", values, status_code=status)


def api_refusal(request: Request, exc: ApiError, visitor: Visitor | None = None) -> Response:
    title = _TITLES.get(exc.status, "Error")
    if is_htmx(request):  # a poll: replace what was polled with why (which stops the poll)
        values = {"title": title, "message": exc.message}
        renderer = console_of(request).renderer
        return renderer.page(request, "fragments/notice.html", values, status_code=200)
    return refused(request, exc.status, title, exc.message, visitor)


NO_COOKIE = (
    "Your browser sent no console cookie with this form: allow cookies for this site, then "
    "reload the page and try again."
)
STALE_FORM = "The form was out of date or not from this console: reload the page."


def _forged(request: Request, console: Console, sent: Session | None, token: str | None) -> str:
    """Why a request is refused as not coming from a console page; "" if it is not."""
    if request.method not in SAFE:
        why = cross_site(request)
        if why is not None:
            return why
        if sent is None:
            return NO_COOKIE
    elif not is_htmx(request):
        return ""  # a plain navigation changes nothing
    if sent is None or not console.codec.csrf_ok(sent, token):
        return STALE_FORM
    return ""


def _has_session_cookie(response: Response) -> bool:
    prefix = f"{COOKIE_NAME}=".encode()
    return any(
        name == b"set-cookie" and value.startswith(prefix) for name, value in response.raw_headers
    )


async def _admit(request: Request, signed_in: bool, handler: Handler, console: Console) -> Response:
    if any(name.lower() in CREDENTIAL_PARAMS for name in request.query_params):
        message = (
            "A key or token is never taken from a URL, where browser history and access "
            "logs keep it. Sign in with the form instead."
        )
        return refused(request, 400, "No keys in URLs", message)
    sent = console.codec.decode(request.cookies.get(COOKIE_NAME))  # what the page had
    session = sent or console.codec.new()
    principal = None
    if session.signed_in:
        principal = await resolve(console, request.app.state.keys, session)
        if principal is None and signed_in:
            logger.info("console session ended: its credential no longer holds")
            response = sign_in_redirect(request, "ended")
            clear_session_cookie(response, request)
            return response
        if principal is None:  # the sign-in page itself: go on signed out
            session = console.codec.new()
    if signed_in and principal is None:
        return sign_in_redirect(request)
    form: dict[str, str] = {}
    if request.method not in SAFE and cross_site(request) is None and sent is not None:
        form = await read_form(request, console.max_body_bytes)
    why = _forged(request, console, sent, request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD))
    if why:
        return refused(request, 403, "Refused", why)
    if principal is not None:
        request.scope.setdefault("state", {})["principal"] = principal
    visitor = Visitor(session, principal, console.codec.csrf(session), form)
    try:
        response = await handler(request, visitor)
    except ApiError as exc:  # what the REST checks refuse (403, 404, 409), as a page
        response = api_refusal(request, exc, visitor)
    if session is not sent and not _has_session_cookie(response):
        set_session_cookie(response, request, session)  # a new signed-out session
    return response


def console_route(
    *, signed_in: bool = True
) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wrap a console handler: session, principal, CSRF and Origin checks, HTML errors."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            console = console_of(request)
            try:
                return await _admit(request, signed_in, handler, console)
            except ApiError as exc:  # an unreadable form
                return api_refusal(request, exc)

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        return endpoint

    return wrap


_TITLES: dict[int, str] = {
    400: "Not quite",
    403: "Not allowed",
    404: "Not found",
    409: "Not now",
    413: "Too large",
    415: "Not a form",
}


def who_of(principal: Principal) -> str:
    """What a session cookie says about ``principal``."""
    return ADMIN if principal.key is None else KEY_PREFIX + principal.key.id


def context(visitor: Visitor, **values: Any) -> dict[str, Any]:
    """The context every page shares: who is signed in, what they may do, the CSRF token."""
    return {
        "visitor": visitor,
        "csrf": visitor.csrf,
        "can_manage": visitor.can("manage"),
        "can_send": visitor.can("send"),
        **values,
    }
