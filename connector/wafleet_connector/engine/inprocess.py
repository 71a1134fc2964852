"""The ``neonize`` transport: real WhatsApp through neonize 0.5.2 (whatsmeow in Go).

One session = one neonize client on its own sqlite file (``spec.session_path``,
kept 0600), run by ``NeonizeFfi.run_client`` on a dedicated daemon thread for
the session's whole life. Events come back on Go threads and are handed, in
order, to the asyncio loop that called ``open()``; one task per session awaits
the sink for each of them.

Threads: every blocking call into Go runs on its own daemon thread, never on
the default executor, so no executor sizing is needed; ``max_sessions`` caps
the number of live sessions. Lifecycle calls that touch the Go core's unlocked
maps are serialized process-wide (see ``ffi``).

Known limits of neonize 0.5.2:
- whatsmeow acknowledges an inbound message as soon as neonize queued it (a 100-slot
  channel), before Python sees it. Every message that reaches Python goes to the sink,
  also during teardown, and the Go thread waits (bounded) for the sink. A teardown
  disconnects first, drains the queue, then ``Stop``s; ``Stop`` drops what is still
  queued in Go (see ``teardown``): that is the one window where an acknowledged
  message can be lost.
- whatsmeow's auto-reconnect cannot be switched off through neonize; the
  session treats ``Disconnected`` as final and disconnects the client, which
  cancels whatsmeow's pending reconnect. After 3 minutes of keepalive failures
  whatsmeow reconnects by itself without a ``Disconnected``: ``KeepAliveTimeout``
  events, then a new ``Connected``.
- After a QR/pairing timeout the Go thread never returns (``FetchMe`` waits for a
  device id forever); such clients are only disconnected, never ``Stop``-ped,
  because ``Stop`` before that point makes ``FetchMe`` crash the process. Each is
  counted as ``parked`` by ``health()``.
- The sqlite store a client opened is never closed by goneonize: each client whose
  ``Neonize`` returned (a failed connect, or a stopped client) keeps one file handle
  open until the process ends; ``health().leaked`` counts them. The engine supervisor
  recycles a worker whose leaks exceed its budget.
- ``logout()`` returns once WhatsApp confirmed the unlink (whatsmeow then deletes the
  device from the store) and emits nothing; otherwise it raises LogoutError and the
  device stays linked. ``stop()`` emits nothing.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from wafleet_connector.engine.ffi import NeonizeFfi, ffi
from wafleet_connector.engine.mapping import mask_text
from wafleet_connector.engine.session import NeonizeSession
from wafleet_connector.transport import EventSink, SessionSpec

_client_ids = itertools.count(1)

__all__ = [
    "EngineHealth",
    "NeonizeConfig",
    "NeonizeSession",
    "NeonizeTransport",
    "prepare_session_file",
]

log = logging.getLogger(__name__)

_PLATFORMS = {"CHROME", "FIREFOX", "SAFARI", "EDGE", "OPERA", "DESKTOP"}
_LOG_LEVELS = {"DEBUG", "INFO", "WARN", "ERROR"}


@dataclass(frozen=True)
class NeonizeConfig:
    max_sessions: int
    stop_timeout: float = 5.0  # stop() / logout() wait this long for the teardown
    drain_quiet: float = 0.3  # teardown: the event pump is drained after this long silent
    qr_first_ttl: float = 60.0
    qr_ttl: float = 20.0
    qr_grace: float = 5.0  # after a QR code expires, wait this long for the next one
    pairing_ttl: float = 160.0  # whatsmeow's QR session: 60 s + 5 x 20 s
    connect_timeout: float = 90.0  # no QR / pairing code / Connected by then: give up
    send_timeout: float = 90.0  # whatsmeow itself waits 75 s for the server ack
    logout_timeout: float = 20.0
    inbound_ack_timeout: float = 30.0  # Go thread waits this long for the sink
    start_grace: float = 1.0  # a starting client holds the process-wide lock at most this long
    reopen_wait: float = 120.0  # a new session waits for its account's previous socket to close
    device_name: str = "wafleet"  # shown in the phone's linked devices list
    browser: str = "CHROME"  # DeviceProps.PlatformType
    pairing_client_type: int = 1  # whatsmeow PairClientType (1 = Chrome)
    pairing_display_name: str = "Chrome (Linux)"  # must be "Browser (OS)"
    proxy: str | None = None  # e.g. "socks5://host:port"
    whatsmeow_log_level: str = "WARN"

    def __post_init__(self) -> None:
        if self.max_sessions < 1:
            raise ValueError("max_sessions must be >= 1")
        if self.browser not in _PLATFORMS:
            raise ValueError(f"browser must be one of {sorted(_PLATFORMS)}")
        if self.whatsmeow_log_level not in _LOG_LEVELS:
            raise ValueError(f"whatsmeow_log_level must be one of {sorted(_LOG_LEVELS)}")
        timeouts = (self.stop_timeout, self.qr_first_ttl, self.qr_ttl, self.pairing_ttl)
        more = (self.connect_timeout, self.send_timeout, self.start_grace, self.logout_timeout)
        if min(*timeouts, *more, self.drain_quiet, self.inbound_ack_timeout) <= 0:
            raise ValueError("timeouts must be positive")


def prepare_session_file(path: Path) -> None:
    """Create the session's directory and its sqlite file with mode 0600."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600))
    os.chmod(path, 0o600)
    for suffix in ("-journal", "-wal", "-shm"):  # sqlite gives these the db file's mode
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.chmod(side, 0o600)


@dataclass(frozen=True)
class EngineHealth:
    """What the Go core holds that only ending the process releases."""

    live: int  # sessions not finished
    parked: int  # Go threads that will never return (disconnected in a QR loop / FetchMe)
    leaked: int  # clients whose Neonize returned: each keeps its sqlite store handle open


class NeonizeTransport:
    name = "neonize"

    def __init__(self, config: NeonizeConfig, *, core: NeonizeFfi | None = None) -> None:
        self.config = config
        self._core = core
        self._sessions: dict[str, NeonizeSession] = {}  # latest session per account
        self._running: set[NeonizeSession] = set()  # Go thread not (yet) returned
        self._leaked = 0

    def health(self) -> EngineHealth:
        """Counts for the engine supervisor (cheap; call it as often as you like)."""
        for session in list(self._running):
            if session.go_returned:
                self._running.discard(session)
                self._leaked += 1
        live = sum(not s.finished for s in self._sessions.values())
        parked = sum(s.parked for s in self._running)
        return EngineHealth(live=live, parked=parked, leaked=self._leaked)

    async def open(self, spec: SessionSpec, sink: EventSink) -> NeonizeSession:
        prev = self._sessions.get(spec.account_id)
        if prev is not None and not prev.finished:
            raise RuntimeError(f"account {mask_text(spec.account_id)} already has a live session")
        if sum(not s.finished for s in self._sessions.values()) >= self.config.max_sessions:
            raise RuntimeError(f"neonize transport is at max_sessions={self.config.max_sessions}")
        prepare_session_file(spec.session_path)
        uuid = f"wafleet-{next(_client_ids)}".encode()  # unique per process, no PII
        core = self._core if self._core is not None else ffi()
        session = NeonizeSession(
            config=self.config,
            spec=spec,
            sink=sink,
            core=core,
            uuid=uuid,
            loop=asyncio.get_running_loop(),
        )
        self._sessions[spec.account_id] = session
        self._running.add(session)
        session.start(prev)
        return session

    async def close(self) -> None:
        await asyncio.gather(*(s.stop() for s in list(self._sessions.values())))
        self._sessions.clear()
