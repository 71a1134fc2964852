"""Sign-in with the admin token or a scoped key (typed into a form, never in a URL), and
sign-out."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from wafleet.core.apikeys import is_key_secret
from wafleet_api.console import paths
from wafleet_api.console.guard import (
    Visitor,
    clear_session_cookie,
    console_route,
    context,
    set_session_cookie,
    who_of,
)
from wafleet_api.console.state import console_of
from wafleet_api.principal import ADMIN, KeyResolver, Principal

logger = logging.getLogger(__name__)

MAX_SECRET = 200
NOTICES = {
    "ended": "Your session ended: the key was revoked or the admin token changed.",
    "signed-out": "You are signed out.",
}
NOT_VALID = "That is not the admin token or a valid API key."


def _sign_in_page(
    request: Request, visitor: Visitor, error: str = "", status_code: int = 200
) -> Response:
    values = context(
        visitor,
        title="Sign in",
        next=paths.safe_next(request.query_params.get("next") or visitor.form.get("next")),
        notice=NOTICES.get(request.query_params.get("why", ""), ""),
        error=error,
    )
    return console_of(request).renderer.page(request, "sign_in.html", values, status_code)


@console_route(signed_in=False)
async def sign_in_form(request: Request, visitor: Visitor) -> Response:
    if visitor.principal is not None:
        return RedirectResponse(paths.safe_next(request.query_params.get("next")), 303)
    return _sign_in_page(request, visitor)


async def _check(request: Request, secret: str) -> tuple[Principal | None, str]:
    """The principal a typed secret stands for, or None and what to tell the person."""
    console = console_of(request)
    if console.is_admin_token(secret):
        return ADMIN, ""
    if not is_key_secret(secret):
        return None, NOT_VALID
    keys: KeyResolver = request.app.state.keys
    principal, why = await keys.resolve(secret)
    if principal is None:
        return None, f"{why[:1].upper()}{why[1:]}."
    if not principal.has("read"):
        return None, "This API key lacks the 'read' scope, which the console needs."
    return principal, ""


@console_route(signed_in=False)
async def sign_in(request: Request, visitor: Visitor) -> Response:
    secret = visitor.form.get("secret", "").strip()
    if not secret or len(secret) > MAX_SECRET:
        return _sign_in_page(request, visitor, NOT_VALID, 401)
    principal, why = await _check(request, secret)
    if principal is None:
        logger.info("console sign-in refused")
        return _sign_in_page(request, visitor, why, 401)
    codec = console_of(request).codec
    if principal.key is None:
        binding = console_of(request).admin_binding
    else:
        binding = codec.binding(principal.key.secret_hash.encode())
    session = codec.new(who_of(principal), binding)  # a new session id: no fixation
    response = RedirectResponse(paths.safe_next(visitor.form.get("next")), status_code=303)
    set_session_cookie(response, request, session)
    logger.info("console sign-in", extra={"who": principal.label})
    return response


@console_route(signed_in=False)
async def sign_out(request: Request, visitor: Visitor) -> Response:
    response = RedirectResponse(f"{paths.SIGN_IN}?why=signed-out", status_code=303)
    clear_session_cookie(response, request)
    if visitor.principal is not None:
        logger.info("console sign-out", extra={"who": visitor.principal.label})
    return response
