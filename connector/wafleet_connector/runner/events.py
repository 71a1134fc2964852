"""What an account does with its session's events: link, connect, lose, be replaced."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from wafleet.core.models import Disconnect, Incident
from wafleet.core.phases import Phase
from wafleet.core.phones import jid_to_phone, mask_phone
from wafleet_connector.runner.context import Next, now
from wafleet_connector.runner.state import RunnerState
from wafleet_connector.sessionfiles import has_session, wipe_session
from wafleet_connector.transport import (
    LINK_TIMEOUTS,
    ClientOutdated,
    Connected,
    Disconnected,
    KeepAliveRestored,
    KeepAliveTimeout,
    LoggedOut,
    LogoutError,
    Paired,
    PairingCode,
    PasskeyRequired,
    QRCode,
    StreamReplaced,
    TemporaryBan,
    TransportEvent,
)

logger = logging.getLogger(__name__)

PASSKEY_REASON = (
    "WhatsApp asks for a passkey to link this device, which wafleet cannot answer yet "
    "(neonize 0.5.2). Move the account's existing linked session over with "
    "`wafleet migrate-legacy`, or link it from a phone where WhatsApp asks no passkey; "
    "then call regenerate-qr"
)


class SessionEvents(RunnerState):
    """What the account does with each event of its session."""

    async def _on_event(self, event: TransportEvent) -> Next | None:
        if isinstance(event, QRCode):
            self._qr_cycles += 1
            if self._qr_cycles > self.ctx.qr_max_cycles:
                return await self._qr_guard(f"nobody scanned {self.ctx.qr_max_cycles} QR codes")
            self._set(Phase.QR_READY, qr=event.code, qr_expires_at=event.expires_at)
        elif isinstance(event, PairingCode):
            self._pairing_codes += 1
            if self._pairing_codes > self.ctx.pairing_max_codes:
                limit = self.ctx.pairing_max_codes
                return await self._qr_guard(f"{limit} pairing codes were not entered on the phone")
            self._set(Phase.PAIRING_CODE_READY, pairing_code=event.code)
        elif isinstance(event, Paired | Connected) and not self._own_phone(event.jid):
            return await self._wrong_phone(event.jid)
        elif isinstance(event, Paired):
            self._set(Phase.CONNECTING, jid=event.jid, qr=None, qr_expires_at=None)
            self.ctx.vault.backup_soon(self.spec.resource_name, self.session_path)
        elif isinstance(event, Connected | KeepAliveRestored):
            self._on_connected(event.jid if isinstance(event, Connected) else self.status.jid)
        elif isinstance(event, KeepAliveTimeout):
            self._on_keepalive_lost(event)
        elif isinstance(event, Disconnected) and event.reason in LINK_TIMEOUTS:
            return await self._qr_guard("nobody linked the device before WhatsApp's codes ran out")
        elif isinstance(event, StreamReplaced):
            return await self._on_replaced()
        elif isinstance(event, ClientOutdated):
            return await self._on_outdated(event)
        elif isinstance(event, PasskeyRequired):
            return await self._on_passkey(event)
        elif isinstance(event, Disconnected | TemporaryBan):
            return await self._on_lost(event)
        elif isinstance(event, LoggedOut):
            return await self._on_logged_out(event)
        return None

    def _on_connected(self, jid: str | None) -> None:
        """Connected (again): one outbox sender, however many Connected events come."""
        was_connected = self.status.phase == Phase.CONNECTED
        same_stream = self._connected_since is not None  # e.g. a keepalive that recovered
        self._attempt = 0
        self._qr_cycles = 0
        self._pairing_codes = 0
        self._fresh_link = False
        if not same_stream:
            self._connected_since = time.monotonic()
        if was_connected and self.status.jid == jid:
            return
        self._set(
            Phase.CONNECTED,
            jid=jid,
            connected_at=self.status.connected_at if same_stream else now(),
            qr=None,
            qr_expires_at=None,
            pairing_code=None,
            reason=None,
        )
        assert self._session is not None
        self.ctx.on_connected(self.spec.id, self._session)
        logger.info("connected", extra={"account": self.spec.id})

    def _on_keepalive_lost(self, event: KeepAliveTimeout) -> None:
        """The stream may be dead; whatsmeow recovers it (or ends it) by itself."""
        if self.status.phase != Phase.CONNECTED:
            return
        self.ctx.on_disconnected(self.spec.id)
        self._set(
            Phase.RECONNECTING,
            reason=(
                f"WhatsApp stopped answering keepalive pings ({event.error_count} missed); "
                "waiting for the stream to recover"
            ),
        )

    def _own_phone(self, jid: str) -> bool:
        return not jid or jid_to_phone(jid) == self.spec.phone

    async def _wrong_phone(self, jid: str) -> Next:
        """Another phone linked this device: unlink it at once, and say so."""
        other = mask_phone(jid_to_phone(jid))
        self.ctx.on_disconnected(self.spec.id)
        session, self._session = self._session, None
        unlinked = "it was unlinked at once"
        if session is not None:
            try:
                await asyncio.wait_for(session.logout(), self.ctx.logout_timeout)
            except (LogoutError, TimeoutError) as exc:
                unlinked = f"unlinking it failed ({exc}); remove it on that phone"
                await self._stop(session)
        await self.ctx.vault.forget(self.spec.resource_name, self.session_path)
        await self.ctx.incident(
            Incident(self.spec.id, "wrong_phone", "high", {"linkedPhone": other})
        )
        logger.warning("linked by another phone", extra={"account": self.spec.id})
        self._set(
            Phase.LOGGED_OUT,
            reason=(
                f"the device was linked by {other}, not by this account's phone "
                f"{mask_phone(self.spec.phone)}; {unlinked}. Call regenerate-qr and link it "
                "with the account's phone"
            ),
            qr=None,
            qr_expires_at=None,
            pairing_code=None,
            jid=None,
            connected_at=None,
        )
        return Next.WAIT

    async def _on_replaced(self) -> Next:
        """Another client took the session: one retry after a pause, then wait."""
        stable = (
            self._connected_since is not None
            and time.monotonic() - self._connected_since >= self.ctx.replaced_stable
        )
        if stable:
            self._replaced_retried = False
        self.ctx.on_disconnected(self.spec.id)
        await self._stop_session()
        await self.ctx.incident(Incident(self.spec.id, "stream_replaced", "high", {}))
        lost = Disconnect("stream_replaced", 440, now())
        if self._replaced_retried:
            self._set(
                Phase.REPLACED,
                reason=(
                    "another client is using this WhatsApp session (its stream was replaced "
                    "twice); stop the other client, then call regenerate-qr to take it back"
                ),
                last_disconnect=lost,
                qr=None,
                qr_expires_at=None,
            )
            return Next.WAIT
        self._replaced_retried = True
        self._delay = max(self.ctx.replaced_retry, self.ctx.backoff.delay(self._attempt))
        self._set(
            Phase.RECONNECTING,
            reason=(
                "another client took over this WhatsApp session (stream replaced); "
                f"one retry in {self._delay:.0f} s"
            ),
            reconnects=self.status.reconnects + 1,
            last_disconnect=lost,
            qr=None,
            qr_expires_at=None,
        )
        return Next.RETRY

    async def _on_outdated(self, event: ClientOutdated) -> Next:
        self.ctx.on_disconnected(self.spec.id)
        await self._stop_session()
        await self.ctx.incident(Incident(self.spec.id, "client_outdated", "high", {}))
        self._set(
            Phase.FAILED,
            reason=(
                "WhatsApp refuses this client version as outdated (405); upgrade wafleet to a "
                "release with a newer WhatsApp library, then restart it or call regenerate-qr"
            ),
            last_disconnect=Disconnect(event.reason, event.code, now()),
            qr=None,
            qr_expires_at=None,
        )
        return Next.WAIT

    async def _on_passkey(self, event: PasskeyRequired) -> Next:
        """The phone asked for a passkey: the link cannot complete. No new codes (each one
        would end the same way): wait for a person's command, with what to do.

        The store the failed link left holds no device; it goes, so that a session moved
        over meanwhile (``wafleet migrate-legacy`` seeds the account's backup) is restored
        by the next regenerate-qr instead of being hidden by an empty store."""
        await self._stop_session()
        await asyncio.to_thread(_drop_unlinked_store, self.session_path)
        logger.warning("passkey required", extra={"account": self.spec.id, "signal": event.reason})
        details: dict[str, object] = {"login": self.spec.login, "signal": event.reason}
        await self.ctx.incident(Incident(self.spec.id, "passkey_required", "high", details))
        self._set(
            Phase.PASSKEY_REQUIRED,
            reason=PASSKEY_REASON,
            qr=None,
            qr_expires_at=None,
            pairing_code=None,
        )
        return Next.WAIT

    async def _on_lost(self, event: Disconnected | TemporaryBan) -> Next:
        self._connected_since = None
        self.ctx.on_disconnected(self.spec.id)
        await self._stop_session()
        self._delay = self.ctx.backoff.delay(self._attempt)
        self._attempt += 1
        code = event.code if isinstance(event, Disconnected) else None
        if isinstance(event, TemporaryBan):
            self._delay = max(self._delay, event.retry_after)
            await self.ctx.incident(
                Incident(self.spec.id, "temp_ban", "high", {"retryAfter": event.retry_after})
            )
        self._set(
            Phase.RECONNECTING,
            reason=f"{event.reason}; next try in {self._delay:.1f} s",
            reconnects=self.status.reconnects + 1,
            last_disconnect=Disconnect(event.reason, code, now()),
            qr=None,
            qr_expires_at=None,
        )
        return Next.RETRY

    async def _on_logged_out(self, event: LoggedOut) -> Next:
        self.ctx.on_disconnected(self.spec.id)
        await self._stop_session()
        await self.ctx.vault.forget(self.spec.resource_name, self.session_path)
        logger.warning("logged out", extra={"account": self.spec.id, "reason": event.reason})
        await self.ctx.incident(
            Incident(self.spec.id, "logged_out", "high", {"reason": event.reason})
        )
        self._set(
            Phase.LOGGED_OUT,
            reason="the device was unlinked; call regenerate-qr to link it again",
            last_disconnect=Disconnect(event.reason, event.code, now()),
            qr=None,
            qr_expires_at=None,
            pairing_code=None,
            connected_at=None,
        )
        return Next.WAIT

    async def _qr_guard(self, why: str) -> Next:
        await self._stop_session()
        await self.ctx.incident(Incident(self.spec.id, "qr_timeout", "medium", {"why": why}))
        self._set(
            Phase.QR_TIMEOUT,
            reason=f"{why}; call regenerate-qr for a new one",
            qr=None,
            qr_expires_at=None,
            pairing_code=None,
        )
        return Next.WAIT


def _drop_unlinked_store(path: Path) -> None:
    """Delete a session store that holds no linked device (nothing is lost)."""
    if not has_session(path):
        wipe_session(path)
