"""kopf handlers: thin, typed, with explicit ids. The logic lives in fleet.py, actions.py,
liveness.py and fleet_report.py (the WhatsAppFleet status), as plain functions.

Run with ``kopf run -m wafleet_operator.handlers --namespace NS`` (or ``wafleet operator``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import kopf

from wafleet.kube.account_cr import CLEANUP_FINALIZER, SHARD_LABEL
from wafleet.kube.client import KubeError
from wafleet.kube.handoff import (
    HANDOFF_ANNOTATION,
)
from wafleet_operator import actions, fleet_report, fleet_view, liveness, mover, moves, policy
from wafleet_operator.fleet import AccountInfo
from wafleet_operator.metrics import COLLECTOR, FleetGauges
from wafleet_operator.readiness import READINESS
from wafleet_operator.settings import OperatorSettings

GROUP, VERSION, PLURAL = "wafleet.io", "v1alpha1", "whatsappaccounts"
PREFIX = "operator.wafleet.io"

logger = logging.getLogger(__name__)
API_RETRY = 5.0  # seconds before kopf retries a handler the API server failed, by default


@contextlib.contextmanager
def api_paced() -> Iterator[None]:
    """A throttled or failing API server (429, 5xx, unreachable): kopf retries the handler
    after the server's Retry-After, instead of its long default backoff."""
    try:
        yield
    except KubeError as exc:
        if not exc.transient:
            raise
        raise kopf.TemporaryError(
            f"the Kubernetes API cannot answer now ({exc.status} {exc.reason})",
            delay=exc.retry_after or API_RETRY,
        ) from exc


@kopf.on.startup(id="configure")
async def configure(settings: kopf.OperatorSettings, memo: Any, **kwargs: Any) -> None:
    config = OperatorSettings.from_env()
    settings.persistence.finalizer = f"{PREFIX}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=PREFIX)
    settings.peering.name = config.peering_name
    settings.peering.lifetime = config.peering_lifetime
    settings.peering.mandatory = True
    settings.peering.clusterwide = False
    settings.watching.server_timeout = config.watch_timeout
    settings.watching.client_timeout = config.watch_timeout + 30
    settings.posting.level = logging.INFO
    # One namespace and known resources: no cluster-wide scanning (and no ClusterRole for it).
    settings.scanning.disabled = True
    READINESS.priority = settings.peering.priority
    READINESS.stale_after = 2.0 * settings.peering.lifetime
    memo.state = actions.OperatorState.connect(config)
    await actions.ensure_peering(memo.state)
    state, indexes = memo.state, actions.Indexes.of(kwargs)  # kopf's indexes, filled later

    async def report_fleet() -> None:
        if READINESS.status().ready:  # indexes filled, and not paused by peering
            await fleet_report.report(state, indexes)

    state.reporter.start(report_fleet)

    async def plan_moves() -> None:
        if READINESS.status().ready:
            await mover.run_planners(state, indexes)

    state.mover.start(plan_moves)

    def fleet_gauges() -> FleetGauges | None:
        return fleet_view.gauges(state, indexes) if READINESS.status().ready else None

    COLLECTOR.ready = lambda: READINESS.status().ready
    COLLECTOR.fleet = fleet_gauges  # read at each scrape of /metrics (readiness.py)


@kopf.on.cleanup(id="disconnect")
async def disconnect(memo: Any, **_: Any) -> None:
    await memo.state.mover.stop()
    await memo.state.reporter.stop()
    await memo.state.kube.close()


@kopf.index(GROUP, VERSION, PLURAL, id="accounts")
def accounts(name: str, body: kopf.Body, **_: Any) -> dict[str, AccountInfo]:
    return {name: actions.info_of(body)}  # as an event's body reads


@kopf.index(policy.GROUP, policy.VERSION, policy.PLURAL, id="fleets")
def fleets(
    name: str, meta: kopf.Meta, spec: kopf.Spec, status: kopf.Status, **_: Any
) -> dict[str, policy.FleetInfo]:
    """WhatsAppFleet objects by the StatefulSet they govern ("": the operator's own)."""
    info = policy.fleet_info(name, meta, spec, status)
    return {info.statefulset or "": info}


@kopf.on.event(policy.GROUP, policy.VERSION, policy.PLURAL, id="fleet-policy")
async def fleet_policy(memo: Any, **kwargs: Any) -> None:
    """The policy may have changed: the StatefulSet's size follows at once (placements
    read it at each decision), and the status says what is in effect. An event handler:
    kopf adds no finalizer to the fleet object and posts no Event for it."""
    memo.state.reporter.kick()
    with api_paced():
        await actions.scale(memo.state, actions.Indexes.of(kwargs))


@kopf.index("apps", "v1", "statefulsets", id="statefulsets")
def statefulsets(name: str, spec: kopf.Spec, body: kopf.Body, **_: Any) -> dict[str, Any]:
    return {name: {"replicas": int(spec.get("replicas") or 0), "body": dict(body)}}


@kopf.index("coordination.k8s.io", "v1", "leases", id="leases")
def leases(name: str, spec: kopf.Spec, **_: Any) -> dict[str, Any]:
    return {name: dict(spec)}


@kopf.on.event("kopf.dev", "v1", "kopfpeerings", id="peering-heartbeat")
async def peering_heartbeat(
    type: str | None, name: str, body: kopf.Body, memo: Any, **_: Any
) -> None:
    """The operator's readiness (readiness.py): kopf calls this only once every index is
    filled and while peering lets it act, and its keep-alive rewrites the object every
    ~50 s. An event handler: kopf adds no finalizer and posts no Event for it."""
    if name == memo.state.config.peering_name:
        READINESS.heard(type, body)


@kopf.on.event(GROUP, VERSION, PLURAL, id="place")
async def place(
    type: str,
    body: kopf.Body,
    memo: Any,
    **kwargs: Any,
) -> None:
    """Assign new accounts to a shard, keep status.shard in step, scale the StatefulSet."""
    name = body.get("metadata", {}).get("name", "")
    memo.state.reporter.kick()
    if type == "DELETED":
        memo.state.fleet.forget(name)
        await actions.scale(memo.state, actions.Indexes.of(kwargs))
        return
    if body.get("metadata", {}).get("deletionTimestamp"):
        return
    indexes = actions.Indexes.of(kwargs)
    await actions.reconcile(
        memo.state, body, indexes, lambda: fleet_view.excluded(memo.state, indexes)
    )
    await moves.step(memo.state, body, indexes)


@kopf.timer(
    GROUP, VERSION, PLURAL, id="retry-pending", interval=10, labels={SHARD_LABEL: kopf.ABSENT}
)
async def retry_pending(
    body: kopf.Body,
    memo: Any,
    **kwargs: Any,
) -> None:
    """Accounts refused for capacity or a duplicate phone get another look."""
    indexes = actions.Indexes.of(kwargs)
    with api_paced():
        await actions.reconcile(
            memo.state, body, indexes, lambda: fleet_view.excluded(memo.state, indexes)
        )


@kopf.timer(
    GROUP, VERSION, PLURAL, id="moves", interval=2, annotations={HANDOFF_ANNOTATION: kopf.PRESENT}
)
async def move_timer(body: kopf.Body, memo: Any, **kwargs: Any) -> None:
    """An open move whose source does not answer: fenced by its Lease after the timeout
    (moves.py). The steps themselves follow the account's events."""
    with api_paced():
        await moves.step(memo.state, body, actions.Indexes.of(kwargs))


@kopf.timer(
    GROUP, VERSION, PLURAL, id="shard-liveness", interval=5, labels={SHARD_LABEL: kopf.PRESENT}
)
async def shard_liveness(body: kopf.Body, memo: Any, **kwargs: Any) -> None:
    """An account whose connector stopped renewing its shard's Lease is not running:
    say so, instead of keeping the last status the dead pod wrote. (A timer on the
    accounts, which kopf's finalizer holds anyway; one on the StatefulSet would put a
    finalizer on it.)"""
    with api_paced():
        await liveness.flag_if_shard_silent(memo.state, body, actions.Indexes.of(kwargs))


@kopf.on.delete(GROUP, VERSION, PLURAL, id="orphan-cleanup")
async def orphan_cleanup(
    body: kopf.Body,
    memo: Any,
    **kwargs: Any,
) -> None:
    """Finish the clean-up of an account whose shard is gone (the connector cannot).

    Not optional: kopf calls deletion handlers only while its own finalizer holds the
    object, so it keeps one on every account until the connector's is released.
    """
    if CLEANUP_FINALIZER not in body.get("metadata", {}).get("finalizers", []):
        return
    with api_paced():
        wait = await liveness.orphan_cleanup(memo.state, body, actions.Indexes.of(kwargs))
    if wait is not None:
        raise kopf.TemporaryError(
            f"waiting for the connector to clean up: {wait[1]}", delay=wait[0]
        )
