"""QR codes as PNG data URLs (what the legacy API returned as ``qrCode``).

A PNG is rendered once per code: about 18 ms of CPU, most of it qrcode choosing the
best of its eight mask patterns (kept: it is what makes a code easy to scan). Reads
call ``QrRenderer.ready`` first, which renders the codes not yet cached on one worker
thread, so the event loop keeps answering other requests meanwhile and a code several
readers wait for is rendered once.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from wafleet.core.models import Account
from wafleet.core.qr_png import qr_png_data_url

MAX_CACHED = 4096  # codes; a QRReady account holds one at a time, rotating every 20 s

_cache: OrderedDict[str, str] = OrderedDict()
_lock = threading.Lock()


def qr_data_url(code: str) -> str:
    """``code`` as a PNG data URL, from the cache when it was rendered before."""
    with _lock:
        hit = _cache.get(code)
        if hit is not None:
            _cache.move_to_end(code)
            return hit
    data_url = qr_png_data_url(code)
    with _lock:
        _cache[code] = data_url
        while len(_cache) > MAX_CACHED:
            _cache.popitem(last=False)
    return data_url


def is_cached(code: str) -> bool:
    with _lock:
        return code in _cache


def codes_of(accounts: Iterable[Account]) -> list[str]:
    return [a.status.qr for a in accounts if a.status.qr]


class QrRenderer:
    """Renders missing PNGs off the event loop; one per app (its lifespan closes it)."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="qr-render")
        self._pending: dict[str, asyncio.Future[str]] = {}

    async def ready(self, codes: Iterable[str]) -> None:
        """Return once every code in ``codes`` has its PNG in the cache."""
        waits: list[asyncio.Future[str]] = []
        loop = asyncio.get_running_loop()
        for code in codes:
            if is_cached(code):
                continue
            future = self._pending.get(code)
            if future is None:
                future = loop.run_in_executor(self._executor, qr_data_url, code)
                self._pending[code] = future
                future.add_done_callback(functools.partial(self._done, code))
            waits.append(future)
        if waits:
            await asyncio.gather(*waits)

    def _done(self, code: str, _: asyncio.Future[str]) -> None:
        self._pending.pop(code, None)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
