"""JSON shapes of the legacy API, built from our records."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wafleet.core.models import Account, Message, Thread, iso
from wafleet.core.phases import LEGACY_STATUS, NEEDS_QR, SUMMARY_BUCKET, Phase
from wafleet.core.phones import mask_phone
from wafleet_api.qr import qr_data_url


def account_view(account: Account, qr: str = "png") -> dict[str, Any]:
    """An account as ``/accounts`` and ``add-account`` return it (``qr``: png, raw, none)."""
    spec, status = account.spec, account.status
    code = status.qr if qr != "none" else None
    last = status.last_disconnect
    return {
        "id": spec.id,
        "name": spec.name,
        "phone": spec.phone,
        "status": LEGACY_STATUS[status.phase],
        "phase": status.phase.value,
        "reason": status.reason,
        "login": spec.login,
        "suspended": spec.suspended,
        "qrCode": qr_data_url(code) if code and qr == "png" else None,
        "qr": code,
        "qrExpiresAt": iso(status.qr_expires_at),
        "pairingCode": status.pairing_code,
        "jid": status.jid,
        "createdAt": iso(spec.created_at),
        "lastUpdate": iso(status.updated_at),
        "connectedAt": iso(status.connected_at),
        "lastMessageAt": iso(status.last_message_at),
        "reconnects": status.reconnects,
        "shard": account.shard,
        "lastDisconnect": None
        if last is None
        else {"reason": last.reason, "code": last.code, "at": iso(last.at)},
    }


def dashboard_account(account: Account) -> dict[str, Any]:
    spec, status = account.spec, account.status
    needs_qr = status.phase in NEEDS_QR
    view: dict[str, Any] = {
        "accountId": spec.id,
        "name": spec.name,
        "phone": mask_phone(spec.phone),
        "status": LEGACY_STATUS[status.phase],
        "phase": status.phase.value,
        "reason": status.reason,
        "lastEventAt": iso(status.last_event_at),
        "lastMessageAt": iso(status.last_message_at),
        "lastSeen": iso(status.last_event_at),
        "reconnectCount": status.reconnects,
        "reconnectAttempts": status.reconnects if status.phase == Phase.RECONNECTING else 0,
        "needsQR": needs_qr,
    }
    if needs_qr:
        view["qrCode"] = qr_data_url(status.qr) if status.qr else None
        view["qr"] = status.qr
        view["pairingCode"] = status.pairing_code
    return view


def summary(accounts: Sequence[Account]) -> dict[str, int]:
    counts = {"connected": 0, "connecting": 0, "disconnected": 0, "needs_qr": 0}
    for account in accounts:
        counts[SUMMARY_BUCKET[account.status.phase]] += 1
    return {**counts, "total": len(accounts)}


def message_view(message: Message) -> dict[str, Any]:
    return {
        "id": message.wa_message_id,
        "accountId": message.account_id,
        "clientJid": message.client_jid,
        "direction": message.direction,
        "body": message.body,
        "waMessageId": message.wa_message_id,
        "status": message.status,
        "tsClient": iso(message.ts_client),
        "tsServer": iso(message.ts_server),
        "createdAt": iso(message.ts_server),
    }


def thread_view(thread: Thread) -> dict[str, Any]:
    return {
        "id": thread.id,
        "accountId": thread.account_id,
        "clientJid": thread.client_jid,
        "lastMessageAt": iso(thread.last_message_at),
        "messages": [message_view(m) for m in thread.messages],
    }
