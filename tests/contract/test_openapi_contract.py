"""``/openapi.json`` is exact: schemathesis, with every check, against a real
``wafleet standalone --transport sim`` process finds nothing.

Every phase runs (examples, coverage, fuzzing, stateful), deterministically (the same
cases every run) within a time budget, authenticated with the admin token.
``schemathesis_hooks.py`` teaches it the two formats no JSON Schema keyword can say
(``phone``, ``cursor``). The run must also reach the success paths: add-account calls
that created accounts.

schemathesis comes with the dev extras (``make setup``); without it this is a skip on a
workstation and a failure under CI=true.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.process import TOKEN, Standalone

pytestmark = [pytest.mark.contract, pytest.mark.e2e]

HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
BUDGET_SECONDS = 150  # schemathesis's --max-time; the run stops soon after
RUN_TIMEOUT = 240  # the most the whole run may take (the budget, then the report)
# add-account calls answered 200 with "created": true. What this checks is that the run
# reached account creation at all (a schema whose phones never parse would create none):
# 58 in 110 s on an idle machine, 18 with another test worker sharing the two cores.
MIN_CREATED = 10


def schemathesis_path() -> Path:
    path = Path(sys.executable).with_name("schemathesis")
    if not (path.is_file() and os.access(path, os.X_OK)):
        message = f"{path} is missing: `make setup` installs schemathesis (the dev extras)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[Standalone]:
    # The default body limit (1 MiB) fits the longest text the schema allows (65536
    # characters, each escaped as JSON in up to 12 bytes): no 413 for a valid request.
    # Webhooks it registers point at loopback (the 'webhook-url' format's values): allowed
    # here, so that no delivery ever goes off the machine.
    proc = Standalone(
        data_dir=tmp_path / "data",
        transport="sim",
        env={"WAFLEET_WEBHOOK_ALLOW_PRIVATE": "true"},
    )
    proc.start()
    yield proc
    proc.kill()


def run_schemathesis(
    tool: Path, url: str, work: Path
) -> tuple[subprocess.CompletedProcess[str], float]:
    config = work / "schemathesis.toml"
    config.write_text(f'hooks = "{HOOKS}"\n\n[generation]\ndatabase = "none"\n')
    command = [
        *(str(tool), "--config-file", str(config), "--no-color", "run", f"{url}/openapi.json"),
        *("--checks", "all", "--header", f"Authorization: Bearer {TOKEN}"),
        *("--generation-deterministic", "--workers", "1"),
        *("--max-time", str(BUDGET_SECONDS), "--request-timeout", "20"),
        *("--report", "har", "--report-har-path", str(work / "run.har")),
        # The event stream never ends (its own tests read it in tests/e2e/test_events.py).
        *("--exclude-path", "/api/events/stream"),
    ]
    started = time.monotonic()
    result = subprocess.run(
        command, cwd=work, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
    )
    return result, time.monotonic() - started


def har_entries(path: Path) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(path.read_text())["log"]["entries"]
    return entries


def created_accounts(entries: list[dict[str, Any]]) -> int:
    count = 0
    for entry in entries:
        request, response = entry["request"], entry["response"]
        if request["method"] != "POST" or not request["url"].endswith("/add-account"):
            continue
        if response["status"] == 200:
            body = json.loads(response["content"].get("text") or "{}")
            count += body.get("created") is True
    return count


def failures(output: str) -> str:
    """The report's failures and summary, without the progress lines before them."""
    start = output.find("FAILURES")
    return (output[max(0, start - 40) :] if start >= 0 else output)[-20000:]


def test_schemathesis_finds_nothing(standalone: Standalone, tmp_path: Path) -> None:
    tool = schemathesis_path()
    work = tmp_path / "schemathesis"
    work.mkdir()
    result, elapsed = run_schemathesis(tool, standalone.url, work)
    found = result.returncode != 0
    assert not found, (
        f"schemathesis found mismatches in {elapsed:.0f} s:\n{failures(result.stdout)}\n"
        f"{result.stderr[-2000:]}\nserver log (its end):\n{standalone.log()[-3000:]}"
    )
    assert "Test cases:" in result.stdout, result.stdout[-2000:]
    har = work / "run.har"  # every request and answer: tens of MB
    created = created_accounts(har_entries(har))
    har.unlink()
    assert created >= MIN_CREATED, f"only {created} add-account calls created an account"
