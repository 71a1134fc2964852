"""Shared fixtures for the emulator's own tests: one emulator per test module."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from k8s_emulator.samples import WIDGET_CRD
from kubernetes import client, config

from support.k8s import K8sApi, k8s_api, start_emulator

__all__ = ["k8s_api"]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[K8sApi]:
    emulator = start_emulator(tmp_path_factory.mktemp("k8s"))
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(scope="module")
def http(api: K8sApi) -> Iterator[httpx.Client]:
    with api.client() as session:
        yield session


@pytest.fixture(scope="module")
def kube(api: K8sApi) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(config_file=str(api.kubeconfig))
    try:
        yield api_client
    finally:
        api_client.close()


@pytest.fixture(scope="module")
def crd(http: httpx.Client) -> dict[str, Any]:
    response = http.post(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=copy.deepcopy(WIDGET_CRD)
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


@pytest.fixture
def ns(http: httpx.Client) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    response = http.post("/api/v1/namespaces", json={"metadata": {"name": name}})
    assert response.status_code == 201, response.text
    return name
