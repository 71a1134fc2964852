"""Standalone benchmark: reconnect time of 30 accounts after a restart, and resident memory.

Runs ``wafleet standalone --transport sim`` as a real process with default
settings (2 session starts per second), onboards 30 accounts through the HTTP
API and the simulator, restarts the process, and prints:

- the time from the restart (SIGTERM sent) to all 30 connected again, split
  into the graceful stop, the process start and the reconnects;
- the resident memory (VmRSS) of the process with 30 connected sessions.

Usage: .venv/bin/python bench/standalone.py [--accounts N] [--start-rate R]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.process import Standalone, onboard, phones, summary, wait_until


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=30)
    parser.add_argument("--start-rate", type=float, default=2.0, help="WAFLEET_START_RATE")
    args = parser.parse_args()
    count = args.accounts
    with tempfile.TemporaryDirectory(prefix="wafleet-bench-") as tmp:
        proc = Standalone(
            data_dir=Path(tmp) / "data", env={"WAFLEET_START_RATE": str(args.start_rate)}
        )
        try:
            proc.start()
            with proc.client() as client:
                onboard(client, phones(count), timeout=120 + count)
                wait_until("all connected", lambda: summary(client)["connected"] == count, 120)
            time.sleep(2)  # let the process settle before reading its memory
            rss_first = proc.rss_mib()

            began = time.monotonic()
            code, stop_seconds = proc.stop()
            assert code == 0, proc.log()
            started = time.monotonic()
            proc.start()
            ready_seconds = time.monotonic() - started
            with proc.client() as client:
                wait_until(
                    "all reconnected",
                    lambda: summary(client)["connected"] == count,
                    60 + count,
                    interval=0.05,
                )
            total = time.monotonic() - began
            reconnect = time.monotonic() - started
            time.sleep(2)
            rss_after = proc.rss_mib()
        finally:
            proc.kill()
    print(f"accounts: {count}, start rate: {args.start_rate}/s")
    print(f"graceful stop: {stop_seconds:.2f} s")
    print(f"process start to ready: {ready_seconds:.2f} s")
    print(
        f"reconnect after restart: {reconnect:.2f} s from process start, {total:.2f} s from SIGTERM"
    )
    print(f"resident memory with {count} sessions: {rss_first:.1f} MiB")
    print(f"resident memory after the restart: {rss_after:.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
