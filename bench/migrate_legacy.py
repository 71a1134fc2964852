"""The legacy fleet's move: N accounts through ``wafleet migrate-legacy`` in one command.

Generates N legacy accounts with Baileys 7.0.0-rc14 itself (``tests/migration/fixture``:
real pre-keys, pairing and Signal sessions with several contacts each; ``npm ci`` there
first), then times, as real processes:

- a dry run (convert into a scratch folder and verify: neonize loads every store);
- the migration into a new standalone data directory;
- the same command again (everything is skipped: what it costs to check).

Usage: .venv/bin/python bench/migrate_legacy.py [--accounts 30] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "migration" / "fixture"


def run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload,no-any-return]


def timed_migrate(*args: str) -> tuple[float, Counter[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAFLEET_")}
    started = time.monotonic()
    done = run([sys.executable, "-m", "wafleet_app", "migrate-legacy", *args, "--json"], env=env)
    seconds = time.monotonic() - started
    if done.returncode not in (0, 3):
        raise SystemExit(f"migrate-legacy failed ({done.returncode}):\n{done.stderr[-3000:]}")
    outcomes = Counter(json.loads(line)["outcome"] for line in done.stdout.splitlines() if line)
    return seconds, outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    node = shutil.which("node")
    if node is None or not (FIXTURE / "node_modules").is_dir():
        raise SystemExit(f"needs node and `npm ci --omit=peer` in {FIXTURE}")
    with tempfile.TemporaryDirectory(prefix="bench-migrate-") as scratch:
        root = Path(scratch)
        started = time.monotonic()
        generated = run(
            [node, "gen.mjs", "--out", str(root / "legacy"), "--accounts", str(args.accounts)],
            cwd=FIXTURE,
        )
        if generated.returncode != 0:
            raise SystemExit(f"gen.mjs failed:\n{generated.stderr[-3000:]}")
        sessions = root / "legacy" / "sessions"
        files = sum(1 for _ in sessions.rglob("*.json"))
        print(
            f"generated {args.accounts} legacy accounts ({files} Baileys files) "
            f"in {time.monotonic() - started:.1f} s"
        )
        figures: dict[str, list[float]] = {"dry run": [], "migrate": [], "again": []}
        for n in range(args.runs):
            data = root / f"data-{n}"
            for label, extra in (("dry run", ["--dry-run"]), ("migrate", []), ("again", [])):
                seconds, outcomes = timed_migrate(
                    "--sessions-dir", str(sessions), "--data-dir", str(data), *extra
                )
                figures[label].append(seconds)
                if n == 0:
                    print(f"  {label}: {dict(outcomes)}")
        for label, values in figures.items():
            print(
                f"{label:8s}: median {statistics.median(values):.2f} s, "
                f"max {max(values):.2f} s over {len(values)} runs "
                f"({args.accounts} accounts, the whole command)"
            )


if __name__ == "__main__":
    main()
