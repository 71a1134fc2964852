"""The console's shared state, made once with the app (``app.state.console``)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from starlette.requests import Request

from wafleet_api.console.history import HistoryTails
from wafleet_api.console.render import Renderer
from wafleet_api.console.session import SessionCodec


@dataclass(frozen=True)
class ConsoleConfig:
    link_key: bytes  # the API's link key: every replica derives the same session key
    admin_token: str = field(repr=False)
    session_ttl: int  # Settings.console_session_ttl
    max_body_bytes: int  # Settings.max_body_bytes: the largest form


class Console:
    def __init__(self, config: ConsoleConfig) -> None:
        self.codec = SessionCodec(config.link_key, config.session_ttl)
        self.renderer = Renderer()
        self.history = HistoryTails()
        self.max_body_bytes = config.max_body_bytes
        self._admin_token = config.admin_token.encode()
        self.admin_binding = self.codec.binding(self._admin_token)

    def is_admin_token(self, secret: str) -> bool:
        return hmac.compare_digest(secret.encode(), self._admin_token)


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console
