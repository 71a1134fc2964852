"""``/metrics`` of a real standalone process (``--transport sim``), parsed as Prometheus
parses it: after an account is onboarded and a message goes in and out, the API's, the
shard's, the webhook dispatcher's and the process's series are all there, with the right
types and values, under the API's authentication, and no phone number in any label."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from support.process import Standalone, onboard, phones, wait_until
from support.receiver import Receiver, running

pytestmark = pytest.mark.e2e

CONTACT = "+40799000001"
ENV = {
    "WAFLEET_WEBHOOK_ALLOW_PRIVATE": "true",  # the receivers are on 127.0.0.1
    "WAFLEET_WEBHOOK_RETRY_MIN": "0.05",
    "WAFLEET_WEBHOOK_RETRY_MAX": "0.2",
    "WAFLEET_EVENT_POLL": "0.1",
}
Families = dict[str, Any]


@pytest.fixture
def proc(tmp_path: Path) -> Iterator[Standalone]:
    running_proc = Standalone(data_dir=tmp_path / "data", env=ENV)
    running_proc.start()
    try:
        yield running_proc
    finally:
        running_proc.kill()


def scrape(client: httpx.Client) -> Families:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def value(families: Families, sample: str, **labels: str) -> float | None:
    for family in families.values():
        for found in family.samples:
            if found.name == sample and found.labels == labels:
                return float(found.value)
    return None


def test_standalone_serves_every_component(proc: Standalone) -> None:
    [phone] = phones(1, base=40_712_000_500)
    good, bad = Receiver(), Receiver(status=500)
    with running(good), running(bad), proc.client() as client:
        assert httpx.get(proc.url + "/metrics").status_code == 401  # needs a credential
        account_id = onboard(client, [phone])[phone]
        hooks = {}
        for name, receiver in (("good", good), ("bad", bad)):
            made = client.post(
                "/api/webhooks", json={"url": receiver.url, "events": ["message.inbound"]}
            )
            assert made.status_code == 201, made.text
            receiver.secret = made.json()["secret"]
            hooks[name] = made.json()["webhook"]["id"]
        sent = client.post("/sim/messages", json={"from": CONTACT, "to": phone, "text": "hi"})
        assert sent.status_code == 200, sent.text
        out = client.post(
            "/api/whatsapp/send-message",
            json={"accountId": account_id, "to": CONTACT, "message": "hello back"},
        )
        assert out.status_code in (200, 201, 202), out.text
        account = {"account": account_id}

        def settled() -> Families | None:
            """The families once each series below has the value it should reach."""
            families = scrape(client)
            expected = [
                ("wafleet_session_messages_total", {**account, "direction": "in"}, 1),
                ("wafleet_session_messages_total", {**account, "direction": "out"}, 1),
                ("wafleet_webhook_deliveries_total", {"webhook": hooks["good"]}, 1),
                # counted at most every 5 s (outbox_depth.MIN_INTERVAL): 0 once it caught up
                ("wafleet_session_outbox_depth", account, 0),
            ]
            if any(value(families, n, **labels) != want for n, labels, want in expected):
                return None
            bad = {"webhook": hooks["bad"], "reason": "5xx"}
            failed = value(families, "wafleet_webhook_failures_total", **bad)
            return families if failed is not None and failed >= 1 else None

        families = wait_until("the message in, out and delivered", settled, 60)

    types = {
        "wafleet_accounts": "gauge",
        "wafleet_account_reconnects": "counter",
        "wafleet_api_request_duration_seconds": "histogram",
        "wafleet_session_connected": "gauge",
        "wafleet_session_phase": "gauge",
        "wafleet_session_messages": "counter",
        "wafleet_session_outbox_depth": "gauge",
        "wafleet_session_journal_depth": "gauge",
        "wafleet_shard_sessions": "gauge",
        "wafleet_outbox_send_latency_seconds": "histogram",
        "wafleet_outbox_sends": "counter",
        "wafleet_webhook_deliveries": "counter",
        "wafleet_webhook_failures": "counter",
        "wafleet_webhook_dead_letters": "counter",
        "process_resident_memory_bytes": "gauge",
    }
    for name, kind in types.items():
        assert name in families, f"{name} is missing"
        assert families[name].type == kind, name
        assert families[name].documentation, f"{name} has no HELP"
    assert value(families, "wafleet_accounts", phase="Connected") == 1
    assert value(families, "wafleet_account_reconnects_total") == 0
    assert value(families, "wafleet_session_connected", **account) == 1
    assert value(families, "wafleet_session_phase", **account, phase="Connected") == 1
    # The API's latency, by route template: the send above, never its raw path or body.
    send = {"route": "/api/whatsapp/send-message", "method": "POST", "status": "2xx"}
    assert value(families, "wafleet_api_request_duration_seconds_count", **send) == 1
    routes = {s.labels["route"] for s in families["wafleet_api_request_duration_seconds"].samples}
    assert not [r for r in routes if account_id in r or phone.lstrip("+") in r], routes
    assert value(families, "wafleet_session_outbox_depth", **account) == 0
    assert value(families, "wafleet_session_journal_depth", **account) == 0
    assert value(families, "wafleet_shard_sessions", shard="0", phase="Connected") == 1
    assert value(families, "wafleet_outbox_send_latency_seconds_count") == 1
    assert value(families, "wafleet_outbox_sends_total", result="sent") == 1
    assert value(families, "wafleet_webhook_dead_letters_total", webhook=hooks["bad"]) == 0
    digits = phone.lstrip("+")
    for family in families.values():
        for sample in family.samples:
            assert digits not in str(sample.labels), sample
            assert CONTACT.lstrip("+") not in str(sample.labels), sample
    assert good.accepted_events()
