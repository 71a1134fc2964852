"""The fake Go library is at least as strict as the real one. What would kill the process
runs in a subprocess; the exit status and stderr are what the Go runtime would give."""

from __future__ import annotations

import ctypes
import importlib.util
import os
import queue
import subprocess
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

if importlib.util.find_spec("neonize") is None:
    pytest.skip("neonize is not installed", allow_module_level=True)

from unit.connector.engine.enginekit import PYTHON, REPO, subprocess_env
from unit.connector.engine.stubsim import StubSim

from support.fake_go import MAP_FATAL, NIL_PANIC, FakeGoLibrary, load_from_env
from wafleet_connector.engine.ffi import NeonizeFfi, ffi

pytestmark = pytest.mark.neonize

# A Neonize call on its own thread, with ctypes arguments as ffi builds them.
PRELUDE = """
import ctypes, sys, threading, time
from support.fake_go import FakeGoLibrary, FakeGoTiming
from wafleet_connector.engine.ffi import ClientCallbacks, ClientStart, NeonizeFfi, load_modules

m = load_modules()
b = m.binder
URL, DB = sys.argv[1], sys.argv[2]
qr_seen = threading.Event()
cbs = (b.func_string(lambda u, d: qr_seen.set()), b.func_string(lambda u, d: None),
       b.func_callback_bytes(lambda u, d, s, c: None), b.func_callback_bytes2(lambda p, s: None))
subs = bytearray([2, 3, 17])
arr = (ctypes.c_char * len(subs)).from_buffer(subs)
props = m.reg.DeviceProps(os="x", platformType=1).SerializeToString()

def neonize(lib, uuid=b"c1"):
    args = (DB.encode(), uuid, b"", 0, 0, b"WARN", *cbs, arr, len(subs), props, len(props),
            b"", 0, None)
    thread = threading.Thread(target=lambda: lib.Neonize(*args), daemon=True)
    thread.start()
    return thread

def in_write(lib):
    while lib._maps._writer is None:
        time.sleep(0.001)
"""


def fds_on(directory: Path) -> list[str]:
    """Targets of this process's open file descriptors inside ``directory``."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(directory)):
            found.append(target)
    return found


def run(script: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    code = PRELUDE + textwrap.dedent(script)
    return subprocess.run(
        [PYTHON, "-c", code, *args],
        check=False,
        env=subprocess_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_call_overlapping_the_neonize_map_write_kills_the_process(tmp_path: Path) -> None:
    proc = run(
        """
        lib = FakeGoLibrary(URL, timing=FakeGoTiming(neonize_write_hold=2.0))
        neonize(lib)
        in_write(lib)
        print("logout of another client", flush=True)
        lib.Logout(b"c2")
        print("survived", flush=True)
        """,
        "ws://127.0.0.1:1/sim/ws",
        str(tmp_path / "s.db"),
    )
    assert proc.returncode == 2, proc.stderr
    assert MAP_FATAL in proc.stderr
    assert "logout of another client" in proc.stdout and "survived" not in proc.stdout


def test_ffi_lock_discipline_survives_the_same_calls(tmp_path: Path) -> None:
    # The same overlap through NeonizeFfi: readers and writers wait for the start window.
    proc = run(
        """
        lib = FakeGoLibrary(URL, timing=FakeGoTiming(neonize_write_hold=1.0))
        core = NeonizeFfi(lib=lib)
        start = ClientStart(uuid=b"c1", db_path=DB, device_name="x", platform="CHROME",
                            log_level="WARN", proxy=None, start_grace=5.0)
        noop = ClientCallbacks(lambda c: None, lambda s: None, lambda c, m: None)
        result = []
        client = threading.Thread(target=lambda: result.append(
            core.run_client(start, noop, lambda: True)))
        client.start()
        in_write(lib)
        started = threading.Event()
        calls = [lambda: core.logout(b"c2"), lambda: core.disconnect(b"c1"),
                 lambda: core.send_text(b"c3", ("40722222222", "s.whatsapp.net"), "x", 30,
                                        started),
                 lambda: core.pair_phone(b"c4", "40711111111", 1, "Chrome (Linux)"),
                 lambda: core.stop(b"c5")]
        threads = [threading.Thread(target=c) for c in calls]
        for t in threads:
            t.start()
        for t in threads + [client]:
            t.join(30)
        print("survived", result, flush=True)
        """,
        "ws://127.0.0.1:1/sim/ws",
        str(tmp_path / "s.db"),
    )
    assert proc.returncode == 0, proc.stderr
    assert "survived" in proc.stdout and "failed to dial" in proc.stdout


def test_stop_during_the_qr_loop_makes_fetch_me_crash(tmp_path: Path, stub: StubSim) -> None:
    proc = subprocess.Popen(
        [PYTHON, "-c", PRELUDE + textwrap.dedent(
            """
            lib = FakeGoLibrary(URL)
            neonize(lib)
            qr_seen.wait(20)
            print("stop in the QR loop", flush=True)
            lib.Stop(b"c1")
            time.sleep(30)
            print("survived", flush=True)
            """
        ), stub.url, str(tmp_path / "s.db")],
        env=subprocess_env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        conn = stub.accept(20)
        conn.send({"type": "qr", "code": "2@one", "expiresAt": "2099-01-01T00:00:00.000Z"})
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 2, err
    assert NIL_PANIC.splitlines()[0] in err and "FetchMe" in err
    assert "stop in the QR loop" in out and "survived" not in out


def _lines(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.strip())

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _wait_line(
    proc: subprocess.Popen[str], lines: queue.Queue[str], wanted: str, timeout: float = 30
) -> None:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.1)
        except queue.Empty:
            if proc.poll() is not None and lines.empty():
                break  # it died
            continue
        seen.append(line)
        if line == wanted:
            return
    err = proc.stderr.read() if proc.stderr and proc.poll() is not None else ""
    raise AssertionError(f"no {wanted!r} line; saw {seen}; exit {proc.poll()}; {err}")


def test_the_qr_loop_end_waits_for_another_clients_start_window(
    tmp_path: Path, stub: StubSim
) -> None:
    # When a QR loop ends, the Go thread reads the client maps (CallbackFunction, FetchMe)
    # outside any call of ours; another client starting then writes them. ffi's status
    # callback holds a read lease across that read.
    proc = subprocess.Popen(
        [PYTHON, "-c", PRELUDE + textwrap.dedent(
            """
            lib = FakeGoLibrary(URL, timing=FakeGoTiming(neonize_write_hold=1.5, qr_codes=1))
            core = NeonizeFfi(lib=lib)
            def start(uuid, grace):
                return ClientStart(uuid=uuid, db_path=DB + uuid.decode(), device_name="x",
                                   platform="CHROME", log_level="WARN", proxy=None,
                                   start_grace=grace)
            seen = ClientCallbacks(lambda c: qr_seen.set(), lambda s: None, lambda c, m: None)
            noop = ClientCallbacks(lambda c: None, lambda s: None, lambda c, m: None)
            threading.Thread(target=core.run_client, args=(start(b"A", 5.0), seen,
                             lambda: True), daemon=True).start()
            qr_seen.wait(20)
            threading.Thread(target=core.run_client, args=(start(b"B", 2.0), noop,
                             lambda: True), daemon=True).start()
            in_write(lib)
            print("B writing", flush=True)
            while lib.client(b"A").where != "FetchMe":
                time.sleep(0.01)
            print("survived", flush=True)
            """
        ), stub.url, str(tmp_path / "s.db")],
        env=subprocess_env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        lines = _lines(proc)
        first = stub.accept(20)
        first.send({"type": "qr", "code": "2@one", "expiresAt": "2099-01-01T00:00:00.000Z"})
        _wait_line(proc, lines, "B writing")
        first.send({"type": "qr", "code": "2@two", "expiresAt": "2099-01-01T00:00:00.000Z"})
        _wait_line(proc, lines, "survived")  # A's QR loop timed out, FetchMe read the maps
        proc.kill()
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert MAP_FATAL not in err


def test_a_go_fatal_error_on_demand_ends_the_process(tmp_path: Path, stub: StubSim) -> None:
    proc = run(
        """
        lib = FakeGoLibrary(URL)
        lib.die("fatal error: runtime: out of memory")
        """,
        stub.url,
        str(tmp_path / "s.db"),
    )
    assert proc.returncode == 2 and proc.stderr.startswith("fatal error: runtime: out of memory")
    assert "goroutine" in proc.stderr
    # ... or from the sim, by sending the device an inbound message with the fatal text.
    dying = subprocess.Popen(
        [PYTHON, "-c", PRELUDE + "lib = FakeGoLibrary(URL)\nneonize(lib).join(60)\n",
         stub.url, str(tmp_path / "t.db")],
        env=subprocess_env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        conn = stub.accept(20)
        conn.send({"type": "message", "id": "M1", "from": "40722222222@s.whatsapp.net",
                   "text": "__fake_go_fatal__", "ts": "2025-01-01T00:00:00.000Z"})  # fmt: skip
        _, err = dying.communicate(timeout=60)
    finally:
        dying.kill()
    assert dying.returncode == 2 and err.startswith("fatal error:")


def test_unknown_client_ids_answer_what_the_real_library_answers() -> None:
    fake = NeonizeFfi(lib=FakeGoLibrary("ws://127.0.0.1:1/sim/ws"))
    real = ffi()
    assert fake.logout(b"nope") == real.logout(b"nope") == "client is nil"
    pair = [c.pair_phone(b"nope", "40711111111", 1, "Chrome (Linux)") for c in (fake, real)]
    assert pair[0].Error == pair[1].Error and pair[0].Error.startswith("client is nil")
    to = ("40722222222", "s.whatsapp.net")
    sends = [c.send_text(b"nope", to, "hi", 5, threading.Event()) for c in (fake, real)]
    assert sends[0].Error == sends[1].Error == "client is nil"
    fake.disconnect(b"nope")
    fake.stop(b"nope")


def test_arguments_ctypes_would_refuse_are_refused_alike() -> None:
    lib = FakeGoLibrary("ws://127.0.0.1:1/sim/ws")
    real: Any = ffi().n.go
    for fn in (lib.Logout, real.Logout):
        with pytest.raises(ctypes.ArgumentError):
            fn("a str, not bytes")
    for fn in (lib.PairPhone, real.PairPhone):
        with pytest.raises(ctypes.ArgumentError):
            fn(b"nope", b"params", "six")
    with pytest.raises(TypeError):
        lib.Stop()


def test_each_returned_neonize_keeps_a_file_handle_open(tmp_path: Path) -> None:
    lib = FakeGoLibrary("ws://127.0.0.1:1/sim/ws")
    core = NeonizeFfi(lib=lib)
    from wafleet_connector.engine.ffi import ClientCallbacks, ClientStart  # noqa: PLC0415

    noop = ClientCallbacks(lambda c: None, lambda s: None, lambda c, m: None)
    for i in range(3):
        start = ClientStart(uuid=f"leak-{i}".encode(), db_path=str(tmp_path / f"{i}.db"),
                            device_name="x", platform="CHROME", log_level="WARN", proxy=None,
                            start_grace=1.0)  # fmt: skip
        err = core.run_client(start, noop, lambda: True)
        assert err is not None and err.startswith("failed to dial whatsapp web websocket")
    assert lib.leaked_stores() == 3
    assert len(fds_on(tmp_path)) == 3  # one open handle per store, none closed


def test_load_from_env_reads_the_sim_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAFLEET_FAKE_GO_SIM_URL", "http://127.0.0.1:8081")
    lib = load_from_env()
    assert lib.sim_url == "ws://127.0.0.1:8081/sim/ws" and lib.GetVersion() == b"0.5.2"
    monkeypatch.delenv("WAFLEET_FAKE_GO_SIM_URL")
    with pytest.raises(RuntimeError):
        load_from_env()
