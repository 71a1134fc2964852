"""The console's session cookie and its CSRF tokens: stateless, signed with HMAC-SHA256.

A cookie is ``<base64url(JSON)>.<base64url(HMAC)>`` under a key derived from the API's
link key, which every API replica of a cluster shares (``WAFLEET_LINK_KEY``): any replica
reads a session another one issued, and nothing is stored server-side. It holds:

- ``s``, a random session id (128 bits), new at every sign-in (no fixation);
- ``w``, who: ``admin``, ``key:<key id>`` (never a secret), or nothing before sign-in;
- ``e``, the expiry (unix seconds): ``Settings.console_session_ttl`` after sign-in;
- ``b``, a binding to the credential: an HMAC of the admin token, or of the key's stored
  hash, so a new admin token (or a key id reused by a new key) ends the old sessions.

The CSRF token of a session is an HMAC of its id: the page carries it in each form and in
``hx-headers`` for htmx; a request of another site can neither read nor forge it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

COOKIE_NAME = "wafleet_console"
_CONTEXT = b"wafleet console session v1"  # the derived key's domain, and a version
MAX_COOKIE = 1024  # characters; a real one is about 200
ANONYMOUS_TTL = 3600  # seconds a signed-out session (the sign-in form's CSRF) lasts
ADMIN = "admin"
KEY_PREFIX = "key:"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    sid: str
    who: str  # "" before sign-in, "admin", or "key:<id>"
    expires: int
    binding: str = ""

    @property
    def signed_in(self) -> bool:
        return bool(self.who)

    @property
    def key_id(self) -> str | None:
        return self.who.removeprefix(KEY_PREFIX) if self.who.startswith(KEY_PREFIX) else None


class SessionCodec:
    """Issues and reads session cookies. ``clock`` is unix seconds (tests move it)."""

    def __init__(self, link_key: bytes, ttl: int, clock: Callable[[], float] = time.time) -> None:
        self._key = hmac.new(link_key, _CONTEXT, hashlib.sha256).digest()
        self.ttl = ttl
        self.clock = clock

    def _mac(self, *parts: bytes) -> bytes:
        return hmac.new(self._key, b"\n".join(parts), hashlib.sha256).digest()

    def binding(self, credential: bytes) -> str:
        """What ties a session to its credential, without revealing anything of it."""
        return _b64(self._mac(b"binding", credential)[:18])

    def new(self, who: str = "", binding: str = "") -> Session:
        ttl = self.ttl if who else min(self.ttl, ANONYMOUS_TTL)
        return Session(_b64(secrets.token_bytes(16)), who, int(self.clock()) + ttl, binding)

    def encode(self, session: Session) -> str:
        body = {"s": session.sid, "w": session.who, "e": session.expires, "b": session.binding}
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{payload}.{_b64(self._mac(b'cookie', payload.encode()))}"

    def decode(self, cookie: str | None) -> Session | None:
        """The session of a genuine, unexpired cookie; None for anything else."""
        if not cookie or len(cookie) > MAX_COOKIE or cookie.count(".") != 1:
            return None
        payload, signature = cookie.split(".")
        try:
            given = _unb64(signature)
            if not hmac.compare_digest(given, self._mac(b"cookie", payload.encode())):
                return None
            body = json.loads(_unb64(payload))
        except (binascii.Error, ValueError):
            return None
        if not isinstance(body, dict):
            return None
        sid, who, expires, binding = body.get("s"), body.get("w"), body.get("e"), body.get("b")
        if not (isinstance(sid, str) and isinstance(who, str) and isinstance(binding, str)):
            return None
        if not isinstance(expires, int) or expires <= self.clock():
            return None
        return Session(sid, who, expires, binding)

    def csrf(self, session: Session) -> str:
        return _b64(self._mac(b"csrf", session.sid.encode()))

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        if not token or len(token) > 100:
            return False
        return hmac.compare_digest(token.encode(), self.csrf(session).encode())

    def max_age(self, session: Session) -> int:
        return max(0, session.expires - int(self.clock()))
