"""``wafleet migrate-legacy`` run as a process, with a clean environment, and its JSON results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

CLI_TIMEOUT = 300


def migrate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WAFLEET_")}
    clean.pop("SESSIONS_PATH", None)
    return subprocess.run(
        [sys.executable, "-m", "wafleet_app", "migrate-legacy", *args],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )


def results(done: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return {line["account_id"]: line for line in lines}
