"""The WhatsAppFleet CRD as the API server serves it (the emulator, with the real file):
schema validation and defaults, the status subresource, generation, printer columns.

The CRD's CEL rule (minShards <= maxShards) is evaluated by a real API server only: the
emulator does not evaluate CEL (tests/k8s_emulator/README.md). The operator does not rely
on it: policy.resolve caps minShards at maxShards and says so in the status.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from k8s_emulator.server import Running, serve

REPO = Path(__file__).resolve().parents[3]
CRD = yaml.safe_load((REPO / "crds" / "wafleet.io_whatsappfleets.yaml").read_text())
FLEETS = "/apis/wafleet.io/v1alpha1/namespaces/wafleet/whatsappfleets"
MERGE = {"Content-Type": "application/merge-patch+json"}
TABLE = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}


@pytest.fixture(scope="module")
def api() -> Iterator[httpx.Client]:
    running: Running
    with serve() as running, httpx.Client(base_url=running.url, timeout=10) as client:
        response = client.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=CRD)
        assert response.status_code == 201, response.text
        yield client


def fleet(name: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "wafleet.io/v1alpha1",
        "kind": "WhatsAppFleet",
        "metadata": {"name": name},
    }
    if spec is not None:
        body["spec"] = spec
    return body


def test_discovery_names_the_short_name_category_and_status(api: httpx.Client) -> None:
    resources = api.get("/apis/wafleet.io/v1alpha1").json()["resources"]
    found = {r["name"]: r for r in resources}
    assert found["whatsappfleets"]["shortNames"] == ["waf"]
    assert found["whatsappfleets"]["categories"] == ["wafleet"]
    assert found["whatsappfleets"]["namespaced"] is True
    assert "whatsappfleets/status" in found


def test_an_empty_fleet_is_valid_and_ranges_are_checked(api: httpx.Client) -> None:
    created = api.post(FLEETS, json=fleet("empty"))
    assert created.status_code == 201, created.text
    assert created.json()["spec"] == {}  # defaulted: every field the operator's default
    refused = api.post(FLEETS, json=fleet("zero", {"maxShards": 0, "sessionsPerShard": 1001}))
    assert refused.status_code == 422
    message = refused.json()["message"]
    assert (
        "spec.maxShards: Invalid value: 0: "
        "spec.maxShards in body should be greater than or equal to 1" in message
    )
    assert "spec.sessionsPerShard in body should be less than or equal to 1000" in message
    bad_name = api.post(FLEETS, json=fleet("bad", {"statefulSet": "Not_A_Name"}))
    assert bad_name.status_code == 422 and "spec.statefulSet" in bad_name.json()["message"]
    strict = api.post(
        FLEETS, params={"fieldValidation": "Strict"}, json=fleet("x", {"rebalance": {"on": True}})
    )
    assert strict.status_code == 400
    assert 'unknown field "spec.rebalance.on"' in strict.json()["message"]


MOBILE = {
    "drain": [2, 0],
    "rebalance": {"enabled": True, "maxSkew": 3, "consolidate": False},
    "failover": {"enabled": True, "after": "2m"},
    "moves": {"concurrency": 10, "timeout": "30s"},
}


def test_the_mobility_fields_are_accepted_as_written_and_not_defaulted(
    api: httpx.Client,
) -> None:
    strict = {"fieldValidation": "Strict"}
    created = api.post(FLEETS, params=strict, json=fleet("mobile", MOBILE))
    assert created.status_code == 201, created.text
    assert created.json()["spec"] == MOBILE
    # A section left out, or a field of one, stays out: the operator's default applies.
    partial = api.post(FLEETS, json=fleet("partial", {"rebalance": {"enabled": True}}))
    assert partial.status_code == 201, partial.text
    assert partial.json()["spec"] == {"rebalance": {"enabled": True}}
    for ending in ("90s", "2m", "1h", "120s"):
        body = fleet(f"after-{ending}", {"failover": {"after": ending}})
        assert api.post(FLEETS, json=body).status_code == 201, ending


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"drain": [1000]}, "spec.drain[0] in body should be less than or equal to 999"),
        ({"drain": [-1]}, "spec.drain[0] in body should be greater than or equal to 0"),
        ({"drain": "2"}, 'spec.drain: Invalid value: "string": spec.drain in body must be of'),
        ({"drain": list(range(1001))}, "spec.drain: Too many: 1001: must have at most 1000"),
        ({"rebalance": {"maxSkew": 0}}, "spec.rebalance.maxSkew in body should be greater"),
        ({"rebalance": {"maxSkew": 1001}}, "spec.rebalance.maxSkew in body should be less"),
        ({"rebalance": {"enabled": "yes"}}, "spec.rebalance.enabled in body must be of type"),
        ({"failover": {"after": "2"}}, "spec.failover.after in body should match"),
        ({"failover": {"after": "0s"}}, "spec.failover.after in body should match"),
        ({"failover": {"after": "1.5m"}}, "spec.failover.after in body should match"),
        ({"failover": {"after": "2d"}}, "spec.failover.after in body should match"),
        ({"moves": {"concurrency": 0}}, "spec.moves.concurrency in body should be greater"),
        ({"moves": {"concurrency": 101}}, "spec.moves.concurrency in body should be less"),
        ({"moves": {"timeout": "soon"}}, "spec.moves.timeout in body should match"),
    ],
)
def test_the_mobility_fields_are_checked(
    api: httpx.Client, spec: dict[str, Any], message: str
) -> None:
    refused = api.post(FLEETS, json=fleet("refused", spec))
    assert refused.status_code == 422, refused.text
    assert message in refused.json()["message"]


def test_the_status_holds_moves_and_draining_shards(api: httpx.Client) -> None:
    api.post(FLEETS, json=fleet("moving"))
    status = {
        "movesInProgress": 2,
        "draining": [2],
        "shards": [
            {"ordinal": 0, "accounts": 3, "draining": False},
            {"ordinal": 2, "accounts": 1, "draining": True},
        ],
        "moves": [
            {
                "account": "wa-1",
                "from": 2,
                "to": 0,
                "reason": "drain",
                "since": "2026-12-01T12:00:00Z",
                "step": "Opened",
            },
            {"account": "wa-2", "from": 2, "to": 1, "reason": "requested", "step": "Restoring"},
        ],
    }
    body = json.dumps({"status": status})
    written = api.patch(
        f"{FLEETS}/moving/status", params={"fieldValidation": "Strict"}, content=body, headers=MERGE
    )
    assert written.status_code == 200, written.text
    assert written.json()["status"] == status
    wrong = {"moves": [{"account": "wa-1", "step": "Moving"}]}
    refused = api.patch(
        f"{FLEETS}/moving/status", content=json.dumps({"status": wrong}), headers=MERGE
    )
    assert refused.status_code == 422
    assert 'status.moves[0].step: Unsupported value: "Moving"' in refused.json()["message"]
    cleared = json.dumps({"status": {"moves": None, "draining": None, "movesInProgress": 0}})
    after = api.patch(f"{FLEETS}/moving/status", content=cleared, headers=MERGE).json()
    assert "moves" not in after["status"] and "draining" not in after["status"]


def test_status_is_a_subresource_and_only_the_spec_bumps_generation(api: httpx.Client) -> None:
    created = api.post(FLEETS, json=fleet("gen", {"maxShards": 3})).json()
    assert created["metadata"]["generation"] == 1
    status = json.dumps({"status": {"pending": 2}, "spec": {"maxShards": 9}})
    written = api.patch(f"{FLEETS}/gen/status", content=status, headers=MERGE).json()
    assert written["status"] == {"pending": 2} and written["spec"] == {"maxShards": 3}
    assert written["metadata"]["generation"] == 1
    spec = json.dumps({"spec": {"maxShards": 4}, "status": {"pending": 9}})
    changed = api.patch(f"{FLEETS}/gen", content=spec, headers=MERGE).json()
    assert changed["spec"] == {"maxShards": 4} and changed["status"] == {"pending": 2}
    assert changed["metadata"]["generation"] == 2


def test_the_table_has_the_overview_columns(api: httpx.Client) -> None:
    api.post(FLEETS, json=fleet("table", {"statefulSet": "wafleet-connector"}))
    status = {
        "accounts": 40,
        "pending": 1,
        "replicas": 2,
        "policy": {"sessionsPerShard": 25, "minShards": 1, "maxShards": 20, "shardLimit": 20},
        "movesInProgress": 3,
        "draining": [2, 3],
        "conditions": [
            {"type": "Ready", "status": "True"},
            {"type": "CapacityAvailable", "status": "False"},
        ],
    }
    body = json.dumps({"status": status})
    assert api.patch(f"{FLEETS}/table/status", content=body, headers=MERGE).is_success
    table = api.get(f"{FLEETS}/table", headers=TABLE).json()
    columns = [(c["name"], c["priority"]) for c in table["columnDefinitions"]]
    assert columns == [
        ("Name", 0),
        ("Accounts", 0),
        ("Shards", 0),
        ("Pending", 0),
        ("Ready", 0),
        ("Moving", 0),
        ("Capacity", 1),
        ("Per-Shard", 1),
        ("Max-Shards", 1),
        ("Draining", 1),
        ("StatefulSet", 1),
        ("Age", 0),
    ]
    cells = table["rows"][0]["cells"]
    assert cells[:11] == [
        "table",
        40,
        2,
        1,
        "True",
        3,
        "False",
        25,
        20,
        "[2,3]",
        "wafleet-connector",
    ]


def test_the_crd_carries_the_min_max_rule_for_a_real_api_server() -> None:
    spec = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    (rule,) = spec["x-kubernetes-validations"]
    assert rule["rule"] == (
        "!has(self.minShards) || !has(self.maxShards) || self.minShards <= self.maxShards"
    )
