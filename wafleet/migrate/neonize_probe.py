"""neonize loading session stores in a child: ``python -m wafleet.migrate.neonize_probe PATH...``.

For each path the child calls neonize's ``ClientFactory.get_all_devices_from_db``: the shipped
Go library opens the file with whatsmeow's ``sqlstore.New`` (which creates or upgrades its
schema, and runs the whatsmeow_version bookkeeping) and scans every device row with whatsmeow's
own loader, offline. It prints one JSON object on its standard output::

    {"results": [{"path": "...", "devices": [{"jid": "...", "push_name": "...",
                  "business_name": "...", "initialized": true}]},
                 {"path": "...", "error": "..."}]}

or ``{"error": "..."}`` when neonize cannot be imported. What the library itself prints goes
to standard error. It runs in a child because the library never closes the sqlite handles it
opens, and must stay out of the caller's process; ``probe()`` is the caller's side.

neonize reads the path inside ``file:<path>?_foreign_keys=on``, so a path holding ``?`` or
``#`` is refused rather than misread. neonize splits its answer on commas, so a push name
holding a comma makes it fail; the error says so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_TIMEOUT = 120.0  # seconds, for the whole child
_UNSAFE = "?#"


@dataclass(frozen=True)
class ProbedDevice:
    jid: str
    push_name: str
    business_name: str
    initialized: bool


@dataclass(frozen=True)
class ProbeResult:
    path: str
    devices: tuple[ProbedDevice, ...]
    error: str | None


class ProbeFailed(RuntimeError):
    """The child could not run neonize at all (not installed, crashed, timed out)."""


def _load(path: str) -> dict[str, Any]:
    from neonize.client import ClientFactory  # noqa: PLC0415 - only ever in the child

    if any(c in path for c in _UNSAFE):
        return {"path": path, "error": "the path holds '?' or '#', which neonize misreads"}
    try:
        devices = ClientFactory.get_all_devices_from_db(path)
    except ValueError as error:  # neonize splits "jid,push,business,initialized" on commas
        return {"path": path, "error": f"neonize could not parse its own answer ({error})"}
    return {
        "path": path,
        "devices": [
            {
                "jid": f"{d.JID.User}@{d.JID.Server}",  # neonize puts "user:device" in User
                "push_name": d.PushName,
                "business_name": d.BussinessName,
                "initialized": bool(d.Initialized),
            }
            for d in devices
        ],
    }


def main(argv: Sequence[str] | None = None) -> int:
    paths = list(sys.argv[1:] if argv is None else argv)
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # what the Go library prints goes to stderr, never into our JSON
    try:
        import neonize.client  # noqa: F401, PLC0415 - loads the shared library
    except Exception as error:  # whatever stops neonize from loading
        answer: dict[str, Any] = {"error": f"neonize cannot be loaded: {error}"}
    else:
        answer = {"results": [_load(path) for path in paths]}
    out.write(json.dumps(answer))
    out.close()
    return 0


def _env() -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])  # the folder holding the wafleet package
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def _result(item: Any) -> ProbeResult:
    devices = tuple(
        ProbedDevice(
            jid=str(d["jid"]),
            push_name=str(d["push_name"]),
            business_name=str(d["business_name"]),
            initialized=bool(d["initialized"]),
        )
        for d in item.get("devices", [])
    )
    error = item.get("error")
    return ProbeResult(str(item["path"]), devices, None if error is None else str(error))


def probe(paths: Sequence[Path], *, timeout: float = DEFAULT_TIMEOUT) -> list[ProbeResult]:
    """What neonize loads from each path, in one child process (one result per path)."""
    command = [sys.executable, "-m", __name__, *(str(p) for p in paths)]
    try:
        done = subprocess.run(  # noqa: S603 - our own interpreter and module, no shell
            command, capture_output=True, text=True, timeout=timeout, env=_env(), check=False
        )
    except subprocess.TimeoutExpired:
        raise ProbeFailed(f"neonize did not answer within {timeout:.0f} s") from None
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        tail = done.stderr.strip().splitlines()[-3:]
        raise ProbeFailed(
            f"the neonize probe exited with {done.returncode} and no answer: {' | '.join(tail)}"
        ) from None
    if "error" in answer:
        raise ProbeFailed(str(answer["error"]))
    results = [_result(item) for item in answer["results"]]
    if len(results) != len(paths):
        raise ProbeFailed(f"the neonize probe answered for {len(results)} of {len(paths)} paths")
    return results


if __name__ == "__main__":
    sys.exit(main())
