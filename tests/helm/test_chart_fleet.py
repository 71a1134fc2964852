"""The chart's WhatsAppFleet object: the operator pod's init container creates it from
sharding.* (helm cannot render a custom resource whose CRD the same release installs), so
the object is the one that environment describes, validated against the rendered CRD;
fleet.* and sharding.shardLimit values, their schema, and the Roles that follow them."""

from __future__ import annotations

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

from wafleet_operator.bootstrap import APPLIED_ANNOTATION, ChartFleet

pytestmark = pytest.mark.helm

FLEETS = "whatsappfleets"


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
