"""The operator's readiness (/readyz): what makes it ready, and what takes it back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from wafleet_operator.readiness import Readiness, readiness_app

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def peering(**peers: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "wafleet"}, "status": peers}


def peer(seconds_ago: float, priority: int = 0, lifetime: int = 60) -> dict[str, Any]:
    seen = (NOW - timedelta(seconds=seconds_ago)).isoformat()
    return {"priority": priority, "lifetime": lifetime, "lastseen": seen}


def readiness(clock: Clock) -> Readiness:
    return Readiness(identity="me", stale_after=120, clock=clock, wall_clock=lambda: NOW)


def test_ready_only_after_startup_and_a_handler_call() -> None:
    clock = Clock()
    r = readiness(clock)
    r.started = asyncio.Event()
    assert r.status().reason == "kopf's startup handlers have not finished"
    r.started.set()
    status = r.status()
    assert not status.ready and "indexes are being filled" in status.reason
    r.heard(None, peering(me=peer(0)))
    assert r.status().ready


def test_a_live_peer_of_the_same_or_a_higher_priority_is_a_pause() -> None:
    clock = Clock()
    r = readiness(clock)
    r.heard("MODIFIED", peering(me=peer(0), other=peer(5)))
    status = r.status()
    assert not status.ready and "other" in status.reason
    r.heard("MODIFIED", peering(me=peer(0), other=peer(5, priority=10)))
    assert not r.status().ready
    r.heard("MODIFIED", peering(me=peer(0), low=peer(5, priority=-1), dead=peer(61)))
    assert r.status().ready, "a lower priority or an expired peer does not pause us"
    r.heard("MODIFIED", peering(me=peer(0), odd={"lastseen": "yesterday"}, bare="x"))
    assert r.status().ready


def test_silence_longer_than_stale_after_is_not_ready() -> None:
    clock = Clock()
    r = readiness(clock)
    r.heard(None, peering(me=peer(0)))
    clock.now += 119
    assert r.status().ready
    clock.now += 2
    status = r.status()
    assert not status.ready and "121 s" in status.reason
    r.heard("MODIFIED", peering(me=peer(0)))
    assert r.status().ready


def test_a_deleted_peering_is_not_ready() -> None:
    r = readiness(Clock())
    r.heard("DELETED", peering(me=peer(0)))
    assert r.status() == r.status() and not r.status().ready
    assert "deleted" in r.status().reason


def test_without_an_identity_conflicts_are_not_judged() -> None:
    r = Readiness(identity=None, clock=Clock(), wall_clock=lambda: NOW)
    r.heard(None, peering(a=peer(0), b=peer(0)))
    assert r.status().ready


async def test_readyz_answers_200_or_503_with_the_reason() -> None:
    clock = Clock()
    r = readiness(clock)
    async with TestClient(TestServer(readiness_app(r))) as client:
        response = await client.get("/readyz")
        assert response.status == 503
        body = await response.json()
        assert body["ready"] is False and body["reason"]
        r.heard(None, peering(me=peer(0)))
        response = await client.get("/readyz")
        assert response.status == 200
        assert (await response.json())["ready"] is True
