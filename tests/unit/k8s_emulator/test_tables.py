"""meta.k8s.io/v1 Table output, as kubectl asks for it."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import httpx
import pytest
from k8s_emulator.samples import widget, widgets_url
from k8s_emulator.tables import human_duration

from support.k8s import KUBECTL, K8sApi

pytestmark = pytest.mark.k8s
TABLE = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}


def test_human_duration_matches_apimachinery() -> None:
    cases = {
        0: "0s",
        59: "59s",
        119: "119s",
        150: "2m30s",
        600: "10m",
        7200: "120m",
        3 * 3600 + 300: "3h5m",
        10 * 3600: "10h",
        3 * 86400: "3d",
        3 * 86400 + 7200: "3d2h",
        400 * 86400: "400d",
        3 * 365 * 86400: "3y",
        -5: "<invalid>",
    }
    assert {s: human_duration(s) for s in cases} == cases


def test_custom_resource_table(http: httpx.Client, crd: dict[str, Any], ns: str) -> None:
    http.post(widgets_url(ns), json=widget("t", size=3))
    table = http.get(widgets_url(ns), headers=TABLE).json()
    assert (table["kind"], table["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    names = [(c["name"], c["type"]) for c in table["columnDefinitions"]]
    assert names == [("Name", "string"), ("Phase", "string"), ("Size", "integer"), ("Age", "date")]
    assert table["columnDefinitions"][0]["format"] == "name"
    (row,) = table["rows"]
    assert row["cells"][:3] == ["t", None, 3]
    assert row["cells"][3].endswith("s")
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["metadata"]["name"] == "t"
    full = http.get(widgets_url(ns, "t"), headers=TABLE, params={"includeObject": "Object"}).json()
    assert full["rows"][0]["object"]["spec"]["size"] == 3
    plain = http.get(widgets_url(ns, "t")).json()
    assert plain["kind"] == "Widget"


def test_built_in_table_has_name_and_age(http: httpx.Client, ns: str) -> None:
    http.post(
        f"/api/v1/namespaces/{ns}/configmaps", json={"metadata": {"name": "c"}, "data": {"a": "1"}}
    )
    table = http.get(f"/api/v1/namespaces/{ns}/configmaps", headers=TABLE).json()
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert table["rows"][0]["cells"][:2] == ["c", 1]


def test_kubectl_get_watch_prints_rows(
    api: K8sApi, http: httpx.Client, crd: dict[str, Any], ns: str
) -> None:
    http.post(widgets_url(ns), json=widget("first"))
    watcher = subprocess.Popen(
        [str(KUBECTL), "get", "widgets", "-w", "-n", ns],
        env=api.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.0)
        http.post(widgets_url(ns), json=widget("second", size=7))
        time.sleep(1.0)
    finally:
        watcher.terminate()
        out, err = watcher.communicate(timeout=10)
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "PHASE", "SIZE", "AGE"], err
    assert lines[1].split()[0] == "first"
    assert lines[2].split()[:2] == ["second", "7"]
