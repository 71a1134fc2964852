"""A move of an account between shards, as its WhatsAppAccount carries it (no kopf here).

The state of a move lives on the account's resource, never only in a process, so every
step survives a SIGKILL of whoever was taking it (docs/design/mobility.md):

- ``metadata.annotations["wafleet.io/move-to"]``: the ordinal asked for (by a person with
  ``kubectl annotate``, or by the operator's drain, rebalance and consolidation planners,
  with their reason in ``wafleet.io/move-reason``);
- ``metadata.annotations["wafleet.io/handoff"]``: the move the operator opened, as JSON
  ``{"id", "from", "to", "at", "reason"}``, plus ``"generation"`` once the account is
  relabelled onto the target (the backup generation the target must start from; 0: the
  latest, whatever it is: the source was fenced by its Lease, failed over, or had no
  session to hand over);
- ``status.handoff``: what the connectors did, ``{"id", "generation"}`` from the source
  once it let the session go (or ``"error"``), plus ``"restored"`` from the target once
  its volume holds that generation, written before the session starts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MOVE_TO_ANNOTATION = "wafleet.io/move-to"
MOVE_REASON_ANNOTATION = "wafleet.io/move-reason"  # the planner's why (drain, rebalance, ...)
HANDOFF_ANNOTATION = "wafleet.io/handoff"

Obj = dict[str, Any]


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Handoff:
    """The operator's open move of one account."""

    id: str
    source: int
    target: int
    at: str  # when the move was opened (RFC 3339)
    generation: int | None = None  # set once relabelled onto the target
    reason: str = "requested"  # requested, drain, rebalance, consolidate, failover

    @property
    def relabelled(self) -> bool:
        return self.generation is not None

    def to_json(self) -> str:
        body: Obj = {
            "id": self.id,
            "from": self.source,
            "to": self.target,
            "at": self.at,
            "reason": self.reason,
        }
        if self.generation is not None:
            body["generation"] = self.generation
        return json.dumps(body, separators=(",", ":"), sort_keys=True)

    @classmethod
    def parse(cls, text: str | None) -> Handoff | None:
        """The annotation's move; None when absent or not one the operator wrote."""
        if not text:
            return None
        try:
            body = json.loads(text)
        except ValueError:
            return None
        if not isinstance(body, dict):
            return None
        source, target = _int(body.get("from")), _int(body.get("to"))
        move_id, at = body.get("id"), body.get("at")
        if source is None or target is None or not isinstance(move_id, str) or not move_id:
            return None
        generation = _int(body.get("generation"))
        reason = body.get("reason")
        return cls(
            id=move_id,
            source=source,
            target=target,
            at=at if isinstance(at, str) else "",
            generation=generation if generation is not None and generation >= 0 else None,
            reason=reason if isinstance(reason, str) and reason else "requested",
        )


@dataclass(frozen=True)
class HandoffStatus:
    """What the connectors wrote of a move (``status.handoff``)."""

    id: str
    generation: int | None = None  # the source let the session go in this generation
    error: str | None = None  # the source could not let it go (the move is cancelled)
    restored: int | None = None  # the target's volume holds this generation

    @classmethod
    def parse(cls, value: Any) -> HandoffStatus | None:
        if not isinstance(value, dict) or not isinstance(value.get("id"), str):
            return None
        error = value.get("error")
        return cls(
            id=value["id"],
            generation=_int(value.get("generation")),
            error=error if isinstance(error, str) and error else None,
            restored=_int(value.get("restored")),
        )


def handed_over(status_handoff: Any) -> str | None:
    """The id of the move whose source let the session go (``status.handoff`` with a
    generation), or None."""
    done = HandoffStatus.parse(status_handoff)
    return done.id if done is not None and done.generation is not None else None


def handoff_of(cr: Obj) -> Handoff | None:
    return Handoff.parse((cr.get("metadata", {}).get("annotations") or {}).get(HANDOFF_ANNOTATION))


def handoff_status_of(cr: Obj) -> HandoffStatus | None:
    return HandoffStatus.parse((cr.get("status") or {}).get("handoff"))


def move_to_of(cr: Obj) -> str | None:
    """The move asked for, as written (validated by the operator, which says what is wrong)."""
    value = (cr.get("metadata", {}).get("annotations") or {}).get(MOVE_TO_ANNOTATION)
    return value if isinstance(value, str) else None


def parse_ordinal(text: str) -> int | None:
    """A shard ordinal as a person types it ("2"); None for anything else."""
    text = text.strip()
    return int(text) if text.isdigit() and len(text) <= 4 else None


def _pointer(*parts: str) -> str:
    """A JSON pointer (RFC 6901) to ``parts``: "~" and "/" in a key are escaped."""
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


def guarded_patch(
    cr: Obj,
    *,
    expect: Mapping[str, str | None],
    annotations: Mapping[str, str | None] | None = None,
    labels: Mapping[str, str] | None = None,
) -> list[Obj]:
    """A JSON patch that changes the account's move annotations (a value: set; None:
    removed) and labels only while the annotations in ``expect`` still hold those values
    (None: absent). The API server refuses it (422) if one changed since ``cr`` was read:
    a guard on the fields a step depends on, not on the whole object's resourceVersion,
    which the connectors' status writes change many times a second."""
    meta = cr.get("metadata", {})
    present = dict(meta.get("annotations") or {})
    has_map = isinstance(meta.get("annotations"), dict)
    ops: list[Obj] = []
    if not has_map:
        # A test under a missing map fails whatever it tests (the apiserver's JSON patch):
        # "no annotations at all" is tested on the map itself.
        ops.append({"op": "test", "path": "/metadata/annotations", "value": None})
    ops += [
        {"op": "test", "path": _pointer("metadata", "annotations", key), "value": value}
        for key, value in expect.items()
        if has_map or value is not None
    ]
    changes = annotations or {}
    if not has_map and any(v is not None for v in changes.values()):
        ops.append({"op": "add", "path": "/metadata/annotations", "value": {}})
    for key, value in changes.items():
        path = _pointer("metadata", "annotations", key)
        if value is not None:
            ops.append({"op": "add", "path": path, "value": value})
        elif key in present:
            ops.append({"op": "remove", "path": path})
    for key, value in (labels or {}).items():
        if "labels" not in meta:
            ops.append({"op": "add", "path": "/metadata/labels", "value": {}})
            meta = {**meta, "labels": {}}
        ops.append({"op": "add", "path": _pointer("metadata", "labels", key), "value": value})
    return ops
