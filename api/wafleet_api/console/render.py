"""Rendering: the Jinja2 templates (autoescaped), the filters they use, and the answers.

Every console answer carries the console's Content-Security-Policy (the headers
middleware adds the other page headers and leaves this one as it is): scripts and styles
only from the console's own static files, images only from there or ``data:`` (the QR
codes), no frames, forms that post only here.

A fragment that htmx polls names a digest of its content in its own URL (``v=``): when a
poll finds the content the same, the answer is ``204`` and htmx leaves the page alone, so
a table being read, a selection or a QR code being scanned does not flicker every few
seconds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

import jinja2
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.templating import Jinja2Templates

from wafleet.core.models import iso
from wafleet.core.phases import Phase
from wafleet.core.phones import mask_phone
from wafleet_api.console import paths
from wafleet_api.console.assets import Assets

# Referrers within the console only: with "no-referrer" (the API's pages) browsers send
# "Origin: null" on a form post, and the Origin check needs the real one. Console URLs
# carry nothing secret; other sites get no referrer.
REFERRER_POLICY = "same-origin"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# Where a fragment's digest goes; autoescaped text can never hold a raw "<".
_VERSION_MARK = Markup("<!--v-->")

# How each phase looks: a tone (the badge's colour) and what it means, for people.
TONES: dict[Phase, str] = {
    Phase.CONNECTED: "ok",
    Phase.QR_READY: "wait",
    Phase.PAIRING_CODE_READY: "wait",
    Phase.PENDING: "busy",
    Phase.CONNECTING: "busy",
    Phase.RECONNECTING: "busy",
    Phase.MOVING: "busy",
    Phase.LOGGED_OUT: "warn",
    Phase.QR_TIMEOUT: "warn",
    Phase.PASSKEY_REQUIRED: "warn",
    Phase.SUSPENDED: "off",
    Phase.REPLACED: "off",
    Phase.FAILED: "bad",
}


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """ "just now", "3 min ago", "5 h ago", "2 d ago"; "never" for None.

    Never in seconds: a polled fragment changes at most once a minute by itself.
    """
    if value is None:
        return "never"
    seconds = int(((now or datetime.now(UTC)) - value).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"


def when(value: datetime | None) -> str:
    """An exact time for a tooltip: ``2026-07-01 12:34:56 UTC``."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def clock(value: datetime, now: datetime | None = None) -> str:
    """A time of day for a timeline, in UTC: ``14:03:27``, or ``Dec 01 14:03`` before today."""
    value = value.astimezone(UTC)
    if value.date() == (now or datetime.now(UTC)).date():
        return value.strftime("%H:%M:%S")
    return value.strftime("%b %d %H:%M")


def jid_number(jid: str) -> str:
    """``40799000001@s.whatsapp.net`` -> ``+40799000001`` (a group or LID id stays as it is)."""
    user, _, server = jid.partition("@")
    return f"+{user}" if server == "s.whatsapp.net" and user.isdigit() else jid


def _environment() -> jinja2.Environment:
    folder = files("wafleet_api.console").joinpath("templates")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt name fails the test, not the page
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        masked=mask_phone,
        ago=ago,
        when=when,
        clock=clock,
        iso=iso,
        jid_number=jid_number,
        tone=lambda phase: TONES.get(phase, "off"),
        thousands=lambda n: f"{n:,}",
    )
    env.globals.update(
        paths=paths,
        account_path=paths.account_path,
        server_now=lambda: iso(datetime.now(UTC)),
    )
    return env


class Renderer:
    def __init__(self) -> None:
        self.assets = Assets()
        self.templates = Jinja2Templates(env=_environment())
        self.templates.env.globals["static"] = self.assets.url

    def page(
        self,
        request: Request,
        name: str,
        context: Mapping[str, Any],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        response = self.templates.TemplateResponse(
            request, name, dict(context), status_code=status_code
        )
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["Referrer-Policy"] = REFERRER_POLICY
        response.headers.update(headers or {})
        return response

    def fragment_html(
        self, request: Request, name: str, context: Mapping[str, Any]
    ) -> tuple[Markup, str]:
        """A fragment's HTML (its own ``v=`` filled in) and its digest."""
        template = self.templates.get_template(name)
        text = template.render({**context, "request": request, "version": _VERSION_MARK})
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        return Markup(text.replace(_VERSION_MARK, digest)), digest  # noqa: S704 (autoescaped)

    def fragment(self, request: Request, name: str, context: Mapping[str, Any]) -> Response:
        """A polled fragment: 204 when the poll's ``v`` is the digest of what it would get."""
        body, digest = self.fragment_html(request, name, context)
        if request.query_params.get("v") == digest:
            return Response(status_code=204)
        response = HTMLResponse(str(body))
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["Referrer-Policy"] = REFERRER_POLICY
        return response
