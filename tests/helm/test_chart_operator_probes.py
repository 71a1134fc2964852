"""The operator's probes: kopf's /healthz for liveness, `wafleet operator`'s /readyz for
readiness, each on its own named port, timings from values, and the command line the
chart renders is one `wafleet operator` accepts."""

from __future__ import annotations

import pytest
from helm.chartkit import HelmChart, Manifest, Rendered, pod_spec, values_file

from wafleet_app.cli import _parser

pytestmark = pytest.mark.helm

VALUES = ["default", "firestore", "sqlite-standalone", "namespaced", "sim-demo", "engine"]


def operator_container(out: Rendered) -> Manifest:
    component = "app.kubernetes.io/component"
    found = [
        d for d in out.of_kind("Deployment") if d["metadata"]["labels"][component] == "operator"
    ]
    assert len(found) == 1
    container: Manifest = pod_spec(found[0])["containers"][0]
    assert container["name"] == "operator"
    return container


def named_port(container: Manifest, name: str) -> int:
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    return int(ports[name])


@pytest.mark.parametrize("name", VALUES)
def test_operator_has_readiness_and_liveness_probes(chart: HelmChart, name: str) -> None:
    container = operator_container(chart.render(values_file(name)))
    ready, live = container["readinessProbe"], container["livenessProbe"]
    assert ready["httpGet"] == {"path": "/readyz", "port": "ready"}
    assert live["httpGet"] == {"path": "/healthz", "port": "health"}
    assert (ready["periodSeconds"], ready["timeoutSeconds"], ready["failureThreshold"]) == (5, 3, 3)
    assert (named_port(container, "ready"), named_port(container, "health")) == (8082, 8081)
    args = _parser().parse_args(container["args"])
    assert args.command == "operator"
    assert (args.readiness_port, args.liveness_port) == (8082, 8081)


def test_probe_ports_and_timings_come_from_values(chart: HelmChart) -> None:
    out = chart.render(
        sets=[
            "operator.readinessPort=9092",
            "operator.livenessPort=9091",
            "operator.readinessProbe.periodSeconds=7",
            "operator.readinessProbe.timeoutSeconds=2",
            "operator.readinessProbe.failureThreshold=4",
            "operator.readinessProbe.initialDelaySeconds=1",
            "operator.readinessProbe.successThreshold=2",
        ]
    )
    container = operator_container(out)
    assert container["readinessProbe"] == {
        "httpGet": {"path": "/readyz", "port": "ready"},
        "periodSeconds": 7,
        "timeoutSeconds": 2,
        "failureThreshold": 4,
        "initialDelaySeconds": 1,
        "successThreshold": 2,
    }
    assert (named_port(container, "ready"), named_port(container, "health")) == (9092, 9091)
    args = _parser().parse_args(container["args"])
    assert (args.readiness_port, args.liveness_port) == (9092, 9091)


def test_kopf_identity_is_the_pod_name(chart: HelmChart) -> None:
    env = {e["name"]: e for e in operator_container(chart.render())["env"]}
    assert env["POD_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["operator.readinessPort=0"], "at '/operator/readinessPort': minimum: got 0, want 1"),
        (["operator.readinessPort=70000"], "at '/operator/readinessPort': maximum"),
        (["operator.readinessPort=ready"], "at '/operator/readinessPort': got string"),
        (
            ["operator.readinessProbe.periodSeconds=0"],
            "at '/operator/readinessProbe/periodSeconds'",
        ),
        (["operator.readinessProbe.path=/x"], "additional properties 'path' not allowed"),
        (
            ["operator.readinessPort=8081"],
            "operator.readinessPort (8081) must differ from operator.livenessPort",
        ),
    ],
)
def test_bad_probe_values_are_refused(chart: HelmChart, sets: list[str], message: str) -> None:
    error = chart.refusal(sets=sets)
    assert message in error, error
