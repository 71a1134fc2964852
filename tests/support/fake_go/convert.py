"""Values crossing the fake's two edges, read the way goneonize and whatsmeow read them.

From Python (ctypes): ``_arg`` checks a call's arguments as ctypes would against the real
function's ``argtypes``; ``_read`` is Go's ``C.GoBytes(ptr, size)`` (a NULL pointer or a
short buffer dies like Go); ``_c_string`` reads a C string; ``_Start`` is ``Neonize``'s 17
arguments as goneonize reads them. From the sim: ``_split_jid`` (JID strings,
``user:device@server``), ``_iso_ms`` (its ISO timestamps) and ``_ws_url`` (its device
stream's URL from a ws:// or http:// base).
"""

from __future__ import annotations

import contextlib
import ctypes
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from support.fake_go.runtime import NIL_PANIC, go_fatal


def _arg(argtypes: list[Any], args: tuple[Any, ...], name: str) -> None:
    """Check ``args`` as ctypes would against the real function's ``argtypes``."""
    if len(args) != len(argtypes):
        raise TypeError(
            f"{name}: this function takes {len(argtypes)} arguments ({len(args)} given)"
        )
    for i, (argtype, value) in enumerate(zip(argtypes, args, strict=True)):
        try:
            argtype.from_param(value)
        except TypeError as exc:
            raise ctypes.ArgumentError(f"argument {i + 1}: {type(exc).__name__}: {exc}") from None


def _read(value: Any, size: int, what: str) -> bytes:
    """What Go's ``C.GoBytes(ptr, size)`` reads; dies like Go on a bad pointer/size."""
    if size <= 0:
        return b""
    if value is None:
        go_fatal(f"{NIL_PANIC}\n(fake: {what}: NULL pointer with size {size})")
    data = bytes(value)
    if len(data) < size:
        go_fatal(f"unexpected fault address\n(fake: {what}: {len(data)} bytes, size {size})")
    return data[:size]


def _c_string(value: Any) -> str:
    if value is None:
        return ""
    raw = bytes(value)
    return raw.split(b"\0", 1)[0].decode(errors="replace")


@dataclass(frozen=True)
class _Start:
    """Neonize's arguments, read the way goneonize reads them."""

    db_path: str
    uuid: bytes
    log_level: str
    qr_cb: Any
    status_cb: Any
    event_cb: Any
    log_cb: Any
    subscribed: frozenset[int]
    device_props: bytes
    proxy: str | None

    @classmethod
    def parse(cls, args: tuple[Any, ...]) -> _Start:
        (db, uuid, jid_buf, jid_size, _new_device, level, qr_cb, status_cb, event_cb, log_cb,
         subs, subs_size, props, props_size, pair, pair_size, proxy) = args  # fmt: skip
        _read(jid_buf, jid_size, "Neonize JID")
        _read(pair, pair_size, "Neonize pairphone")
        proxy_address = None
        if proxy is not None:  # ctypes.byref(settings) or a POINTER to them
            settings = getattr(proxy, "_obj", None)
            settings = proxy.contents if settings is None else settings
            proxy_address = _c_string(settings.proxyAddress)
        return cls(
            db_path=_c_string(db),
            uuid=bytes(uuid),
            log_level=_c_string(level) or "INFO",
            qr_cb=qr_cb,
            status_cb=status_cb,
            event_cb=event_cb,
            log_cb=log_cb,
            subscribed=frozenset(_read(subs, subs_size, "Neonize subscribers")),
            device_props=_read(props, props_size, "Neonize DeviceProps"),
            proxy=proxy_address,
        )


def _split_jid(value: str) -> tuple[str, int, str]:
    user, _, server = value.partition("@")
    user, _, device = user.partition(":")
    return user, int(device) if device.isdigit() else 0, server or "s.whatsapp.net"


def _iso_ms(value: Any) -> int:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return int(datetime.fromisoformat(value).timestamp() * 1000)
    return int(time.time() * 1000)


def _ws_url(url: str) -> str:
    if url.startswith("http://") or url.startswith("https://"):
        url = "ws" + url[4:]
    if url.count("/") < 3:  # no path: the sim's device stream
        url = url.rstrip("/") + "/sim/ws"
    return url
