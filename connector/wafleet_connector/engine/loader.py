"""neonize's modules, imported once per process after the version pins are checked.

Importing neonize loads its Go library (the Go runtime starts) and, through
``neonize.utils.log``, would call ``logging.basicConfig()``; both happen here only.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

from wafleet_connector.engine import pins


@dataclass(frozen=True)
class NeonizeModules:
    """neonize, imported once per process (the import loads its Go library)."""

    package: Any  # the neonize package
    binder: Any  # neonize._binder: ctypes callback types, ProxySettings
    gocode: Any  # the shipped Go library, set up by neonize
    int_to_event: dict[int, Any]
    pb: Any  # neonize.proto.Neonize_pb2
    e2e: Any  # WAWebProtobufsE2E_pb2
    reg: Any  # WAWebProtobufsCompanionReg_pb2


_modules: NeonizeModules | None = None
_modules_lock = threading.Lock()


def _import_neonize() -> NeonizeModules:
    # Read by the Go runtime only when the library loads: without it neonize
    # tags every 1:1 message with <bot biz_bot="1"/>.
    os.environ.setdefault("NEONIZE_BOT_TAG", "off")
    root = logging.getLogger()
    guard = None if root.handlers else logging.NullHandler()
    if guard is not None:  # neonize.utils.log calls logging.basicConfig() on import
        root.addHandler(guard)
    try:
        import neonize  # noqa: PLC0415
        from neonize import _binder  # noqa: PLC0415
        from neonize.events import INT_TO_EVENT  # noqa: PLC0415
        from neonize.proto import Neonize_pb2  # noqa: PLC0415
        from neonize.proto.waCompanionReg import (  # noqa: PLC0415
            WAWebProtobufsCompanionReg_pb2,
        )
        from neonize.proto.waE2E import WAWebProtobufsE2E_pb2  # noqa: PLC0415
    finally:
        if guard is not None:
            root.removeHandler(guard)
    return NeonizeModules(
        package=neonize,
        binder=_binder,
        gocode=_binder.gocode,
        int_to_event=dict(INT_TO_EVENT),
        pb=Neonize_pb2,
        e2e=WAWebProtobufsE2E_pb2,
        reg=WAWebProtobufsCompanionReg_pb2,
    )


def load_modules(lib: Any | None = None) -> NeonizeModules:
    """Check the version pins (`pins`), then import neonize once per process.

    The shipped library is checked before the import in every case (neonize loads it
    even when ``lib`` stands in for it); ``lib``'s own GetVersion() is checked too.
    """
    global _modules  # noqa: PLW0603
    pins.check_distributions()
    with _modules_lock:
        if _modules is None:
            pins.check_shared_library()
            _modules = _import_neonize()
        mod = _modules
    pins.check_module(mod.package)
    protobuf = importlib.import_module("google.protobuf")
    pins.check_protobuf(str(getattr(protobuf, "__version__", "unknown")))
    pins.check_library(mod.gocode if lib is None else lib, "in use")
    return mod


def check_versions(lib: Any | None = None) -> None:
    """Raise EngineVersionError unless neonize, its Go library (or ``lib``) and protobuf
    are the pinned versions. Safe to call at worker start; imports neonize."""
    load_modules(lib)
