"""A real kopf operator (``kopf run``) against the emulator."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from k8s_emulator.samples import WIDGET_CRD, widget, widgets_url

from support.k8s import K8sApi
from support.process import wait_until

pytestmark = pytest.mark.k8s

OPERATOR = """
import kopf

@kopf.on.create("example.com", "v1", "widgets")
def created(name, patch, logger, **_):
    kopf.info({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}},
              reason="Seen", message="widget seen")
    patch.status["phase"] = "Seen"

@kopf.on.delete("example.com", "v1", "widgets")
def deleted(name, logger, **_):
    logger.info("cleaned up %s", name)
"""


def test_kopf_operator_handles_create_and_delete(k8s_api: K8sApi, tmp_path: Path) -> None:
    with k8s_api.client() as http:
        assert (
            http.post(
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=WIDGET_CRD
            ).status_code
            == 201
        )
        script = tmp_path / "operator.py"
        script.write_text(OPERATOR)
        log_path = tmp_path / "kopf.log"
        with log_path.open("wb") as log:
            kopf = subprocess.Popen(
                [sys.executable, "-m", "kopf", "run", "--standalone", "-A", str(script)],
                env=k8s_api.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            assert http.post(widgets_url("default"), json=widget("k")).status_code == 201

            def seen() -> bool:
                if kopf.poll() is not None:
                    raise AssertionError(log_path.read_text())
                status = http.get(widgets_url("default", "k")).json().get("status", {})
                return bool(status.get("phase") == "Seen")

            wait_until("kopf to patch the status", seen, 30)
            obj = http.get(widgets_url("default", "k")).json()
            assert "kopf.zalando.org/KopfFinalizerMarker" in obj["metadata"]["finalizers"]
            events = http.get("/api/v1/namespaces/default/events").json()["items"]
            assert any(e["reason"] == "Seen" and e["involvedObject"]["name"] == "k" for e in events)
            assert http.delete(widgets_url("default", "k")).json()["metadata"]["deletionTimestamp"]
            wait_until(
                "kopf to release the finalizer",
                lambda: http.get(widgets_url("default", "k")).status_code == 404,
                30,
            )
        finally:
            kopf.send_signal(signal.SIGTERM)
            try:
                kopf.wait(15)
            except subprocess.TimeoutExpired:
                kopf.kill()
                kopf.wait()
    text = log_path.read_text()
    assert "cleaned up k" in text, text
    patches = [e for e in k8s_api.audit() if e["verb"] == "patch" and e["resource"] == "widgets"]
    assert {e["subresource"] for e in patches} == {"", "status"}
