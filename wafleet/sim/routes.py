"""HTTP routes of the sim: the control API (a simulated phone) and the device stream."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from wafleet.core.http import (
    ApiError,
    api_error_handler,
    http_error_handler,
    internal_error_handler,
)
from wafleet.sim.faults import FAULT_KINDS, MAX_FAULT_SECONDS, TIMED_FAULTS
from wafleet.sim.inputs import (
    ascii_field,
    bool_field,
    choice_field,
    phone_field,
    query_phone,
    read_object,
    seconds_field,
    text_field,
)
from wafleet.sim.messaging import ADDRESSING
from wafleet.sim.model import MAX_TEXT
from wafleet.sim.service import SimError, SimWhatsApp
from wafleet.sim.wire import ConnClosed, Frame

# The largest valid body fits: a text of MAX_TEXT characters, each escaped as JSON can be
# (12 bytes for one outside the BMP: "\ud83d\ude00").
MAX_BODY = 1024 * 1024
MAX_QR = 1024  # characters of a QR code's text
MAX_CODE = 16  # characters of a pairing code
FAULTS = FAULT_KINDS


def _sim(request: Request | WebSocket) -> SimWhatsApp:
    sim: SimWhatsApp = request.app.state.sim
    return sim


def _refused(exc: SimError) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message)


async def scan(request: Request) -> Response:
    data = await read_object(request, MAX_BODY)
    qr = ascii_field(data, "qr", max_length=MAX_QR)
    phone = phone_field(data, "phone")
    try:
        device = _sim(request).scan(qr, phone)
    except SimError as exc:
        raise _refused(exc) from None
    return JSONResponse({"success": True, "jid": device.jid, "deviceId": device.id})


async def pair(request: Request) -> Response:
    data = await read_object(request, MAX_BODY)
    code = ascii_field(data, "code", max_length=MAX_CODE)
    phone = phone_field(data, "phone")
    try:
        device = _sim(request).pair(code, phone)
    except SimError as exc:
        raise _refused(exc) from None
    return JSONResponse({"success": True, "jid": device.jid, "deviceId": device.id})


async def post_message(request: Request) -> Response:
    data = await read_object(request, MAX_BODY)
    sender, to = phone_field(data, "from"), phone_field(data, "to")
    text = text_field(data, "text", max_length=MAX_TEXT)
    addressing = choice_field(data, "addressing", ADDRESSING, default="pn")
    try:
        message_id = await _sim(request).deliver(sender, to, text, addressing)
    except SimError as exc:
        raise _refused(exc) from None
    return JSONResponse({"success": True, "id": message_id})


async def get_messages(request: Request) -> Response:
    phone = query_phone(request)
    return JSONResponse({"success": True, "messages": _sim(request).received(phone)})


async def post_read(request: Request) -> Response:
    data = await read_object(request, MAX_BODY)
    reader = phone_field(data, "phone")
    sender = phone_field(data, "from") if data.get("from") is not None else None
    try:
        count = await _sim(request).read(reader, sender)
    except SimError as exc:
        raise _refused(exc) from None
    return JSONResponse({"success": True, "read": count})


async def post_number(request: Request) -> Response:
    data = await read_object(request, MAX_BODY)
    phone = phone_field(data, "phone")
    registered = bool_field(data, "registered")
    try:
        _sim(request).set_registered(phone, registered)
    except SimError as exc:
        raise _refused(exc) from None
    return JSONResponse({"success": True, "phone": phone, "registered": registered})


async def post_passkey(request: Request) -> Response:
    data = await read_object(request, MAX_BODY)
    phone = phone_field(data, "phone")
    required = bool_field(data, "required")
    _sim(request).set_passkey(phone, required)
    return JSONResponse({"success": True, "phone": phone, "required": required})


async def get_lid(request: Request) -> Response:
    phone = query_phone(request)
    try:
        lid = _sim(request).lid(phone)
    except SimError as exc:
        raise _refused(exc) from None
    return JSONResponse({"success": True, "phone": phone, "lid": lid})


async def post_fault(request: Request) -> Response:
    data = await read_object(request, MAX_BODY)
    phone = phone_field(data, "phone")
    kind = choice_field(data, "kind", FAULT_KINDS)
    seconds = seconds_field(data, "seconds", maximum=MAX_FAULT_SECONDS)
    if seconds is not None and kind not in TIMED_FAULTS:
        raise ApiError(
            400,
            "invalid_field",
            f"field 'seconds' applies only to the kinds: {', '.join(TIMED_FAULTS)}",
        )
    try:
        affected = await _sim(request).fault(phone, kind, seconds)
    except SimError as exc:
        raise _refused(exc) from None
    return JSONResponse({"success": True, "devices": affected})


async def get_devices(request: Request) -> Response:
    phone = query_phone(request)
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
        Route("/sim/read", post_read, methods=["POST"]),
        Route("/sim/numbers", post_number, methods=["POST"]),
        Route("/sim/passkeys", post_passkey, methods=["POST"]),
        Route("/sim/lid", get_lid, methods=["GET"]),
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
        exception_handlers={
            ApiError: api_error_handler,
            HTTPException: http_error_handler,
            Exception: internal_error_handler,  # JSON, never Starlette's plain text
        },
        lifespan=lifespan,
    )
    app.state.sim = sim
    return app
