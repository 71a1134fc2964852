"""The connector's engine settings rendered by the real helm: WAFLEET_ENGINE_SESSIONS_PER_WORKER
from connector.engine.sessionsPerWorker, and WAFLEET_ENGINE_GOMEMLIMIT from
connector.engine.gomemlimit or, when that is empty, derived from the container's memory
limit: floor(limit_MiB * 70 / 100 / workers) MiB, workers = ceil(sharding.sessionsPerShard /
connector.engine.sessionsPerWorker); no limit, no variable; under 64MiB, no render."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from helm.chartkit import CHART_DIR, HelmChart, Rendered, pod_spec, values_file

pytestmark = pytest.mark.helm

SESSIONS = "WAFLEET_ENGINE_SESSIONS_PER_WORKER"
GOMEMLIMIT = "WAFLEET_ENGINE_GOMEMLIMIT"
TOO_SMALL = "Raise connector.resources.limits.memory or connector.engine.sessionsPerWorker"


def connector_env(out: Rendered) -> dict[str, str | None]:
    container = pod_spec(out.one("StatefulSet"))["containers"][0]
    assert container["name"] == "connector"
    names = [e["name"] for e in container["env"]]
    assert len(names) == len(set(names)), names
    return {e["name"]: e.get("value") for e in container["env"]}


def render_env(
    chart: HelmChart, *values: Path, sets: Sequence[str] = (), extra: Sequence[str] = ()
) -> dict[str, str | None]:
    return connector_env(chart.render(*values, sets=sets, extra=extra))


def test_defaults_give_three_workers_a_share_of_the_1gi_limit(chart: HelmChart) -> None:
    # 1Gi, 25 sessions per shard, 10 per worker: 3 workers, floor(1024 * 0.7 / 3) = 238
    env = render_env(chart)
    assert env[SESSIONS] == "10"
    assert env[GOMEMLIMIT] == "238MiB"


def test_the_engine_values_file(chart: HelmChart) -> None:
    # 1.5Gi, 40 per shard, 10 per worker: 4 workers, floor(1536 * 0.7 / 4) = 268
    env = render_env(chart, values_file("engine"))
    assert env[SESSIONS] == "10"
    assert env[GOMEMLIMIT] == "268MiB"


@pytest.mark.parametrize(
    ("memory", "expected"),
    [
        ("1.5Gi", "358MiB"),  # 1536 MiB * 0.7 / 3 = 358.4
        ("2G", "445MiB"),  # 2e9 B = 1907.35 MiB; * 0.7 / 3 = 445.05
        ("3000Mi", "700MiB"),  # exactly 700
        ("1073741824", "238MiB"),  # plain bytes: 1Gi
        ("2147483648", "477MiB"),  # plain bytes: 2Gi, 1433.6 / 3 = 477.87
        ("2000000k", "445MiB"),  # = 2G
        ("1048576Ki", "238MiB"),  # = 1Gi
        ("0.5Ti", "122333MiB"),  # 524288 MiB * 0.7 / 3 = 122333.87
        ("1e9", "222MiB"),  # 953.67 MiB * 0.7 / 3 = 222.52
        ("275Mi", "64MiB"),  # 64.17: just at the minimum
    ],
)
def test_gomemlimit_is_derived_from_every_quantity_form(
    chart: HelmChart, memory: str, expected: str
) -> None:
    env = render_env(chart, sets=[f"connector.resources.limits.memory={memory}"])
    assert env[GOMEMLIMIT] == expected


def test_a_memory_limit_written_as_a_number_in_a_values_file(
    chart: HelmChart, tmp_path: Path
) -> None:
    """YAML numbers reach the templates as floats (1.073741824e+09), not as "1073741824"."""
    values = tmp_path / "bytes.yaml"
    values.write_text("connector:\n  resources:\n    limits:\n      memory: 3221225472\n")
    # 3Gi: 3072 MiB * 0.7 / 3 = 716.8
    assert render_env(chart, values)[GOMEMLIMIT] == "716MiB"
    values.write_text("connector:\n  resources:\n    limits:\n      memory: 1.5e9\n")
    # 1430.51 MiB * 0.7 / 3 = 333.79
    assert render_env(chart, values)[GOMEMLIMIT] == "333MiB"


@pytest.mark.parametrize(
    ("sets", "workers", "expected"),
    [
        (["connector.engine.sessionsPerWorker=8"], 4, "179MiB"),  # ceil(25 / 8): 716.8 / 4
        (["connector.engine.sessionsPerWorker=25"], 1, "716MiB"),
        (["connector.engine.sessionsPerWorker=1000"], 1, "716MiB"),  # more than a shard holds
        (["connector.engine.sessionsPerWorker=1"], 25, "28MiB"),  # refused below
        (["sharding.sessionsPerShard=40"], 4, "179MiB"),  # ceil(40 / 10): 716.8 / 4
        (["sharding.sessionsPerShard=41"], 5, "143MiB"),  # ceil(41 / 10): 716.8 / 5
        (["sharding.sessionsPerShard=33", "connector.engine.sessionsPerWorker=11"], 3, "238MiB"),
        (["sharding.sessionsPerShard=34", "connector.engine.sessionsPerWorker=11"], 4, "179MiB"),
    ],
)
def test_workers_are_the_ceiling_of_shard_over_worker_sessions(
    chart: HelmChart, sets: list[str], workers: int, expected: str
) -> None:
    if int(expected.removesuffix("MiB")) < 64:
        error = chart.refusal(sets=sets)
        assert f"shared by {workers} workers" in error, error
        assert f"derived for each engine worker is {expected}" in error, error
        return
    env = render_env(chart, sets=[*sets, "connector.resources.limits.memory=1Gi"])
    assert env[GOMEMLIMIT] == expected


@pytest.mark.parametrize("explicit", ["400MiB", "off", "1073741824", "2GiB", "512B"])
def test_an_explicit_gomemlimit_wins(chart: HelmChart, explicit: str) -> None:
    # --set-string: a bare 1073741824 would be a number, which the schema refuses
    mine = ["--set-string", f"connector.engine.gomemlimit={explicit}"]
    assert render_env(chart, extra=mine)[GOMEMLIMIT] == explicit
    # even where the derived one would be refused, or is not there at all
    small = ["connector.resources.limits.memory=128Mi"]
    assert render_env(chart, sets=small, extra=mine)[GOMEMLIMIT] == explicit
    unlimited = ["connector.resources.limits=null"]
    assert render_env(chart, sets=unlimited, extra=mine)[GOMEMLIMIT] == explicit


@pytest.mark.parametrize(
    "sets",
    [
        ["connector.resources.limits=null"],
        ["connector.resources.limits.memory=null", "connector.resources.limits.cpu=2"],
        ["connector.resources=null"],
    ],
)
def test_no_memory_limit_no_gomemlimit(chart: HelmChart, sets: list[str]) -> None:
    out = chart.render(sets=sets)
    resources = pod_spec(out.one("StatefulSet"))["containers"][0].get("resources") or {}
    assert "memory" not in (resources.get("limits") or {})
    env = connector_env(out)
    assert GOMEMLIMIT not in env
    assert env[SESSIONS] == "10"


@pytest.mark.parametrize(
    ("sets", "derived"),
    [
        (["connector.resources.limits.memory=256Mi"], "59MiB"),  # 179.2 / 3
        (["connector.resources.limits.memory=274Mi"], "63MiB"),  # 63.93: just under
        (  # one worker: 64 * 0.7
            ["connector.resources.limits.memory=64Mi", "connector.engine.sessionsPerWorker=25"],
            "44MiB",
        ),
        (["connector.resources.limits.memory=0"], "0MiB"),
    ],
)
def test_a_derived_gomemlimit_under_64mib_is_refused(
    chart: HelmChart, sets: list[str], derived: str
) -> None:
    error = chart.refusal(sets=sets)
    assert f"the GOMEMLIMIT derived for each engine worker is {derived}" in error, error
    assert "under the 64MiB minimum" in error
    assert TOO_SMALL in error, error


def test_with_the_sim_transport_a_small_limit_only_drops_the_variable(chart: HelmChart) -> None:
    """No engine worker runs with transport sim: nothing to refuse, nothing to set."""
    sim = ["config.transport=sim", "sim.enabled=true"]
    env = render_env(chart, sets=[*sim, "connector.resources.limits.memory=256Mi"])
    assert GOMEMLIMIT not in env
    assert env[SESSIONS] == "10"
    assert render_env(chart, sets=sim)[GOMEMLIMIT] == "238MiB"
    assert render_env(chart, values_file("sim-demo"))[GOMEMLIMIT] == "238MiB"


@pytest.mark.parametrize("memory", ["1ki", "1.2.3Gi", "1e3Mi", "1Mb", "1K"])
def test_a_memory_limit_that_is_no_quantity_is_refused(chart: HelmChart, memory: str) -> None:
    sets = [f"connector.resources.limits.memory={memory}"]
    error = chart.refusal(sets=sets)
    assert f"at '/connector/resources/limits/memory': '{memory}' does not match" in error, error
    # and by the helper itself, should the schema be skipped
    args = ["template", "wafleet", str(CHART_DIR), "--skip-schema-validation", "--set", sets[0]]
    result = chart.helm(*args, check=False)
    assert result.returncode != 0, result.stdout[:2000]
    assert f'connector.resources.limits.memory ("{memory}") is not a Kubernetes quantity' in (
        result.stderr
    ), result.stderr


def test_binary_suffixes_pass_the_resources_schema_of_every_component(chart: HelmChart) -> None:
    sets = [f"{c}.resources.limits.memory=1048576Ki" for c in ("operator", "api", "connector")]
    out = chart.render(sets=[*sets, "tmpSizeLimit=65536Ki", "sim.resources.requests.cpu=0.5"])
    assert connector_env(out)[GOMEMLIMIT] == "238MiB"


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (
            ["connector.engine.gomemlimit=400MB"],
            "at '/connector/engine/gomemlimit': '400MB' does not match pattern",
        ),
        (["connector.engine.gomemlimit=1.5GiB"], "at '/connector/engine/gomemlimit'"),
        (["connector.engine.gomemlimit=400 MiB"], "at '/connector/engine/gomemlimit'"),
        (["connector.engine.gomemlimit=-1"], "at '/connector/engine/gomemlimit'"),
        (["connector.engine.gomemlimit=OFF"], "at '/connector/engine/gomemlimit'"),
        (["connector.engine.gomemlimit=auto"], "at '/connector/engine/gomemlimit'"),
        (
            ["connector.engine.sessionsPerWorker=0"],
            "at '/connector/engine/sessionsPerWorker': minimum: got 0, want 1",
        ),
        (
            ["connector.engine.sessionsPerWorker=1001"],
            "at '/connector/engine/sessionsPerWorker': maximum: got 1,001, want 1,000",
        ),
        (
            ["connector.engine.sessionsPerWorker=eight"],
            "at '/connector/engine/sessionsPerWorker': got string, want integer",
        ),
        (["connector.engine.sessionsPerWorker=null"], "missing property 'sessionsPerWorker'"),
        (["connector.engine.workers=3"], "additional properties 'workers' not allowed"),
    ],
)
def test_bad_engine_values_are_refused_by_the_schema(
    chart: HelmChart, sets: list[str], message: str
) -> None:
    error = chart.refusal(sets=sets)
    assert message in error, error
    assert "values don't meet the specifications of the schema" in error, error
