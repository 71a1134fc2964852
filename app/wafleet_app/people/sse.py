"""Following ``GET /api/events/stream``: Server-Sent Events, resumed where they stopped.

``SseParser`` reads the stream's lines as the SSE specification says (comments, multi-line
``data``, ``id`` kept even by a frame without data). ``follow`` keeps the stream open for
ever: when the connection drops it reconnects with ``Last-Event-ID`` set to the last id it
saw, so the server goes on right after it, and nothing is lost or repeated.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wafleet_app.people.client import Api
from wafleet_app.people.errors import ApiFailure

FIRST_RETRY = 0.5
MAX_RETRY = 10.0


@dataclass(frozen=True)
class SseFrame:
    data: str
    event: str | None = None
    id: str | None = None


@dataclass
class SseParser:
    """Feed it lines (without their line end); it returns each complete frame.

    The id of a frame counts once the frame is complete (its blank line): a connection
    cut in the middle of a frame resumes before it, so that frame comes again.
    """

    last_id: str | None = None  # the "last event ID buffer" of the specification
    _data: list[str] = field(default_factory=list)
    _event: str | None = None
    _id: str | None = None
    _has_id: bool = False

    def feed(self, line: str) -> SseFrame | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: the server's keep-alive ping
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id, self._has_id = value or None, True
        return None  # "retry" and unknown fields change nothing here

    def _dispatch(self) -> SseFrame | None:
        data, event = self._data, self._event
        if self._has_id:
            self.last_id = self._id  # an id-only frame moves the resume point too
        self._data, self._event, self._id, self._has_id = [], None, None, False
        if not data:
            return None
        return SseFrame(data="\n".join(data), event=event, id=self.last_id)


@dataclass(frozen=True)
class Follow:
    """What to follow and from where (``after``: an event id, or None for "from now")."""

    account_id: str | None = None
    types: str | None = None
    after: str | None = None

    def params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        if self.account_id:
            params["accountId"] = self.account_id
        if self.types:
            params["types"] = self.types
        return params


EventHandler = Callable[[dict[str, Any]], None]
NoticeHandler = Callable[[str], None]


def follow(
    api: Api,
    what: Follow,
    on_event: EventHandler,
    on_notice: NoticeHandler,
    *,
    on_open: Callable[[], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    max_events: int | None = None,
) -> int:
    """Hand each event to ``on_event``, reconnecting after drops; until Ctrl-C, a refusal
    (``ApiFailure`` that is not transient, raised) or ``max_events`` events (returned).
    ``on_open`` is called when the stream is first open; each later open is a notice."""
    parser = SseParser(last_id=what.after)
    retry = FIRST_RETRY
    seen = 0
    opened: list[bool] = []

    def open_once() -> None:
        if not opened and on_open is not None:
            on_open()
        elif opened:
            on_notice("reconnected")
        opened.append(True)

    while True:
        try:
            for line in api.event_lines(what.params(), parser.last_id, open_once):
                retry = FIRST_RETRY  # the stream is open again
                frame = parser.feed(line)
                if frame is None:
                    continue
                try:
                    event = json.loads(frame.data)
                except ValueError:
                    on_notice(f"skipped a frame that is not JSON (id {frame.id})")
                    continue
                if isinstance(event, dict):
                    on_event(event)
                    seen += 1
                    if max_events is not None and seen >= max_events:
                        return seen
            reason = "the server closed the stream"
        except ApiFailure as exc:
            if not exc.transient:
                raise
            reason = exc.message
        where = f"after {parser.last_id}" if parser.last_id else "from now (no event seen yet)"
        on_notice(f"{reason}; reconnecting in {retry:g} s, resuming {where}")
        parser = SseParser(last_id=parser.last_id)  # a frame cut in the middle is dropped
        sleep(retry)
        retry = min(retry * 2, MAX_RETRY)
