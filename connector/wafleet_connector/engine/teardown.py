"""The Go side of one neonize client: its phase and the steps that tear it down.

Go-side phases of a client (goneonize ``Neonize``): starting (store, dial), QR loop (new
device only), QR loop ended (``FetchMe`` waits for a device id), event pump, returned.

Teardown (stop, logout, or a final event), one step at a time on its own thread:

1. ``Disconnect``, once per phase the client is seen in (a client stopped while dialing
   may still reach its QR loop or event pump): the socket closes, so no new message
   arrives and whatsmeow sends no more receipts.
2. Drain, in the event pump only: neonize may still hold queued events (up to 100, each
   message among them already acknowledged to WhatsApp by whatsmeow). The pump delivers
   them back to back and waits for each callback; messages still go to the sink. The
   pump counts as drained when no callback is in progress and none came for
   ``drain_quiet`` seconds since the last one (or since ``Disconnect`` returned), or when
   the drain deadline (``drain_budget`` after the teardown began) has passed.
3. ``Stop``: only in the event pump or after ``Neonize`` returned. Issued earlier, the
   ``FetchMe`` that follows the QR loop dereferences the deleted client and aborts the
   process. ``Stop`` cancels the pump: what is still queued in Go then is lost.
4. Quiet: ``Neonize`` returned, or the Go thread is parked for good: disconnected before
   its event pump with no device to resume (QR loop, or ``FetchMe`` after a QR timeout),
   it never returns and never calls back again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from wafleet_connector.engine.ffi import NeonizeFfi

log = logging.getLogger(__name__)

STARTING, QR, QR_DONE, EVENTS, RETURNED = range(5)


@dataclass(frozen=True)
class TeardownTiming:
    drain_quiet: float  # no callback for this long: the event pump is drained
    drain_budget: float  # the drain gives up this long after the teardown began


class GoClient:
    """Thread-side state of one client (Go callback threads, teardown threads)."""

    def __init__(
        self,
        *,
        core: NeonizeFfi,
        uuid: bytes,
        tag: str,
        timing: TeardownTiming,
        on_quiet: Callable[[], None],
        on_socket_closed: Callable[[], None],
    ) -> None:
        self._core, self._uuid, self._tag, self._timing = core, uuid, tag, timing
        self._on_quiet, self._on_socket_closed = on_quiet, on_socket_closed
        self._mx = threading.Lock()
        self.phase = STARTING
        self.teardown = False
        self.started = False  # Neonize was called
        self.returned = False  # ... and has returned
        self.linked = False  # the store held a device when the client started
        self.qr_status = ""
        self._busy = False
        self._stop_done = False
        self._disconnected_in = -1
        self._inflight = 0
        self._last_callback = 0.0
        self._teardown_at = 0.0
        self._recheck_at: float | None = None
        self._quiet = False
        self.torn_down = threading.Event()  # set with the teardown, for waits on Go threads

    # ---- Go callback side ------------------------------------------------------------

    def enter(self, phase: int) -> bool:
        """A callback of ``phase`` arrived; True if the client is being torn down."""
        with self._mx:
            self.phase = max(self.phase, phase)
            self._last_callback = time.monotonic()
            teardown = self.teardown
        if teardown:
            self.advance()
        return teardown

    def status(self, status: str) -> None:
        with self._mx:
            self.qr_status = status

    def message_begins(self) -> None:
        with self._mx:
            self._inflight += 1

    def message_ends(self) -> None:
        with self._mx:
            self._inflight -= 1
            self._last_callback = time.monotonic()

    # ---- the client thread ------------------------------------------------------------

    def may_start(self, linked: bool) -> bool:
        with self._mx:
            self.started = not self.teardown
            self.linked = linked
            return self.started

    def ended(self) -> None:
        """``run_client`` returned (or never started the client)."""
        with self._mx:
            self.phase = RETURNED
            self.returned = self.started
            self._stop_done = self._stop_done or not self.started
        self._on_socket_closed()
        self.advance()

    # ---- teardown ------------------------------------------------------------------

    def begin_teardown(self) -> None:
        with self._mx:
            if self.teardown:
                return
            self.teardown = True
            self._teardown_at = time.monotonic()
        self.torn_down.set()
        self.advance()

    @property
    def parked(self) -> bool:
        with self._mx:
            return self._parked()

    def _parked(self) -> bool:
        if not self.started or self.returned or self._disconnected_in < 0:
            return False
        if self.phase >= EVENTS or self.qr_status == "success":
            return False
        return self.phase >= QR or not self.linked

    def advance(self) -> None:
        """Take the next teardown step, if one is due (any thread)."""
        with self._mx:
            step, quiet, recheck = self._next()
            phase = self.phase
            if step is not None:
                self._busy = True
        if quiet:
            self._on_quiet()
        if recheck is not None:
            timer = threading.Timer(recheck, self._recheck)
            timer.daemon = True
            timer.start()
        if step is not None:
            name = f"neonize-{step}-{self._tag}"
            threading.Thread(target=self._step, args=(step, phase), name=name, daemon=True).start()

    def _recheck(self) -> None:
        with self._mx:
            self._recheck_at = None
        self.advance()

    def _next(self) -> tuple[str | None, bool, float | None]:
        """(step to take, quiet reached now, seconds until the drain is checked again)."""
        if not self.teardown or self._busy:
            return None, False, None
        if self.phase == RETURNED:
            if not self._stop_done:
                return "stop", False, None
            return None, self._quiet_now(), None
        if self._disconnected_in != self.phase:
            return "disconnect", False, None
        if self.phase < EVENTS:
            return None, self._parked() and self._quiet_now(), None
        if self._stop_done:
            return None, False, None  # the pump ends: wait for Neonize to return
        wait = self._drain_wait()
        if wait <= 0:
            return "stop", False, None
        if self._recheck_at is not None:
            return None, False, None
        self._recheck_at = time.monotonic() + wait
        return None, False, wait

    def _quiet_now(self) -> bool:
        if self._quiet:
            return False
        self._quiet = True
        return True

    def _drain_wait(self) -> float:
        now = time.monotonic()
        left = self._teardown_at + self._timing.drain_budget - now
        if left <= 0:
            if self._inflight:
                log.warning("neonize session %s: drain deadline passed mid-message", self._tag)
            return 0.0
        if self._inflight:
            return min(self._timing.drain_quiet, left)
        return min(self._last_callback + self._timing.drain_quiet - now, left)

    def _step(self, step: str, phase: int) -> None:
        try:
            if step == "stop":
                self._core.stop(self._uuid)
            else:
                self._core.disconnect(self._uuid)
        except Exception:
            log.warning("neonize session %s: %s failed", self._tag, step, exc_info=True)
        with self._mx:
            self._busy = False
            if step == "stop":
                self._stop_done = True
            else:
                self._disconnected_in = phase
                self._last_callback = max(self._last_callback, time.monotonic())
        self._on_socket_closed()
        self.advance()
