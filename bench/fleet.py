"""Fleet benchmark: 300 WhatsAppAccounts applied at once on the Kubernetes API emulator.

Starts the emulator, the kopf operator, the API, the sim and a StatefulSet
follower (real processes, as the integration tests do), creates N accounts
as fast as the API server takes them, and prints the time from the first
create to all accounts assigned to a shard, and to all ``QRReady``.

Usage: .venv/bin/python bench/fleet.py [--accounts 300] [--sessions-per-shard 25]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.cluster import Cluster
from support.process import wait_until


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=300)
    parser.add_argument("--sessions-per-shard", type=int, default=25)
    args = parser.parse_args()
    count = args.accounts
    with tempfile.TemporaryDirectory(prefix="wafleet-fleet-") as tmp:
        cluster = Cluster(Path(tmp), sessions_per_shard=args.sessions_per_shard, max_shards=100)
        try:
            cluster.start()
            began = time.monotonic()
            for n in range(count):
                cluster.create_account(f"bench-{n:04d}", f"+40713{n:06d}")
            created = time.monotonic() - began

            def assigned() -> bool:
                crs = cluster.accounts()
                labels = [(c["metadata"].get("labels") or {}).get("wafleet.io/shard") for c in crs]
                return len(crs) == count and all(label is not None for label in labels)

            wait_until("all assigned", assigned, 600, interval=0.2)
            assigned_at = time.monotonic() - began

            def qr_ready() -> bool:
                phases = Counter((c.get("status") or {}).get("phase") for c in cluster.accounts())
                return phases["QRReady"] == count

            wait_until("all QRReady", qr_ready, 900, interval=0.5)
            ready_at = time.monotonic() - began
            shards = cluster.follower.replicas() if cluster.follower else 0
        finally:
            cluster.stop()
    print(f"accounts: {count}, sessions per shard: {args.sessions_per_shard}, shards: {shards}")
    print(f"created (API server accepted all): {created:.2f} s")
    print(f"all assigned to a shard: {assigned_at:.2f} s after the first create")
    print(f"all QRReady: {ready_at:.2f} s after the first create")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
