"""Webhooks survive SIGKILLs: the standalone process is killed three times while 3,000
inbound messages arrive and the receiver fails 30% of requests and hangs on 5%; afterwards
every message reached it, signed, and every redelivery carried an id already seen."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.events_flow import (
    DELIVERY_ENV,
    TIMEOUT,
    Flood,
    check_deliveries,
    link,
    wait_all_accepted,
    wait_count,
)
from support.process import Standalone, phones, sim_service
from support.receiver import Receiver, running

pytestmark = [pytest.mark.e2e, pytest.mark.events]

ACCOUNTS = 20
MESSAGES = 3000
KILLS = (700, 1500, 2300)  # after this many messages were sent, SIGKILL and start again


@pytest.fixture
def sim() -> Iterator[str]:
    with sim_service() as url:
        yield url


def test_three_sigkills_while_3000_messages_arrive_lose_no_webhook(
    tmp_path: Path, sim: str
) -> None:
    env = {"WAFLEET_SIM_URL": sim, "WAFLEET_START_RATE": "50", "WAFLEET_START_BURST": "50"}
    proc = Standalone(data_dir=tmp_path / "data", env=env | DELIVERY_ENV)
    proc.start()
    numbers = phones(ACCOUNTS)
    receiver = Receiver(fail=0.30, hang=0.05, hang_seconds=TIMEOUT + 0.5)
    try:
        with running(receiver), proc.client() as client, httpx.Client(base_url=sim) as sims:
            link(client, sims, numbers)
            made = client.post(
                "/api/webhooks", json={"url": receiver.url, "events": ["message.inbound"]}
            )
            assert made.status_code == 201, made.text
            receiver.secret = made.json()["secret"]
            flood = Flood(sim, numbers, MESSAGES).start()
            for at in KILLS:
                wait_count(flood, at, 120)
                proc.kill()  # SIGKILL
                proc.start()
            flood.wait(180)
            wait_all_accepted(receiver, flood, 240)
            outcome = check_deliveries(receiver, flood)
    finally:
        proc.kill()
    assert outcome.accepted == MESSAGES
    # The receiver's failures were retried: the run really exercised the retries.
    assert outcome.retried > 0.2 * MESSAGES, outcome
