"""Our webhook signatures verify with the Standard Webhooks *Node* library too (the
Python one is in test_signing.py): what docs/events.md tells Node receivers to use.

The library is pinned in ``node/package-lock.json`` and installed on first use with
``npm ci``. Without node or npm this is a skip on a workstation and a failure with CI=true.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from wafleet.events.model import Event
from wafleet.events.signing import new_secret, signed_headers

NODE_DIR = Path(__file__).with_name("node")


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"`{name}` is missing: apt-get install nodejs npm (`make test` does)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def node() -> str:
    binary = tool("node")
    if not (NODE_DIR / "node_modules" / "standardwebhooks").is_dir():
        result = subprocess.run(
            [tool("npm"), "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
    return binary


def verify(node: str, cases: list[dict[str, object]]) -> list[dict[str, object]]:
    result = subprocess.run(
        [node, "verify.mjs"],
        cwd=NODE_DIR,
        input="".join(json.dumps(case) + "\n" for case in cases),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_the_node_library_verifies_what_we_sign(node: str) -> None:
    secret = new_secret()
    event = Event(
        id="evt_abc123",
        type="message.inbound",
        account_id="wa-abcdefghijklmnopabcd",
        seq=7,
        data={"body": 'héllo \u2603 "quoted"', "from": "40799000001@s.whatsapp.net"},
    )
    body = json.dumps(event.body(), separators=(",", ":"), ensure_ascii=False)
    headers = signed_headers(secret, event.id, body, datetime.now(UTC))
    tampered = body.replace("héllo", "hello")
    other = new_secret()
    answers = verify(
        node,
        [
            {"secret": secret, "body": body, "headers": headers},
            {"secret": secret, "body": tampered, "headers": headers},
            {"secret": other, "body": body, "headers": headers},
            {"secret": secret.removeprefix("whsec_"), "body": body, "headers": headers},
        ],
    )
    assert answers[0] == {"ok": True, "id": "evt_abc123"}
    assert answers[1]["ok"] is False  # a changed body
    assert answers[2]["ok"] is False  # another secret
    assert answers[3] == {"ok": True, "id": "evt_abc123"}  # with or without the prefix
