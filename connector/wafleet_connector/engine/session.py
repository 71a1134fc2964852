"""One neonize client: Go callbacks in, transport events out, safe teardown.

The Go side (phases, the teardown steps ``Disconnect`` -> drain -> ``Stop``) is
``teardown.GoClient``; ``delivery.Delivery`` hands events to the sink; this module is
the glue: Go callbacks, timers, commands.

Inbound messages: whatsmeow acknowledges a message to WhatsApp as soon as neonize has
queued it (before Python sees it), so every message that reaches the Go callback is
handed to the sink, also while the session stops or after a final event; the Go thread
waits (bounded) for the sink. ``stop()`` and ``logout()`` return once the client is
quiet (``Neonize`` returned, or its thread is parked for good) and every such message
went through the sink, or after ``stop_timeout``. Other events are dropped once the
session has finished.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from wafleet_connector.engine.delivery import Ack, Delivery, SessionEnded
from wafleet_connector.engine.ffi import ClientCallbacks, ClientStart, LockTimeout, NeonizeFfi
from wafleet_connector.engine.gothreads import run_in_daemon as _daemon
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
from wafleet_connector.engine.store import linked_device_jid
from wafleet_connector.engine.teardown import EVENTS, QR, QR_DONE, GoClient, TeardownTiming
from wafleet_connector.transport import (
    FINAL_EVENTS,
    Connected,
    Disconnected,
    EventSink,
    InboundMessage,
    LogoutError,
    Paired,
    PairingCode,
    PasskeyRequired,
    QRCode,
    SendError,
    SessionSpec,
    TransportEvent,
)

if TYPE_CHECKING:
    from wafleet_connector.engine.inprocess import NeonizeConfig

log = logging.getLogger(__name__)

_UNLINKED_BUT = "error deleting data from store"  # whatsmeow Logout, after the unlink
# The QR-channel item for a passkey request (whatsmeow qrchan.go QRChannelEventPasskeyRequest).
# It is not final there: the channel stays open and emits codes that can no longer link
# (whatsmeow replaced the secret they carry), then "timeout". Here it ends the session.
PASSKEY_STATUS = "passkey-request"


def drain_budget(stop_timeout: float) -> float:
    """How long a teardown may drain the event pump: leaves time for ``Stop``."""
    return max(stop_timeout - 1.0, stop_timeout / 2)


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
        self._finished = self._stopped = self._connected = self._logout_started = False
        self._qr_count = 0
        self._pairing_requested = False
        self._linked = False  # paired ("success", PairStatus): no passkey is asked any more
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # cancelled when the session finishes
        self._out = Delivery(sink, loop, self._tag)
        self.quiesced = threading.Event()  # the client's socket is closed (or never opened)
        timing = TeardownTiming(config.drain_quiet, drain_budget(config.stop_timeout))
        self._go = GoClient(
            core=core,
            uuid=uuid,
            tag=self._tag,
            timing=timing,
            on_quiet=self._on_go_quiet,
            on_socket_closed=self.quiesced.set,
        )

    @property
    def finished(self) -> bool:
        return self._finished

    def _on_go_quiet(self) -> None:
        """Go thread: the client will not call back again; end the delivery after the
        events already posted."""
        self._post(self._out.end)

    @property
    def parked(self) -> bool:
        """The Go thread will never return (disconnected in its QR loop or ``FetchMe``)."""
        return self._go.parked

    @property
    def go_returned(self) -> bool:
        """``Neonize`` was called and has returned (its store handle stays open)."""
        return self._go.returned

    @property
    def done(self) -> bool:
        """Torn down: the client is quiet and every inbound message went to the sink."""
        return self._out.done.done()

    # ---- lifecycle -----------------------------------------------------------------

    def start(self, prev: NeonizeSession | None) -> None:
        self._out.start()
        self._arm("connect", self._cfg.connect_timeout, "connect_timeout")
        name = f"neonize-{self._tag}"
        threading.Thread(target=self._run, args=(prev,), name=name, daemon=True).start()
        log.info("neonize session %s: connecting (login=%s)", self._tag, self._spec.login)

    def _run(self, prev: NeonizeSession | None) -> None:
        if prev is not None and not self._wait_previous(prev):
            log.warning(
                "neonize session %s: previous socket still open, starting anyway", self._tag
            )
        start = ClientStart(
            uuid=self._uuid,
            db_path=str(self._spec.session_path),
            device_name=self._cfg.device_name,
            platform=self._cfg.browser,
            log_level=self._cfg.whatsmeow_log_level,
            proxy=self._cfg.proxy,
            start_grace=self._cfg.start_grace,
        )
        callbacks = ClientCallbacks(
            self._cb_qr, self._cb_status, self._cb_event, on_passkey_log=self._cb_passkey_log
        )
        linked = linked_device_jid(self._spec.session_path) is not None
        try:
            err = self._core.run_client(start, callbacks, lambda: self._go.may_start(linked))
        except Exception as exc:
            log.exception("neonize session %s: client crashed", self._tag)
            err = f"{type(exc).__name__}"
        if err is not None:
            self._post(self._on_return, err)
        self._go.ended()

    def _wait_previous(self, prev: NeonizeSession) -> bool:
        """Wait for the account's previous socket to close (or for our own teardown)."""
        waited = 0.0
        while not prev.quiesced.wait(0.1):
            waited += 0.1
            if self._go.torn_down.is_set() or waited >= self._cfg.reopen_wait:
                return prev.quiesced.is_set()
        return True

    async def stop(self) -> None:
        if not self._stopped:
            self._stopped = self._out.stopped = True
            self._finish()
            log.info("neonize session %s: stopping", self._tag)
        self._go.begin_teardown()  # idempotent; also ends a logout still waiting for Go
        await self._wait_done()

    async def logout(self) -> None:
        """Unlink the device (Go ``Logout``), then tear down. Raises LogoutError unless
        WhatsApp confirmed the unlink within ``logout_timeout``."""
        if self._logout_started or self._stopped:
            raise LogoutError("the session has already ended: the device is still linked")
        self._logout_started = True
        connected = self._connected and not self._finished
        self._stopped = self._out.stopped = True  # from now on only inbound messages
        self._finish()
        try:
            error = await self._go_logout() if connected else "not connected"
        finally:  # also when the caller gives up on the logout (cancelled)
            self._go.begin_teardown()
        await self._wait_done()
        if error:
            log.warning("neonize session %s: logout failed: %s", self._tag, error)
            raise LogoutError(f"logout not confirmed ({error}): the device is still linked")
        log.info("neonize session %s: logged out (device unlinked)", self._tag)

    async def _go_logout(self) -> str:
        """Go ``Logout``: whatsmeow sends the unlink request and waits for WhatsApp's
        answer; on success it disconnects and deletes the device from the store."""
        fut = _daemon(lambda: self._core.logout(self._uuid), f"neonize-logout-{self._tag}")
        timeout = self._cfg.logout_timeout
        try:
            answer = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(fut)), timeout)
        except TimeoutError:
            return f"no answer within {timeout:g} s"
        except LockTimeout:
            return "neonize core busy"
        except Exception as exc:
            return type(exc).__name__
        if answer.startswith(_UNLINKED_BUT):
            # whatsmeow got WhatsApp's confirmation, then failed to delete its store.
            log.warning("neonize session %s: unlinked; %s", self._tag, mask_text(answer))
            return ""
        return mask_text(answer)

    async def _wait_done(self) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(self._out.done), self._cfg.stop_timeout)
        except TimeoutError:
            log.info("neonize session %s: still tearing down in the background", self._tag)

    def _finish(self) -> None:
        """Loop side: no more events but inbound messages; timers and helpers end."""
        self._finished, self._connected = True, False
        for name in list(self._timers):
            self._cancel(name)
        for task in list(self._tasks):
            task.cancel()

    # ---- Go callbacks (Go threads) -----------------------------------------------

    def _cb_qr(self, code: str) -> None:
        if not self._go.enter(QR):
            self._post(self._on_qr, code)

    def _cb_status(self, status: str) -> None:
        self._go.status(status)
        if not self._go.enter(QR_DONE):
            self._post(self._on_status, status)

    def _cb_passkey_log(self, signal: str) -> None:
        """A whatsmeow log line says the phone asked for a passkey (any Go thread)."""
        if not self._go.teardown:
            self._post(self._on_passkey_log, signal)

    def _cb_event(self, code: int, msg: Any) -> None:
        teardown = self._go.enter(EVENTS)
        if code == 0:  # the client's own Device, sent as the event pump starts
            jid = jid_to_str(msg.JID) if msg.HasField("JID") else ""
            if jid and not teardown:
                self._post(self._set_own_jid, jid)
        elif msg.DESCRIPTOR.name == "Message":
            inbound = map_message(msg)
            if inbound is not None:
                self._go.message_begins()
                try:
                    self._deliver_and_wait(inbound)
                finally:
                    self._go.message_ends()
        elif not teardown:
            self._post(self._on_go_event, msg)

    def _deliver_and_wait(self, event: InboundMessage) -> None:
        ack: Ack = concurrent.futures.Future()
        if not self._post(self._out.inbound, event, ack):
            ack.set_exception(SessionEnded())
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

    def _on_passkey_log(self, signal: str) -> None:
        if not self._connected and not self._linked:  # only a link in progress asks one
            self._emit(PasskeyRequired(reason=signal))

    def _on_status(self, status: str) -> None:
        if status == PASSKEY_STATUS:
            self._emit(PasskeyRequired(reason=status))
        elif status == "success":
            self._linked = True
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

    def _emit(self, event: TransportEvent) -> None:
        """Queue a non-message event for the sink (dropped once the session finished)."""
        if self._finished:
            return
        if isinstance(event, Connected):
            self._connected = True
            self._cancel("connect")
        elif isinstance(event, PairingCode):
            self._cancel("connect")
        elif isinstance(event, Paired):
            self._linked = True
            self._cancel("qr")
            self._cancel("pairing")
            self._arm("connect", self._cfg.connect_timeout, "connect_timeout")
        reason = getattr(event, "reason", None)
        log.info("neonize session %s: %s%s", self._tag, type(event).__name__,
                 f" ({reason})" if reason else "")  # fmt: skip
        self._out.event(event)
        if isinstance(event, FINAL_EVENTS):
            self._finish()
            self._go.begin_teardown()

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
