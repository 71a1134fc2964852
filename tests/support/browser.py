"""How the browser tests and the console's screenshot script launch Debian's chromium."""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these, chromium keeps opening connections to the outside, refused here.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
