"""Security headers on every answer (pure ASGI middleware).

Every answer carries QR codes, phone numbers or account state, so none is stored by a
browser or a proxy (``Cache-Control: no-store``) or sniffed as another type
(``X-Content-Type-Options: nosniff``). HTML pages also forbid framing, loading anything
(their images are data: URLs) and sending the URL, which may hold a signed link, as a
Referer. A header the route set itself is left as it is.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wafleet_api.pages import CONTENT_SECURITY_POLICY

EVERY_ANSWER: tuple[tuple[bytes, bytes], ...] = (
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
)
HTML_PAGES: tuple[tuple[bytes, bytes], ...] = (
    *EVERY_ANSWER,
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),  # frame-ancestors for browsers that predate CSP 2
)


def with_security_headers(message: Message) -> Message:
    """The ``http.response.start`` message with the headers its content type calls for."""
    headers: list[tuple[bytes, bytes]] = list(message.get("headers", []))
    present = {bytes(name).lower() for name, _ in headers}
    content_type = next(
        (bytes(value).lower() for name, value in headers if bytes(name).lower() == b"content-type"),
        b"",
    )
    wanted = HTML_PAGES if content_type.startswith(b"text/html") else EVERY_ANSWER
    headers.extend(pair for pair in wanted if pair[0] not in present)
    return {**message, "headers": headers}


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = with_security_headers(message)
            await send(message)

        await self.app(scope, receive, send_with_headers)
