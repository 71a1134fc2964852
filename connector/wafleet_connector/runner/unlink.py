"""Deleting an account: unlink the device first, wipe its session only once confirmed."""

from __future__ import annotations

import asyncio
import logging

from wafleet.core.phases import Phase
from wafleet.core.phones import mask_phone
from wafleet_connector.runner.context import Next
from wafleet_connector.runner.state import RunnerState
from wafleet_connector.sessionfiles import has_session
from wafleet_connector.transport import (
    Connected,
    InboundMessage,
    LoggedOut,
    LogoutError,
    Session,
    SessionSpec,
    TransportEvent,
)

logger = logging.getLogger(__name__)


class Unlinking(RunnerState):
    """Delete: unlink the device, and wipe the session only once WhatsApp confirmed it."""

    # ----- delete: unlink the device, then wipe ------------------------------------------
    async def _unlink(self) -> Next:
        """Log the device out; wipe the session only once WhatsApp confirmed the unlink."""
        try:
            await self._log_out()
        except (LogoutError, TimeoutError) as exc:
            why = str(exc) or "timed out"
            self._delay = self.ctx.backoff.delay(self._unlink_attempt)
            self._unlink_attempt += 1
            logger.warning(
                "unlink failed; the session is kept and the logout retried",
                extra={"account": self.spec.id, "phone": mask_phone(self.spec.phone)},
            )
            self._set(
                Phase.FAILED,
                reason=(
                    f"deleting: the device could not be unlinked from WhatsApp ({why}); its "
                    f"session is kept and the logout is retried in {self._delay:.0f} s"
                ),
                qr=None,
                qr_expires_at=None,
            )
            return Next.UNLINK
        await self.ctx.vault.forget(self.spec.resource_name, self.session_path)
        self.deleted = True
        return Next.EXIT

    async def _log_out(self) -> None:
        """Unlink the device: through the running session, or one opened for it."""
        if self.status.phase != Phase.CONNECTED:
            await self._stop_session()
        session, self._session = self._session, None
        if session is None:
            if not await asyncio.to_thread(has_session, self.session_path):
                return  # never linked (or already unlinked): nothing to log out
            session = await self._connect_for_logout()
        await asyncio.wait_for(session.logout(), self.ctx.logout_timeout)

    async def _connect_for_logout(self) -> Session:
        """Open a session only to log the device out (delete of a stopped account)."""
        connected = asyncio.Event()
        gone: list[LoggedOut] = []

        async def sink(event: TransportEvent) -> None:
            if isinstance(event, InboundMessage):
                await self.ctx.inbound(self.spec.id, event)
            elif isinstance(event, Connected):
                connected.set()
            elif isinstance(event, LoggedOut):
                gone.append(event)
                connected.set()

        spec = SessionSpec(self.spec.id, self.spec.phone, self.spec.login, self.session_path)
        session = await self.ctx.transport.open(spec, sink)
        try:
            await asyncio.wait_for(connected.wait(), self.ctx.logout_timeout)
        except TimeoutError:
            await self._stop(session)
            raise LogoutError("could not connect to WhatsApp to unlink the device") from None
        if gone:  # WhatsApp says the device is gone already: that is the unlink
            await self._stop(session)
            return _Unlinked()
        return session


class _Unlinked:
    """A session whose device WhatsApp already removed: logging out is done."""

    async def send_text(self, to_jid: str, text: str) -> str:
        raise LogoutError("unlinked")

    async def logout(self) -> None:
        return None

    async def stop(self) -> None:
        return None


# Phases that wait for a command, also across a restart of the connector.
