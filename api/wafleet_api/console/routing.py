"""The console's routes: the fleet at exactly ``/``, everything else mounted at ``/console``.

The console is a ``Mount`` (and one exact route for ``/``), not top-level ``Route``s: the
API's route lists (the OpenAPI document, the bearer-token coverage tests) are the REST
routes, which the console is not part of. Its pages authenticate with the session cookie
(``guard.py``); ``auth.BearerAuth`` lets ``paths.is_console_path`` through to them.
"""

from __future__ import annotations

from starlette.datastructures import URLPath
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import (
    BaseRoute,
    Match,
    Mount,
    NoMatchFound,
    Route,
    Router,
    request_response,
)
from starlette.types import Receive, Scope, Send

from wafleet_api.console import paths, routes_account, routes_auth, routes_fleet, routes_onboard
from wafleet_api.console.guard import refused
from wafleet_api.console.state import console_of

_READS = ("GET", "HEAD")


class RootRoute(BaseRoute):
    """Exactly ``/`` (GET and HEAD): the fleet page."""

    path = paths.ROOT
    name = "console-fleet"

    def __init__(self) -> None:
        self.endpoint = routes_fleet.fleet_page_view
        self.app = request_response(self.endpoint)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or scope["path"] != self.path:
            return Match.NONE, {}
        child = {"endpoint": self.endpoint, "path_params": {}}
        return (Match.FULL if scope["method"] in _READS else Match.PARTIAL), child

    def url_path_for(self, name: str, /, **path_params: object) -> URLPath:
        if name != self.name or path_params:
            raise NoMatchFound(name, dict(path_params))
        return URLPath(self.path, protocol="http")

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in _READS:
            raise HTTPException(status_code=405, headers={"Allow": ", ".join(_READS)})
        await self.app(scope, receive, send)


async def static_file(request: Request) -> Response:
    return console_of(request).renderer.assets.response(request)


async def to_fleet(request: Request) -> Response:
    return RedirectResponse(paths.ROOT, status_code=308)


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    request = Request(scope, receive)
    message = "There is no console page at this address."
    response = refused(request, 404, "Not found", message)
    await response(scope, receive, send)


def _account_routes() -> list[BaseRoute]:
    one = "/accounts/{account_id}"
    return [
        Route("/accounts/new", routes_onboard.new_account_form, methods=["GET"]),
        Route("/accounts", routes_onboard.create_account, methods=["POST"]),
        Route(one, routes_account.account_page, methods=["GET"]),
        Route(one + "/link", routes_onboard.link_page, methods=["GET"]),
        Route(one + "/link/live", routes_onboard.link_live, methods=["GET"]),
        Route(one + "/part/{part}", routes_account.account_part, methods=["GET"]),
        Route(one + "/send", routes_account.send, methods=["POST"]),
        Route(one + "/regenerate-qr", routes_account.regenerate_qr, methods=["POST"]),
        Route(one + "/disconnect", routes_account.disconnect, methods=["POST"]),
        Route(one + "/delete", routes_account.confirm_delete, methods=["GET"]),
        Route(one + "/delete", routes_account.delete, methods=["POST"]),
    ]


def routes() -> list[BaseRoute]:
    inner = [
        Route("/", to_fleet, methods=["GET"]),
        Route("/sign-in", routes_auth.sign_in_form, methods=["GET"]),
        Route("/sign-in", routes_auth.sign_in, methods=["POST"]),
        Route("/sign-out", routes_auth.sign_out, methods=["POST"]),
        Route("/fleet", routes_fleet.fleet_table, methods=["GET"]),
        *_account_routes(),
        Route("/static/{name}", static_file, methods=["GET"]),
    ]
    return [RootRoute(), Mount(paths.PREFIX, app=Router(inner, default=_not_found))]
