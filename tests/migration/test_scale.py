"""Thirty legacy accounts, as a small legacy fleet: each converts, loads, and decrypts."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from migration.conftest import LegacyFixture

pytestmark = pytest.mark.migration

ACCOUNTS = 30
CONVERT_BUDGET = 60.0  # seconds for all 30 conversions (measured: under 1 s)
NEONIZE_TIMEOUT = 120

NEONIZE_ALL = """
import json, sys
from neonize.client import ClientFactory
from neonize.utils.jid import Jid2String
print(json.dumps([
    [[Jid2String(d.JID), d.PushName] for d in ClientFactory.get_all_devices_from_db(path)]
    for path in sys.argv[1:]
]))
"""


def test_thirty_accounts(
    legacy_fleet: LegacyFixture,
    axolotl_probes: Any,
    tmp_path: Path,
    record_property: Any,
) -> None:
    from wafleet.migrate.baileys import read_auth_dir  # noqa: PLC0415 (the code under test)
    from wafleet.migrate.convert import convert  # noqa: PLC0415

    fleet = legacy_fleet
    assert len(fleet.accounts) == ACCOUNTS
    out = tmp_path / "stores"
    out.mkdir()
    started = time.monotonic()
    stores = []
    for account in fleet.accounts:
        target = out / f"{account.account_id}.db"
        conversion = convert(read_auth_dir(account.folder), target)
        assert conversion.jid == account.expected["me"]["id"]
        stores.append(target)
    seconds = time.monotonic() - started
    record_property("generate_seconds", round(fleet.seconds, 2))
    record_property("convert_seconds", round(seconds, 2))
    print(
        f"{ACCOUNTS} accounts: generated in {fleet.seconds:.2f} s, converted in {seconds:.2f} s",
        file=sys.stderr,
    )
    assert seconds < CONVERT_BUDGET

    result = subprocess.run(
        [sys.executable, "-c", NEONIZE_ALL, *(str(s) for s in stores)],
        capture_output=True,
        text=True,
        timeout=NEONIZE_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    devices = json.loads(result.stdout.strip().splitlines()[-1])
    assert devices == [[[a.expected["me"]["id"], a.expected["me"]["name"]]] for a in fleet.accounts]

    probed = axolotl_probes(
        [(s, a.expected_path) for s, a in zip(stores, fleet.accounts, strict=True)]
    )
    for account, found in zip(fleet.accounts, probed, strict=True):
        plaintexts = {m["label"]: m["plaintext"] for m in account.expected["messages"]}
        assert found["load_problems"] == {}, account.account_id
        for message in found["messages"]:
            where = f"{account.account_id} {message['label']}"
            assert message["error"] is None, f"{where}: {message['error']}"
            assert message["plaintext"] == plaintexts[message["label"]], where
