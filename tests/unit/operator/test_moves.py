"""The operator's steps of a move (moves.py), on one account held by a stand-in API server
that applies JSON and merge patches as the emulator does (its patching module), and
refuses a JSON patch whose ``test`` fails with 422, as the apiserver does."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
import pytest
from k8s_emulator.errors import ApiError
from k8s_emulator.patching import json_patch, merge_patch

from wafleet.core.models import iso
from wafleet.kube.client import ACCOUNTS, Invalid, Resource
from wafleet.kube.handoff import HANDOFF_ANNOTATION, MOVE_TO_ANNOTATION, Handoff, handoff_of
from wafleet_operator.actions import Indexes, OperatorState, info_of
from wafleet_operator.fleet import Fleet
from wafleet_operator.moves import step
from wafleet_operator.planner import MobilityPolicy, ShardPolicy
from wafleet_operator.settings import OperatorSettings

Obj = dict[str, Any]
G = 1796146421711
STS = "wafleet-connector"


class Api:
    """One account, its StatefulSet and the Events written about it."""

    def __init__(self, account: Obj) -> None:
        self.account = account
        self.events: list[Obj] = []

    async def patch(
        self,
        res: Resource,
        _ns: str | None,
        _name: str,
        body: Any,
        *,
        kind: str = "merge",
        subresource: str | None = None,
    ) -> Obj:
        if res != ACCOUNTS:
            return {}  # the StatefulSet's replicas: not what these tests look at
        try:
            changed = json_patch(self.account, body) if kind == "json" else None
        except ApiError as exc:
            raise Invalid(422, "Invalid", str(exc)) from None
        if changed is None:
            changed = merge_patch(self.account, body)
        self.account = changed
        self.account["metadata"]["resourceVersion"] = str(
            int(self.account["metadata"]["resourceVersion"]) + 1
        )
        return copy.deepcopy(self.account)

    async def create(self, _res: Resource, _ns: str | None, body: Obj) -> Obj:
        self.events.append(body)
        return body

    def reasons(self) -> list[str]:
        return [str(e["reason"]) for e in self.events]


def account_cr(shard: int = 0, **annotations: str) -> Obj:
    return {
        "apiVersion": "wafleet.io/v1alpha1",
        "kind": "WhatsAppAccount",
        "metadata": {
            "name": "wa-a",
            "namespace": "ns",
            "uid": "u1",
            "resourceVersion": "1",
            "labels": {"wafleet.io/shard": str(shard)},
            "annotations": dict(annotations),
        },
        "spec": {"phone": "+40712345678"},
        "status": {"phase": "Connected"},
    }


def lease(renewed_ago: float) -> Obj:
    renewed = datetime.now(UTC) - timedelta(seconds=renewed_ago)
    return {"holderIdentity": "pod", "renewTime": iso(renewed), "leaseDurationSeconds": 6}


def world(api: Api, replicas: int = 2, leases: dict[int, float] | None = None) -> tuple[Any, ...]:
    config = OperatorSettings(namespace="ns")
    state = OperatorState(config=config, fleet=Fleet(), kube=api)  # type: ignore[arg-type]
    indexes = Indexes(
        accounts={"wa-a": [info_of(api.account)]},
        statefulsets={STS: [{"replicas": replicas, "body": {"metadata": {"name": STS}}}]},
        leases={
            f"{STS}-shard-{o}": [lease(ago)] for o, ago in (leases or {0: 1.0, 1: 1.0}).items()
        },
        fleets={},
    )
    return state, indexes


async def run(api: Api, **kwargs: Any) -> None:
    state, indexes = world(api, **kwargs)
    await step(state, kopf.Body(copy.deepcopy(api.account)), indexes)


def opened(at: datetime | None = None) -> Handoff:
    stamp = iso(at or datetime.now(UTC)) or ""
    return Handoff(id="m1", source=0, target=1, at=stamp)


@pytest.mark.parametrize(
    ("asked", "why"),
    [
        ("one", "must be a shard ordinal such as 1, not 'one'"),
        ("25", "shard 25 is beyond maxShards 20 (ordinals 0 to 19)"),
    ],
)
async def test_a_move_that_cannot_be_made_is_refused_and_the_ask_removed(
    asked: str, why: str
) -> None:
    api = Api(account_cr(**{MOVE_TO_ANNOTATION: asked}))
    await run(api)
    assert MOVE_TO_ANNOTATION not in api.account["metadata"]["annotations"]
    assert handoff_of(api.account) is None
    [event] = api.events
    assert event["reason"] == "MoveRefused" and why in event["message"]


async def test_a_move_to_the_shard_it_is_on_is_dropped_quietly() -> None:
    api = Api(account_cr(**{MOVE_TO_ANNOTATION: "0"}))
    await run(api)
    assert MOVE_TO_ANNOTATION not in api.account["metadata"]["annotations"]
    assert api.events == []


async def test_a_move_opens_with_a_handoff_and_shows_moving() -> None:
    api = Api(account_cr(**{MOVE_TO_ANNOTATION: "1"}))
    await run(api)
    handoff = handoff_of(api.account)
    assert handoff is not None and (handoff.source, handoff.target) == (0, 1)
    assert not handoff.relabelled
    assert api.account["status"]["phase"] == "Moving"
    assert api.reasons() == ["MoveStarted"]


async def test_the_account_is_relabelled_once_the_source_wrote_its_generation() -> None:
    api = Api(account_cr(**{MOVE_TO_ANNOTATION: "1", HANDOFF_ANNOTATION: opened().to_json()}))
    await run(api)  # the source has not answered yet: nothing to do
    assert api.account["metadata"]["labels"]["wafleet.io/shard"] == "0"
    api.account["status"]["handoff"] = {"id": "m1", "generation": G}
    await run(api)
    assert api.account["metadata"]["labels"]["wafleet.io/shard"] == "1"
    handoff = handoff_of(api.account)
    assert handoff is not None and handoff.generation == G
    assert api.reasons() == ["HandedOver"]


async def test_a_source_that_could_not_let_go_has_the_move_cancelled() -> None:
    api = Api(account_cr(**{MOVE_TO_ANNOTATION: "1", HANDOFF_ANNOTATION: opened().to_json()}))
    api.account["status"]["handoff"] = {"id": "m1", "error": "the backup store refused"}
    await run(api)
    assert {MOVE_TO_ANNOTATION, HANDOFF_ANNOTATION}.isdisjoint(
        api.account["metadata"]["annotations"]
    )
    assert api.account["metadata"]["labels"]["wafleet.io/shard"] == "0"
    assert api.reasons() == ["MoveCancelled"]
    assert "the backup store refused" in api.events[0]["message"]


async def test_a_silent_source_is_fenced_only_once_its_lease_expired() -> None:
    long_ago = datetime.now(UTC) - timedelta(seconds=45)  # beyond moves.timeout (30 s)
    annotations = {MOVE_TO_ANNOTATION: "1", HANDOFF_ANNOTATION: opened(long_ago).to_json()}
    api = Api(account_cr(**annotations))
    await run(api, leases={0: 1.0, 1: 1.0})  # its Lease is current: it may still act
    assert api.account["metadata"]["labels"]["wafleet.io/shard"] == "0"
    await run(api, leases={0: 20.0, 1: 1.0})  # expired: nothing drives the device now
    assert api.account["metadata"]["labels"]["wafleet.io/shard"] == "1"
    handoff = handoff_of(api.account)
    assert handoff is not None and handoff.generation == 0  # the latest backup
    assert api.reasons() == ["Fenced"]


async def test_a_source_that_keeps_its_lease_but_never_answers_has_the_move_cancelled() -> None:
    long_ago = datetime.now(UTC) - timedelta(seconds=95)  # three timeouts
    annotations = {MOVE_TO_ANNOTATION: "1", HANDOFF_ANNOTATION: opened(long_ago).to_json()}
    api = Api(account_cr(**annotations))
    await run(api, leases={0: 1.0, 1: 1.0})
    assert handoff_of(api.account) is None
    assert api.account["metadata"]["labels"]["wafleet.io/shard"] == "0"
    assert api.reasons() == ["MoveCancelled"]


async def test_the_move_closes_once_the_target_restored_and_started() -> None:
    moved = Handoff(id="m1", source=0, target=1, at=opened().at, generation=G)
    api = Api(account_cr(1, **{MOVE_TO_ANNOTATION: "1", HANDOFF_ANNOTATION: moved.to_json()}))
    api.account["status"] = {"phase": "Pending", "handoff": {"id": "m1", "generation": G}}
    await run(api)  # not restored yet
    assert HANDOFF_ANNOTATION in api.account["metadata"]["annotations"]
    api.account["status"]["handoff"]["restored"] = G
    await run(api)  # restored, still starting
    assert HANDOFF_ANNOTATION in api.account["metadata"]["annotations"]
    api.account["status"]["phase"] = "Connected"
    await run(api)
    assert {MOVE_TO_ANNOTATION, HANDOFF_ANNOTATION}.isdisjoint(
        api.account["metadata"]["annotations"]
    )
    assert api.reasons() == ["Moved"]


async def test_a_step_on_a_stale_read_writes_nothing() -> None:
    """The handoff changed after the body was read (another replica, or a person): the
    guarded patch is refused, and nothing is relabelled from the stale view."""
    api = Api(account_cr(**{MOVE_TO_ANNOTATION: "1", HANDOFF_ANNOTATION: opened().to_json()}))
    api.account["status"]["handoff"] = {"id": "m1", "generation": G}
    stale = copy.deepcopy(api.account)
    newer = Handoff(id="m2", source=0, target=2, at=opened().at)
    api.account["metadata"]["annotations"][HANDOFF_ANNOTATION] = newer.to_json()
    state, indexes = world(api)
    await step(state, kopf.Body(stale), indexes)
    assert api.account["metadata"]["labels"]["wafleet.io/shard"] == "0"
    assert json.loads(api.account["metadata"]["annotations"][HANDOFF_ANNOTATION])["id"] == "m2"


async def test_a_move_to_removed_after_the_read_cancels_instead_of_relabelling() -> None:
    """A person cancels (``move-to-``) while the operator relabels from what it read:
    the relabel is refused, and the next look cancels the move."""
    api = Api(account_cr(**{MOVE_TO_ANNOTATION: "1", HANDOFF_ANNOTATION: opened().to_json()}))
    api.account["status"]["handoff"] = {"id": "m1", "generation": G}
    read = copy.deepcopy(api.account)
    del api.account["metadata"]["annotations"][MOVE_TO_ANNOTATION]
    state, indexes = world(api)
    await step(state, kopf.Body(read), indexes)
    assert api.account["metadata"]["labels"]["wafleet.io/shard"] == "0"
    await run(api)
    assert handoff_of(api.account) is None
    assert api.reasons() == ["MoveCancelled"]


async def test_a_shard_coming_up_takes_a_move_and_a_dead_one_is_refused() -> None:
    """Shard 1 was scaled away (its Lease released: no holder) and starts again: the move
    opens. A shard whose pod died (a holder that stopped renewing) is refused."""
    api = Api(account_cr(**{MOVE_TO_ANNOTATION: "1"}))
    state, indexes = world(api)
    released = {"holderIdentity": None, "renewTime": lease(60)["renewTime"]}
    indexes.leases[f"{STS}-shard-1"] = [{**released, "leaseDurationSeconds": 1}]
    await step(state, kopf.Body(copy.deepcopy(api.account)), indexes)
    assert handoff_of(api.account) is not None

    api = Api(account_cr(**{MOVE_TO_ANNOTATION: "1"}))
    await run(api, leases={0: 1.0, 1: 60.0})
    assert handoff_of(api.account) is None
    assert "shard 1 is not running" in api.events[0]["message"]


async def test_a_move_onto_a_shard_that_consolidation_empties_is_refused() -> None:
    """With consolidation on, the load of one account fits in shard 0: shard 1 drains, so
    a person's move onto it would only be moved away again."""
    api = Api(account_cr(**{MOVE_TO_ANNOTATION: "1"}))
    state, indexes = world(api)
    mobility = MobilityPolicy(rebalance=True, consolidate=True)
    state.config = OperatorSettings(namespace="ns", mobility=mobility)
    await step(state, kopf.Body(copy.deepcopy(api.account)), indexes)
    assert handoff_of(api.account) is None
    assert "shard 1 is draining" in api.events[0]["message"]


async def test_two_moves_opened_before_the_index_shows_either_never_overfill_a_shard() -> None:
    """The index lags behind the operator's own writes: the room a move just took on its
    target counts for the next one, or both would take the last place."""
    first, second = Api(account_cr(**{MOVE_TO_ANNOTATION: "1"})), Api(account_cr())
    second.account["metadata"]["name"] = "wa-b"
    second.account["metadata"]["annotations"][MOVE_TO_ANNOTATION] = "1"
    state, indexes = world(first)
    state.config = OperatorSettings(namespace="ns", policy=ShardPolicy(sessions_per_shard=1))
    await step(state, kopf.Body(copy.deepcopy(first.account)), indexes)  # index unchanged
    assert handoff_of(first.account) is not None
    state.kube = second  # type: ignore[assignment]
    await step(state, kopf.Body(copy.deepcopy(second.account)), indexes)
    assert handoff_of(second.account) is None
    assert "shard 1 is full" in second.events[0]["message"]
