"""HTTP routes of the sim: the control API (a simulated phone) and the device stream."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from wafleet.core.http import (
    ApiError,
    api_error_handler,
    field_str,
    http_error_handler,
    read_json_object,
)
from wafleet.core.phones import InvalidPhone, normalize_phone
from wafleet.sim.service import SimError, SimWhatsApp
from wafleet.sim.wire import ConnClosed, Frame

MAX_BODY = 64 * 1024
FAULTS = ("disconnect", "logout", "stream_replaced", "temp_ban")


def _sim(request: Request | WebSocket) -> SimWhatsApp:
    sim: SimWhatsApp = request.app.state.sim
    return sim


def _phone(data: dict[str, Any], name: str) -> str:
    try:
        return normalize_phone(field_str(data, name, required=True, max_length=40))
    except InvalidPhone as exc:
        raise ApiError(400, "invalid_phone", f"field '{name}': {exc}") from None


def _query_phone(request: Request) -> str:
    raw = request.query_params.get("phone")
    if raw is None:
        raise ApiError(400, "missing_field", "query parameter 'phone' is required")
    if raw.startswith(" "):  # an unescaped "+" in a query string arrives as a space
        raw = "+" + raw.lstrip()
    try:
        phone = normalize_phone(raw)
    except InvalidPhone as exc:
        raise ApiError(400, "invalid_phone", f"query parameter 'phone': {exc}") from None
    return phone


def _refused(exc: SimError) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message)


async def scan(request: Request) -> Response:
    data = await read_json_object(request, MAX_BODY)
    qr = field_str(data, "qr", required=True, max_length=1024)
    phone = _phone(data, "phone")
    try:
        device = _sim(request).scan(qr, phone)
    except SimError as exc:
        raise _refused(exc) from None
    return JSONResponse({"success": True, "jid": device.jid, "deviceId": device.id})


async def pair(request: Request) -> Response:
    data = await read_json_object(request, MAX_BODY)
    code = field_str(data, "code", required=True, max_length=16)
    phone = _phone(data, "phone")
    try:
        device = _sim(request).pair(code, phone)
    except SimError as exc:
        raise _refused(exc) from None
    return JSONResponse({"success": True, "jid": device.jid, "deviceId": device.id})


async def post_message(request: Request) -> Response:
    data = await read_json_object(request, MAX_BODY)
    sender, to = _phone(data, "from"), _phone(data, "to")
    text = field_str(data, "text", required=True, max_length=65536)
    try:
        message_id = await _sim(request).deliver(sender, to, text)
    except SimError as exc:
        raise _refused(exc) from None
    return JSONResponse({"success": True, "id": message_id})


async def get_messages(request: Request) -> Response:
    phone = _query_phone(request)
    return JSONResponse({"success": True, "messages": _sim(request).received(phone)})


async def post_fault(request: Request) -> Response:
    data = await read_json_object(request, MAX_BODY)
    phone = _phone(data, "phone")
    kind = field_str(data, "kind", required=True, max_length=32)
    if kind not in FAULTS:
        raise ApiError(400, "invalid_field", f"field 'kind' must be one of: {', '.join(FAULTS)}")
    seconds = data.get("seconds")
    if seconds is not None and (
        isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0
    ):
        raise ApiError(400, "invalid_field", "field 'seconds' must be a positive number")
    try:
        affected = await _sim(request).fault(phone, kind, seconds)
    except SimError as exc:
        raise _refused(exc) from None
    return JSONResponse({"success": True, "devices": affected})


async def get_devices(request: Request) -> Response:
    phone = _query_phone(request)
    devices = [{"id": d.id, "jid": d.jid} for d in _sim(request).devices_of(phone)]
    return JSONResponse({"success": True, "devices": devices})


async def sim_status(request: Request) -> Response:
    return JSONResponse({"success": True, **_sim(request).summary()})


class WebSocketConn:
    """A device stream over a Starlette WebSocket (the server end)."""

    def __init__(self, websocket: WebSocket) -> None:
        self._ws = websocket
        self._closed = False

    async def send(self, frame: Frame) -> None:
        if self._closed:
            raise ConnClosed("websocket closed")
        try:
            await self._ws.send_text(json.dumps(frame))
        except (WebSocketDisconnect, RuntimeError) as exc:
            self._closed = True
            raise ConnClosed(str(exc)) from exc

    async def recv(self) -> Frame | None:
        if self._closed:
            return None
        try:
            text = await self._ws.receive_text()
            frame = json.loads(text)
        except (WebSocketDisconnect, RuntimeError, ValueError):
            self._closed = True
            return None
        return frame if isinstance(frame, dict) else None

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            with contextlib.suppress(RuntimeError):
                await self._ws.close()


async def device_stream(websocket: WebSocket) -> None:
    await websocket.accept()
    await _sim(websocket).serve(WebSocketConn(websocket))


def sim_routes() -> list[BaseRoute]:
    return [
        Route("/sim/scan", scan, methods=["POST"]),
        Route("/sim/pair", pair, methods=["POST"]),
        Route("/sim/messages", post_message, methods=["POST"]),
        Route("/sim/messages", get_messages, methods=["GET"]),
        Route("/sim/faults", post_fault, methods=["POST"]),
        Route("/sim/status", sim_status, methods=["GET"]),
        Route("/sim/devices", get_devices, methods=["GET"]),
        WebSocketRoute("/sim/ws", device_stream),
    ]


async def sim_health(_: Request) -> Response:
    return JSONResponse({"status": "healthy", "service": "wafleet-sim"})


def create_sim_app(sim: SimWhatsApp) -> Starlette:
    """The sim as its own service (``wafleet sim``)."""

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await sim.start()
        try:
            yield
        finally:
            await sim.close()

    app = Starlette(
        routes=[*sim_routes(), Route("/health", sim_health)],
        exception_handlers={ApiError: api_error_handler, HTTPException: http_error_handler},
        lifespan=lifespan,
    )
    app.state.sim = sim
    return app
