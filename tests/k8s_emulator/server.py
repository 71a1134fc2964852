"""The uvicorn server the emulator runs in: as a process (``__main__``) or a thread (``serve``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn

from k8s_emulator.app import Emulator, create_app
from k8s_emulator.store import Store
from k8s_emulator.watch import DroppedWatch
from k8s_emulator.web import Settings


class QuietDroppedWatches(logging.Filter):
    """A drop-watch fault cuts its stream by raising: that is no application error."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not _is_dropped(error)


def _is_dropped(error: BaseException | None) -> bool:
    if isinstance(error, DroppedWatch):
        return True
    if isinstance(error, BaseExceptionGroup):
        return all(_is_dropped(e) for e in error.exceptions)
    return False


class Server(uvicorn.Server):
    """Ends open watches first, so that shutting down closes their streams cleanly."""

    store: Store

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Like uvicorn's, without re-raising the signal afterwards: SIGTERM exits with 0."""
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.store.close()
        await super().shutdown(sockets)


class ThreadServer(Server):
    """Signals belong to the main thread: a server on another thread handles none."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Running:
    """An emulator served on a thread of this process: ``url`` and the ``emulator`` itself
    (``emulator.faults``, ``emulator.store``) for tests that drive it from Python."""

    url: str
    emulator: Emulator
    server: Server
    thread: threading.Thread

    def stop(self, timeout: float = 10) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


@contextlib.contextmanager
def serve(
    store: Store | None = None, settings: Settings | None = None, ready_timeout: float = 10
) -> Iterator[Running]:
    """Run the emulator on 127.0.0.1 in a background thread for the ``with`` block."""
    store = store or Store()
    app = create_app(store, settings)
    # The socket is bound here and handed to uvicorn, so no one can take the port between
    # picking it and listening on it.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    server = ThreadServer(config)
    server.store = store
    logging.getLogger("uvicorn.error").addFilter(QuietDroppedWatches())
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + ready_timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the emulator did not start")
        time.sleep(0.02)
    running = Running(f"http://127.0.0.1:{port}", app.state.emulator, server, thread)
    try:
        yield running
    finally:
        running.stop()
        sock.close()
