"""What one engine worker costs: resident memory with 1 and with N real neonize sessions.

Starts engine workers with the real neonize library (through the connector's own engine
transport) and opens sessions whose dial hangs at a local black-hole proxy, so each holds
a live whatsmeow client; then prints the worker's resident memory (and its anonymous and
file-backed parts) with one session and with N. This is the measurement behind the
default of WAFLEET_ENGINE_SESSIONS_PER_WORKER (docs/engine.md).

Usage: .venv/bin/python bench/engine_worker_memory.py [N ...]   (default: 8 25)
"""

from __future__ import annotations

import asyncio
import socket
import sys
import tempfile
import threading
from pathlib import Path

from wafleet_connector.engine.client import EngineTransport
from wafleet_connector.engine.supervisor import EngineConfig
from wafleet_connector.frame_client import FrameTimeouts
from wafleet_connector.transport import SessionSpec, TransportEvent

SETTLE_SECONDS = 8.0


def black_hole() -> str:
    """An HTTP proxy that accepts and never answers: a dial that hangs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(512)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return f"http://127.0.0.1:{server.getsockname()[1]}"


def memory(pid: int) -> dict[str, float]:
    """VmRSS, and the proportional anonymous / file-backed parts, in MiB."""
    wanted = {"VmRSS": "rss"}
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":", 1)[0]
        if key in wanted:
            out[wanted[key]] = int(line.split()[1]) / 1024
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key = line.split(":", 1)[0]
        if key in ("Pss_Anon", "Pss_File"):
            out[key.lower()] = int(line.split()[1]) / 1024
    return out


async def measure(count: int, root: Path) -> None:
    sessions_dir = root / f"n{count}" / "sessions"
    sessions_dir.mkdir(parents=True)
    config = EngineConfig(
        sessions_per_worker=max(count, 1),
        sessions_dir=sessions_dir,
        neonize={"proxy": black_hole(), "connect_timeout": 300},
    )
    transport = EngineTransport(config, FrameTimeouts())

    async def ignore(event: TransportEvent) -> None:
        return None

    def spec(n: int) -> SessionSpec:
        return SessionSpec(f"wa-{n}", f"+4071200{n:04d}", "qr", sessions_dir / f"wa-{n}.db")

    try:
        await transport.open(spec(0), ignore)
        await asyncio.sleep(SETTLE_SECONDS / 2)
        pid = transport.supervisor.stats()[0].pid
        assert pid is not None
        one = memory(pid)
        for n in range(1, count):
            await transport.open(spec(n), ignore)
        await asyncio.sleep(SETTLE_SECONDS)
        many = memory(pid)
        extra = (many["rss"] - one["rss"]) / max(count - 1, 1)
        print(
            f"1 session: {one['rss']:.1f} MiB RSS ({one['pss_anon']:.1f} anonymous, "
            f"{one['pss_file']:.1f} file); {count} sessions: {many['rss']:.1f} MiB RSS "
            f"({many['pss_anon']:.1f} anonymous); {extra:.2f} MiB per further session",
            flush=True,
        )
    finally:
        await transport.close()


def main() -> int:
    counts = [int(arg) for arg in sys.argv[1:]] or [8, 25]
    with tempfile.TemporaryDirectory(prefix="wafleet-worker-mem-") as tmp:
        for count in counts:
            asyncio.run(measure(count, Path(tmp)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
