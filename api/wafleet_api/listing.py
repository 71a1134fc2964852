"""Options of the account list: which QR form to include, and optional pages.

``GET /api/whatsapp/accounts`` keeps the legacy default (every account, the QR code as a PNG
data URL beside the raw code). ``?qr=raw`` leaves the PNG out, ``?qr=none`` both;
``?limit=N`` answers one page in creation order with ``nextCursor`` (opaque: base64 of the
last account's creation time and id) to pass as ``?cursor=`` for the next.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from wafleet.core.http import ApiError
from wafleet.core.models import Account
from wafleet_api.account_index import AccountSnapshot, SortKey, sort_key

QrForm = Literal["png", "raw", "none"]
QR_FORMS: tuple[QrForm, ...] = ("png", "raw", "none")
MAX_PAGE = 1000
DEFAULT_PAGE = 100  # with a cursor and no limit


def qr_form(query: Mapping[str, str]) -> QrForm:
    """The ``qr`` query parameter: how an account's QR code is shown (png by default)."""
    qr = query.get("qr", "png")
    if qr not in QR_FORMS:
        raise ApiError(400, "invalid_query", "query parameter 'qr' must be png, raw or none")
    return qr


@dataclass(frozen=True)
class ListOptions:
    qr: QrForm = "png"
    limit: int | None = None  # None: every account, the legacy answer
    after: SortKey | None = None  # (createdAt, id) of the last account seen

    @classmethod
    def of(cls, query: Mapping[str, str]) -> ListOptions:
        qr = qr_form(query)
        raw_limit = query.get("limit")
        limit = None
        if raw_limit is not None:
            if not (raw_limit.isascii() and raw_limit.isdigit()) or not (
                1 <= int(raw_limit) <= MAX_PAGE
            ):
                message = f"query parameter 'limit' must be 1..{MAX_PAGE}"
                raise ApiError(400, "invalid_query", message)
            limit = int(raw_limit)
        cursor = query.get("cursor")
        if cursor is not None and limit is None:
            limit = DEFAULT_PAGE  # a cursor alone: the next page of the default size
        return cls(qr=qr, limit=limit, after=None if cursor is None else _decode(cursor))


def encode_cursor(account: Account) -> str:
    created, account_id = sort_key(account)
    return base64.urlsafe_b64encode(f"{created}|{account_id}".encode()).decode().rstrip("=")


def _decode(cursor: str) -> SortKey:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, account_id = text.split("|", 1)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ApiError(
            400, "invalid_query", "query parameter 'cursor' is not one this server gave"
        ) from None
    return created, account_id


def page(snapshot: AccountSnapshot, options: ListOptions) -> tuple[Sequence[Account], str | None]:
    """The accounts to answer (in creation order) and the cursor of the next page."""
    if options.limit is None:
        return snapshot.accounts, None
    start = snapshot.after(options.after)
    chosen = snapshot.accounts[start : start + options.limit]
    more = start + options.limit < len(snapshot.accounts)
    return chosen, encode_cursor(chosen[-1]) if more and chosen else None
