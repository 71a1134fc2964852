"""The dispatcher's metrics read back after real deliveries (the SQLite stores and the
scripted receiver of test_dispatch): deliveries, failed attempts by reason (status class,
timeout, connect error, refused address), dead letters; a deleted webhook's series go."""

from __future__ import annotations

from dataclasses import replace

from unit.events.test_dispatch import FAST, Env, closed_port_url, env, receiver, until

from wafleet.core.metrics import Metrics
from wafleet.events.dispatch import Dispatcher
from wafleet.events.metrics import DeliveryCollector, FailureReason, status_reason

__all__ = ["env", "receiver"]  # the fixtures

A = "wa-aaaaaaaaaaaaaaaaaaaa"


def metrics_of(dispatcher: Dispatcher) -> Metrics:
    metrics = Metrics(process=False)
    metrics.add(DeliveryCollector(dispatcher))
    return metrics


def failures(metrics: Metrics, webhook_id: str, reason: str) -> float | None:
    labels = {"webhook": webhook_id, "reason": reason}
    return metrics.sample("wafleet_webhook_failures_total", labels)


def test_status_classes_are_a_closed_set() -> None:
    assert status_reason(302) is FailureReason.STATUS_3XX
    assert status_reason(410) is FailureReason.STATUS_4XX
    assert status_reason(503) is FailureReason.STATUS_5XX
    assert status_reason(101) is FailureReason.ERROR


async def test_deliveries_and_failures_by_reason(env: Env) -> None:
    ok = await env.webhook("ok")
    flaky = await env.webhook("flaky")
    env.receiver.scripts["flaky"] = ["500", "404", "302"]  # then 200
    hanging = await env.webhook("hang")
    env.receiver.modes["hang"] = "hang"
    dead = await env.webhook("dead", url=closed_port_url())
    metrics = metrics_of(env.dispatcher())
    await env.log_events(A, 2)
    await until(lambda: len(env.receiver.at("flaky", accepted=True)) == 2, "flaky's deliveries")
    await until(
        lambda: (
            (failures(metrics, hanging.id, "timeout") or 0) >= 1
            and (failures(metrics, dead.id, "connect_error") or 0) >= 1
        ),
        "a timeout and a refused connection",
    )
    await until(lambda: len(env.receiver.at("ok", accepted=True)) == 2, "ok's deliveries")
    assert metrics.sample("wafleet_webhook_deliveries_total", {"webhook": ok.id}) == 2
    assert metrics.sample("wafleet_webhook_deliveries_total", {"webhook": flaky.id}) == 2
    assert failures(metrics, ok.id, "5xx") == 0
    for reason in ("5xx", "4xx", "3xx"):
        assert failures(metrics, flaky.id, reason) == 1, reason
    assert failures(metrics, flaky.id, "timeout") == 0
    assert metrics.sample("wafleet_webhook_deliveries_total", {"webhook": dead.id}) == 0
    assert metrics.sample("wafleet_webhook_dead_letters_total", {"webhook": ok.id}) == 0
    running = metrics.sample("wafleet_webhook_lanes_running", {"webhook": hanging.id})
    assert running is not None and running >= 0
    env.receiver.released.set()  # let the hanging answers end


async def test_dead_letters_count_and_a_deleted_webhook_leaves_no_series(env: Env) -> None:
    down = await env.webhook("down")
    env.receiver.modes["down"] = "500"
    config = replace(FAST, retry_min=0.02, retry_max=0.05, retry_for=0.2)
    metrics = metrics_of(env.dispatcher(config))
    await env.log_events(A, 2)
    await until(
        lambda: metrics.sample("wafleet_webhook_dead_letters_total", {"webhook": down.id}) == 2,
        "both events dead-lettered",
    )
    attempts = failures(metrics, down.id, "5xx")
    assert attempts is not None and attempts >= 4  # two or more attempts per event
    assert await env.hooks.delete_webhook(down.id)
    await until(
        lambda: metrics.sample("wafleet_webhook_deliveries_total", {"webhook": down.id}) is None,
        "the deleted webhook's series to go",
    )
    assert failures(metrics, down.id, "5xx") is None


async def test_a_url_the_address_check_refuses_counts_as_refused(env: Env) -> None:
    local = await env.webhook("local")  # 127.0.0.1, which only allow_private permits
    metrics = metrics_of(env.dispatcher(replace(FAST, allow_private=False)))
    await env.log_events(A, 1)
    await until(lambda: (failures(metrics, local.id, "refused") or 0) >= 1, "a refusal")
    assert env.receiver.at("local") == []
