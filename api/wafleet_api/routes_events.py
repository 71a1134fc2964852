"""The event log over HTTP: ``GET /api/events`` pages it, ``GET /api/events/stream`` follows
it as Server-Sent Events (resumable with ``Last-Event-ID``). Both show only the accounts the
caller's key may read."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from wafleet.core.http import ApiError
from wafleet.core.ids import is_any_account_id
from wafleet.events.model import EVENT_TYPES, Event, is_event_id
from wafleet.stores.base import EventLog, EventQuery, UnknownEvent
from wafleet_api.event_feed import EventFeed
from wafleet_api.principal import Principal, require
from wafleet_api.routes_accounts import backend_of, settings_of

MAX_LIMIT = 500
DEFAULT_LIMIT = 100
STREAM_PAGE = 200
_TYPES = ", ".join(EVENT_TYPES)


@dataclass(frozen=True)
class Filters:
    account_ids: frozenset[str] | None
    types: frozenset[str] | None


def _accounts(request: Request, principal: Principal) -> frozenset[str] | None:
    account_id = request.query_params.get("accountId")
    if account_id is not None:
        if not is_any_account_id(account_id):
            raise ApiError(400, "invalid_parameter", "query 'accountId' is not an account id")
        require(request, "read", account_id)
        return frozenset({account_id})
    if principal.every_account:
        return None
    if principal.key is None or principal.key.account_ids is None:  # a QR page link
        raise ApiError(403, "account_not_allowed", "a QR page link cannot read events")
    return principal.key.account_ids


def _types(request: Request) -> frozenset[str] | None:
    raw = request.query_params.get("types")
    if raw is None:
        return None
    given = raw.split(",")
    types = frozenset(given)
    unknown = [t for t in given if t not in EVENT_TYPES]
    if unknown:
        what = f"'{unknown[0][:40]}' is not an event type" if unknown[0] else "an item is empty"
        raise ApiError(
            400,
            "invalid_parameter",
            f"query 'types': {what}; use a comma-separated list of {_TYPES}",
        )
    return types


def _filters(request: Request) -> Filters:
    principal = require(request, "read")
    return Filters(_accounts(request, principal), _types(request))


def _event_id(value: str | None, where: str) -> str | None:
    if value is None:
        return None
    if not is_event_id(value):
        raise ApiError(400, "invalid_parameter", f"{where} is not an event id (evt_...)")
    return value


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ApiError(400, "invalid_parameter", f"query 'limit' must be 1 to {MAX_LIMIT}")
    return int(raw)


def unknown_event(event_id: str) -> ApiError:
    return ApiError(
        404,
        "event_not_found",
        f"no event '{event_id}' in the log: it is unknown, or older than the retention "
        "(WAFLEET_EVENT_RETENTION_DAYS); page from the start without 'after'",
    )


def log_of(request: Request) -> EventLog:
    return backend_of(request).event_log


async def list_events(request: Request) -> Response:
    filters = _filters(request)
    after = _event_id(request.query_params.get("after"), "query 'after'")
    query = EventQuery(after, filters.account_ids, filters.types, _limit(request))
    try:
        events = await log_of(request).list_events(query)
    except UnknownEvent as exc:
        raise unknown_event(exc.event_id) from None
    return JSONResponse(
        {
            "success": True,
            "events": [event.body() for event in events],
            "nextAfter": events[-1].id if events else after,
        }
    )


def _sse(event: Event) -> ServerSentEvent:
    body = json.dumps(event.body(), separators=(",", ":"), ensure_ascii=False)
    return ServerSentEvent(data=body, event=event.type, id=event.id)


async def _follow(
    log: EventLog, feed: EventFeed, query: EventQuery, poll: float
) -> AsyncIterator[ServerSentEvent]:
    """The log from ``query.after`` on, for ever: a page at a time, then a wait for a local
    write or the poll interval."""
    after = query.after
    if after is not None:
        # The resume point first, as an id with no data (not an event, but it sets the
        # client's last event id): a client cut off before the first event reconnects
        # from here, not from "now" again, which would skip what came in between.
        yield ServerSentEvent(id=after)
    with feed.subscribe() as wake:
        while True:
            wake.clear()
            page = await log.list_events(
                EventQuery(after, query.account_ids, query.types, STREAM_PAGE)
            )
            for event in page:
                yield _sse(event)
                after = event.id
            if len(page) == STREAM_PAGE:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), poll)


async def stream_events(request: Request) -> Response:
    """Resumes after ``Last-Event-ID`` (what a browser's EventSource sends when it
    reconnects) or ``?after=``; with neither, starts with the events logged from now on."""
    filters = _filters(request)
    # An empty Last-Event-ID is no id (the SSE spec: a client sends the header only with
    # one), as if the header were not there.
    after = _event_id(request.headers.get("last-event-id") or None, "header 'Last-Event-ID'")
    if after is None:
        after = _event_id(request.query_params.get("after"), "query 'after'")
    log = log_of(request)
    if after is None:
        latest = await log.latest_event()
        after = None if latest is None else latest.id
    elif await log.get_event(after) is None:
        raise unknown_event(after)
    feed: EventFeed = request.app.state.event_feed
    feed.attach(log)
    query = EventQuery(after, filters.account_ids, filters.types, STREAM_PAGE)
    settings = settings_of(request)
    return EventSourceResponse(
        _follow(log, feed, query, settings.event_poll),
        ping=settings.event_stream_ping,  # comments keep proxies from closing an idle stream
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/api/events", list_events, methods=["GET"]),
        Route("/api/events/stream", stream_events, methods=["GET"]),
    ]
