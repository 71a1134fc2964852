"""Signed, expiring links to the QR pages: ``<page path>?exp=<unix seconds>&sig=<HMAC>``.

A person opens a QR page in a browser, which cannot send the admin token as a header,
and a URL ends up in access logs, browser history and Referer headers. So the API mints
a link instead: the signature is HMAC-SHA256, under a server key, of the page's path and
the expiry time. It opens that one page (one account's, or qr-visual) until it expires,
across the page's own 5-second refreshes, and nothing of the key or the admin token can
be recovered from it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable
from enum import Enum
from urllib.parse import parse_qs, quote

QR_PAGE_PREFIX = "/api/whatsapp/qr/"
QR_VISUAL_PATH = "/api/whatsapp/qr-visual"
_QR_PAGE = re.compile(r"^/api/whatsapp/qr/[^/]+$")
_CONTEXT = b"wafleet qr-page link v1"  # versions the signed message; also its domain
_EXP = re.compile(r"^[1-9][0-9]{0,11}$")  # canonical: no leading zero
_SIG = re.compile(r"^[A-Za-z0-9_-]{43}$")  # 32 bytes, unpadded base64url
CLOCK_SKEW = 60  # seconds an expiry may be past the longest lifetime (another replica's clock)


def qr_page_path(account_id: str) -> str:
    return QR_PAGE_PREFIX + account_id


def is_page_path(path: str) -> bool:
    """The HTML pages that a signed link may open (and nothing else)."""
    return path == QR_VISUAL_PATH or bool(_QR_PAGE.fullmatch(path))


class LinkCheck(Enum):
    VALID = "valid"
    EXPIRED = "expired"  # genuine, but its time is up
    INVALID = "invalid"  # forged, altered, or for another page
    ABSENT = "absent"  # no exp/sig in the query: not a signed link


class LinkSigner:
    """Mints and checks links. ``clock`` is seconds since the epoch (tests move it)."""

    def __init__(self, key: bytes, max_ttl: int, clock: Callable[[], float] = time.time) -> None:
        if len(key) < 32:
            raise ValueError("the link key must be at least 32 bytes")
        self._key = key
        self._max_ttl = max_ttl
        self.clock = clock

    def _signature(self, path: str, expires: int) -> str:
        message = b"\n".join((_CONTEXT, path.encode(), str(expires).encode()))
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def mint(self, path: str, ttl: int) -> tuple[str, int]:
        """The relative URL that opens ``path`` for ``ttl`` seconds, and its expiry."""
        if not is_page_path(path):
            raise ValueError(f"{path!r} is not a page a link can open")
        if not 0 < ttl <= self._max_ttl:
            raise ValueError(f"ttl {ttl} is outside 1..{self._max_ttl}")
        expires = int(self.clock()) + ttl
        signature = self._signature(path, expires)
        return f"{quote(path)}?exp={expires}&sig={signature}", expires

    def check(self, path: str, query_string: bytes) -> LinkCheck:
        """Whether the query carries a valid link for ``path``, in constant time per link."""
        query = parse_qs(query_string.decode("latin-1"), keep_blank_values=True)
        if "sig" not in query and "exp" not in query:
            return LinkCheck.ABSENT
        exps, sigs = query.get("exp", []), query.get("sig", [])
        if len(exps) != 1 or len(sigs) != 1 or not is_page_path(path):
            return LinkCheck.INVALID
        exp, sig = exps[0], sigs[0]
        if not _EXP.fullmatch(exp) or not _SIG.fullmatch(sig):
            return LinkCheck.INVALID
        expires = int(exp)
        if not hmac.compare_digest(sig.encode(), self._signature(path, expires).encode()):
            return LinkCheck.INVALID
        now = self.clock()
        if expires > now + self._max_ttl + CLOCK_SKEW:
            return LinkCheck.INVALID  # longer than this server allows (the limit was lowered)
        return LinkCheck.VALID if now < expires else LinkCheck.EXPIRED
