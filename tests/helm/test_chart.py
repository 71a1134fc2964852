"""The Helm chart rendered by the real helm: lint, schemas, validity on the Kubernetes
versions it claims, security defaults, RBAC shape, CRDs from crds/ unchanged."""

from __future__ import annotations

import base64
import tarfile
from pathlib import Path

import pytest
import yaml
from helm.chartkit import (
    CHART_DIR,
    CRDS_DIR,
    NAMESPACE,
    HelmChart,
    Manifest,
    Rendered,
    claimed_versions,
    containers,
    load_crds,
    pod_spec,
    validate,
    values_file,
)
from packaging.version import Version

pytestmark = pytest.mark.helm

VALUES = [
    "default",
    "firestore",
    "sqlite-standalone",
    "namespaced",
    "custom-resources-security",
    "sim-demo",
    "engine",
]
COMPONENTS = ("operator", "api", "connector")
ACCOUNTS = "whatsappaccounts"


@pytest.fixture(scope="module")
def rendered(chart: HelmChart) -> dict[str, Rendered]:
    return {name: chart.render(values_file(name)) for name in VALUES}


def test_lint_strict_with_every_values_file(chart: HelmChart) -> None:
    chart.helm("lint", "--strict", str(CHART_DIR))
    for name in VALUES:
        chart.helm("lint", "--strict", str(CHART_DIR), "--values", str(values_file(name)))


@pytest.mark.parametrize("name", VALUES)
def test_renders_valid_manifests_for_the_oldest_and_newest_claimed_kubernetes(
    chart: HelmChart, name: str
) -> None:
    for version in claimed_versions():
        docs = chart.render(values_file(name), kube_version=version).docs
        assert docs
        errors = validate(docs, version)
        assert not errors, "\n".join(errors)


def test_claimed_versions_come_from_kube_version() -> None:
    oldest, newest = claimed_versions()
    assert oldest == "1.29.0"
    assert Path(CHART_DIR / "Chart.yaml").read_text().count('kubeVersion: ">=1.29.0-0"') == 1
    assert Version(newest) >= Version("1.35")


def test_older_kubernetes_is_refused(chart: HelmChart) -> None:
    error = chart.refusal(kube_version="1.28.9")
    assert "chart requires kubeVersion: >=1.29.0-0" in error


def test_crd_examples_validate_against_the_rendered_crds(rendered: dict[str, Rendered]) -> None:
    crds = rendered["default"].of_kind("CustomResourceDefinition")
    examples = [yaml.safe_load(p.read_text()) for p in sorted((CRDS_DIR / "examples").glob("*"))]
    assert examples
    errors = validate(examples, claimed_versions()[1], crds)
    assert not errors, "\n".join(errors)
    bad = {**examples[0], "spec": {"phone": "0712"}}
    assert validate([bad], claimed_versions()[1], crds)


# --- values the schema (or the chart's own checks) must refuse -------------------------


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["store=postgres"], "at '/store': value must be one of 'sqlite', 'firestore'"),
        (
            ["store=firestore", "sessionBackup.create=true"],
            "at '/firestore/project': minLength: got 0, want 1",
        ),
        (
            ["store=firestore", "firestore.project=my-project"],
            "at '/sessionBackup/existingSecret': minLength: got 0, want 1",
        ),
        (["firestore.project=Bad_Project"], "at '/firestore/project'"),
        (["config.transport=whatsapp"], "at '/config/transport': value must be one of"),
        (["config.transport=sim"], "at '/sim/enabled': value must be true"),
        (["config.logLevel=verbose"], "at '/config/logLevel'"),
        (["operator.replicas=2"], "at '/operator/replicas': maximum: got 2, want 1"),
        (["sharding.sessionsPerShard=0"], "at '/sharding/sessionsPerShard': minimum: got 0"),
        (["connector.pdb.maxUnavailable=0"], "at '/connector/pdb/maxUnavailable': minimum"),
        (["image.pullPolicy=Sometimes"], "at '/image/pullPolicy'"),
        (["api.service.type=ExternalName"], "at '/api/service/type'"),
        (["api.ingress.enabled=true", "api.ingress.hosts=null"], "missing property 'hosts'"),
        (["connector.persistence.size=lots"], "at '/connector/persistence/size'"),
        (["stroe=firestore"], "additional properties 'stroe' not allowed"),
        (["api.replicas=two"], "at '/api/replicas': got string, want integer"),
        (
            ["connector.terminationGracePeriodSeconds=10"],
            "connector.terminationGracePeriodSeconds (10) must be at least "
            "config.shutdownTimeout (8) + 5 s",
        ),
        (
            ["sharding.minShards=5", "sharding.maxShards=2"],
            "sharding.minShards (5) must not be above sharding.maxShards (2)",
        ),
        (
            ["api.adminToken.create=true", "api.adminToken.existingSecret=mine"],
            "api.adminToken: set either existingSecret or create: true, not both",
        ),
        (
            ["operator.serviceAccount.create=false"],
            "operator.serviceAccount.name is required when operator.serviceAccount.create is",
        ),
    ],
)
def test_bad_values_are_refused_with_a_readable_message(
    chart: HelmChart, sets: list[str], message: str
) -> None:
    error = chart.refusal(sets=sets)
    assert message in error, error


def test_every_values_key_has_a_comment() -> None:
    """Each key of values.yaml has a comment line right above it, except inside the
    subtrees whose comment describes them whole (resources, ingress hosts, ...)."""
    described_whole = ("resources:", "hosts:", "requests:", "limits:")
    missing: list[str] = []
    skip_deeper_than: int | None = None
    lines = (CHART_DIR / "values.yaml").read_text().splitlines()
    for number, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        if skip_deeper_than is not None:
            if indent > skip_deeper_than or stripped.startswith("- "):
                continue
            skip_deeper_than = None
        if stripped.startswith("- ") or ":" not in stripped:
            continue
        if not lines[number - 1].strip().startswith("#"):
            missing.append(f"line {number + 1}: {stripped}")
        if stripped.startswith(described_whole):
            skip_deeper_than = indent
    assert not missing, "values without a comment:\n" + "\n".join(missing)


# --- workloads ---------------------------------------------------------------------------


def test_connector_statefulset_leaves_replicas_to_the_operator(
    rendered: dict[str, Rendered],
) -> None:
    for name, out in rendered.items():
        sts = out.one("StatefulSet")
        spec = sts["spec"]
        assert "replicas" not in spec, name
        assert spec["podManagementPolicy"] == "Parallel"
        assert spec["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
        headless = out.one("Service", spec["serviceName"])
        assert headless["spec"]["clusterIP"] == "None"
        assert headless["spec"]["selector"] == spec["selector"]["matchLabels"]
        container = pod_spec(sts)["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/health"
        env = {e["name"]: e for e in container["env"]}
        assert env["WAFLEET_POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        assert env["WAFLEET_DATA_DIR"]["value"] == "/data"
        config = out.one("ConfigMap")["data"]
        grace = pod_spec(sts)["terminationGracePeriodSeconds"]
        assert grace > float(config["WAFLEET_SHUTDOWN_TIMEOUT"]), name
        pdb = out.one("PodDisruptionBudget")
        assert pdb["spec"]["selector"] == spec["selector"]


def test_operator_is_recreated_never_doubled_and_configured(
    rendered: dict[str, Rendered],
) -> None:
    out = rendered["firestore"]
    operator = out.one("Deployment", "wafleet-operator")
    assert operator["spec"]["strategy"] == {"type": "Recreate"}
    assert operator["spec"]["replicas"] == 1
    main = pod_spec(operator)["containers"][0]
    assert main["args"][0] == "operator"
    assert main["livenessProbe"]["httpGet"]["path"] == "/healthz"
    env = {e["name"]: e.get("value") for e in main["env"]}
    assert env["WAFLEET_CONNECTOR_STATEFULSET"] == out.one("StatefulSet")["metadata"]["name"]
    assert env["WAFLEET_SESSIONS_PER_SHARD"] == "30"
    assert (env["WAFLEET_MIN_SHARDS"], env["WAFLEET_MAX_SHARDS"]) == ("2", "12")
    assert env["WAFLEET_PEERING_NAME"] == "wafleet"
    assert env["WAFLEET_SHARD_LIMIT"] == "12"  # sharding.shardLimit 0: maxShards
    init = pod_spec(operator)["initContainers"][0]
    init_env = {e["name"]: e.get("value") for e in init["env"]}
    assert init_env["WAFLEET_PEERING_NAME"] == "wafleet"
    assert [*init["command"], *init["args"]] == ["python", "-m", "wafleet_operator.bootstrap"]
    assert init_env["WAFLEET_FLEET_NAME"] == "wafleet"


def test_sqlite_keeps_one_shard_and_the_api_on_its_volume(rendered: dict[str, Rendered]) -> None:
    out = rendered["sqlite-standalone"]
    operator = pod_spec(out.one("Deployment", "wafleet-operator"))["containers"][0]
    env = {e["name"]: e.get("value") for e in operator["env"]}
    assert (env["WAFLEET_MIN_SHARDS"], env["WAFLEET_MAX_SHARDS"]) == ("1", "1")
    api = pod_spec(out.one("Deployment", "wafleet-api"))
    claims = [
        v["persistentVolumeClaim"]["claimName"]
        for v in api["volumes"]
        if "persistentVolumeClaim" in v
    ]
    assert claims == ["data-wafleet-connector-0"]
    term = api["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["labelSelector"]["matchLabels"]["statefulset.kubernetes.io/pod-name"] == (
        "wafleet-connector-0"
    )
    assert out.one("ConfigMap")["data"]["WAFLEET_STORE"] == "sqlite"
    leases = [r for r in out.one("Role", "wafleet-connector")["rules"] if r.get("resourceNames")]
    assert leases[0]["resourceNames"] == ["wafleet-connector-shard-0"]


def test_firestore_secrets_are_mounted_by_reference(rendered: dict[str, Rendered]) -> None:
    out = rendered["firestore"]
    assert not out.of_kind("Secret")
    config = out.one("ConfigMap")["data"]
    assert config["WAFLEET_STORE"] == "firestore"
    assert config["WAFLEET_FIRESTORE_PROJECT"] == "my-wafleet-project"
    sts = pod_spec(out.one("StatefulSet"))
    env = {e["name"]: e for e in sts["containers"][0]["env"]}
    assert env["GOOGLE_APPLICATION_CREDENTIALS"]["value"] == (
        "/var/run/secrets/wafleet/firestore/service-account.json"
    )
    assert env["WAFLEET_BACKUP_KEY_FILE"]["value"] == "/var/run/secrets/wafleet/backup/key"
    assert env["WAFLEET_BACKUP_KEY_ID"]["value"] == "k2"
    secrets = {v["name"]: v["secret"]["secretName"] for v in sts["volumes"] if "secret" in v}
    assert secrets == {
        "firestore-credentials": "wafleet-firestore",
        "backup-key": "wafleet-backup-key",
    }
    api = pod_spec(out.one("Deployment", "wafleet-api"))["containers"][0]
    token = {e["name"]: e for e in api["env"]}["WAFLEET_ADMIN_TOKEN"]["valueFrom"]
    assert token["secretKeyRef"] == {"name": "wafleet-admin-token", "key": "token"}
    operator = pod_spec(out.one("Deployment", "wafleet-operator"))
    assert [v["name"] for v in operator["volumes"]] == ["tmp"]  # no store credentials
    assert out.one("Ingress")["spec"]["rules"][0]["host"] == "wafleet.example.com"


def test_no_secret_is_rendered_from_values_unless_asked(rendered: dict[str, Rendered]) -> None:
    for name in ("default", "firestore", "namespaced", "custom-resources-security"):
        assert not rendered[name].of_kind("Secret"), name
    generated = {s["metadata"]["name"]: s for s in rendered["sqlite-standalone"].of_kind("Secret")}
    assert set(generated) == {"wafleet-admin", "wafleet-backup-key"}
    for secret in generated.values():
        assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    token = base64.b64decode(generated["wafleet-admin"]["data"]["token"])
    assert len(token) >= 16
    key = base64.b64decode(base64.b64decode(generated["wafleet-backup-key"]["data"]["key"]))
    assert len(key) == 32


def test_every_workload_runs_locked_down(rendered: dict[str, Rendered]) -> None:
    for name in ("default", "sim-demo", "firestore"):
        for workload in rendered[name].workloads():
            what = f"{name}: {workload['kind']}/{workload['metadata']['name']}"
            pod = pod_spec(workload)
            assert pod["securityContext"]["runAsNonRoot"] is True, what
            assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, what
            mounts_tmp = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
            assert "tmp" in mounts_tmp, what
            for container in containers(workload):
                context = container["securityContext"]
                assert context["allowPrivilegeEscalation"] is False, what
                assert context["readOnlyRootFilesystem"] is True, what
                assert context["capabilities"] == {"drop": ["ALL"]}, what
                assert context["runAsNonRoot"] is True, what
                assert context["seccompProfile"] == {"type": "RuntimeDefault"}, what
                assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], what
                assert container["resources"]["requests"], what
                assert container["resources"]["limits"]["memory"], what


def test_custom_resources_and_security_contexts_apply(rendered: dict[str, Rendered]) -> None:
    out = rendered["custom-resources-security"]
    image = "registry.example.com/platform/wafleet@sha256:" + "0123456789abcdef" * 4
    for workload in out.workloads():
        pod = pod_spec(workload)
        assert pod["imagePullSecrets"] == [{"name": "regcred"}]
        assert pod["securityContext"]["fsGroup"] == 20000
        for container in containers(workload):
            assert container["image"] == image
            assert container["imagePullPolicy"] == "Always"
            assert container["securityContext"]["seccompProfile"]["type"] == "Localhost"
            assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    operator = out.one("Deployment", "wafleet-operator")
    pod = pod_spec(operator)
    assert pod["securityContext"]["runAsUser"] == 20001  # the component's own wins
    assert pod["securityContext"]["runAsNonRoot"] is True  # the global ones stay
    assert pod["nodeSelector"] == {"node-role.example.com/control": "true"}
    assert pod["tolerations"][0]["key"] == "dedicated"
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["containers"][0]["resources"]["limits"] == {"cpu": "500m", "memory": "256Mi"}
    api = out.one("Deployment", "wafleet-api")
    assert api["spec"]["replicas"] == 3
    assert pod_spec(api)["containers"][0]["securityContext"]["privileged"] is False
    assert "podAntiAffinity" in pod_spec(api)["affinity"]
    api_env = {e["name"]: e.get("value") for e in pod_spec(api)["containers"][0]["env"]}
    assert api_env["HTTPS_PROXY"] == "http://proxy.example.com:3128"
    assert api_env["WAFLEET_LOG_LEVEL"] == "warning"
    service = out.one("Service", "wafleet-api")
    assert service["spec"]["type"] == "NodePort"
    assert service["spec"]["ports"][0]["nodePort"] == 30080
    sts = out.one("StatefulSet")
    assert pod_spec(sts)["terminationGracePeriodSeconds"] == 90
    assert sts["spec"]["template"]["metadata"]["labels"]["tier"] == "sessions"
    assert pod_spec(sts)["topologySpreadConstraints"][0]["maxSkew"] == 1
    for doc in out.docs:
        assert doc["metadata"]["labels"]["team"] == "messaging", doc["kind"]
        assert doc["metadata"]["annotations"]["owner"] == "messaging@example.com", doc["kind"]


def test_labels_and_selectors(rendered: dict[str, Rendered]) -> None:
    for name, out in rendered.items():
        for doc in out.docs:
            labels = doc["metadata"]["labels"]
            assert labels["app.kubernetes.io/managed-by"] == "Helm"
            assert labels["app.kubernetes.io/instance"] == "wafleet"
            assert labels["app.kubernetes.io/part-of"] == "wafleet"
            assert labels["helm.sh/chart"] == "wafleet-0.1.0"
        for workload in out.of_kind("Deployment") + out.of_kind("StatefulSet"):
            selector = workload["spec"]["selector"]["matchLabels"]
            component = selector["app.kubernetes.io/component"]
            assert component in (*COMPONENTS, "sim"), name
            assert not any("version" in key or key.startswith("helm.sh") for key in selector)
            template_labels = workload["spec"]["template"]["metadata"]["labels"]
            assert selector.items() <= template_labels.items()
            assert "helm.sh/chart" not in template_labels  # a chart-only bump restarts nothing
            assert workload["metadata"]["labels"]["app.kubernetes.io/component"] == component


def test_sim_demo_runs_the_simulator_in_the_cluster(rendered: dict[str, Rendered]) -> None:
    out = rendered["sim-demo"]
    sim = out.one("Deployment", "wafleet-sim")
    assert pod_spec(sim)["automountServiceAccountToken"] is False
    assert pod_spec(sim)["containers"][0]["args"][:3] == ["sim", "--host", "0.0.0.0"]
    assert out.one("Service", "wafleet-sim")["spec"]["ports"][0]["port"] == 8090
    config = out.one("ConfigMap")["data"]
    assert config["WAFLEET_TRANSPORT"] == "sim"
    assert config["WAFLEET_SIM_URL"] == "http://wafleet-sim.wafleet.svc:8090"
    test = out.one("Pod")
    assert test["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert test["spec"]["containers"][0]["args"][-1] == "http://wafleet-api.wafleet.svc:8080/health"


def test_namespaced_install_has_no_cluster_scoped_object(rendered: dict[str, Rendered]) -> None:
    out = rendered["namespaced"]
    for doc in out.docs:
        assert doc["kind"] not in ("CustomResourceDefinition", "ClusterRole", "Namespace")
        assert doc["metadata"]["namespace"] == "wafleet-tenant-a", doc["kind"]
        assert doc["metadata"]["name"].startswith("tenant-a"), doc["metadata"]["name"]
    assert not out.of_kind("ServiceAccount")
    bindings = {b["metadata"]["name"]: b["subjects"][0] for b in out.of_kind("RoleBinding")}
    assert bindings["tenant-a-operator"] == {
        "kind": "ServiceAccount",
        "name": "tenant-a-operator",
        "namespace": "wafleet-tenant-a",
    }
    operator = pod_spec(out.one("Deployment", "tenant-a-operator"))
    assert operator["serviceAccountName"] == "tenant-a-operator"
    env = {e["name"]: e.get("value") for e in operator["containers"][0]["env"]}
    assert env["WAFLEET_PEERING_NAME"] == "tenant-a-peering"
    assert env["WAFLEET_CONNECTOR_STATEFULSET"] == "tenant-a-connector"


def test_every_namespaced_object_is_in_the_release_namespace(chart: HelmChart) -> None:
    out = chart.render(values_file("sim-demo"), namespace="messaging")
    cluster_scoped = ("CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding")
    for doc in out.docs:
        if doc["kind"] not in cluster_scoped:
            assert doc["metadata"]["namespace"] == "messaging", doc["kind"]
    assert not [d for d in out.docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]


# --- RBAC --------------------------------------------------------------------------------


def rules_of(out: Rendered, component: str) -> list[Manifest]:
    rules: list[Manifest] = out.one("Role", f"wafleet-{component}")["rules"]
    return rules


def allowed(rules: list[Manifest], group: str, resource: str, verb: str) -> bool:
    return any(
        group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"] for r in rules
    )


def test_one_least_privilege_role_per_component(rendered: dict[str, Rendered]) -> None:
    out = rendered["firestore"]
    for component in COMPONENTS:
        binding = out.one("RoleBinding", f"wafleet-{component}")
        assert binding["roleRef"]["name"] == f"wafleet-{component}"
        assert binding["subjects"][0]["name"] == f"wafleet-{component}"
        workload = next(
            w for w in out.workloads() if w["metadata"]["name"] == f"wafleet-{component}"
        )
        assert pod_spec(workload)["serviceAccountName"] == f"wafleet-{component}"
        for rule in rules_of(out, component):
            assert "*" not in rule["verbs"] and "*" not in rule["resources"], component
    connector = rules_of(out, "connector")
    assert not allowed(connector, "wafleet.io", ACCOUNTS, "create")
    assert not allowed(connector, "wafleet.io", ACCOUNTS, "delete")
    assert allowed(connector, "wafleet.io", f"{ACCOUNTS}/status", "patch")
    assert allowed(connector, "coordination.k8s.io", "leases", "create")
    api = rules_of(out, "api")
    assert [r["resources"] for r in api] == [[ACCOUNTS]]
    operator = rules_of(out, "operator")
    assert not allowed(operator, "wafleet.io", ACCOUNTS, "create")
    assert not allowed(operator, "wafleet.io", ACCOUNTS, "delete")
    scale = [r for r in operator if r["resources"] == ["statefulsets"] and "patch" in r["verbs"]]
    assert scale[0]["resourceNames"] == ["wafleet-connector"]
    lease_names = next(r for r in connector if r.get("resourceNames"))["resourceNames"]
    assert lease_names == [f"wafleet-connector-shard-{n}" for n in range(12)]


def test_rbac_can_be_left_to_the_user(chart: HelmChart) -> None:
    out = chart.render(sets=["rbac.create=false"])
    assert not out.of_kind("Role") and not out.of_kind("RoleBinding")


# --- CRDs --------------------------------------------------------------------------------


def _without_chart_metadata(crd: Manifest, source: Manifest) -> Manifest:
    rendered: Manifest = yaml.safe_load(yaml.safe_dump(crd))
    meta = rendered["metadata"]
    annotations = meta.pop("annotations")
    assert annotations.pop("helm.sh/resource-policy") == "keep"
    labels = meta.pop("labels")
    source_meta = source["metadata"]
    assert annotations == source_meta.get("annotations", {})
    assert source_meta.get("labels", {}).items() <= labels.items()
    assert labels["app.kubernetes.io/managed-by"] == "Helm"
    for key in ("annotations", "labels"):
        if key in source_meta:
            meta[key] = source_meta[key]
    return rendered


def test_rendered_crds_are_crds_folder_content(rendered: dict[str, Rendered]) -> None:
    sources = {crd["metadata"]["name"]: crd for crd in load_crds()}
    assert set(sources) == {
        "whatsappaccounts.wafleet.io",
        "whatsappfleets.wafleet.io",
        "kopfpeerings.kopf.dev",
    }
    crds = {
        crd["metadata"]["name"]: crd
        for crd in rendered["default"].of_kind("CustomResourceDefinition")
    }
    assert set(crds) == set(sources)
    for name, crd in crds.items():
        assert _without_chart_metadata(crd, sources[name]) == sources[name], name


def test_chart_crds_are_the_crds_folder_itself() -> None:
    link = CHART_DIR / "files" / "crds"
    assert link.is_symlink(), "charts/wafleet/files/crds must link to crds/, not copy it"
    assert link.resolve() == CRDS_DIR.resolve()


def test_packaged_chart_carries_crds_byte_for_byte(chart: HelmChart, tmp_path: Path) -> None:
    chart.helm("package", str(CHART_DIR), "--destination", str(tmp_path))
    (package,) = tmp_path.glob("wafleet-*.tgz")
    with tarfile.open(package) as tar:
        packaged = {
            Path(m.name).name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile() and m.name.startswith("wafleet/files/crds/") and m.name.count("/") == 3
        }
    sources = {p.name: p.read_bytes() for p in CRDS_DIR.glob("*.yaml")}
    assert packaged == sources
    # and the packaged chart renders the same CRDs as the chart directory
    out = chart.render(extra=()).of_kind("CustomResourceDefinition")
    from_package = HelmChart(package).render().of_kind("CustomResourceDefinition")
    assert out == from_package


def test_crds_can_be_left_out_and_are_kept_on_uninstall(
    chart: HelmChart, rendered: dict[str, Rendered]
) -> None:
    assert not chart.render(sets=["crds.create=false"]).of_kind("CustomResourceDefinition")
    for crd in rendered["default"].of_kind("CustomResourceDefinition"):
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


# --- NOTES --------------------------------------------------------------------------------


def test_notes_tell_how_to_reach_the_api_get_the_token_and_add_an_account(
    chart: HelmChart,
) -> None:
    result = chart.helm(
        "install",
        "wafleet",
        str(CHART_DIR),
        "--namespace",
        NAMESPACE,
        "--dry-run=client",
        "--values",
        str(values_file("sim-demo")),
    )
    notes = result.stdout.split("NOTES:", 1)[1]
    assert "kubectl port-forward -n wafleet svc/wafleet-api 8080:8080" in notes
    assert "kubectl get secret wafleet-admin -n wafleet" in notes
    assert "kind: WhatsAppAccount" in notes
    assert "/sim/scan" in notes
    assert "helm test wafleet -n wafleet" in notes
    default = chart.helm(
        "install", "wafleet", str(CHART_DIR), "--namespace", NAMESPACE, "--dry-run=client"
    ).stdout
    assert "kubectl create secret generic wafleet-admin -n wafleet" in default
    assert "ONE connector shard" in default
