"""A shard's part in a move, read from the account's resource alone (handoff.py), and the
status the source writes when it lets a session go."""

from __future__ import annotations

from typing import Any

import pytest
from k8s_emulator.patching import merge_patch

from wafleet.kube.handoff import HANDOFF_ANNOTATION, Handoff
from wafleet_connector import handoff as handoff_module
from wafleet_connector.handoff import HandoffSteps, role_of
from wafleet_connector.vault import RestoreRefused

Obj = dict[str, Any]
G = 1796146421711  # a backup generation (milliseconds)


def account(handoff: Handoff | None, status_handoff: Obj | None = None) -> Obj:
    annotations = {} if handoff is None else {HANDOFF_ANNOTATION: handoff.to_json()}
    cr: Obj = {
        "metadata": {"name": "wa-a", "namespace": "ns", "annotations": annotations},
        "spec": {"phone": "+40712345678"},
        "status": {"phase": "Connected"},
    }
    if status_handoff is not None:
        cr["status"]["handoff"] = status_handoff
    return cr


def opened(move_id: str = "m2", source: int = 0, target: int = 1) -> Handoff:
    return Handoff(id=move_id, source=source, target=target, at="2026-12-01T00:00:00Z")


def relabelled(move_id: str = "m2", source: int = 0, target: int = 1) -> Handoff:
    return Handoff(
        id=move_id, source=source, target=target, at="2026-12-01T00:00:00Z", generation=G
    )


def test_without_a_move_the_account_runs() -> None:
    assert role_of(account(None), 0).hold is False


def test_the_source_gives_the_session_once_then_holds_it() -> None:
    first = role_of(account(opened()), 0)
    assert (first.hold, first.step) == (True, "give")
    done = role_of(account(opened(), {"id": "m2", "generation": G}), 0)
    assert (done.hold, done.step) == (True, None)  # handed over: runs nothing, does nothing


def test_the_target_takes_the_session_before_it_runs_it() -> None:
    waiting = role_of(account(relabelled(), {"id": "m2", "generation": G}), 1)
    assert (waiting.hold, waiting.step) == (True, "take")
    marked = {"id": "m2", "generation": G, "restored": G}
    assert role_of(account(relabelled(), marked), 1).hold is False  # restored once: runs


def test_a_marker_of_an_earlier_move_is_not_this_moves() -> None:
    earlier = {"id": "m1", "generation": G, "restored": G}
    role = role_of(account(relabelled(), earlier), 1)
    assert (role.hold, role.step) == (True, "take")


class StatusKube:
    """One account's resource; status patches merge into it."""

    def __init__(self, cr: Obj) -> None:
        self.cr = cr

    async def patch(self, _res: Any, _ns: Any, _name: str, body: Obj, **_: Any) -> Obj:
        self.cr = merge_patch(self.cr, body)
        return self.cr


class HandingOver:
    """A session manager whose sessions back up unchanged: the same generation again."""

    async def hand_over(self, _spec: Any) -> int:
        return G


async def test_a_second_move_in_the_same_generation_is_restored_again() -> None:
    """The session moved 0 -> 1 and its file did not change, so moving it on (1 -> 2)
    hands over the same generation: the first move's marker must not make shard 2 think
    it restored this one, or it would start from whatever its volume holds."""
    second = Handoff(id="m2", source=1, target=2, at="2026-12-01T00:00:00Z")
    first_marker = {"id": "m1", "generation": G, "restored": G}
    kube = StatusKube(account(second, first_marker))

    async def again(_account_id: str, _written: Obj | None) -> None:
        return None

    steps = HandoffSteps(kube, "ns", 1, HandingOver(), again)  # type: ignore[arg-type]
    steps.start(kube.cr, "give")
    await steps.wait_idle()
    assert kube.cr["status"]["handoff"] == {"id": "m2", "generation": G}
    kube.cr["metadata"]["annotations"][HANDOFF_ANNOTATION] = Handoff(
        id="m2", source=1, target=2, at="2026-12-01T00:00:00Z", generation=G
    ).to_json()
    role = role_of(kube.cr, 2)
    assert (role.hold, role.step) == (True, "take")


class RefusingOnce:
    """A target whose first restore meets a backup it cannot open (a wrong key), then
    one it can (a person fixed the key)."""

    def __init__(self) -> None:
        self.tries = 0

    async def take_over(self, _spec: Any, generation: int) -> int:
        self.tries += 1
        if self.tries == 1:
            raise RestoreRefused("written with key id 'old', the configured key is 'new'")
        return generation


async def test_a_target_that_cannot_open_the_backup_says_so_and_looks_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(handoff_module, "RESTORE_REFUSED_RETRY", 0.01)
    kube = StatusKube(account(relabelled(), {"id": "m2", "generation": G}))
    phases: list[str] = []
    original = kube.patch

    async def recording(*args: Any, **kwargs: Any) -> Obj:
        written = await original(*args, **kwargs)
        phases.append(str(written["status"].get("phase")))
        return written

    kube.patch = recording  # type: ignore[method-assign]

    async def again(_account_id: str, _written: Obj | None) -> None:
        return None

    target = RefusingOnce()
    steps = HandoffSteps(kube, "ns", 1, target, again)  # type: ignore[arg-type]
    steps.start(kube.cr, "take")
    await steps.wait_idle()
    assert phases == ["Failed", "Pending"]  # it said why, then took it once it could
    assert kube.cr["status"]["handoff"] == {"id": "m2", "generation": G, "restored": G}
    assert target.tries == 2


async def test_a_source_writes_no_status_of_the_session_it_gives_up() -> None:
    """Once the source sees the move, a status of the session it is stopping (Connected,
    a message's time) must not land over the move's phase."""
    from wafleet.core.models import AccountStatus  # noqa: PLC0415
    from wafleet.core.phases import Phase  # noqa: PLC0415
    from wafleet_connector.cr_status import CrStatusWriter  # noqa: PLC0415
    from wafleet_connector.shard_sync import ShardSync  # noqa: PLC0415

    cr = account(opened(source=0), None)
    cr["metadata"]["resourceVersion"] = "1"
    kube = StatusKube(cr)
    writer = CrStatusWriter(kube, "ns", "pod-0")  # type: ignore[arg-type]
    sync = ShardSync(kube, "ns", 0, HandingOver(), writer)  # type: ignore[arg-type]
    await sync.apply(kube.cr)
    await writer.write_statuses({"wa-a": AccountStatus(phase=Phase.CONNECTED)})
    await sync.handoffs.wait_idle()
    assert kube.cr["status"]["phase"] == "Moving"
