"""The shipped goneonize library, offline: the encodings ffi sends are the ones it reads,
its answers for unknown clients, empty-payload decoding, version pins, store-handle leaks."""

from __future__ import annotations

import asyncio
import ctypes
import importlib.metadata
import importlib.util
import os
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

if importlib.util.find_spec("neonize") is None:
    pytest.skip("neonize is not installed", allow_module_level=True)

from unit.connector.engine.enginekit import Recorder, spec, until

from wafleet_connector.engine import pins
from wafleet_connector.engine.ffi import (
    EngineVersionError,
    NeonizeFfi,
    check_versions,
    decode_event,
    ffi,
    load_modules,
)
from wafleet_connector.engine.inprocess import NeonizeConfig, NeonizeTransport
from wafleet_connector.engine.mapping import map_event, send_error_reached
from wafleet_connector.transport import ClientOutdated, Disconnected, StreamReplaced

pytestmark = pytest.mark.neonize

mod = load_modules()
pb: Any = mod.pb
UNREACHABLE = "http://127.0.0.1:1"  # connection refused at once: a failed first connect


def test_versions_of_the_installed_engine_pass_the_check() -> None:
    check_versions()
    assert pins.library_version(mod.gocode) == pins.GONEONIZE_VERSION == "0.5.2"
    assert mod.package.__version__ == pins.NEONIZE_VERSION


def test_another_go_library_version_is_refused_with_both_versions() -> None:
    other = SimpleNamespace(GetVersion=lambda: b"0.5.1")
    with pytest.raises(EngineVersionError) as err:
        check_versions(other)
    assert "0.5.1" in str(err.value) and "0.5.2" in str(err.value)
    with pytest.raises(EngineVersionError):
        assert NeonizeFfi(lib=other).n is None  # the lazy loader checks too


def test_other_neonize_or_protobuf_versions_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.metadata.version
    fake = {"neonize": "0.5.3", "protobuf": "8.0.0"}
    for name, found in fake.items():
        monkeypatch.setattr(
            importlib.metadata, "version", lambda n, _n=name, _f=found: _f if n == _n else real(n)
        )
        with pytest.raises(EngineVersionError) as err:
            check_versions()
        assert found in str(err.value) and "install" in str(err.value)
    monkeypatch.setattr(importlib.metadata, "version", real)
    with pytest.raises(EngineVersionError):
        pins.check_protobuf("7.34.0")
    pins.check_protobuf("7.34.1")
    with pytest.raises(EngineVersionError):
        pins.check_module(SimpleNamespace(__version__="0.6.0"))


def test_a_missing_shared_library_is_refused_before_neonize_could_download_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(pins, "shared_library_path", lambda: tmp_path / "neonize-linux-amd64.so")
    with pytest.raises(EngineVersionError) as err:
        pins.check_shared_library()
    assert "missing" in str(err.value)


def test_the_real_library_answers_unknown_client_ids() -> None:
    core = ffi()
    assert core.logout(b"wafleet-unknown") == "client is nil"
    paired = core.pair_phone(b"wafleet-unknown", "40711111111", 1, "Chrome (Linux)")
    assert paired.Error.startswith("client is nil") and not paired.Code
    started = threading.Event()
    sent = core.send_text(b"wafleet-unknown", ("40722222222", "s.whatsapp.net"), "hi", 5, started)
    assert sent.Error == "client is nil" and started.is_set()
    assert send_error_reached(sent.Error) is False
    core.disconnect(b"wafleet-unknown")  # both are no-ops on an unknown id
    core.stop(b"wafleet-unknown")


def test_real_serialized_and_empty_event_payloads_decode() -> None:
    n = mod.int_to_event
    for code, kind in ((7, "StreamReplaced"), (10, "ClientOutdated"), (5, "KeepAliveRestored")):
        msg = decode_event(n, code, None, 0)  # what goneonize passes for an empty message
        assert msg is not None and msg.DESCRIPTOR.name == kind
    assert map_event(decode_event(n, 7, None, 0), "") == [StreamReplaced()]
    assert map_event(decode_event(n, 10, None, 0), "") == [ClientOutdated()]
    data = pb.KeepAliveTimeout(ErrorCount=2, LastSuccess=1_700_000_000).SerializeToString()
    buf = ctypes.create_string_buffer(data, len(data))
    timeout = decode_event(n, 4, ctypes.addressof(buf), len(data))
    assert (timeout.ErrorCount, timeout.LastSuccess) == (2, 1_700_000_000)
    assert decode_event(n, 99, None, 0) is None  # unknown codes are skipped, not guessed


def test_python_protobuf_reads_what_the_go_library_serializes() -> None:
    # TestStruct returns a message through ProtoReturnV3, as SendMessage and PairPhone do.
    extra = pb.SendRequestExtra.FromString(mod.gocode.TestStruct())
    assert (extra.ID, extra.InlineBotJID.User, extra.Peer, extra.Timeout) == (
        "test-id", "test-user", True, 99999999,
    )  # fmt: skip


def test_the_shipped_library_builds_the_ffi_callbacks_it_reads() -> None:
    # The ctypes callback types ffi hands to Neonize, called as goneonize calls them.
    seen: list[Any] = []
    cb = mod.binder.func_callback_bytes(lambda u, d, s, c: seen.append((u, d, s, c)))
    cb(b"wafleet-x", None, 0, 7)
    assert seen == [(b"wafleet-x", None, 0, 7)]


def _store_fds(directory: Path) -> list[str]:
    """This process's open file descriptors on session stores inside ``directory``."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(directory)) and target.endswith(".db"):
            found.append(target)
    return found


async def test_each_failed_connect_leaks_one_store_handle_and_health_counts_it(
    tmp_path: Path,
) -> None:
    transport = NeonizeTransport(NeonizeConfig(max_sessions=8, stop_timeout=5.0, proxy=UNREACHABLE))
    warm = await transport.open(spec(tmp_path, "warm"), Recorder())  # Go runtime threads etc.
    await until("the warm-up connect to fail", lambda: warm.done, 30)
    health, held = transport.health(), ffi().held_callbacks()
    for i in range(5):
        rec = Recorder()
        session = await transport.open(spec(tmp_path, f"a{i}"), rec)
        event = await rec.wait_for(Disconnected, timeout=30)
        assert event.reason.startswith("connect_failed: failed to dial whatsapp web websocket")
        await session.stop()
        assert session.done and session.go_returned and not session.parked
    after = transport.health()
    assert after.leaked - health.leaked == 5 and after.live == 0 and after.parked == 0
    # measured: each failed Neonize keeps one handle on its own store, none is closed
    leaked = sorted(f for f in _store_fds(tmp_path) if "/warm/" not in f)
    assert leaked == sorted(str(spec(tmp_path, f"a{i}").session_path) for i in range(5))
    assert ffi().held_callbacks() == held  # Neonize returned: its ctypes callbacks are released
    await transport.close()


async def test_a_failed_first_connect_ends_the_session_cleanly(tmp_path: Path) -> None:
    transport = NeonizeTransport(NeonizeConfig(max_sessions=2, stop_timeout=5.0, proxy=UNREACHABLE))
    rec = Recorder()
    session = await transport.open(spec(tmp_path), rec)
    await rec.wait_for(Disconnected, timeout=30)
    await until("the teardown", lambda: session.done, 15)
    assert session.finished and session._timers == {} and not session._tasks
    assert not session._out.running  # the delivery task has ended
    await asyncio.sleep(0)
    assert [type(e) for e in rec.events] == [Disconnected]
