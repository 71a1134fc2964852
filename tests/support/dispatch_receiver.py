"""The scripted webhook receiver of the dispatcher tests (Starlette under uvicorn, in the
test's event loop): answers each path as told (200, 500, 410, a hang, per-event failures),
records every request, whether its signature verifies, and what was in flight at once."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks.webhooks import Webhook as StandardWebhook
from starlette.requests import Request
from starlette.responses import Response


@dataclass(frozen=True)
class Arrival:
    path: str
    headers: dict[str, str]
    body: str
    verified: bool
    answer: str  # "200", "500", "410", "hang"
    in_flight: dict[str, int]  # path -> requests in flight when this one arrived

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    @property
    def event_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Receiver:
    port: int = 0
    modes: dict[str, str] = field(default_factory=dict)  # path -> answer (default "200")
    scripts: dict[str, list[str]] = field(default_factory=dict)  # path -> first answers
    failing: set[str] = field(default_factory=set)  # event ids answered 500, always
    secrets: dict[str, str] = field(default_factory=dict)  # path -> webhook secret
    delay: float = 0.0  # every answer waits this long (widens overlaps)
    arrivals: list[Arrival] = field(default_factory=list)
    in_flight: Counter[str] = field(default_factory=Counter)  # event id -> requests now
    in_flight_paths: Counter[str] = field(default_factory=Counter)
    overlaps: list[str] = field(default_factory=list)  # ids in flight twice at once
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def at(self, path: str, *, accepted: bool | None = None) -> list[Arrival]:
        return [
            a
            for a in self.arrivals
            if a.path == path and (accepted is None or (a.answer == "200") == accepted)
        ]

    def _answer(self, path: str, event_id: str) -> str:
        script = self.scripts.get(path)
        if script:
            return script.pop(0)
        if event_id in self.failing:
            return "500"
        return self.modes.get(path, "200")

    async def handle(self, request: Request) -> Response:
        path = request.path_params["path"]
        body = (await request.body()).decode()
        headers = {k.lower(): v for k, v in request.headers.items()}
        event_id = headers.get("webhook-id", "")
        try:
            StandardWebhook(self.secrets[path]).verify(body, headers)
            verified = True
        except Exception:
            verified = False
        answer = self._answer(path, event_id)
        self.in_flight[event_id] += 1
        self.in_flight_paths[path] += 1
        if self.in_flight[event_id] > 1:
            self.overlaps.append(event_id)
        self.arrivals.append(
            Arrival(path, headers, body, verified, answer, dict(self.in_flight_paths))
        )
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if answer == "hang":
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.released.wait(), 30)
                return Response("too late", 200)
            return Response(answer, int(answer))
        finally:
            self.in_flight[event_id] -= 1
            self.in_flight_paths[path] -= 1
