"""Frames from the sim turned into what whatsmeow would do: events, QR items, answers.

- ``qr``: QR codes into the QR channel, ``qr_codes`` of them, then "timeout" when the last
  one expires and a disconnect (no code while a pairing code is wanted).
- ``paired``: the device is saved, then ``PairStatus`` and the QR loop's "success".
- ``passkey_request``: the phone asked for a passkey. whatsmeow logs the notification it
  received (DEBUG, ``Client/Recv``), puts "passkey-request" in the QR channel and keeps it
  open (``qrchan.go``). For a pairing code the phone's notification also lacks the code's
  key, which whatsmeow logs as an Error first (``pair-code.go``); with
  ``lib.pairing_passkey_event`` false no "passkey-request" follows (tulir/whatsmeow#1233,
  and neonize's own pairing-code path, which has no QR channel).
- ``message``: a ``Message`` event queued in goneonize's channel, and only then acknowledged
  to the sim (``ack``, whatsmeow's receipt), before Python sees it; a text equal to the
  library's ``fatal_text`` ends the process as a Go fatal error.
- ``stream_replaced``, ``client_outdated``, ``temp_ban``, ``logged_out`` end the stream with
  no ``Disconnected``; ``logged_out`` also deletes the device.
- keepalive failures for ``keepalive_max_fail`` force a reconnect with no ``Disconnected``
  (a new ``Connected`` follows).
- ``pairing_code``, ``sent``, ``send_error``, ``logout_failed``: answers to waiting requests.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from websockets.sync.client import ClientConnection

from support.fake_go.convert import _iso_ms, _split_jid
from support.fake_go.runtime import go_fatal
from support.fake_go.stream import _Stream

_LOGOUT_REASONS = {401: "LOGGED_OUT", 403: "MAIN_DEVICE_GONE", 406: "UNKNOWN_LOGOUT"}
_RECEIPTS = {"delivered": "DELIVERED", "read": "READ", "played": "PLAYED"}


class _Frames(_Stream):
    """What whatsmeow does with each frame from the server."""

    def _on_frame(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        kind = str(frame.get("type"))
        handler = getattr(self, f"_frame_{kind}", None)
        if handler is None:
            self._log("WARN", "Client", f"unhandled frame {kind}")
            return
        handler(ws, frame)

    def _frame_qr(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        if self._pairing_phone is not None:
            return
        self._qr_shown += 1
        if self._qr_shown > self.t.qr_codes:
            self._qr_timeout()
            return
        self._qr_put(("code", str(frame.get("code"))))
        if self._qr_shown == self.t.qr_codes:
            expires = _iso_ms(frame.get("expiresAt")) / 1000 - time.time()
            self._arm_qr_timeout(max(expires, 0.0))

    def _arm_qr_timeout(self, seconds: float) -> None:
        with self._mx:
            if self._qr_timer is not None:
                self._qr_timer.cancel()
            self._qr_timer = threading.Timer(seconds, self._qr_timeout)
            self._qr_timer.daemon = True
            self._qr_timer.start()

    def _qr_timeout(self) -> None:
        """whatsmeow ran out of QR codes: "timeout", then it disconnects the client."""
        self.qr_status("timeout")
        self.disconnect()

    def _frame_pairing_code(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        self._answer("pairing", frame)

    def _frame_paired(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        device = frame.get("device") or {}
        self.save_device(str(frame.get("jid")), str(device.get("id")), str(device.get("secret")))
        assert self.device is not None
        user, number, server = _split_jid(self.device.jid)
        jid = self.pb.JID(User=user, Server=server, Device=number, RawAgent=0, Integrator=0,
                          IsEmpty=False)  # fmt: skip
        status = self.pb.PairStatus(
            ID=jid, BusinessName="", Platform="", Status=self.pb.PairStatus.SUCCESS
        )
        self.dispatch(2, status)
        self.qr_status("success")

    def _frame_passkey_request(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        stamp = int(time.time())
        if self._pairing_phone is not None:
            self._log("DEBUG", "Client/Recv", (
                f'<notification from="s.whatsapp.net" id="{stamp}.1" t="{stamp}" '
                'type="link_code_companion_reg"><link_code_companion_reg stage="primary_hello">'
                "<link_code_pairing_ref>fake-ref</link_code_pairing_ref>"
                "<!-- 32 bytes --></link_code_companion_reg></notification>"
            ))  # fmt: skip
            self._log("ERROR", "Client", (
                "Failed to handle code pair notification: missing "
                "<link_code_pairing_wrapped_primary_ephemeral_pub> element in notification"
            ))  # fmt: skip
        self._log("DEBUG", "Client/Recv", (
            f'<notification from="s.whatsapp.net" id="{stamp}.2" t="{stamp}" '
            'type="passkey_prologue_request"><passkey_request_options>{"challenge":"fake",'
            '"rpId":"whatsapp.com","userVerification":"required"}</passkey_request_options>'
            "</notification>"
        ))  # fmt: skip
        if self._pairing_phone is None or self.lib.pairing_passkey_event:
            self.qr_event("passkey-request")

    def _frame_connected(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        self._connected_seen = True
        self._last_keepalive = time.monotonic()
        self.dispatch(3, self.pb.Connected(status=True))

    def _frame_message(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        text = str(frame.get("text", ""))
        if self.lib.fatal_text is not None and text == self.lib.fatal_text:
            go_fatal("fatal error: fake goneonize asked to die by an inbound message")
        message_id = str(frame.get("id"))
        if self.dispatch(17, self._message(frame, text)) and self._send_frame(
            {"type": "ack", "id": message_id}
        ):
            self.stats.acked.append(message_id)  # whatsmeow's receipt, after the handler

    def _message(self, frame: dict[str, Any], text: str) -> Any:
        chat = self._jid(str(frame.get("from", "")))
        sender = self._jid(str(frame["sender"])) if frame.get("sender") else chat
        alt = self._jid(str(frame["fromPn"])) if frame.get("fromPn") else self._jid("")
        source = self._source(chat, sender, alt, from_me=False)
        info = self.pb.MessageInfo(
            MessageSource=source, ID=str(frame.get("id")), ServerID=0, Type="text",
            Pushname="", Timestamp=_iso_ms(frame.get("ts")), Category="", Multicast=False,
            MediaType="", Edit="",
        )  # fmt: skip
        return self.pb.Message(
            Info=info, Message=self.e2e.Message(conversation=text), IsEphemeral=False,
            IsViewOnce=False, IsViewOnceV2=False, IsViewOnceV2Extension=False,
            IsDocumentWithCaption=False, IsLottieSticker=False, IsEdit=False,
            UnavailableRequestID="", RetryCount=0,
        )  # fmt: skip

    def _source(self, chat: Any, sender: Any, alt: Any, *, from_me: bool) -> Any:
        return self.pb.MessageSource(
            Chat=chat, Sender=sender, IsFromMe=from_me, IsGroup=chat.Server == "g.us",
            SenderAlt=alt, RecipientAlt=self._jid(""), BroadcastListOwner=self._jid(""),
        )  # fmt: skip

    def _jid(self, value: str) -> Any:
        if not value:
            return self.pb.JID(User="", Server="", RawAgent=0, Device=0, Integrator=0,
                               IsEmpty=True)  # fmt: skip
        user, number, server = _split_jid(value)
        return self.pb.JID(User=user, Server=server, RawAgent=0, Device=number, Integrator=0,
                           IsEmpty=False)  # fmt: skip

    def _frame_receipt(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        kind = _RECEIPTS.get(str(frame.get("status")), "DELIVERED")
        receipt = self.pb.Receipt(
            MessageSource=self._source(self._jid(""), self._jid(""), self._jid(""), from_me=True),
            MessageIDs=[str(frame.get("id"))], Timestamp=int(time.time()),
            Type=getattr(self.pb.Receipt, kind),
        )  # fmt: skip
        self.dispatch(18, receipt)

    def _frame_logged_out(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        if self._answer("logout", frame):
            return
        self._expected.set()
        reason = _LOGOUT_REASONS.get(int(frame.get("code") or 401), "LOGGED_OUT")
        event = self.pb.LoggedOut(
            OnConnect=not self._connected_seen, Reason=getattr(self.pb, reason)
        )
        self.dispatch(6, event)
        self.delete_device()
        self.qr_status("err-unexpected-state")

    def _frame_logout_failed(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        self._answer("logout", frame)

    def _frame_stream_replaced(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        self._expected.set()
        self.dispatch(7, self.pb.StreamReplaced())

    def _frame_client_outdated(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        self._expected.set()
        self.dispatch(10, self.pb.ClientOutdated())
        self.qr_status("err-client-outdated")

    def _frame_temp_ban(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        self._expected.set()
        expire = int(float(frame.get("retryAfter") or 0))
        code = int(frame.get("code") or 1)  # whatsmeow's TempBanReason (1..5)
        self.dispatch(8, self.pb.TemporaryBan(Code=code, Expire=expire))
        self.qr_status("err-unexpected-state")

    def _frame_keepalive_timeout(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        count = int(frame.get("errorCount") or 1)
        last = int(time.time() - (time.monotonic() - self._last_keepalive))
        self.dispatch(4, self.pb.KeepAliveTimeout(ErrorCount=count, LastSuccess=last))
        if time.monotonic() - self._last_keepalive > self.t.keepalive_max_fail:
            # keepalive.go: Disconnect(), resetExpectedDisconnect(), go autoReconnect()
            self.disconnect()
            self._expected.clear()
            self._auto_reconnect()

    def _frame_keepalive_restored(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        self._last_keepalive = time.monotonic()
        self.dispatch(5, self.pb.KeepAliveRestored())

    def _frame_disconnected(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):
            ws.close()  # the server ended the stream: _on_closed reports it

    def _frame_sent(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        self._answer(f"send:{frame.get('ref')}", frame)

    def _frame_send_error(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        self._answer(f"send:{frame.get('ref')}", frame)

    def _frame_error(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        self._log("ERROR", "Client", f"Unknown stream error: {frame.get('reason')}")

    def _frame_stopped(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        return
