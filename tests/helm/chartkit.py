"""The Helm chart under test: render it with the real helm binary, validate what it renders.

``HelmChart.render`` renders ``charts/wafleet`` with a values file from
``tests/helm/values`` and returns the manifests as dicts; ``validate`` checks them with
kubernetes-validate's strict schemas, and custom resources against their CRD's schema.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate.utils as kv
import yaml
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "charts" / "wafleet"
CRDS_DIR = REPO / "crds"
HELM = REPO / ".venv" / "tools" / "helm"
VALUES_DIR = Path(__file__).parent / "values"
RELEASE = "wafleet"
NAMESPACE = "wafleet"

Manifest = dict[str, Any]


def values_file(name: str) -> Path:
    path = VALUES_DIR / f"{name}.yaml"
    assert path.exists(), f"no values file {path}"
    return path


@dataclass(frozen=True)
class Rendered:
    """The output of one ``helm template``: its documents, and lookups over them."""

    docs: list[Manifest]

    def of_kind(self, kind: str) -> list[Manifest]:
        return [doc for doc in self.docs if doc["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> Manifest:
        found = [d for d in self.of_kind(kind) if name is None or d["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
        return found[0]

    def workloads(self) -> list[Manifest]:
        return [d for d in self.docs if d["kind"] in ("Deployment", "StatefulSet", "Pod")]


def pod_spec(workload: Manifest) -> Manifest:
    spec: Manifest = (
        workload["spec"] if workload["kind"] == "Pod" else workload["spec"]["template"]["spec"]
    )
    return spec


def containers(workload: Manifest) -> list[Manifest]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


class HelmError(AssertionError):
    pass


@dataclass(frozen=True)
class HelmChart:
    directory: Path = CHART_DIR

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(HELM), *args], capture_output=True, text=True, timeout=60, check=False
        )
        if check and result.returncode != 0:
            raise HelmError(f"helm {' '.join(args)} failed:\n{result.stderr}")
        return result

    def _template_args(
        self,
        values: Sequence[Path],
        sets: Sequence[str],
        kube_version: str | None,
        namespace: str,
        extra: Sequence[str],
    ) -> list[str]:
        args = ["template", RELEASE, str(self.directory), "--namespace", namespace]
        for path in values:
            args += ["--values", str(path)]
        for item in sets:
            args += ["--set", item]
        if kube_version:
            args += ["--kube-version", kube_version]
        return [*args, *extra]

    def render(
        self,
        *values: Path,
        sets: Sequence[str] = (),
        kube_version: str | None = None,
        namespace: str = NAMESPACE,
        extra: Sequence[str] = (),
    ) -> Rendered:
        result = self.helm(*self._template_args(values, sets, kube_version, namespace, extra))
        return Rendered([doc for doc in yaml.safe_load_all(result.stdout) if doc])

    def refusal(
        self, *values: Path, sets: Sequence[str] = (), kube_version: str | None = None
    ) -> str:
        """The error of a ``helm template`` that must fail (schema or template check)."""
        result = self.helm(
            *self._template_args(values, sets, kube_version, NAMESPACE, ()), check=False
        )
        assert result.returncode != 0, f"helm accepted {sets or values}:\n{result.stdout[:2000]}"
        return result.stderr


def claimed_versions(chart_dir: Path = CHART_DIR) -> tuple[str, str]:
    """The oldest and newest Kubernetes versions the chart's kubeVersion allows among
    those kubernetes-validate has schemas for."""
    constraint = yaml.safe_load((chart_dir / "Chart.yaml").read_text())["kubeVersion"]
    bounds = re.findall(r"(>=|<=|<|>)\s*v?([0-9]+\.[0-9]+(?:\.[0-9]+)?)(?:-0)?", constraint)
    assert bounds, f"cannot read kubeVersion {constraint!r}"
    checks = {
        ">=": lambda v, b: v >= b,
        ">": lambda v, b: v > b,
        "<=": lambda v, b: v <= b,
        "<": lambda v, b: v < b,
    }
    known = sorted({Version(v) for v in kv.all_versions()})
    allowed = [v for v in known if all(checks[op](v, Version(b)) for op, b in bounds)]
    assert allowed, f"kubernetes-validate has no schema within {constraint!r}"
    return str(allowed[0]), str(allowed[-1])


def crd_schemas(docs: Iterable[Manifest]) -> dict[tuple[str, str], Manifest]:
    """(apiVersion, kind) -> openAPIV3Schema of every served version of the given CRDs."""
    schemas: dict[tuple[str, str], Manifest] = {}
    for doc in docs:
        if doc.get("kind") != "CustomResourceDefinition":
            continue
        spec = doc["spec"]
        for version in spec["versions"]:
            key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
            schemas[key] = version["schema"]["openAPIV3Schema"]
    return schemas


def validate(docs: Iterable[Manifest], version: str, crds: Iterable[Manifest] = ()) -> list[str]:
    """kubernetes-validate --strict for built-in kinds; custom resources (which it has no
    schema for, and its command line only warns about) against their CRD's schema."""
    schemas = crd_schemas(crds)
    errors: list[str] = []
    for doc in docs:
        what = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')} on {version}"
        try:
            kv.validate(doc, version, strict=True)
        except kv.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            errors.append(f"{what}: {path}: {exc.message}")
        except kv.SchemaNotFoundError:
            schema = schemas.get((doc["apiVersion"], doc["kind"]))
            if schema is None:
                errors.append(f"{what}: no schema, and no CRD for {doc['apiVersion']}")
                continue
            for error in jsonschema.Draft4Validator(schema).iter_errors(doc):
                path = ".".join(str(p) for p in error.path)
                errors.append(f"{what}: {path}: {error.message}")
    return errors


def load_crds() -> list[Manifest]:
    return [yaml.safe_load(path.read_text()) for path in sorted(CRDS_DIR.glob("*.yaml"))]
