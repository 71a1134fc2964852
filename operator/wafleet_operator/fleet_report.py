"""The WhatsAppFleet status, on the API: computed from the indexes (fleet_status.py),
written to the status subresource only when it changed."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from wafleet.kube.account_cr import shard_lease_name
from wafleet.kube.client import NotFound
from wafleet_operator.actions import (
    Indexes,
    OperatorState,
    fleets_of,
    statefulset,
    values,
)
from wafleet_operator.fleet_status import (
    LeaseView,
    duplicate_status,
    fleet_status,
    lease_view,
)
from wafleet_operator.fleet_view import view_of
from wafleet_operator.move_planner import draining
from wafleet_operator.policy import FLEETS, FleetInfo, governing, resolve
from wafleet_operator.reporter import changed

logger = logging.getLogger(__name__)

Obj = dict[str, Any]


async def report(state: OperatorState, indexes: Indexes, now: datetime | None = None) -> None:
    """Write the status of every fleet object naming this operator's StatefulSet."""
    now = now or datetime.now(UTC)
    own = state.config.connector_statefulset
    fleet, duplicates = governing(fleets_of(state, indexes))
    if fleet is not None:
        config = state.config
        resolved = resolve(fleet.spec, config.policy, config.shard_limit, config.mobility)
        accounts = list(values(indexes.accounts))
        placements = state.fleet.placements(accounts)
        sts = statefulset(state, indexes.statefulsets)
        replicas = None if sts is None else int(sts["replicas"])
        count = max([replicas or 0, *(shard + 1 for shard in placements.values())])
        leases: dict[int, LeaseView] = {}
        for ordinal in range(count):
            lease = next(iter(indexes.leases.get(shard_lease_name(own, ordinal), [])), None)
            leases[ordinal] = lease_view(lease, now)
        status = fleet_status(
            fleet,
            resolved,
            shown=state.reporter.shown(fleet.uid, fleet.status),
            accounts=accounts,
            placements=placements,
            replicas=replicas,
            leases=leases,
            statefulset=own,
            now=now,
            draining=draining(view_of(state, indexes)),
        )
        await _write(state, fleet, status)
    for duplicate in duplicates:
        assert fleet is not None
        shown = state.reporter.shown(duplicate.uid, duplicate.status)
        await _write(state, duplicate, duplicate_status(duplicate, shown, fleet.name, own, now))


async def _write(state: OperatorState, fleet: FleetInfo, status: Obj) -> None:
    """Patch the status if it changed: compared with what the object shows (the index's
    copy, or what was written moments ago while the index may not show it yet)."""
    reporter = state.reporter
    if not changed(reporter.shown(fleet.uid, fleet.status), status):
        return
    try:
        await state.kube.patch(
            FLEETS, state.config.namespace, fleet.name, {"status": status}, subresource="status"
        )
    except NotFound:
        return  # deleted meanwhile
    reporter.wrote(fleet.uid, status)
    logger.debug("fleet %s status written", fleet.name)
