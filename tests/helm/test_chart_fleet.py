"""The chart's WhatsAppFleet object: the operator pod's init container creates it from
sharding.* (helm cannot render a custom resource whose CRD the same release installs), so
the object is the one that environment describes, validated against the rendered CRD;
fleet.* and sharding.shardLimit values, their schema, and the Roles that follow them; the
mobility values (sharding.drain, .rebalance, .failover, .moves) into the object and into
the operator's defaults."""

from __future__ import annotations

import json

import pytest
from helm.chartkit import (
    NAMESPACE,
    HelmChart,
    Manifest,
    Rendered,
    claimed_versions,
    pod_spec,
    validate,
    values_file,
)

from wafleet_operator.bootstrap import APPLIED_ANNOTATION, ChartFleet, chart_update
from wafleet_operator.planner import MobilityPolicy
from wafleet_operator.settings import OperatorSettings

pytestmark = pytest.mark.helm

FLEETS = "whatsappfleets"
MOBILITY = {
    "drain": [],
    "rebalance": {"enabled": False, "maxSkew": 2, "consolidate": True},
    "failover": {"enabled": False, "after": "2m"},
    "moves": {"concurrency": 5, "timeout": "30s"},
}


def init_env(out: Rendered, release: str = "wafleet") -> dict[str, str]:
    operator = out.one("Deployment", f"{release}-operator")
    init = pod_spec(operator)["initContainers"][0]
    assert [*init["command"], *init["args"]] == ["python", "-m", "wafleet_operator.bootstrap"]
    env = {e["name"]: str(e["value"]) for e in init["env"] if "value" in e}
    return {**env, "WAFLEET_NAMESPACE": NAMESPACE}


def operator_env(out: Rendered, release: str = "wafleet") -> dict[str, str]:
    container = pod_spec(out.one("Deployment", f"{release}-operator"))["containers"][0]
    return {e["name"]: str(e["value"]) for e in container["env"] if "value" in e}


def fleet_object(out: Rendered, release: str = "wafleet") -> Manifest:
    """The WhatsAppFleet object the init container creates from its environment."""
    chart = ChartFleet.from_env(init_env(out, release))
    assert chart is not None, "the init container creates no fleet object"
    return chart.manifest()


def fleet_rules(out: Rendered, release: str = "wafleet") -> list[Manifest]:
    rules = out.one("Role", f"{release}-operator")["rules"]
    return [r for r in rules if any(res.startswith(FLEETS) for res in r["resources"])]


def lease_names(out: Rendered, release: str = "wafleet") -> list[str]:
    rules = out.one("Role", f"{release}-connector")["rules"]
    names: list[str] = next(r for r in rules if r.get("resourceNames"))["resourceNames"]
    return names


def test_the_fleet_object_takes_its_spec_from_sharding(chart: HelmChart) -> None:
    out = chart.render(values_file("firestore"))
    fleet = fleet_object(out)
    assert fleet["kind"] == "WhatsAppFleet" and fleet["apiVersion"] == "wafleet.io/v1alpha1"
    assert fleet["metadata"]["name"] == "wafleet"
    assert fleet["metadata"]["namespace"] == NAMESPACE
    assert fleet["spec"] == {
        "statefulSet": out.one("StatefulSet")["metadata"]["name"],
        "sessionsPerShard": 30,
        "minShards": 2,
        "maxShards": 12,
        **MOBILITY,
    }
    assert APPLIED_ANNOTATION in fleet["metadata"]["annotations"]
    crds = out.of_kind("CustomResourceDefinition")
    for version in claimed_versions():
        errors = validate([fleet], version, crds)
        assert not errors, "\n".join(errors)
    # The operator's own defaults are the same values, for a field the object leaves out.
    env = operator_env(out)
    assert (env["WAFLEET_SESSIONS_PER_SHARD"], env["WAFLEET_MAX_SHARDS"]) == ("30", "12")


def test_the_default_install_has_a_fleet_object_named_after_the_release(
    chart: HelmChart,
) -> None:
    out = chart.render()
    fleet = fleet_object(out)
    assert fleet["metadata"]["name"] == "wafleet"
    assert fleet["spec"]["statefulSet"] == "wafleet-connector"
    renamed = chart.render(sets=["fullnameOverride=tenant-a", "fleet.name=shop-fleet"])
    assert fleet_object(renamed, "tenant-a")["metadata"]["name"] == "shop-fleet"
    assert fleet_object(renamed, "tenant-a")["spec"]["statefulSet"] == "tenant-a-connector"
    get_patch = next(r for r in fleet_rules(renamed, "tenant-a") if "get" in r["verbs"])
    assert get_patch["resourceNames"] == ["shop-fleet"]


def test_sqlite_keeps_the_fleet_to_one_shard_whatever_it_asks(chart: HelmChart) -> None:
    out = chart.render(values_file("sqlite-standalone"), sets=["sharding.shardLimit=30"])
    spec = fleet_object(out)["spec"]
    assert (spec["sessionsPerShard"], spec["minShards"], spec["maxShards"]) == (40, 1, 1)
    assert operator_env(out)["WAFLEET_SHARD_LIMIT"] == "1"
    assert lease_names(out) == ["wafleet-connector-shard-0"]


def test_the_shard_limit_names_the_leases_and_caps_the_fleet(chart: HelmChart) -> None:
    out = chart.render(values_file("firestore"), sets=["sharding.shardLimit=40"])
    assert operator_env(out)["WAFLEET_SHARD_LIMIT"] == "40"
    assert fleet_object(out)["spec"]["maxShards"] == 12  # the limit is headroom, not a default
    assert lease_names(out) == [f"wafleet-connector-shard-{n}" for n in range(40)]
    default = chart.render(values_file("firestore"))
    assert operator_env(default)["WAFLEET_SHARD_LIMIT"] == "12"  # 0: maxShards
    error = chart.refusal(values_file("firestore"), sets=["sharding.shardLimit=5"])
    assert "sharding.shardLimit (5) must be 0 or at least sharding.maxShards (12)" in error


def test_the_operator_role_has_what_the_fleet_needs(chart: HelmChart) -> None:
    rules = fleet_rules(chart.render())
    assert {"list", "watch"} <= set(next(r for r in rules if r["resources"] == [FLEETS])["verbs"])
    status = [r for r in rules if r["resources"] == [f"{FLEETS}/status"]]
    assert status == [
        {"apiGroups": ["wafleet.io"], "resources": [f"{FLEETS}/status"], "verbs": ["patch"]}
    ]
    create = [r for r in rules if "create" in r["verbs"]]
    assert create and "resourceNames" not in create[0]  # RBAC cannot name what is created
    named = [r for r in rules if r.get("resourceNames")]
    assert named == [
        {
            "apiGroups": ["wafleet.io"],
            "resources": [FLEETS],
            "resourceNames": ["wafleet"],
            "verbs": ["get", "patch"],
        }
    ]
    assert not any("delete" in r["verbs"] or "update" in r["verbs"] for r in rules)


def test_without_fleet_create_the_operator_only_reads_and_reports(chart: HelmChart) -> None:
    out = chart.render(sets=["fleet.create=false"])
    assert ChartFleet.from_env(init_env(out)) is None
    assert "WAFLEET_FLEET_NAME" not in init_env(out)
    verbs = {(r["resources"][0], v) for r in fleet_rules(out) for v in r["verbs"]}
    assert verbs == {(FLEETS, "list"), (FLEETS, "watch"), (f"{FLEETS}/status", "patch")}
    notes = chart.helm(
        "install",
        "wafleet",
        str(chart.directory),
        "--dry-run=client",
        "--set",
        "fleet.create=false",
    ).stdout
    assert "kubectl get waf" not in notes


def test_notes_show_the_fleet(chart: HelmChart) -> None:
    notes = chart.helm("install", "wafleet", str(chart.directory), "--dry-run=client").stdout
    assert "kubectl get waf -n default" in notes
    assert "kubectl edit waf wafleet -n default" in notes


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["fleet.create=maybe"], "at '/fleet/create'"),
        (["fleet.name=Bad_Name"], "at '/fleet/name'"),
        (["fleet.extra=1"], "at '/fleet'"),
        (["sharding.shardLimit=-1"], "at '/sharding/shardLimit': minimum"),
        (["sharding.shardLimit=1001"], "at '/sharding/shardLimit': maximum"),
    ],
)
def test_the_schema_refuses_bad_fleet_values(
    chart: HelmChart, sets: list[str], message: str
) -> None:
    assert message in chart.refusal(sets=sets)


# --- how sessions move: drain, rebalance, failover, moves ---------------------------------

MOVING = [
    "sharding.drain={2,3}",
    "sharding.rebalance.enabled=true",
    "sharding.rebalance.maxSkew=4",
    "sharding.rebalance.consolidate=false",
    "sharding.failover.enabled=true",
    "sharding.failover.after=90s",
    "sharding.moves.concurrency=10",
    "sharding.moves.timeout=1m",
]


def test_the_mobility_values_fill_the_fleet_and_the_operators_defaults(chart: HelmChart) -> None:
    out = chart.render(values_file("firestore"), sets=MOVING)
    fleet = fleet_object(out)
    assert {key: fleet["spec"][key] for key in MOBILITY} == {
        "drain": [2, 3],
        "rebalance": {"enabled": True, "maxSkew": 4, "consolidate": False},
        "failover": {"enabled": True, "after": "90s"},
        "moves": {"concurrency": 10, "timeout": "1m"},
    }
    crds = out.of_kind("CustomResourceDefinition")
    for version in claimed_versions():
        errors = validate([fleet], version, crds)
        assert not errors, "\n".join(errors)
    env = operator_env(out)
    assert env["WAFLEET_DRAIN"] == "[2,3]"
    assert (env["WAFLEET_FAILOVER_AFTER"], env["WAFLEET_MOVE_TIMEOUT"]) == ("90s", "1m")
    settings = OperatorSettings.from_env({**env, "WAFLEET_NAMESPACE": NAMESPACE})
    assert settings.mobility == MobilityPolicy(
        drain=frozenset({2, 3}),
        rebalance=True,
        max_skew=4,
        consolidate=False,
        failover=True,
        failover_after=90.0,
        concurrency=10,
        move_timeout=60.0,
    )


def test_the_default_mobility_values_are_the_operators_own_defaults(chart: HelmChart) -> None:
    for out in (chart.render(), chart.render(values_file("firestore"))):
        env = {**operator_env(out), "WAFLEET_NAMESPACE": NAMESPACE}
        assert OperatorSettings.from_env(env).mobility == MobilityPolicy()
        assert {key: fleet_object(out)["spec"][key] for key in MOBILITY} == MOBILITY
    without = chart.render(sets=["fleet.create=false"])
    assert "WAFLEET_REBALANCE" in operator_env(without)  # the defaults, with no object
    assert "WAFLEET_REBALANCE" not in init_env(without)


def test_an_upgrade_writes_only_the_mobility_fields_the_chart_changed(chart: HelmChart) -> None:
    before = fleet_object(chart.render(values_file("firestore")))
    # kubectl patch waf: a runtime drain and skew, which the next upgrade leaves alone
    live = {
        "metadata": {**before["metadata"], "resourceVersion": "9"},
        "spec": {
            **before["spec"],
            "drain": [1],
            "rebalance": {**MOBILITY["rebalance"], "maxSkew": 6},
        },
    }
    upgrade = chart.render(values_file("firestore"), sets=["sharding.rebalance.enabled=true"])
    update = chart_update(live, fleet_object(upgrade)["spec"])
    assert update.patch is not None
    assert update.patch["spec"] == {"rebalance": {"enabled": True}}  # a merge patch: one field
    assert update.kept == {"drain": ([1], []), "rebalance.maxSkew": (6, 2)}
    # An object the previous chart made (no mobility fields) gets them on the upgrade.
    old_spec = {key: value for key, value in before["spec"].items() if key not in MOBILITY}
    old = {"metadata": {"resourceVersion": "3", "annotations": {}}, "spec": old_spec}
    old["metadata"]["annotations"][APPLIED_ANNOTATION] = json.dumps(old_spec)
    first = chart_update(old, before["spec"])
    assert first.patch is not None and first.patch["spec"] == MOBILITY


def test_sqlite_refuses_values_that_move_sessions(chart: HelmChart) -> None:
    for values in (
        ["sharding.rebalance.enabled=true"],
        ["sharding.failover.enabled=true"],
        ["sharding.drain={1}"],
    ):
        error = chart.refusal(sets=values)
        assert "move sessions between shards, which needs store: firestore" in error, error
    chart.render(sets=["sharding.rebalance.consolidate=false", "sharding.moves.concurrency=2"])


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["sharding.drain={1000}"], "at '/sharding/drain/0': maximum"),
        (["sharding.drain={1,1}"], "at '/sharding/drain'"),
        (["sharding.rebalance.maxSkew=0"], "at '/sharding/rebalance/maxSkew': minimum"),
        (["sharding.rebalance.enabled=maybe"], "at '/sharding/rebalance/enabled'"),
        (["sharding.rebalance.skew=1"], "at '/sharding/rebalance'"),
        (["sharding.failover.after=2d"], "at '/sharding/failover/after'"),
        (["sharding.failover.after=0s"], "at '/sharding/failover/after'"),
        (["sharding.moves.concurrency=101"], "at '/sharding/moves/concurrency': maximum"),
        (["sharding.moves.timeout=30"], "at '/sharding/moves/timeout'"),
    ],
)
def test_the_schema_refuses_bad_mobility_values(
    chart: HelmChart, sets: list[str], message: str
) -> None:
    error = chart.refusal(values_file("firestore"), sets=sets)
    assert message in error, error
