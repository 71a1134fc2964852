"""An engine worker: a process that runs neonize sessions and serves them as device streams.

Started by the connector's supervisor (``python -m wafleet_connector.engine.worker``),
never by hand. It listens on a Unix socket; each connection is one session, in the frame
protocol of ``wafleet.sim.wire``. It reports to the supervisor on stdout, one JSON object
per line: ``{"ready": pid}`` once it listens, ``{"open": account}`` and ``{"closed":
account}`` as sessions start and their sockets close, ``{"health": {...}}`` when its
counts change. It ends when its stdin closes (the connector is gone) or on SIGTERM.

Inbound messages: a message is sent to the connector, and the Go thread that delivered
it waits until the connector acknowledges it (journaled), so the engine never runs ahead
of the journal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import logging
import os
import signal
import sys
import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection, unix_serve

from wafleet.sim.wire import ConnClosed, Frame
from wafleet_connector.engine.frames import BadHello, frame_of, spec_of_hello
from wafleet_connector.sim_transport import WebSocketConn
from wafleet_connector.transport import (
    FINAL_EVENTS,
    InboundMessage,
    LogoutError,
    SendError,
    TransportEvent,
)

logger = logging.getLogger(__name__)

HELLO_TIMEOUT = 10.0
MAX_FRAME = 2**20


@dataclass(frozen=True)
class WorkerConfig:
    """What the supervisor tells a worker (as JSON on its command line)."""

    socket: str
    sessions_dir: str | None = None  # hellos must name a session file in it
    library: str = "neonize"  # or "module:function" returning a stand-in Go library
    max_sessions: int = 25
    ack_timeout: float = 30.0  # a message waits this long for the connector's ack
    stop_timeout: float = 5.0
    log_level: str = "warning"
    neonize: dict[str, Any] = field(default_factory=dict)  # NeonizeConfig fields

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkerConfig:
        return cls(**json.loads(text))


def report(**fields: Any) -> None:
    """One line to the supervisor (stdout is ours alone: neonize logs go to logging)."""
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


class Stream:
    """One connection: one session, from hello to close."""

    def __init__(self, ws: ServerConnection, engine: Engine) -> None:
        self._conn = WebSocketConn(ws)
        self._engine = engine
        self._acks: dict[str, asyncio.Future[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: Any = None
        self._ended = False

    async def send(self, frame: Frame) -> None:
        with contextlib.suppress(ConnClosed):
            await self._conn.send(frame)

    async def recv(self) -> Frame | None:
        return await self._conn.recv()

    async def sink(self, event: TransportEvent) -> None:
        if isinstance(event, InboundMessage):
            await self._deliver(event)
            return
        await self.send(frame_of(event))
        if isinstance(event, FINAL_EVENTS):
            self._ended = True

    async def _deliver(self, event: InboundMessage) -> None:
        """Send a message and wait for the connector's ack: raising means not journaled."""
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._acks[event.wa_id] = ack
        try:
            await self._conn.send(frame_of(event))
            await asyncio.wait_for(ack, self._engine.config.ack_timeout)
        except (ConnClosed, TimeoutError) as exc:
            raise ConnectionError("the connector did not acknowledge the message") from exc
        finally:
            self._acks.pop(event.wa_id, None)

    async def run(self) -> None:
        try:
            hello = await asyncio.wait_for(self.recv(), HELLO_TIMEOUT)
        except TimeoutError:
            hello = None
        try:
            spec = spec_of_hello(hello, self._engine.sessions_dir)
        except BadHello as exc:
            await self.send({"type": "error", "reason": str(exc)})
            if hello is not None and isinstance(hello.get("account"), str):
                self._engine.closed(hello["account"])  # the supervisor counted it on the dial
            return
        account = spec.account_id
        self._engine.opened(account)
        try:
            self._session = await self._engine.transport.open(spec, self.sink)
        except Exception as exc:
            logger.warning("session refused", extra={"account": account, "error": str(exc)})
            await self.send({"type": "error", "reason": f"the engine refused the session: {exc}"})
            self._engine.closed(account)
            return
        try:
            await self._serve()
        finally:
            await self._end(account)

    async def _serve(self) -> None:
        while (frame := await self.recv()) is not None:
            kind = frame.get("type")
            if kind == "ack":
                ack = self._acks.get(str(frame.get("id")))
                if ack is not None and not ack.done():
                    ack.set_result(None)
            elif kind == "send":
                self._spawn(self._send(frame))
            elif kind == "logout":
                self._spawn(self._logout())
            elif kind == "stop":
                self._spawn(self._stop())

    async def _send(self, frame: Frame) -> None:
        ref = frame.get("ref")
        try:
            wa_id = await self._session.send_text(str(frame.get("to")), str(frame.get("text")))
        except SendError as exc:
            await self.send(
                {"type": "send_error", "ref": ref, "error": str(exc), "reached": exc.reached}
            )
        else:
            await self.send({"type": "sent", "ref": ref, "id": wa_id})

    async def _logout(self) -> None:
        try:
            await self._session.logout()
        except LogoutError as exc:
            await self.send({"type": "logout_failed", "error": str(exc)})
        else:
            await self.send({"type": "logged_out", "reason": "logout", "code": 401})
        await self._conn.close()

    async def _stop(self) -> None:
        await self._session.stop()  # journals what is still on its way (acks still arrive)
        await self.send({"type": "stopped"})
        await self._conn.close()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _end(self, account: str) -> None:
        """The stream is gone: stop the session and report once its socket is closed."""
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await task
        session = self._session
        await session.stop()
        quiesced = getattr(session, "quiesced", None)
        if isinstance(quiesced, threading.Event) and not quiesced.is_set():
            await asyncio.to_thread(quiesced.wait, self._engine.reopen_wait)
        self._engine.closed(account)


class Engine:
    """The worker's sessions: the in-process neonize transport and what it reports."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.sessions_dir = Path(config.sessions_dir) if config.sessions_dir else None
        self.transport: Any = build_inprocess(config)
        self.reopen_wait = float(config.neonize.get("reopen_wait", 120.0))
        self._last_health: dict[str, int] | None = None
        self._streams: Counter[str] = Counter()  # an account's streams, open or closing

    def opened(self, account: str) -> None:
        self._streams[account] += 1
        report(open=account)

    def closed(self, account: str) -> None:
        """Report an account closed once none of its streams here holds a socket."""
        self._streams[account] -= 1
        if self._streams[account] <= 0:
            del self._streams[account]
            report(closed=account)

    async def report_health(self) -> None:
        while True:
            health = self.transport.health()
            counts = {"live": health.live, "parked": health.parked, "leaked": health.leaked}
            if counts != self._last_health:
                self._last_health = counts
                report(health=counts)
            await asyncio.sleep(0.5)


def load_library(spec: str) -> Any:
    """None for the real neonize library; else ``module:function`` builds a stand-in."""
    if spec == "neonize":
        return None
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise ValueError(f"engine library {spec!r} is not 'neonize' or 'module:function'")
    return getattr(importlib.import_module(module_name), attr)()


def build_inprocess(config: WorkerConfig) -> Any:
    from wafleet_connector.engine.ffi import NeonizeFfi, check_versions  # noqa: PLC0415
    from wafleet_connector.engine.inprocess import (  # noqa: PLC0415
        NeonizeConfig,
        NeonizeTransport,
    )

    library = load_library(config.library)
    if library is None:
        check_versions()
    neonize = NeonizeConfig(max_sessions=config.max_sessions, **config.neonize)
    return NeonizeTransport(neonize, core=NeonizeFfi(lib=library))


def _watch_stdin(loop: asyncio.AbstractEventLoop, done: asyncio.Event) -> None:
    """The supervisor keeps our stdin open: EOF means the connector is gone."""
    with contextlib.suppress(OSError, ValueError):
        while sys.stdin.buffer.read(1024):
            pass
    loop.call_soon_threadsafe(done.set)


async def serve(config: WorkerConfig) -> None:
    engine = Engine(config)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, done.set)
    loop.add_signal_handler(signal.SIGINT, done.set)
    threading.Thread(target=_watch_stdin, args=(loop, done), daemon=True).start()
    streams: set[asyncio.Task[None]] = set()

    async def handler(ws: ServerConnection) -> None:
        task = asyncio.current_task()
        assert task is not None
        streams.add(task)
        try:
            await Stream(ws, engine).run()
        finally:
            streams.discard(task)

    old_mask = os.umask(0o177)  # the socket is the connector's alone
    try:
        server = await unix_serve(handler, config.socket, max_size=MAX_FRAME)
    finally:
        os.umask(old_mask)
    health = asyncio.create_task(engine.report_health())
    report(ready=os.getpid())
    async with server:
        await done.wait()
        server.close(close_connections=False)
        stopping = [asyncio.create_task(engine.transport.close())]
        await asyncio.wait(stopping, timeout=config.stop_timeout)
    health.cancel()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="wafleet-engine-worker")
    parser.add_argument("--config", required=True, help="WorkerConfig as JSON")
    args = parser.parse_args(argv)
    config = WorkerConfig.from_json(args.config)
    logging.basicConfig(
        level=config.log_level.upper(),
        stream=sys.stderr,
        format="engine-worker %(process)d %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(serve(config))
    os._exit(0)  # Go threads parked in neonize never return: do not wait for them


if __name__ == "__main__":
    main()
