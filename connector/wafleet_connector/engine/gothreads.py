"""Thread helpers for calls into the Go core: the map lock and daemon-thread futures."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class RWLock:
    """Readers/writer lock, writer-preferring; any thread may release."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    def acquire_read(self, timeout: float | None) -> bool:
        with self._cond:
            if not self._cond.wait_for(
                lambda: not (self._writer or self._writers_waiting), timeout
            ):
                return False
            self._readers += 1
            return True

    def release_read(self) -> None:
        with self._cond:
            self._readers -= 1
            self._cond.notify_all()

    def acquire_write(self) -> None:
        with self._cond:
            self._writers_waiting += 1
            try:
                self._cond.wait_for(lambda: not (self._writer or self._readers))
                self._writer = True
            finally:
                self._writers_waiting -= 1

    def release_write(self) -> None:
        with self._cond:
            self._writer = False
            self._cond.notify_all()


def once(fn: Callable[[], None]) -> Callable[[], None]:
    """``fn`` wrapped so that only the first call (from any thread) runs it."""
    lock = threading.Lock()
    done = [False]

    def run() -> None:
        with lock:
            if done[0]:
                return
            done[0] = True
        fn()

    return run


def timed_release(release: Callable[[], None], seconds: float) -> Callable[[], None]:
    """Run ``release`` after ``seconds`` unless the returned function runs it earlier."""
    release = once(release)
    timer = threading.Timer(seconds, release)
    timer.daemon = True
    timer.start()

    def end() -> None:
        timer.cancel()
        release()

    return end


def run_in_daemon(fn: Callable[[], T], name: str) -> concurrent.futures.Future[T]:
    """Run ``fn`` on a new daemon thread; return a concurrent.futures.Future.

    Daemon threads, not the default executor: calls into Go can block for a
    minute and must neither exhaust an executor nor delay interpreter exit.
    """
    fut: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        if not fut.set_running_or_notify_cancel():
            return
        try:
            fut.set_result(fn())
        except BaseException as exc:
            fut.set_exception(exc)

    threading.Thread(target=run, name=name, daemon=True).start()
    return fut
