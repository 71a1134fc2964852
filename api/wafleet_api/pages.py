"""HTML pages for people: one account's QR code, every QR code at once, a refused link."""

from __future__ import annotations

import base64
import hashlib
from html import escape
from urllib.parse import quote

from wafleet.core.models import Account
from wafleet.core.phases import NEEDS_QR, Phase
from wafleet.core.phones import mask_phone
from wafleet_api.qr import qr_data_url

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#1f2933;background:#f5f7fa}
.card{display:inline-block;background:#fff;border-radius:12px;padding:1rem 1.5rem;margin:.5rem;
box-shadow:0 1px 3px rgba(0,0,0,.15);text-align:center;vertical-align:top;min-width:220px}
.phase{font-weight:600}.Connected{color:#15803d}.QRReady,.PairingCodeReady{color:#b45309}
.code{font-family:monospace;font-size:1.6rem;letter-spacing:.2rem}.muted{color:#6b7280}
"""
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()

# The pages load nothing: images are data: URLs, the one <style> is allowed by its hash;
# no script, no frame may embed them, no form, no <base>.
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; img-src data:; style-src 'sha256-{_STYLE_HASH}'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


# Phases that wait for a person's command: the console's link page gives a new code.
_WAITS_FOR_A_PERSON = frozenset(
    {Phase.QR_TIMEOUT, Phase.LOGGED_OUT, Phase.PASSKEY_REQUIRED, Phase.REPLACED}
)


def _page(title: str, body: str, refresh: bool) -> str:
    meta = '<meta http-equiv="refresh" content="5">' if refresh else ""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">{meta}'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )


def _card(account: Account) -> str:
    status = account.status
    phase = status.phase.value
    parts = [
        f"<h3>{escape(account.spec.name)}</h3>",
        f'<p class="muted">{escape(mask_phone(account.spec.phone))}</p>',
        f'<p class="phase {phase}" data-phase="{phase}">{phase}</p>',
    ]
    if status.qr:
        parts.append(f'<img alt="QR code" width="240" height="240" src="{qr_data_url(status.qr)}">')
        parts.append('<p class="muted">WhatsApp &rarr; Linked devices &rarr; Link a device</p>')
    elif status.pairing_code:
        parts.append(f'<p class="code">{escape(status.pairing_code)}</p>')
        parts.append('<p class="muted">Link with phone number instead, then enter this code</p>')
    elif status.reason:
        parts.append(f'<p class="muted">{escape(status.reason)}</p>')
    if status.phase in _WAITS_FOR_A_PERSON:
        console = f"/console/accounts/{quote(account.id, safe='')}/link"
        parts.append(
            '<p class="muted">For a new code, open <a href="'
            f'{escape(console)}">this account in the console</a> and choose '
            "&ldquo;Show a new QR code&rdquo; (or ask whoever runs the fleet).</p>"
        )
    return f'<div class="card">{"".join(parts)}</div>'


def qr_page(account: Account) -> str:
    """Refreshes itself every 5 s until the account is connected."""
    connected = account.status.phase == Phase.CONNECTED
    return _page(f"QR - {account.spec.name}", _card(account), refresh=not connected)


def qr_visual_page(accounts: list[Account]) -> str:
    waiting = [a for a in accounts if a.status.phase in NEEDS_QR or a.status.qr]
    cards = "".join(_card(a) for a in waiting) or "<p>No account is waiting for a QR scan.</p>"
    heading = f"<h1>QR codes ({len(waiting)} of {len(accounts)} accounts waiting)</h1>"
    return _page("wafleet QR codes", heading + cards, refresh=bool(waiting))


def link_refused_page(expired: bool, mint_route: str) -> str:
    """What a person sees when a QR page link is out of date or not genuine (no refresh)."""
    if expired:
        title = "This link has expired"
        why = (
            "Links to QR pages open them for a limited time only, so that a link found "
            "later in a browser history or a log opens nothing."
        )
    else:
        title = "This link is not valid"
        why = "It was changed or cut short, or it is for another page."
    body = (
        f"<h1>{escape(title)}</h1><p>{escape(why)}</p>"
        "<p>Ask whoever gave you the link for a new one.</p>"
        f'<p class="muted">A new link comes from <code>{escape(mint_route)}</code> '
        "with the admin token as a bearer token; its answer's <code>url</code> opens the page."
        "</p>"
    )
    return _page(title, body, refresh=False)
