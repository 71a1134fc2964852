"""QR codes as PNG data URLs (what the legacy API returned as ``qrCode``)."""

from __future__ import annotations

import base64
import io
from functools import lru_cache

import qrcode
from qrcode.constants import ERROR_CORRECT_L


@lru_cache(maxsize=1024)
def qr_data_url(code: str) -> str:
    """Render ``code`` as a PNG data URL; cached, since codes repeat across reads."""
    image = qrcode.make(code, error_correction=ERROR_CORRECT_L, box_size=6, border=2)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
