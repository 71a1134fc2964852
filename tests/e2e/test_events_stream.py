"""The event stream of a real standalone process (uvicorn, sse-starlette): it follows the
log as it grows, keeps idle connections alive with comments, resumes after Last-Event-ID
with nothing lost or repeated, and refuses what it cannot serve with the JSON error."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.process import TOKEN, Standalone, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.events]

PHONE = "+40712000201"
CONTACT = "+40799000001"
PING = 0.3  # WAFLEET_EVENT_STREAM_PING for these tests


@dataclass
class Read:
    events: list[dict[str, Any]] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)  # the SSE id lines
    kinds: list[str] = field(default_factory=list)  # the SSE event lines
    marks: list[str] = field(default_factory=list)  # ids sent with no data (resume points)
    comments: int = 0


def follow(
    proc: Standalone,
    until: Callable[[Read], bool],
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    timeout: float = 30,
    token: str = TOKEN,
    then: Callable[[], None] | None = None,
) -> Read:
    """Read the stream until ``until(read)`` holds (checked at every line: the pings come
    every PING seconds, so the deadline is checked even when nothing happens). ``then``
    runs in a thread once the stream is open (what the test does while it listens)."""
    read = Read()
    frame: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=proc.url, timeout=httpx.Timeout(10, read=5)) as client:
        auth = {"Authorization": f"Bearer {token}", **(headers or {})}
        with client.stream("GET", "/api/events/stream", headers=auth, params=params) as stream:
            assert stream.status_code == 200, stream.read()
            assert stream.headers["content-type"].startswith("text/event-stream")
            if then is not None:
                threading.Thread(target=then, daemon=True).start()
            for line in stream.iter_lines():
                if line.startswith(":"):
                    read.comments += 1
                elif line == "":
                    if "data" in frame:
                        read.events.append(json.loads(frame["data"]))
                        read.ids.append(frame.get("id", ""))
                        read.kinds.append(frame.get("event", ""))
                    elif "id" in frame:
                        read.marks.append(frame["id"])
                    frame = {}
                else:
                    name, _, value = line.partition(":")
                    frame[name] = value.removeprefix(" ")
                if until(read):
                    return read
                assert time.monotonic() < deadline, f"the stream did not get there: {read}"
    raise AssertionError(f"the stream ended: {read}")


@pytest.fixture
def proc(tmp_path: Path) -> Iterator[Standalone]:
    running = Standalone(
        data_dir=tmp_path / "data",
        env={"WAFLEET_EVENT_STREAM_PING": str(PING), "WAFLEET_EVENT_POLL": "0.2"},
    )
    running.start()
    yield running
    running.kill()


def onboard(client: httpx.Client) -> str:
    account_id: str = client.post("/api/whatsapp/add-account", json={"phone": PHONE}).json()[
        "account"
    ]["id"]

    def qr() -> str | None:
        code: str | None = client.get(f"/api/whatsapp/accounts/{account_id}").json()["account"][
            "qr"
        ]
        return code

    code = wait_until("a QR code", qr, 20)
    assert client.post("/sim/scan", json={"qr": code, "phone": PHONE}).status_code == 200
    return account_id


def inbound(client: httpx.Client, text: str) -> None:
    sent = client.post("/sim/messages", json={"from": CONTACT, "to": PHONE, "text": text})
    assert sent.status_code == 200, sent.text


def texts(read: Read) -> list[str]:
    return [e["data"]["body"] for e in read.events if e["type"] == "message.inbound"]


def test_the_stream_follows_the_log_from_now_with_keepalive_comments(proc: Standalone) -> None:
    with proc.client() as client:
        before = client.post("/api/whatsapp/add-account", json={"phone": "+40712000202"})
        assert before.status_code == 200
        old = wait_until("the first events", lambda: client.get("/api/events").json()["events"], 10)
        made: list[str] = []

        def act() -> None:
            with proc.client() as acting:
                made.append(onboard(acting))
                inbound(acting, "first")

        read = follow(proc, lambda r: "first" in texts(r) and r.comments >= 2, then=act)
    # From now: nothing logged before the stream opened comes again.
    assert not {e["id"] for e in old} & set(read.ids)
    assert read.ids == [e["id"] for e in read.events]
    assert read.kinds == [e["type"] for e in read.events]
    mine = [e for e in read.events if e["accountId"] == made[0]]
    phases = [e["data"]["phase"] for e in mine if e["type"] == "account.phase"]
    assert "QRReady" in phases and "Connected" in phases
    seqs = [e["seq"] for e in mine]
    assert seqs == list(range(1, len(seqs) + 1))


def test_last_event_id_resumes_with_nothing_lost_or_repeated(proc: Standalone) -> None:
    with proc.client() as client:
        onboard(client)
        for n in range(5):
            inbound(client, f"m{n}")

        def five_logged() -> list[dict[str, Any]] | None:
            page: list[dict[str, Any]] = client.get("/api/events", params={"limit": 500}).json()[
                "events"
            ]
            found = [e for e in page if e["type"] == "message.inbound"]
            return page if len(found) == 5 else None

        logged = wait_until("the five messages logged", five_logged, 20)
        middle = logged[len(logged) // 2]["id"]
        resumed = follow(
            proc,
            lambda r: "m4" in texts(r),
            headers={"Last-Event-ID": middle},
        )
        after = [e["id"] for e in logged[len(logged) // 2 + 1 :]]
        assert resumed.ids[: len(after)] == after
        # ?after= does the same for clients that cannot set the header.
        by_query = follow(proc, lambda r: "m4" in texts(r), params={"after": middle})
        assert by_query.ids[: len(after)] == after
        # Filters: only inbound messages.
        only = follow(
            proc,
            lambda r: "m4" in texts(r),
            params={"after": logged[0]["id"], "types": "message.inbound"},
        )
        assert {e["type"] for e in only.events} == {"message.inbound"}
        assert texts(only) == [f"m{n}" for n in range(5)]


def test_a_client_cut_off_before_any_event_resumes_from_where_it_started(
    proc: Standalone,
) -> None:
    with proc.client() as client:
        onboard(client)
        inbound(client, "before")
        wait_until(
            "the message logged",
            lambda: any(
                e["type"] == "message.inbound" for e in client.get("/api/events").json()["events"]
            ),
            20,
        )
        # From now, and cut off before any event: all the client has is the resume point.
        first = follow(proc, lambda r: bool(r.marks))
        assert first.events == []
        inbound(client, "while away")
        resumed = follow(
            proc, lambda r: "while away" in texts(r), headers={"Last-Event-ID": first.marks[0]}
        )
    assert "before" not in texts(resumed)
    assert texts(resumed) == ["while away"]


def test_the_stream_refuses_what_it_cannot_serve(proc: Standalone) -> None:
    with proc.client() as client:
        unknown = client.get("/api/events/stream", headers={"Last-Event-ID": "evt_gone000000"})
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "event_not_found"
        bad = client.get("/api/events/stream", params={"types": "message.nope"})
        assert bad.status_code == 400
        assert "message.inbound" in bad.json()["error"]["message"]
        assert client.get("/api/events/stream", headers={"Authorization": ""}).status_code == 401


def test_a_scoped_key_streams_only_its_accounts(proc: Standalone) -> None:
    with proc.client() as client:
        account_id = onboard(client)
        made = client.post(
            "/api/keys", json={"name": "t", "scopes": ["read"], "accountIds": [account_id]}
        )
        secret = made.json()["secret"]

        def act() -> None:
            with proc.client() as acting:
                acting.post("/api/whatsapp/add-account", json={"phone": "+40712000203"})
                inbound(acting, "for the key")

        read = follow(proc, lambda r: "for the key" in texts(r), token=secret, then=act)
    assert {e["accountId"] for e in read.events} == {account_id}
