"""The fleet: counts by phase and one page of the account table, searched and filtered on
the server; htmx polls the page's table fragment every few seconds."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from wafleet.core.models import Account
from wafleet_api.backend import AccountBackend
from wafleet_api.console import paths
from wafleet_api.console.fleet import FleetQuery, fleet_page, page_numbers
from wafleet_api.console.guard import Visitor, console_route, context, is_htmx
from wafleet_api.console.state import console_of
from wafleet_api.principal import require
from wafleet_api.routes_accounts import backend_of

POLL_SECONDS = 5
TABLE = "fragments/fleet_table.html"
SEARCH_FORM = "fleet-search"  # the search form's id: htmx names it in HX-Trigger


@runtime_checkable
class ShardLookup(Protocol):
    """A backend that places accounts on shards (the cluster's) says where each one is."""

    def shard_of(self, account: Account) -> int | None: ...


def shard_label(backend: AccountBackend, account: Account) -> str:
    """The shard's ordinal; "local" in standalone mode (one process runs every session);
    "none" for an account not placed yet."""
    if not isinstance(backend, ShardLookup):
        return "local"
    shard = backend.shard_of(account)
    return "none" if shard is None else str(shard)


def fleet_values(request: Request) -> dict[str, Any]:
    principal = require(request, "read")
    backend = backend_of(request)
    snapshot = backend.snapshot()
    if not principal.every_account:
        snapshot = snapshot.only(principal.allows)  # what the REST listing does
    query = FleetQuery.of(request.query_params)
    fleet = fleet_page(snapshot, query)
    shards = {a.id: shard_label(backend, a) for a in fleet.rows}
    return {
        "query": query,
        "fleet": fleet,
        "shards": shards,
        "page_numbers": page_numbers(fleet.page, fleet.pages),
        "poll_seconds": POLL_SECONDS,
    }


@console_route()
async def fleet_page_view(request: Request, visitor: Visitor) -> Response:
    renderer = console_of(request).renderer
    values = context(visitor, **fleet_values(request), title="Fleet")
    values["table"], _ = renderer.fragment_html(request, TABLE, values)
    return renderer.page(request, "fleet.html", values)


@console_route()
async def fleet_table(request: Request, visitor: Visitor) -> Response:
    """The table fragment; opened by itself (not by htmx), the whole page instead."""
    if not is_htmx(request):
        query = FleetQuery.of(request.query_params).query_string()
        return RedirectResponse(f"{paths.ROOT}?{query}" if query else paths.ROOT, 303)
    values = context(visitor, **fleet_values(request))
    response = console_of(request).renderer.fragment(request, TABLE, values)
    if request.headers.get("hx-trigger") == SEARCH_FORM:  # a search, not a poll
        query = values["query"].query_string()
        response.headers["HX-Push-Url"] = f"{paths.ROOT}?{query}" if query else paths.ROOT
    return response
