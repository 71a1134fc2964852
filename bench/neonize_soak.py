"""neonize soak: 100 real neonize sessions in one connector for 3 minutes, offline.

Runs ``wafleet standalone --transport neonize`` as a real process (the connector with its
engine workers), adds the accounts through the HTTP API and lets them run. No WhatsApp
server is reachable from here, so every session cycles through connect failures and
reconnects with the connector's backoff: the path that leaked in a single process (one
sqlite handle and ~170 KiB per failed connect, a parked Go thread per expired QR).

Prints, at each checkpoint (1 and 3 minutes by default), the resident memory and the
thread count of the connector process and of each engine worker, their sum, its growth
since the first checkpoint, and the memory per session.

Usage: .venv/bin/python bench/neonize_soak.py [--accounts 100] [--minutes 1 3]
       [--sessions-per-worker 8] [--backoff-max 60]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.process import Standalone, phones


@dataclass(frozen=True)
class Proc:
    pid: int
    rss_mib: float
    threads: int
    fds: int


def read_proc(pid: int) -> Proc | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(list(Path(f"/proc/{pid}/fd").iterdir()))
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    rss = int(fields["VmRSS"].split()[0]) / 1024
    return Proc(pid, rss, int(fields["Threads"]), fds)


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(child) for child in text)
    return found


def checkpoint(label: str, pid: int, accounts: int, first: float | None) -> float:
    connector = read_proc(pid)
    assert connector is not None, "the connector process is gone"
    workers = [w for w in (read_proc(c) for c in children(pid)) if w is not None]
    total = connector.rss_mib + sum(w.rss_mib for w in workers)
    print(f"--- {label}")
    print(
        f"connector pid {connector.pid}: {connector.rss_mib:7.1f} MiB, "
        f"{connector.threads:3d} threads, {connector.fds:4d} fds"
    )
    for w in workers:
        print(f"  worker pid {w.pid}: {w.rss_mib:7.1f} MiB, {w.threads:3d} threads, {w.fds:4d} fds")
    growth = (
        ""
        if first is None
        else f", growth {total - first:+.1f} MiB ({(total / first - 1) * 100:+.1f}%)"
    )
    print(
        f"total: {total:.1f} MiB in {1 + len(workers)} processes, "
        f"{total / accounts:.2f} MiB per session{growth}",
        flush=True,
    )
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 3.0])
    parser.add_argument("--sessions-per-worker", type=int, default=None)
    parser.add_argument("--backoff-max", type=float, default=60.0)
    args = parser.parse_args()
    env = {
        "WAFLEET_START_RATE": "20",
        "WAFLEET_START_BURST": "20",
        "WAFLEET_BACKOFF_MAX": str(args.backoff_max),
    }
    if args.sessions_per_worker is not None:
        env["WAFLEET_ENGINE_SESSIONS_PER_WORKER"] = str(args.sessions_per_worker)
    with tempfile.TemporaryDirectory(prefix="wafleet-soak-") as tmp:
        proc = Standalone(data_dir=Path(tmp) / "data", env=env, transport="neonize")
        proc.start(ready_timeout=60)
        assert proc.proc is not None
        began = time.monotonic()
        try:
            with proc.client() as client:
                for i, phone in enumerate(phones(args.accounts), 1):
                    response = client.post(
                        "/api/whatsapp/add-account", json={"name": f"Soak {i}", "phone": phone}
                    )
                    assert response.status_code == 201, response.text
            first: float | None = None
            for minute in sorted(args.minutes):
                time.sleep(max(0.0, began + minute * 60 - time.monotonic()))
                total = checkpoint(f"{minute:g} min", proc.proc.pid, args.accounts, first)
                first = total if first is None else first
            with proc.client() as client:
                summary = client.get("/api/status/dashboard").json()["summary"]
            print(f"phases: {summary}")
        finally:
            code, seconds = proc.stop(timeout=60)
            print(f"stopped with exit code {code} in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
