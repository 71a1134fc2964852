"""The chart's monitoring (ServiceMonitors, the PrometheusRule, the Grafana dashboard),
rendered by the real helm with monitoring off and on; every metric a rule or a dashboard
panel queries is one the components really register (their collectors, collected here),
and docs/metrics.md names every one of them."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterable
from datetime import UTC, datetime

import pytest
from helm.chartkit import (
    CHART_DIR,
    HELM,
    REPO,
    HelmChart,
    Manifest,
    Rendered,
    claimed_versions,
    pod_spec,
    validate,
    values_file,
)
from prometheus_client.metrics_core import Metric

from wafleet.core.metrics import Metrics
from wafleet.core.models import Account, AccountSpec, AccountStatus
from wafleet.core.phases import Phase
from wafleet.events.metrics import DeliveryCollector, DeliveryCounts
from wafleet_api.account_index import AccountIndex
from wafleet_api.metrics import ApiMetrics
from wafleet_connector.metrics import SendMetrics, SessionStats, ShardCollector
from wafleet_operator.metrics import FleetGauges, OperatorCollector

pytestmark = pytest.mark.helm

DASHBOARD = CHART_DIR / "files" / "dashboards" / "wafleet.json"
ON = [
    "monitoring.serviceMonitor.enabled=true",
    "monitoring.serviceMonitor.labels.release=kube-prometheus-stack",
    "monitoring.prometheusRule.enabled=true",
    "monitoring.prometheusRule.labels.release=kube-prometheus-stack",
    "monitoring.prometheusRule.additionalAlertLabels.team=messaging",
    "monitoring.dashboard.enabled=true",
]
MONITORING_KINDS = ("ServiceMonitor", "PrometheusRule")
METRIC = re.compile(r"\b((?:wafleet|process)_[a-z0-9_]+)\b")
ALERTS = {  # alert -> (for, severity), as docs/metrics.md states them
    "WafleetAccountNotConnected": ("10m", "warning"),
    "WafleetShardLeaseLost": ("1m", "critical"),
    "WafleetOutboxGrowing": ("15m", "warning"),
    "WafleetWebhookDeadLettering": (None, "warning"),  # at once
}


# ----- what the components register -------------------------------------------------
class _Shard:
    def __init__(self) -> None:
        self.sends = SendMetrics()
        self.sends.sent(datetime.now(UTC), datetime.now(UTC))

    def session_stats(self) -> list[SessionStats]:
        return [SessionStats("wa-a", Phase.CONNECTED, False, 0, outbox_depth=0)]

    async def refresh_metrics(self) -> None:
        return None


class _Lease:
    def __init__(self) -> None:
        self.held = asyncio.Event()
        self.renew_failures = 0
        self.losses = 0


class _Dispatcher:
    def __init__(self) -> None:
        self.counts = DeliveryCounts()

    def running_lanes(self) -> dict[str, int]:
        return {"wh_1": 0}


def registered() -> list[Metric]:
    """Every family the components expose, each collector given one of everything it
    labels (an account, a shard, a webhook, a route), and the process's own."""
    components = Metrics(process=False)
    components.add(ShardCollector("0", _Shard, _Lease))
    components.add(DeliveryCollector(_Dispatcher()))
    operator = OperatorCollector()
    operator.fleet = lambda: FleetGauges(1, 0, 1, {0: 1}, {0: False})
    components.add(operator)
    index = AccountIndex()
    index.put(Account(AccountSpec(id="wa-a", phone="+40712345678", name="A"), AccountStatus()))
    api = ApiMetrics(index.snapshot)  # with the process collectors
    api.observe("/health", "GET", 200, 0.001)
    return [*components.registry.collect(), *api.metrics.registry.collect()]


def registered_samples() -> set[str]:
    return {sample.name for family in registered() for sample in family.samples}


def registered_families() -> set[str]:
    return {family.name for family in registered() if family.name.startswith("wafleet_")}


def queried(exprs: Iterable[str]) -> set[str]:
    return {name for expr in exprs for name in METRIC.findall(expr)}


# ----- rendering ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chart() -> HelmChart:
    """conftest's, except that a missing helm fails with CI=true (the rule for tools)."""
    if not HELM.exists():
        message = f"{HELM} is missing: `make setup` extracts helm and kubectl"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return HelmChart()


@pytest.fixture(scope="module")
def on(chart: HelmChart) -> Rendered:
    return chart.render(values_file("firestore"), sets=ON)


def rule_list(out: Rendered) -> list[Manifest]:
    rule = out.one("PrometheusRule")
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def dashboard_panels() -> list[Manifest]:
    found: list[Manifest] = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


# ----- the tests ------------------------------------------------------------------------
def test_monitoring_is_off_by_default(chart: HelmChart) -> None:
    for name in ("default", "firestore", "sqlite-standalone", "sim-demo"):
        out = chart.render(values_file(name))
        for kind in MONITORING_KINDS:
            assert not out.of_kind(kind), (name, kind)
        assert [c["metadata"]["name"] for c in out.of_kind("ConfigMap")] == ["wafleet-config"]
        services = [s["metadata"]["name"] for s in out.of_kind("Service")]
        assert "wafleet-operator-metrics" not in services, name


def test_lint_strict_with_monitoring_on(chart: HelmChart) -> None:
    chart.helm("lint", "--strict", str(CHART_DIR), *[a for s in ON for a in ("--set", s)])


def test_the_built_in_objects_are_valid(on: Rendered) -> None:
    built_in = [d for d in on.docs if d["kind"] not in MONITORING_KINDS]
    for version in claimed_versions():
        errors = validate(built_in, version)
        assert not errors, "\n".join(errors)


def test_each_component_has_a_service_monitor_on_a_port_it_serves(on: Rendered) -> None:
    monitors = {m["metadata"]["name"]: m for m in on.of_kind("ServiceMonitor")}
    assert set(monitors) == {"wafleet-api", "wafleet-connector", "wafleet-operator"}
    services = on.of_kind("Service")
    for name, monitor in monitors.items():
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert monitor["metadata"]["namespace"] == "wafleet"
        spec = monitor["spec"]
        assert spec["namespaceSelector"] == {"matchNames": ["wafleet"]}
        selected = [
            s
            for s in services
            if spec["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
        ]
        assert len(selected) == 1, name
        [endpoint] = spec["endpoints"]
        assert endpoint["path"] == "/metrics"
        assert (endpoint["interval"], endpoint["scrapeTimeout"]) == ("30s", "10s")
        ports = {p["name"]: p for p in selected[0]["spec"]["ports"]}
        assert endpoint["port"] in ports, name
        if name == "wafleet-api":  # names every account: a bearer credential from a Secret
            assert endpoint["authorization"] == {
                "type": "Bearer",
                "credentials": {"name": "wafleet-admin-token", "key": "token"},
            }
        else:  # in-cluster only, like kube components' metrics ports
            assert "authorization" not in endpoint and "bearerTokenSecret" not in endpoint
    # The operator's metrics Service reaches its readiness port, which serves /metrics.
    service = on.one("Service", "wafleet-operator-metrics")
    operator = pod_spec(on.one("Deployment", "wafleet-operator"))["containers"][0]
    [port] = service["spec"]["ports"]
    named = {p["name"]: p["containerPort"] for p in operator["ports"]}
    assert named[port["targetPort"]] == port["port"] == 8082
    assert operator["readinessProbe"]["httpGet"]["port"] == port["targetPort"]
    pods = on.one("Deployment", "wafleet-operator")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pods.items()


def test_the_api_credential_can_be_its_own_secret(chart: HelmChart) -> None:
    out = chart.render(
        values_file("firestore"),
        sets=[
            *ON,
            "monitoring.serviceMonitor.apiCredentials.existingSecret=wafleet-metrics-key",
            "monitoring.serviceMonitor.apiCredentials.key=secret",
        ],
    )
    [endpoint] = out.one("ServiceMonitor", "wafleet-api")["spec"]["endpoints"]
    assert endpoint["authorization"]["credentials"] == {
        "name": "wafleet-metrics-key",
        "key": "secret",
    }


def test_the_alerts_their_for_and_labels(on: Rendered) -> None:
    rule = on.one("PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    rules = {r["alert"]: r for r in rule_list(on)}
    assert set(rules) == set(ALERTS)
    for alert, (wait, severity) in ALERTS.items():
        found = rules[alert]
        assert found.get("for") == wait, alert
        assert found["labels"] == {"severity": severity, "team": "messaging"}, alert
        assert found["annotations"]["summary"] and found["annotations"]["description"]
        assert 'namespace="wafleet"' in found["expr"], alert  # this release's series only
        assert "{{ $labels." in found["annotations"]["summary"]  # left for Prometheus
    assert "> 50)" in rules["WafleetOutboxGrowing"]["expr"]  # outboxDepthThreshold


def test_the_outbox_threshold_and_bad_values(chart: HelmChart) -> None:
    out = chart.render(sets=[*ON, "monitoring.prometheusRule.outboxDepthThreshold=200"])
    assert any("> 200)" in r["expr"] for r in rule_list(out))
    for bad, where in (
        ("monitoring.serviceMonitor.interval=soon", "/monitoring/serviceMonitor/interval"),
        ("monitoring.prometheusRule.outboxDepthThreshold=-1", "outboxDepthThreshold"),
        ("monitoring.dashboard.colour=blue", "'colour' not allowed"),
    ):
        assert where in chart.refusal(sets=[bad])


def test_the_dashboard_ships_in_a_configmap_for_the_sidecar(on: Rendered, chart: HelmChart) -> None:
    configmap = on.one("ConfigMap", "wafleet-dashboard")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"]["wafleet.json"]) == json.loads(DASHBOARD.read_text())
    elsewhere = chart.render(
        sets=[
            *ON,
            "monitoring.dashboard.namespace=monitoring",
            "monitoring.dashboard.annotations.grafana_folder=wafleet",
        ]
    ).one("ConfigMap", "wafleet-dashboard")
    assert elsewhere["metadata"]["namespace"] == "monitoring"
    assert elsewhere["metadata"]["annotations"]["grafana_folder"] == "wafleet"


def test_the_dashboard_is_valid_with_unique_panel_ids() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "wafleet" and dashboard["title"]
    panels = dashboard_panels()
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert variables == {"datasource", "namespace"}
    graphs = [p for p in panels if p["type"] != "row"]
    assert len(graphs) >= 20
    for panel in graphs:
        assert panel["title"] and panel["targets"], panel["id"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for target in panel["targets"]:
            assert 'namespace="$namespace"' in target["expr"], panel["title"]


def test_every_metric_queried_is_one_the_components_register(on: Rendered) -> None:
    registered = registered_samples()
    exprs = [r["expr"] for r in rule_list(on)]
    exprs += [t["expr"] for p in dashboard_panels() for t in p.get("targets", [])]
    used = queried(exprs)
    assert len(used) >= 20
    assert used <= registered, sorted(used - registered)


def test_docs_name_every_registered_metric() -> None:
    docs = (REPO / "docs" / "metrics.md").read_text()
    for name in sorted(registered_families()):
        assert f"`{name}" in docs, f"docs/metrics.md does not describe {name}"
    for alert in ALERTS:
        assert alert in docs
