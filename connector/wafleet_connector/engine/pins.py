"""The versions ``ffi`` is written against, checked before the Go core is used.

``ffi`` hard-codes goneonize's ABI (argument lists, return conventions, event codes) as
shipped in neonize 0.5.2. Another neonize, another shared library or another protobuf
runtime may load fine and then misread every buffer, so the lazy loader checks all three
first and refuses with `EngineVersionError`. The shared library is checked before neonize
is imported: on a version mismatch, neonize's own loader would try to download another
library from GitHub.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import importlib.util
import platform
import re
from pathlib import Path
from typing import Any

NEONIZE_VERSION = "0.5.2"  # the neonize distribution and ``neonize.__version__``
GONEONIZE_VERSION = "0.5.2"  # what the shared library's GetVersion() answers
PROTOBUF_MIN = (7, 34, 1)
PROTOBUF_BELOW = (8,)
_FIX = "install neonize==0.5.2 and protobuf>=7.34.1,<8 (the 'neonize' extra of wafleet)"


class EngineVersionError(RuntimeError):
    """neonize, its Go library or protobuf is not the version the engine is written for."""


def _numbers(version: str) -> tuple[int, ...]:
    parts: list[int] = []
    for piece in version.split("."):
        match = re.match(r"\d+", piece)
        if match is None:
            break
        parts.append(int(match.group()))
    return tuple(parts)


def _distribution(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        raise EngineVersionError(f"{name} is not installed; {_FIX}") from None


def check_protobuf(found: str) -> None:
    if not PROTOBUF_MIN <= _numbers(found) < PROTOBUF_BELOW:
        raise EngineVersionError(
            f"protobuf {found} found, the neonize engine needs >=7.34.1,<8; {_FIX}"
        )


def check_distributions() -> None:
    """neonize and protobuf as installed, read without importing neonize."""
    found = _distribution("neonize")
    if found != NEONIZE_VERSION:
        raise EngineVersionError(
            f"neonize {found} found, the neonize engine is written for {NEONIZE_VERSION}; {_FIX}"
        )
    check_protobuf(_distribution("protobuf"))


def check_module(module: Any) -> None:
    """The imported neonize package (``neonize.__version__``)."""
    found = str(getattr(module, "__version__", "unknown"))
    if found != NEONIZE_VERSION:
        raise EngineVersionError(
            f"neonize {found} imported, the neonize engine is written for {NEONIZE_VERSION}; {_FIX}"
        )


def library_version(lib: Any) -> str:
    raw = lib.GetVersion()
    if isinstance(raw, bytes):
        return raw.decode(errors="replace")
    return str(raw)


def check_library(lib: Any, where: str) -> None:
    """The Go library's own GetVersion()."""
    found = library_version(lib)
    if found != GONEONIZE_VERSION:
        raise EngineVersionError(
            f"the neonize Go library {where} reports version {found}, the neonize engine is "
            f"written for {GONEONIZE_VERSION}; reinstall neonize=={NEONIZE_VERSION} (its wheel "
            "ships the matching library)"
        )


def shared_library_path() -> Path:
    """Where neonize keeps its Go library (``neonize.utils.platform.generated_name``)."""
    spec = importlib.util.find_spec("neonize")
    if spec is None or not spec.submodule_search_locations:
        raise EngineVersionError(f"neonize is not installed; {_FIX}")
    system = platform.system().lower()
    arch = {"aarch64": "arm64", "x86_64": "amd64"}.get(platform.machine().lower())
    ext = {"windows": "dll", "darwin": "dylib"}.get(system, "so")
    name = f"neonize-{system}-{arch or platform.machine().lower()}.{ext}"
    return Path(next(iter(spec.submodule_search_locations))) / name


def check_shared_library() -> None:
    """Load the shipped library and ask its version, before neonize's loader would."""
    path = shared_library_path()
    if not path.is_file():
        raise EngineVersionError(
            f"the neonize Go library {path} is missing (neonize would download one); "
            f"reinstall neonize=={NEONIZE_VERSION}"
        )
    lib = ctypes.CDLL(str(path))
    lib.GetVersion.restype = ctypes.c_char_p
    check_library(lib, str(path))
