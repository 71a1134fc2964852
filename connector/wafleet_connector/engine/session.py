"""One neonize client: Go callbacks in, transport events out, safe teardown.

Go-side phases of a client (goneonize ``Neonize``): starting (store, dial),
QR loop (new device only), QR loop ended (``FetchMe`` waits for a device id), event
pump, returned. ``Stop`` is only issued in the event pump or after the return:
issued earlier, the ``FetchMe`` that follows the QR loop dereferences the deleted
client and aborts the process. Before that the client is only ``Disconnect``-ed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from wafleet_connector.engine.ffi import ClientCallbacks, ClientStart, LockTimeout, NeonizeFfi
from wafleet_connector.engine.ffi import run_in_daemon as _daemon
from wafleet_connector.engine.mapping import (
    USER_SERVER,
    jid_to_str,
    map_event,
    map_message,
    mask_text,
    parse_jid,
    phone_digits,
    send_error_reached,
)
from wafleet_connector.transport import (
    FINAL_EVENTS,
    Connected,
    Disconnected,
    EventSink,
    InboundMessage,
    LoggedOut,
    Paired,
    PairingCode,
    QRCode,
    SendError,
    SessionSpec,
    TransportEvent,
)

if TYPE_CHECKING:
    from wafleet_connector.engine.inprocess import NeonizeConfig

log = logging.getLogger(__name__)

_STARTING, _QR, _QR_DONE, _EVENTS, _RETURNED = range(5)
_Item = tuple[TransportEvent | None, concurrent.futures.Future[None] | None]


class SessionEnded(Exception):
    """The session ended before an inbound message reached the sink."""


class NeonizeSession:
    def __init__(
        self,
        *,
        config: NeonizeConfig,
        spec: SessionSpec,
        sink: EventSink,
        core: NeonizeFfi,
        uuid: bytes,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._cfg, self._spec, self._sink, self._core = config, spec, sink, core
        self._uuid, self._loop = uuid, loop
        self._tag = mask_text(spec.account_id)
        self._own_jid = f"{phone_digits(spec.phone)}@{USER_SERVER}"
        # Loop-side state.
        self._finished = self._stopped = self._connected = self._logout_started = False
        self._qr_count = 0
        self._pairing_requested = False
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._quiesced_fut: asyncio.Future[None] = loop.create_future()
        # Thread-side state (Go callback threads, teardown threads), under _mx.
        self._mx = threading.Lock()
        self._phase = _STARTING
        self._teardown = self._td_busy = self._stop_done = False
        self._disconnected_in = -1
        self.quiesced = threading.Event()  # the client's socket is closed (or never opened)

    @property
    def finished(self) -> bool:
        return self._finished

    # ---- lifecycle -----------------------------------------------------------------

    def start(self, prev: NeonizeSession | None) -> None:
        self._spawn(self._deliver())
        self._arm("connect", self._cfg.connect_timeout, "connect_timeout")
        name = f"neonize-{self._tag}"
        threading.Thread(target=self._run, args=(prev,), name=name, daemon=True).start()
        log.info("neonize session %s: connecting (login=%s)", self._tag, self._spec.login)

    def _run(self, prev: NeonizeSession | None) -> None:
        if prev is not None and not prev.quiesced.wait(self._cfg.reopen_wait):
            log.warning(
                "neonize session %s: previous socket still open, starting anyway", self._tag
            )
        callbacks = ClientCallbacks(self._cb_qr, self._cb_status, self._cb_event)
        try:
            start = ClientStart(
                uuid=self._uuid,
                db_path=str(self._spec.session_path),
                device_name=self._cfg.device_name,
                platform=self._cfg.browser,
                log_level=self._cfg.whatsmeow_log_level,
                proxy=self._cfg.proxy,
                start_grace=self._cfg.start_grace,
            )
            err = self._core.run_client(start, callbacks, self._may_start)
        except Exception as exc:
            log.exception("neonize session %s: client crashed", self._tag)
            err = f"{type(exc).__name__}"
        with self._mx:
            self._phase = _RETURNED
            self._stop_done = self._stop_done or err is None  # never started
        self._set_quiesced()
        if err is not None:
            self._post(self._on_return, err)
        self._advance_teardown()

    def _may_start(self) -> bool:
        with self._mx:
            return not self._teardown

    async def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._finish()
            self._queue.put_nowait((None, None))
            log.info("neonize session %s: stopping", self._tag)
        await self._wait_quiesced()

    async def logout(self) -> None:
        if self._logout_started or self._stopped:
            return
        self._logout_started = True
        if self._finished or not self._connected:
            log.warning("neonize session %s: logout while not connected: still linked", self._tag)
            self._emit(Disconnected(reason="logout_not_connected"))
        else:
            fut = _daemon(lambda: self._core.logout(self._uuid), f"neonize-logout-{self._tag}")
            try:
                wrapped = asyncio.wrap_future(fut)
                err = await asyncio.wait_for(asyncio.shield(wrapped), self._cfg.logout_timeout)
            except TimeoutError:
                err = "timed out"
            except Exception as exc:
                err = type(exc).__name__
            if err:
                log.warning("neonize session %s: logout failed: %s", self._tag, mask_text(err))
                self._emit(Disconnected(reason=f"logout_failed: {mask_text(err)}"))
            else:
                self._emit(LoggedOut(reason="logout"))
        await self._wait_quiesced()

    async def _wait_quiesced(self) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(self._quiesced_fut), self._cfg.stop_timeout)
        except TimeoutError:
            log.info("neonize session %s: still disconnecting in the background", self._tag)

    def _finish(self) -> None:
        """Loop side: no more events; tear the Go client down in the background."""
        self._finished, self._connected = True, False
        for name in list(self._timers):
            self._cancel(name)
        with self._mx:
            self._teardown = True
        self._advance_teardown()

    def _advance_teardown(self) -> None:
        """Take the next teardown step (any thread): ``Disconnect`` once per phase (it
        may wait for a dial, but holds the Go lock only briefly), then ``Stop`` (a
        writer, quick once disconnected), and only when the Go thread is in its event
        pump or has returned."""
        with self._mx:
            if not self._teardown or self._td_busy or self._stop_done:
                return
            if self._disconnected_in != self._phase:
                action, phase = "disconnect", self._phase
            elif self._phase >= _EVENTS:
                action, phase = "stop", self._phase
            else:
                return
            self._td_busy = True
        name = f"neonize-{action}-{self._tag}"
        threading.Thread(
            target=self._teardown_step, args=(action, phase), name=name, daemon=True
        ).start()

    def _teardown_step(self, action: str, phase: int) -> None:
        try:
            if action == "stop":
                self._core.stop(self._uuid)
            else:
                self._core.disconnect(self._uuid)
        except Exception:
            log.warning("neonize session %s: %s failed", self._tag, action, exc_info=True)
        with self._mx:
            self._td_busy = False
            self._stop_done = self._stop_done or action == "stop"
            self._disconnected_in = phase
        self._set_quiesced()
        self._advance_teardown()

    def _set_quiesced(self) -> None:
        self.quiesced.set()
        self._post(
            lambda: None if self._quiesced_fut.done() else self._quiesced_fut.set_result(None)
        )

    # ---- Go callbacks (Go threads) -----------------------------------------------

    def _set_phase(self, phase: int) -> bool:
        """Advance the Go-side phase; True if the session is being torn down."""
        with self._mx:
            self._phase = max(self._phase, phase)
            teardown = self._teardown
        if teardown:
            self._advance_teardown()
        return teardown

    def _cb_qr(self, code: str) -> None:
        if not self._set_phase(_QR):
            self._post(self._on_qr, code)

    def _cb_status(self, status: str) -> None:
        if not self._set_phase(_QR_DONE):
            self._post(self._on_status, status)

    def _cb_event(self, code: int, msg: Any) -> None:
        if self._set_phase(_EVENTS):
            return
        if code == 0:  # the client's own Device, sent as the event pump starts
            jid = jid_to_str(msg.JID) if msg.HasField("JID") else ""
            if jid:
                self._post(self._set_own_jid, jid)
        elif msg.DESCRIPTOR.name == "Message":
            inbound = map_message(msg)
            if inbound is not None:
                self._deliver_and_wait(inbound)
        else:
            self._post(self._on_go_event, msg)

    def _deliver_and_wait(self, event: InboundMessage) -> None:
        ack: concurrent.futures.Future[None] = concurrent.futures.Future()
        if not self._post(self._emit, event, ack):
            return
        try:
            ack.result(timeout=self._cfg.inbound_ack_timeout)
        except TimeoutError:
            log.warning("neonize session %s: sink slow for an inbound message", self._tag)
        except Exception as exc:
            # whatsmeow has already sent the receipt: nothing can make WhatsApp redeliver.
            log.error(
                "neonize session %s: inbound message %s not persisted (%s); "
                "whatsmeow has already acknowledged it",
                self._tag,
                event.wa_id,
                type(exc).__name__,
            )

    def _post(self, fn: Any, *args: Any) -> bool:
        try:
            self._loop.call_soon_threadsafe(fn, *args)
            return True
        except RuntimeError:  # the loop is closed
            return False

    # ---- loop side -----------------------------------------------------------------

    def _set_own_jid(self, jid: str) -> None:
        self._own_jid = jid

    def _on_go_event(self, msg: Any) -> None:
        for event in map_event(msg, self._own_jid):
            self._emit(event)

    def _on_qr(self, code: str) -> None:
        if self._finished:
            return
        self._cancel("connect")
        if self._spec.login == "pairingCode":
            if not self._pairing_requested:
                self._pairing_requested = True
                self._arm("pairing", self._cfg.pairing_ttl, "pairing_timeout")
                self._spawn(self._request_pairing_code())
            return
        ttl = self._cfg.qr_first_ttl if self._qr_count == 0 else self._cfg.qr_ttl
        self._qr_count += 1
        self._emit(QRCode(code=code, expires_at=datetime.now(UTC) + timedelta(seconds=ttl)))
        self._arm("qr", ttl + self._cfg.qr_grace, "qr_timeout")

    async def _request_pairing_code(self) -> None:
        phone = phone_digits(self._spec.phone)
        cfg = self._cfg
        fut = _daemon(
            lambda: self._core.pair_phone(
                self._uuid, phone, cfg.pairing_client_type, cfg.pairing_display_name
            ),
            f"neonize-pair-{self._tag}",
        )
        try:
            ret = await asyncio.wrap_future(fut)
            error, code = str(ret.Error or ""), str(ret.Code or "")
        except Exception as exc:
            error, code = type(exc).__name__, ""
        if error or not code:
            self._emit(Disconnected(reason=f"pairing_code_failed: {mask_text(error)}"))
        else:
            self._emit(PairingCode(code=code))

    def _on_status(self, status: str) -> None:
        if status == "success":
            self._cancel("qr")
            self._cancel("pairing")
            self._arm("connect", self._cfg.connect_timeout, "connect_timeout")
        elif status == "timeout":
            pairing = self._spec.login == "pairingCode"
            self._emit(Disconnected(reason="pairing_timeout" if pairing else "qr_timeout"))
        else:
            self._emit(Disconnected(reason=f"pairing_failed: {status}"))

    def _on_return(self, err: str) -> None:
        reason = f"connect_failed: {mask_text(err)}" if err else "client_exited"
        self._emit(Disconnected(reason=reason))

    def _emit(
        self, event: TransportEvent, ack: concurrent.futures.Future[None] | None = None
    ) -> None:
        if self._finished:
            if ack is not None and not ack.done():
                ack.set_exception(SessionEnded())
            return
        if isinstance(event, Connected):
            self._connected = True
            self._cancel("connect")
        elif isinstance(event, PairingCode):
            self._cancel("connect")
        elif isinstance(event, Paired):
            self._cancel("qr")
            self._cancel("pairing")
            self._arm("connect", self._cfg.connect_timeout, "connect_timeout")
        if isinstance(event, Disconnected | LoggedOut):
            log.info("neonize session %s: %s (%s)", self._tag, type(event).__name__, event.reason)
        elif not isinstance(event, InboundMessage):
            log.info("neonize session %s: %s", self._tag, type(event).__name__)
        if isinstance(event, FINAL_EVENTS):
            self._finish()
        self._queue.put_nowait((event, ack))

    async def _deliver(self) -> None:
        """Await the sink for each event, in order; stop after a final event."""
        while True:
            event, ack = await self._queue.get()
            if event is None:
                return
            if self._stopped:
                if ack is not None and not ack.done():
                    ack.set_exception(SessionEnded())
                continue
            try:
                await self._sink(event)
            except BaseException as exc:
                if ack is not None and not ack.done():
                    ack.set_exception(exc if isinstance(exc, Exception) else SessionEnded())
                if not isinstance(exc, Exception):
                    raise
                log.exception("neonize session %s: sink failed", self._tag)
            else:
                if ack is not None and not ack.done():
                    ack.set_result(None)
            if isinstance(event, FINAL_EVENTS):
                return

    def _arm(self, name: str, delay: float, reason: str) -> None:
        self._cancel(name)
        self._timers[name] = self._loop.call_later(delay, self._expire, name, reason)

    def _cancel(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()

    def _expire(self, name: str, reason: str) -> None:
        self._timers.pop(name, None)
        self._emit(Disconnected(reason=reason))

    def _spawn(self, coro: Any) -> None:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- commands ------------------------------------------------------------------

    async def send_text(self, to_jid: str, text: str) -> str:
        if self._finished or not self._connected:
            raise SendError("session not connected", reached=False)
        try:
            to = parse_jid(to_jid)
        except ValueError:
            raise SendError("invalid recipient", reached=False) from None
        started = threading.Event()
        timeout = self._cfg.send_timeout
        fut = _daemon(
            lambda: self._core.send_text(self._uuid, to, text, timeout, started),
            f"neonize-send-{self._tag}",
        )
        try:
            ret = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(fut)), timeout)
        except TimeoutError:
            raise SendError("send timed out", reached=started.is_set()) from None
        except LockTimeout:
            raise SendError("neonize core busy", reached=False) from None
        except Exception as exc:
            raise SendError(f"send failed: {type(exc).__name__}", reached=started.is_set()) from exc
        if ret.Error:
            error = str(ret.Error)
            raise SendError(f"send failed: {mask_text(error)}", reached=send_error_reached(error))
        wa_id = str(ret.SendResponse.ID or "")
        if not wa_id:
            raise SendError("no message id returned", reached=True)
        return wa_id
