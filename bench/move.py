"""Move benchmark: one session move (p50/p99 over N moves) and the drain of a full shard.

Starts the official Firestore emulator and a wafleet cluster on the Kubernetes API
emulator (the kopf operator, the API, the sim, connector processes followed from the
StatefulSet, as the mobility tests do; docs/design/mobility.md), with a WhatsAppFleet
named ``wafleet`` whose spec the drain is patched onto. Setup, deterministic:

1. ``--shard-size`` accounts are onboarded first (linked through the sim): shard 0
   takes them all, since no other shard opens while it has room.
2. Two more accounts open shard 1. The first move takes one of them to shard 2, which is
   not running yet (the move includes a scale-up; reported on its own). Then the other
   one moves between shards 1 and 2 ``--moves`` times; shard 2 stays occupied, so no move
   waits for a scale-up or down. Each move is timed from the ``kubectl annotate``
   (``wafleet.io/move-to``) until the account is labelled for its target, ``Connected``
   there and both move annotations are gone (polled every 0.05 s).
3. While inbound messages flow to the shard-0 accounts, ``spec.drain: [0]`` is patched
   onto the fleet (paced by ``spec.moves.concurrency``: the default unless
   ``--concurrency``) and timed until every one of them is ``Connected`` on another shard
   with no move annotation (polled every 0.2 s).

Sanity checks (not timing assertions): the sim counts no stream replacement (no two
connections drove one device), the linked devices are the ones before, and every inbound
message sent during the drain is stored exactly once. The last line is the summary.

Usage: .venv/bin/python bench/move.py [--moves 20] [--shard-size 25] [--concurrency N]
       [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.cluster import Cluster
from support.firestore import FirestoreEmulator, find_jar, unavailable_reason
from support.mobility import (
    HANDOFF,
    MOVE_TO,
    Inbound,
    account,
    all_delivered,
    apply_fleet,
    devices,
    every_message_once,
    mobility_cluster,
    move,
    onboard,
    patch_fleet,
    settled_on,
    shard_of,
    sim_summary,
    stored_inbound,
)

MOVE_TIMEOUT = 60.0  # seconds one move may take before the bench gives up
DRAIN_TIMEOUT = 600.0
CHECK_TIMEOUT = 60.0  # for messages to be delivered and stored


class Stalled(Exception):
    """Something the bench waits for did not happen in time (the product, not the bench)."""


def poll(what: str, probe: Callable[[], bool], timeout: float, interval: float) -> float:
    """Seconds until ``probe()`` holds, polled every ``interval``; Stalled after ``timeout``."""
    began = time.monotonic()
    while True:
        if probe():
            return time.monotonic() - began
        if time.monotonic() - began > timeout:
            raise Stalled(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def nearest_rank(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (p99 of 20 values is the largest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def phones(prefix: str, count: int) -> list[str]:
    return [f"+40712{prefix}{n:04d}" for n in range(count)]


def describe(cr: dict[str, Any]) -> str:
    """Where an account stands, for a report of something that stalled."""
    meta = cr["metadata"]
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k in (MOVE_TO, HANDOFF)
    }
    status = cr.get("status") or {}
    return (
        f"{meta['name']}: shard {shard_of(cr)}, phase {status.get('phase')}, "
        f"annotations {annotations}, status.handoff {status.get('handoff')}, "
        f"message {status.get('message')!r}"
    )


class Checks:
    """Sanity checks, printed as they are made; the bench exits 1 if one failed."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def __call__(self, label: str, ok: bool, detail: str = "") -> None:
        print(f"  check: {label}: {'ok' if ok else 'FAILED'}{f' ({detail})' if detail else ''}")
        if not ok:
            self.failed.append(label)


def timed_move(cluster: Cluster, name: str, target: int) -> float:
    began = time.monotonic()
    move(cluster, name, target)
    try:
        poll(
            f"{name} settled on shard {target}",
            lambda: settled_on(cluster, name, target),
            MOVE_TIMEOUT,
            0.05,
        )
    except Stalled as stalled:
        raise Stalled(f"{stalled}; {describe(account(cluster, name))}") from None
    return time.monotonic() - began


def shards_of(cluster: Cluster, names: list[str]) -> dict[str, int | None]:
    by_name = {cr["metadata"]["name"]: cr for cr in cluster.accounts()}
    return {name: shard_of(by_name[name]) for name in names}


def part_one(cluster: Cluster, moves: int, checks: Checks) -> tuple[float, list[float]]:
    """The first move (with a scale-up), then ``moves`` timed moves between shards 1 and 2."""
    numbers = phones("77", 2)
    ids = onboard(cluster, numbers, timeout=120)
    names = list(ids.values())
    placed = shards_of(cluster, names)
    print(f"  part-1 accounts: {placed}")
    if sorted(s for s in placed.values() if s is not None) != [1, 1]:
        raise Stalled(f"expected both part-1 accounts on shard 1, found {placed}")
    anchor, mover = names
    before = devices(cluster, numbers)
    replacements = sim_summary(cluster)["replacements"]
    print(f"  before: replacements {replacements}, devices {before}")
    checks("no stream replacement before the moves", replacements == 0, f"{replacements}")
    first = timed_move(cluster, anchor, 2)  # shard 2 is not running yet: it scales up
    print(f"  first move (with scale-up), shard 1 -> 2: {first:.2f} s")
    times: list[float] = []
    where = 1
    for n in range(moves):
        target = 2 if where == 1 else 1
        took = timed_move(cluster, mover, target)
        times.append(took)
        print(f"  move {n + 1:2d}: shard {where} -> {target}: {took:.2f} s")
        where = target
    after = devices(cluster, numbers)
    replacements = sim_summary(cluster)["replacements"]
    print(f"  after: replacements {replacements}, devices {after}")
    checks("no stream replacement after the moves", replacements == 0, f"{replacements}")
    checks("linked devices unchanged by the moves", after == before)
    return first, times


def part_two(
    cluster: Cluster, project: str, ids: dict[str, str], checks: Checks
) -> tuple[float, int]:
    """Drain shard 0 while messages flow; seconds, and the most moves seen at once."""
    numbers = list(ids)
    names = list(ids.values())
    before = devices(cluster, numbers)
    most_moving = 0

    def drained() -> bool:
        nonlocal most_moving
        by_name = {cr["metadata"]["name"]: cr for cr in cluster.accounts()}
        crs = [by_name[name] for name in names]
        moving = sum(
            1
            for cr in crs
            if {MOVE_TO, HANDOFF} & set((cr["metadata"].get("annotations") or {}).keys())
        )
        most_moving = max(most_moving, moving)
        return moving == 0 and all(
            shard_of(cr) not in (None, 0) and (cr.get("status") or {}).get("phase") == "Connected"
            for cr in crs
        )

    with Inbound(cluster, numbers, every=0.02) as inbound:
        poll("inbound messages flowing", lambda: inbound.count >= 20, 30, 0.05)
        began = time.monotonic()
        patch_fleet(cluster, {"drain": [0]})
        try:
            poll("shard 0 drained", drained, DRAIN_TIMEOUT, 0.2)
        except Stalled as stalled:
            left = [describe(account(cluster, n)) for n in names]
            raise Stalled(f"{stalled}:\n    " + "\n    ".join(left)) from None
        took = time.monotonic() - began
        sent_after = inbound.count
        poll(
            "messages after the drain", lambda: inbound.count >= sent_after + len(numbers), 30, 0.05
        )
    print(f"  drain of {len(names)}: {took:.2f} s, at most {most_moving} moving at once")
    print(f"  where they went: {dict(sorted(Counter(shards_of(cluster, names).values()).items()))}")
    print(f"  inbound messages sent meanwhile: {inbound.count}")
    try:
        poll("every inbound message delivered", lambda: all_delivered(cluster), CHECK_TIMEOUT, 0.3)
        delivered = True
    except Stalled:
        delivered = False
    checks(
        "every inbound message delivered by the sim",
        delivered,
        f"pending {sim_summary(cluster)['pendingMessages']}",
    )
    with contextlib.suppress(Stalled):  # counted just below
        poll(
            "every inbound message stored",
            lambda: every_message_once(project, inbound, ids),
            CHECK_TIMEOUT,
            0.5,
        )
    stored = stored_inbound(project, names)
    missing = sum(
        1 for phone, texts in inbound.sent.items() for t in texts if stored[ids[phone]][t] == 0
    )
    twice = sum(
        1 for phone, texts in inbound.sent.items() for t in texts if stored[ids[phone]][t] > 1
    )
    checks("every inbound message stored", missing == 0, f"{missing} of {inbound.count} missing")
    checks("no inbound message stored twice", twice == 0, f"{twice} stored more than once")
    replacements = sim_summary(cluster)["replacements"]
    checks("no stream replacement after the drain", replacements == 0, f"{replacements}")
    after = devices(cluster, numbers)
    changed = sum(1 for phone in numbers if after[phone] != before[phone])
    checks("linked devices unchanged by the drain", changed == 0, f"{changed} changed")
    return took, most_moving


def run(args: argparse.Namespace, workdir: Path, emulator: FirestoreEmulator) -> int:
    checks = Checks()
    cluster = mobility_cluster(
        workdir / "cluster",
        emulator.project,
        emulator.host,
        sessions_per_shard=args.shard_size,
        max_shards=3,
    )
    try:
        cluster.start()
        spec = {} if args.concurrency is None else {"moves": {"concurrency": args.concurrency}}
        apply_fleet(cluster, spec)
        pacing = "default" if args.concurrency is None else str(args.concurrency)
        print(f"cluster up: sessions per shard {args.shard_size}, max shards 3, pacing {pacing}")

        print(f"setup: onboarding {args.shard_size} accounts onto shard 0")
        began = time.monotonic()
        ids = onboard(cluster, phones("66", args.shard_size), timeout=60 + 10 * args.shard_size)
        placed = Counter(shards_of(cluster, list(ids.values())).values())
        print(f"  onboarded in {time.monotonic() - began:.1f} s, shards {dict(placed)}")
        if placed != Counter({0: args.shard_size}):
            raise Stalled(f"expected all {args.shard_size} accounts on shard 0, found {placed}")

        print(f"part 1: one move, {args.moves} times")
        first, times = part_one(cluster, args.moves, checks)
        p50, p99 = statistics.median(times), nearest_rank(times, 0.99)
        print(
            f"  one move: p50 {p50:.2f} s, p99 {p99:.2f} s, max {max(times):.2f} s, "
            f"mean {statistics.fmean(times):.2f} s ({len(times)} moves)"
        )

        print(f"part 2: drain of shard 0 ({args.shard_size} accounts) with inbound messages")
        drain, _ = part_two(cluster, emulator.project, ids, checks)
    except Stalled as stalled:
        print(f"STALLED: {stalled}")
        print(f"logs: {workdir / 'cluster'} (operator.log, wafleet-connector-N.log)")
        return 1
    finally:
        cluster.stop()
    print(f"first move (with scale-up): {first:.2f} s")
    if checks.failed:
        print(f"failed checks: {', '.join(checks.failed)}")
    at = "" if args.concurrency is None else f" at concurrency {args.concurrency}"
    print(
        f"move p50 {p50:.2f} s, p99 {p99:.2f} s ({len(times)} moves); "
        f"drain of {args.shard_size}{at}: {drain:.1f} s "
        "(target: move p99 < 10 s, drain < 60 s)"
    )
    return 1 if checks.failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--moves", type=int, default=20, help="timed moves of one account")
    parser.add_argument("--shard-size", type=int, default=25, help="sessionsPerShard; drained")
    parser.add_argument(
        "--concurrency", type=int, default=None, help="spec.moves.concurrency (default: unset)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the workdir (the logs)")
    args = parser.parse_args()
    if args.moves < 1 or args.shard_size < 2:
        parser.error("need --moves >= 1 and --shard-size >= 2")
    reason = unavailable_reason()
    jar = find_jar()
    if reason is not None or jar is None:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    with contextlib.ExitStack() as stack:
        if args.keep:
            workdir = Path(tempfile.mkdtemp(prefix="wafleet-move-"))
            print(f"workdir (kept): {workdir}")
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wafleet-move-")))
        emulator = FirestoreEmulator(jar)
        try:
            emulator.start()
            os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.host  # stored_inbound's client
            print(f"Firestore emulator on {emulator.host} (project {emulator.project})")
            return run(args, workdir, emulator)
        finally:
            emulator.stop()


if __name__ == "__main__":
    raise SystemExit(main())
