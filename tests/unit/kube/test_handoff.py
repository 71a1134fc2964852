"""The move's annotations and the guarded JSON patches that change them, applied as the
apiserver applies a JSON patch (the emulator's patching module, which fails a ``test``
under a missing parent as evanphx/json-patch does)."""

from __future__ import annotations

from typing import Any

import pytest
from k8s_emulator.errors import ApiError
from k8s_emulator.patching import json_patch

from wafleet.kube.handoff import (
    HANDOFF_ANNOTATION,
    MOVE_TO_ANNOTATION,
    Handoff,
    HandoffStatus,
    guarded_patch,
    handoff_of,
    parse_ordinal,
)

Obj = dict[str, Any]


def account(annotations: dict[str, str] | None) -> Obj:
    meta: Obj = {"name": "wa-a", "labels": {"wafleet.io/shard": "0"}}
    if annotations is not None:
        meta["annotations"] = annotations
    return {"metadata": meta}


def test_a_handoff_round_trips_and_anything_else_is_no_handoff() -> None:
    moved = Handoff(id="m1", source=0, target=2, at="2026-12-01T00:00:00Z", generation=5)
    assert Handoff.parse(moved.to_json()) == moved
    for text in (None, "", "{", "[]", '{"id": "m1", "from": "0", "to": 2}', '{"from": 0}'):
        assert Handoff.parse(text) is None
    assert HandoffStatus.parse({"id": "m1", "generation": True}) == HandoffStatus(id="m1")
    assert parse_ordinal(" 3 ") == 3
    assert parse_ordinal("-1") is None
    assert parse_ordinal("1e3") is None


def test_an_account_without_annotations_gets_its_first_one() -> None:
    cr = account(None)
    ops = guarded_patch(
        cr, expect={MOVE_TO_ANNOTATION: None}, annotations={MOVE_TO_ANNOTATION: "1"}
    )
    assert json_patch(cr, ops)["metadata"]["annotations"] == {MOVE_TO_ANNOTATION: "1"}


def test_the_guard_refuses_a_patch_when_the_annotation_changed() -> None:
    read = account({MOVE_TO_ANNOTATION: "1"})
    ops = guarded_patch(
        read,
        expect={MOVE_TO_ANNOTATION: "1", HANDOFF_ANNOTATION: None},
        annotations={HANDOFF_ANNOTATION: "{}"},
    )
    assert HANDOFF_ANNOTATION in json_patch(read, ops)["metadata"]["annotations"]
    changed = account({MOVE_TO_ANNOTATION: "2"})
    with pytest.raises(ApiError) as refused:
        json_patch(changed, ops)
    assert refused.value.code == 422
    gone = account(None)  # every annotation removed meanwhile
    with pytest.raises(ApiError):
        json_patch(gone, ops)


def test_a_relabel_moves_the_label_and_removes_what_is_closed() -> None:
    moved = Handoff(id="m1", source=0, target=1, at="", generation=9)
    read = account({MOVE_TO_ANNOTATION: "1", HANDOFF_ANNOTATION: "old"})
    ops = guarded_patch(
        read,
        expect={HANDOFF_ANNOTATION: "old"},
        annotations={HANDOFF_ANNOTATION: moved.to_json(), MOVE_TO_ANNOTATION: None},
        labels={"wafleet.io/shard": "1"},
    )
    after = json_patch(read, ops)
    assert after["metadata"]["labels"]["wafleet.io/shard"] == "1"
    assert handoff_of(after) == moved
    assert MOVE_TO_ANNOTATION not in after["metadata"]["annotations"]


def test_the_emulator_fails_a_test_under_a_missing_parent_as_the_apiserver_does() -> None:
    with pytest.raises(ApiError) as refused:
        json_patch({"metadata": {}}, [{"op": "test", "path": "/metadata/annotations/x"}])
    assert refused.value.code == 422
    assert "is missing path" in str(refused.value.details)
    assert json_patch({"metadata": {}}, [{"op": "test", "path": "/metadata/x", "value": None}])
