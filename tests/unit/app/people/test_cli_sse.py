"""The event stream's reader: frames as the SSE specification reads them, and a follow
that resumes after a dropped connection with nothing lost or repeated."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from wafleet_app.people.client import Api
from wafleet_app.people.errors import ApiFailure
from wafleet_app.people.settings import CliSettings
from wafleet_app.people.sse import Follow, SseFrame, SseParser, follow

KEY = "admin-token-0123456789abcdef"


def frame(event_id: str, kind: str = "message.inbound") -> str:
    body = json.dumps({"id": event_id, "type": kind, "accountId": "wa-a", "seq": 1, "data": {}})
    return f"id: {event_id}\r\nevent: {kind}\r\ndata: {body}\r\n\r\n"


def test_frames_comments_and_multi_line_data() -> None:
    parser = SseParser()
    lines = [": ping", "id: evt_1", "event: x", "data: one", "data:two", "", "retry: 5", ""]
    frames = [f for f in map(parser.feed, lines) if f is not None]
    assert frames == [SseFrame(data="one\ntwo", event="x", id="evt_1")]
    assert parser.last_id == "evt_1"


def test_an_id_counts_only_once_its_frame_is_complete() -> None:
    parser = SseParser(last_id="evt_1")
    parser.feed("id: evt_2")
    parser.feed("data: {}")
    assert parser.last_id == "evt_1"  # cut here, the stream resumes before evt_2
    parser.feed("")
    assert parser.last_id == "evt_2"
    parser.feed("id: evt_3")
    parser.feed("")  # a frame with an id and no data moves the resume point too
    assert parser.last_id == "evt_3"


class Cut(httpx.SyncByteStream):
    """A stream that sends ``text`` and then drops the connection (or just ends)."""

    def __init__(self, text: str, drop: bool) -> None:
        self.text, self.drop = text, drop

    def __iter__(self) -> Iterator[bytes]:
        yield self.text.encode()
        if self.drop:
            raise httpx.ReadError("connection reset by peer")


def api_serving(answers: list[httpx.Response], asked: list[str | None]) -> Api:
    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers.get("last-event-id"))
        return answers.pop(0)

    settings = CliSettings(url="http://fleet.test", key=KEY)
    return Api(settings, transport=httpx.MockTransport(handler))


def test_a_dropped_stream_resumes_after_the_last_complete_event() -> None:
    half = frame("evt_2")[: len(frame("evt_2")) // 2]
    answers = [
        httpx.Response(200, stream=Cut(frame("evt_1") + half, drop=True)),
        httpx.Response(200, stream=Cut(frame("evt_2") + frame("evt_3"), drop=False)),
        httpx.Response(200, stream=Cut(": ping\r\n\r\n" + frame("evt_4"), drop=False)),
    ]
    asked: list[str | None] = []
    got: list[str] = []
    notices: list[str] = []
    pauses: list[float] = []
    count = follow(
        api_serving(answers, asked),
        Follow(account_id="wa-a"),
        lambda event: got.append(event["id"]),
        notices.append,
        sleep=pauses.append,
        max_events=4,
    )
    assert count == 4
    assert got == ["evt_1", "evt_2", "evt_3", "evt_4"]  # none lost, none twice
    assert asked == [None, "evt_1", "evt_3"]
    assert "connection" in notices[0] and "after evt_1" in notices[0]
    assert "closed the stream" in notices[2] and "after evt_3" in notices[2]
    assert notices[1] == notices[3] == "reconnected"
    assert pauses == [0.5, 0.5]  # the back-off starts over once a stream is open again


def test_a_refusal_is_not_retried() -> None:
    answer = httpx.Response(
        404, json={"success": False, "error": {"code": "event_not_found", "message": "gone"}}
    )
    with pytest.raises(ApiFailure, match="gone"):
        follow(
            api_serving([answer], []),
            Follow(after="evt_old"),
            lambda _: None,
            lambda _: None,
            sleep=lambda _: None,
        )
