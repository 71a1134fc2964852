"""The operator pod's init step (``python -m wafleet_operator.bootstrap``): wait until the
CRDs are served, create the KopfPeering object if it is missing, and create or update the
chart's WhatsAppFleet object.

The chart cannot render these objects itself: helm builds every object of a release
before it creates any, and the CRDs are templates of that same release, so on a first
install their kinds are unknown (the KopfPeering object had the same problem).

The fleet object is the chart's and the operators' (people's) at once: `kubectl edit waf`
changes the policy at runtime, and a `helm upgrade` that changes a ``sharding.*`` value
changes it too. So the chart writes a field only when the chart's value changed since it
last wrote it (the ``wafleet.io/chart-applied`` annotation keeps what it wrote): a
runtime change survives restarts of the operator pod and upgrades that leave that value
alone; the latest intent wins. It runs on every start of the operator pod (an upgrade
that changes a ``sharding.*`` value changes the pod's environment, hence restarts it).

Environment: WAFLEET_NAMESPACE, WAFLEET_PEERING_NAME; for the fleet (left out: no fleet
object) WAFLEET_FLEET_NAME, WAFLEET_CONNECTOR_STATEFULSET, WAFLEET_SESSIONS_PER_SHARD,
WAFLEET_MIN_SHARDS, WAFLEET_MAX_SHARDS, and the mobility fields, each written only when
its variable is set: WAFLEET_DRAIN (spec.drain), WAFLEET_REBALANCE,
WAFLEET_REBALANCE_MAX_SKEW, WAFLEET_CONSOLIDATE (spec.rebalance), WAFLEET_FAILOVER,
WAFLEET_FAILOVER_AFTER (spec.failover), WAFLEET_MOVE_CONCURRENCY, WAFLEET_MOVE_TIMEOUT
(spec.moves). The three-way comparison goes field by field into those objects
(``rebalance.maxSkew``), so a runtime change of one survives a chart change of another.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wafleet.core.envconfig import ConfigError, EnvReader
from wafleet.kube.client import ACCOUNTS, Conflict, KubeClient, KubeError, NotFound, Resource
from wafleet.kube.config import load_connection
from wafleet_operator.policy import API_VERSION, FLEETS, KIND, parse_duration
from wafleet_operator.settings import read_ordinals

PEERINGS = Resource("kopf.dev", "v1", "kopfpeerings")
APPLIED_ANNOTATION = "wafleet.io/chart-applied"
PART_OF = {"app.kubernetes.io/part-of": "wafleet"}
ATTEMPTS, PAUSE = 90, 2.0  # waiting for the CRDs: 3 minutes

Obj = dict[str, Any]


@dataclass(frozen=True)
class ChartFleet:
    """The fleet object as the chart's values describe it."""

    namespace: str
    name: str
    spec: Mapping[str, Any]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ChartFleet | None:
        read = EnvReader(env)
        name = read.optional("FLEET_NAME")
        if name is None:
            return None
        minimum = read.integer("MIN_SHARDS", 1, minimum=0, maximum=1000)
        maximum = read.integer("MAX_SHARDS", 20, minimum=1, maximum=1000)
        if minimum > maximum:
            raise ConfigError("WAFLEET_MIN_SHARDS must not be above WAFLEET_MAX_SHARDS")
        spec: dict[str, Any] = {
            "statefulSet": read.string("CONNECTOR_STATEFULSET", "wafleet-connector"),
            "sessionsPerShard": read.integer("SESSIONS_PER_SHARD", 25, minimum=1, maximum=1000),
            "minShards": minimum,
            "maxShards": maximum,
        }
        if read.raw("DRAIN") is not None:
            spec["drain"] = sorted(read_ordinals(read, "DRAIN"))
        sections = {
            "rebalance": {
                "enabled": _given(read, "REBALANCE", lambda: read.boolean("REBALANCE", False)),
                "maxSkew": _given(
                    read,
                    "REBALANCE_MAX_SKEW",
                    lambda: read.integer("REBALANCE_MAX_SKEW", 2, minimum=1, maximum=1000),
                ),
                "consolidate": _given(
                    read, "CONSOLIDATE", lambda: read.boolean("CONSOLIDATE", True)
                ),
            },
            "failover": {
                "enabled": _given(read, "FAILOVER", lambda: read.boolean("FAILOVER", False)),
                "after": _duration(read, "FAILOVER_AFTER"),
            },
            "moves": {
                "concurrency": _given(
                    read,
                    "MOVE_CONCURRENCY",
                    lambda: read.integer("MOVE_CONCURRENCY", 5, minimum=1, maximum=100),
                ),
                "timeout": _duration(read, "MOVE_TIMEOUT"),
            },
        }
        for key, fields in sections.items():
            given = {field: value for field, value in fields.items() if value is not None}
            if given:
                spec[key] = given
        return cls(namespace=read.string("NAMESPACE", "default"), name=name, spec=spec)

    def manifest(self) -> Obj:
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": dict(PART_OF),
                "annotations": {APPLIED_ANNOTATION: _canonical(self.spec)},
            },
            "spec": dict(self.spec),
        }


def _given(read: EnvReader, key: str, value: Callable[[], Any]) -> Any:
    """The variable's value, or None when it is not set (the field is then left out)."""
    return None if read.raw(key) is None else value()


def _duration(read: EnvReader, key: str) -> str | None:
    """A duration as the CRD takes it ("2m"; bare seconds "120" become "120s")."""
    text = read.raw(key)
    if text is None:
        return None
    if text.isdigit() and int(text) > 0:
        return f"{int(text)}s"
    if parse_duration(text) is None or not text[:-1].isdigit() or int(text[:-1]) < 1:
        raise ConfigError(
            f"{read.name(key)}={text!r} is not a duration; write a whole number with s, m "
            "or h (90s, 2m, 1h)"
        )
    return text


def _flat(spec: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A spec as dotted fields ("rebalance.maxSkew"): the chart writes field by field."""
    flat: dict[str, Any] = {}
    for key, value in spec.items():
        if isinstance(value, Mapping):
            flat |= _flat(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _nested(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted fields back into a spec (a merge patch of the fields given)."""
    spec: dict[str, Any] = {}
    for path, value in flat.items():
        *parents, last = path.split(".")
        node = spec
        for parent in parents:
            node = node.setdefault(parent, {})
        node[last] = value
    return spec


def _canonical(spec: Mapping[str, Any]) -> str:
    return json.dumps(dict(spec), sort_keys=True, separators=(",", ":"))


def _applied(meta: Mapping[str, Any]) -> dict[str, Any]:
    text = (meta.get("annotations") or {}).get(APPLIED_ANNOTATION)
    try:
        applied = json.loads(text) if isinstance(text, str) else {}
    except ValueError:
        return {}
    return applied if isinstance(applied, dict) else {}


@dataclass(frozen=True)
class ChartUpdate:
    """What the chart writes over a live fleet object, and what it leaves as it is."""

    patch: Obj | None  # None: nothing to write
    changed: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # field: (live, chart)
    kept: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # runtime changes kept


def chart_update(live: Mapping[str, Any], desired: Mapping[str, Any]) -> ChartUpdate:
    """A three-way update: a field the chart's value for changed since the chart last wrote
    it (or that the chart never wrote) takes the chart's value; a field changed at runtime
    while the chart's value stayed the same keeps the runtime value. Fields of the spec's
    objects are fields of their own (``rebalance.maxSkew``)."""
    meta = live.get("metadata") or {}
    spec = _flat(live.get("spec") or {})
    applied = _flat(_applied(meta))
    changed: dict[str, tuple[Any, Any]] = {}
    kept: dict[str, tuple[Any, Any]] = {}
    for key, value in _flat(desired).items():
        if spec.get(key) == value:
            continue
        if key in applied and applied[key] == value:
            kept[key] = (spec.get(key), value)
        else:
            changed[key] = (spec.get(key), value)
    if not changed and applied == _flat(desired):
        return ChartUpdate(None, changed, kept)
    patch: Obj = {
        "metadata": {
            "resourceVersion": meta.get("resourceVersion"),
            "annotations": {APPLIED_ANNOTATION: _canonical(desired)},
        }
    }
    if changed:
        patch["spec"] = _nested({key: chart for key, (_, chart) in changed.items()})
    return ChartUpdate(patch, changed, kept)


def _shown(value: Any) -> str:
    if value is None:
        return "(left out)"
    if isinstance(value, str):
        return value
    return json.dumps(value)  # true, [2, 3]


def _describe(fields: Mapping[str, tuple[Any, Any]]) -> str:
    return ", ".join(f"{key} {_shown(live)} -> {chart}" for key, (live, chart) in fields.items())


async def ensure_fleet(kube: KubeClient, chart: ChartFleet) -> str:
    """Create the chart's fleet object, or update what the chart changed; say what."""
    where = f"WhatsAppFleet {chart.namespace}/{chart.name}"
    for _ in range(10):
        try:
            live = await kube.get(FLEETS, chart.namespace, chart.name)
        except NotFound:
            try:
                await kube.create(FLEETS, chart.namespace, chart.manifest())
            except Conflict:
                continue  # created meanwhile: update it instead
            created = ", ".join(f"{k} {_shown(v)}" for k, v in _flat(chart.spec).items())
            return f"{where} created: {created}"
        update = chart_update(live, chart.spec)
        kept = (
            "; kept as changed at runtime (the chart's value did not change): "
            + ", ".join(f"{key} {_shown(value)}" for key, (value, _) in update.kept.items())
            if update.kept
            else ""
        )
        if update.patch is None:
            return f"{where} is up to date{kept}"
        try:
            await kube.patch(FLEETS, chart.namespace, chart.name, update.patch)
        except (Conflict, NotFound):
            continue  # changed or deleted meanwhile: read it again
        changes = _describe(update.changed) if update.changed else "no spec change"
        return f"{where} updated from the chart: {changes}{kept}"
    raise KubeError(409, "Conflict", f"{where} kept changing; giving up")


async def ensure_peering(kube: KubeClient, namespace: str, name: str) -> str:
    body = {
        "apiVersion": "kopf.dev/v1",
        "kind": "KopfPeering",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(PART_OF)},
    }
    try:
        await kube.create(PEERINGS, namespace, body)
    except Conflict:
        return f"KopfPeering {namespace}/{name} exists"
    return f"KopfPeering {namespace}/{name} created"


async def wait_for_crds(kube: KubeClient, namespace: str, fleet: bool) -> bool:
    """True once the CRDs are served (a list answers), False after ATTEMPTS tries."""
    for _ in range(ATTEMPTS):
        try:
            await kube.list(ACCOUNTS, namespace, "wafleet.io/shard=none")
            if fleet:
                await kube.list(FLEETS, namespace, "wafleet.io/none=none")
            return True
        except KubeError as exc:
            if exc.status != 404:
                raise
            print(f"waiting for the CRDs to be served: {exc}", flush=True)
            await asyncio.sleep(PAUSE)
    return False


async def run(env: Mapping[str, str]) -> int:
    namespace, peering = env["WAFLEET_NAMESPACE"], env["WAFLEET_PEERING_NAME"]
    chart = ChartFleet.from_env(env)
    kube = KubeClient(load_connection())
    try:
        if not await wait_for_crds(kube, namespace, fleet=chart is not None):
            print("the wafleet CRDs are not served; install them (crds.create)", flush=True)
            return 1
        print(await ensure_peering(kube, namespace, peering), flush=True)
        if chart is not None:
            print(await ensure_fleet(kube, chart), flush=True)
        return 0
    finally:
        await kube.close()


def main() -> int:
    return asyncio.run(run(os.environ))


if __name__ == "__main__":
    sys.exit(main())
