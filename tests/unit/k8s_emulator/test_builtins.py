"""Built-in resources wafleet relies on: Leases, Events, StatefulSets and their /scale."""

from __future__ import annotations

import datetime
from typing import Any

import httpx
import pytest
from k8s_emulator.samples import widget, widgets_url
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from support.k8s import K8sApi

pytestmark = pytest.mark.k8s


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def test_lease_acquire_renew_and_conflict(kube: client.ApiClient, ns: str) -> None:
    leases = client.CoordinationV1Api(kube)
    body = client.V1Lease(
        metadata=client.V1ObjectMeta(name="shard-0"),
        spec=client.V1LeaseSpec(
            holder_identity="pod-a",
            lease_duration_seconds=15,
            acquire_time=_now(),
            renew_time=_now(),
        ),
    )
    lease = leases.create_namespaced_lease(ns, body)
    assert lease.spec.holder_identity == "pod-a"
    lease.spec.renew_time = _now()
    renewed = leases.replace_namespaced_lease("shard-0", ns, lease)
    assert renewed.metadata.resource_version != lease.metadata.resource_version
    lease.spec.holder_identity = "pod-b"  # a competitor with the old resourceVersion
    with pytest.raises(ApiException) as caught:
        leases.replace_namespaced_lease("shard-0", ns, lease)
    assert caught.value.status == 409
    assert leases.read_namespaced_lease("shard-0", ns).spec.holder_identity == "pod-a"


def test_core_and_events_api_share_events(
    kube: client.ApiClient, http: httpx.Client, ns: str
) -> None:
    core = client.CoreV1Api(kube)
    event = client.CoreV1Event(
        metadata=client.V1ObjectMeta(generate_name="wa-1."),
        involved_object=client.V1ObjectReference(kind="WhatsAppAccount", name="wa-1", namespace=ns),
        reason="Connected",
        message="phone linked",
        type="Normal",
        source=client.V1EventSource(component="connector"),
        first_timestamp=_now(),
        last_timestamp=_now(),
        count=1,
    )
    created = core.create_namespaced_event(ns, event)
    assert created.metadata.name.startswith("wa-1.")
    seen = http.get(f"/apis/events.k8s.io/v1/namespaces/{ns}/events/{created.metadata.name}").json()
    assert seen["apiVersion"] == "events.k8s.io/v1"
    assert seen["note"] == "phone linked" and seen["regarding"]["name"] == "wa-1"
    assert seen["deprecatedSource"] == {"component": "connector"} and seen["deprecatedCount"] == 1
    newer = client.EventsV1Api(kube)
    posted = newer.create_namespaced_event(
        ns,
        client.EventsV1Event(
            metadata=client.V1ObjectMeta(name="e2"),
            event_time=_now(),
            reason="Scaled",
            note="to 2",
            type="Normal",
            action="Scale",
            reporting_controller="wafleet.io/operator",
            reporting_instance="op",
            regarding=client.V1ObjectReference(kind="StatefulSet", name="conn", namespace=ns),
        ),
    )
    assert posted.note == "to 2"
    listed = core.list_namespaced_event(ns, field_selector="involvedObject.kind=StatefulSet")
    assert [(e.metadata.name, e.message, e.reporting_component) for e in listed.items] == [
        ("e2", "to 2", "wafleet.io/operator")
    ]
    assert http.get(f"/apis/events.k8s.io/v1/namespaces/{ns}/events").json()["kind"] == "EventList"


def test_statefulset_scale_subresource(kube: client.ApiClient, api: K8sApi, ns: str) -> None:
    apps = client.AppsV1Api(kube)
    sts = client.V1StatefulSet(
        metadata=client.V1ObjectMeta(name="connector"),
        spec=client.V1StatefulSetSpec(
            replicas=1,
            service_name="connector",
            selector=client.V1LabelSelector(match_labels={"app": "connector"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "connector"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="wafleet")]),
            ),
        ),
    )
    created = apps.create_namespaced_stateful_set(ns, sts)
    assert created.metadata.generation == 1 and created.status is None
    scale = apps.read_namespaced_stateful_set_scale("connector", ns)
    assert (scale.spec.replicas, scale.status.replicas, scale.status.selector) == (
        1,
        0,
        "app=connector",
    )
    scale.spec.replicas = 3
    assert apps.replace_namespaced_stateful_set_scale("connector", ns, scale).spec.replicas == 3
    patched = apps.patch_namespaced_stateful_set_scale("connector", ns, {"spec": {"replicas": 2}})
    assert patched.spec.replicas == 2
    current = apps.read_namespaced_stateful_set("connector", ns)
    assert current.spec.replicas == 2 and current.metadata.generation == 3
    stale = client.V1Scale(
        metadata=client.V1ObjectMeta(
            name="connector", resource_version=scale.metadata.resource_version
        ),
        spec=client.V1ScaleSpec(replicas=5),
    )
    with pytest.raises(ApiException) as caught:
        apps.replace_namespaced_stateful_set_scale("connector", ns, stale)
    assert caught.value.status == 409
    apps.patch_namespaced_stateful_set_status(
        "connector", ns, {"status": {"replicas": 2, "readyReplicas": 2}}
    )
    assert apps.read_namespaced_stateful_set_scale("connector", ns).status.replicas == 2
    result = api.kubectl("scale", "statefulset", "connector", "--replicas=4", "-n", ns)
    assert result.returncode == 0, result.stderr
    assert apps.read_namespaced_stateful_set("connector", ns).spec.replicas == 4


def test_custom_resource_scale_subresource(
    http: httpx.Client, crd: dict[str, Any], ns: str
) -> None:
    http.post(widgets_url(ns), json=widget("sc", size=2))
    scale = http.get(widgets_url(ns, "sc", "scale")).json()
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 2
    scale["spec"]["replicas"] = 5
    assert http.put(widgets_url(ns, "sc", "scale"), json=scale).json()["spec"]["replicas"] == 5
    too_many = dict(scale, spec={"replicas": 11})
    too_many["metadata"] = {"name": "sc"}
    assert http.put(widgets_url(ns, "sc", "scale"), json=too_many).status_code == 422
    assert http.get(widgets_url(ns, "sc")).json()["spec"]["size"] == 5
