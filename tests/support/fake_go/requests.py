"""The exports' work on a live client, with the errors whatsmeow gives for each.

``logout``: an info query (``iq_timeout``), then the device is deleted. ``pair_phone``: the
phone number checked as whatsmeow does, then a new stream that asks the sim for a pairing
code, valid for ``pairing_ttl``. ``send``: a text message to a user JID, waiting
``send_timeout`` for the server's ack; unknown servers, device JIDs, numbers with no LID,
server errors and a dropped socket answer in whatsmeow's words.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import re
from typing import Any

from support.fake_go.config import NOT_LOGGED_IN
from support.fake_go.frames import _Frames

_USER_SERVERS = {"s.whatsapp.net", "lid", "g.us", "broadcast", "newsletter", "bot"}


class _Requests(_Frames):
    """The exports' work on a live client (logout, pairing code, send)."""

    def logout(self) -> str:
        if self.device is None:
            return NOT_LOGGED_IN
        if self.ws is None:
            return "error sending logout request: websocket not connected"
        answer = self._ask("logout", {"type": "logout"}, self.t.iq_timeout)
        if answer["type"] == "logged_out":
            self.disconnect()
            self.delete_device()
            return ""
        if answer["type"] == "timeout":
            return "error sending logout request: info query timed out"
        return f"error sending logout request: {answer.get('error', 'server error')}"

    def pair_phone(self, phone: str) -> tuple[str, str]:
        digits = re.sub(r"\D", "", phone)
        if len(digits) <= 6:
            return "", "phone number too short"
        if digits.startswith("0"):
            return "", "international phone number required (must not start with 0)"
        if self.ws is None:
            return "", "websocket not connected"
        # The sim hands out pairing codes to a stream that asks for one in its hello.
        with self._socket_lock:
            old, self.ws = self.ws, None
        if old is not None:
            with contextlib.suppress(Exception):
                old.close()
        self._pairing_phone = "+" + digits
        with self._mx:  # ready for the answer before the new stream can bring it
            self._pending["pairing"] = concurrent.futures.Future()
        err = self.connect()
        if err:
            return "", err
        answer = self._ask("pairing", None, self.t.iq_timeout)
        if answer["type"] != "pairing_code":
            return "", f"pairing code request failed: {answer.get('error', 'no answer')}"
        self._arm_qr_timeout(self.t.pairing_ttl)
        return str(answer.get("code")), ""

    def send(self, jid: Any, message: Any) -> tuple[str, str]:
        server, user = str(jid.Server), str(jid.User)
        if int(jid.Device) > 0:
            return "", "message recipient must be a user JID with no device part"
        if self.device is None:
            return "", NOT_LOGGED_IN
        if server not in _USER_SERVERS:
            return "", f"can't send message to unknown server {server}"
        to = f"{user}@{server}"
        if self.ws is None:
            if server == "s.whatsapp.net":
                return (
                    "",
                    f"failed to get user info for {to} to fill LID cache: websocket not connected",
                )
            return "", "failed to get device list: websocket not connected"
        text = str(message.conversation or message.extendedTextMessage.text or "")
        ref = self.lib.next_ref()
        frame = {"type": "send", "ref": ref, "to": to, "text": text}
        answer = self._ask(f"send:{ref}", frame, self.t.send_timeout)
        kind = answer["type"]
        if kind == "sent":
            return str(answer.get("id")), ""
        if kind == "timeout":
            return "", "timed out waiting for message send response"
        if kind == "send_error" and answer.get("reached") is False:
            error = str(answer.get("error", ""))
            if "not on whatsapp" in error.lower():
                return "", f"no LID found for {to} from server"
            return "", f"failed to get device list: {error}"
        if kind == "send_error":
            return "", f"server returned error 500 ({answer.get('error', '')})"
        if kind == "error":  # the frame could not be written: nothing left
            return "", "failed to send message node: websocket not connected"
        return "", str(
            answer.get("error", "websocket disconnected before message send returned response")
        )
