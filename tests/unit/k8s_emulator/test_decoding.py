"""Built-ins decoded as the API server decodes them: Go field types, unknown fields, times."""

from __future__ import annotations

import datetime
import json
from typing import Any

import httpx
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.k8s
MERGE = {"Content-Type": "application/merge-patch+json"}
STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}
MICRO = '"2006-01-02T15:04:05.000000Z07:00"'


def leases(ns: str, name: str = "") -> str:
    return f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases" + (f"/{name}" if name else "")


def lease(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name},
        "spec": spec,
    }


def _bad_request(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    body = response.json()
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "BadRequest", 400)
    message: str = body["message"]
    return message


def test_a_field_of_the_wrong_type_is_a_400_with_the_go_decoders_message(
    http: httpx.Client, ns: str
) -> None:
    prefix = 'Lease in version "v1" cannot be handled as a Lease: '
    cases = {
        "15": "json: cannot unmarshal string into Go struct field "
        "LeaseSpec.spec.leaseDurationSeconds of type int32",
        1.5: "json: cannot unmarshal number 1.5 into Go struct field "
        "LeaseSpec.spec.leaseDurationSeconds of type int32",
        2**31: "json: cannot unmarshal number 2147483648 into Go struct field "
        "LeaseSpec.spec.leaseDurationSeconds of type int32",
        True: "json: cannot unmarshal bool into Go struct field "
        "LeaseSpec.spec.leaseDurationSeconds of type int32",
    }
    for value, error in cases.items():
        response = http.post(leases(ns), json=lease("l", leaseDurationSeconds=value))
        assert _bad_request(response) == prefix + error
    spec = http.post(leases(ns), json={**lease("l"), "spec": "x"})
    assert _bad_request(spec) == prefix + (
        "json: cannot unmarshal string into Go struct field Lease.spec of type v1.LeaseSpec"
    )
    strategy = http.post(leases(ns), json=lease("l", strategy=1))
    assert _bad_request(strategy).endswith("of type v1.CoordinatedLeaseStrategy")
    assert http.get(leases(ns, "l")).status_code == 404


def test_micro_time_needs_six_fractional_digits(http: httpx.Client, ns: str) -> None:
    prefix = 'Lease in version "v1" cannot be handled as a Lease: '
    millis = http.post(leases(ns), json=lease("m", renewTime="2026-12-01T09:00:00.123Z"))
    assert _bad_request(millis) == prefix + (
        f'parsing time "2026-12-01T09:00:00.123Z" as {MICRO}: cannot parse ".123Z" as ".000000"'
    )
    whole = http.post(leases(ns), json=lease("m", acquireTime="2026-12-01T09:00:00Z"))
    assert _bad_request(whole) == prefix + (
        f'parsing time "2026-12-01T09:00:00Z" as {MICRO}: cannot parse "Z" as ".000000"'
    )
    number = http.post(leases(ns), json=lease("m", renewTime=5))
    assert _bad_request(number) == prefix + (
        "json: cannot unmarshal number into Go struct field LeaseSpec.spec.renewTime of type string"
    )
    good = http.post(
        leases(ns),
        json=lease("m", renewTime="2026-12-01T10:00:00.123456+01:00", holderIdentity=None),
    )
    assert good.status_code == 201, good.text
    assert good.json()["spec"] == {"renewTime": "2026-12-01T09:00:00.123456Z"}


def test_the_python_client_sends_no_fraction_for_a_whole_second(
    kube: client.ApiClient, ns: str
) -> None:
    """datetime.isoformat() drops ".000000": the real server rejects such a MicroTime."""
    whole = datetime.datetime(2026, 12, 1, 9, 0, 0, tzinfo=datetime.UTC)
    body = client.V1Lease(
        metadata=client.V1ObjectMeta(name="py"),
        spec=client.V1LeaseSpec(holder_identity="a", renew_time=whole),
    )
    with pytest.raises(ApiException) as caught:
        client.CoordinationV1Api(kube).create_namespaced_lease(ns, body)
    assert caught.value.status == 400
    message = json.loads(caught.value.body)["message"]
    assert message.endswith('cannot parse "+00:00" as ".000000"')


def test_time_drops_the_fraction_and_event_time_is_a_micro_time(
    http: httpx.Client, ns: str
) -> None:
    event = {
        "metadata": {"name": "e"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": ns},
        "reason": "R",
        "firstTimestamp": "2026-12-01T09:00:00.75+00:00",
    }
    created = http.post(f"/api/v1/namespaces/{ns}/events", json=event)
    assert created.status_code == 201, created.text
    assert created.json()["firstTimestamp"] == "2026-12-01T09:00:00Z"
    newer = {
        "metadata": {"name": "n"},
        "eventTime": "2026-12-01T09:00:00.5Z",
        "reportingController": "wafleet.io/operator",
        "reportingInstance": "op",
        "action": "A",
        "reason": "R",
        "type": "Normal",
        "regarding": {"kind": "Pod", "name": "p", "namespace": ns},
    }
    refused = http.post(f"/apis/events.k8s.io/v1/namespaces/{ns}/events", json=newer)
    assert _bad_request(refused) == (
        'Event in version "v1" cannot be handled as a Event: parsing time '
        f'"2026-12-01T09:00:00.5Z" as {MICRO}: cannot parse ".5Z" as ".000000"'
    )


def test_unknown_fields_warned_by_default_rejected_when_strict(http: httpx.Client, ns: str) -> None:
    body = lease("u", holderIdentity="a", holder="typo")
    body["metadata"]["colour"] = "red"
    warned = http.post(leases(ns), json=body)
    assert warned.status_code == 201
    assert warned.headers.get_list("warning") == [
        '299 - "unknown field \\"metadata.colour\\""',
        '299 - "unknown field \\"spec.holder\\""',
    ]
    assert warned.json()["spec"] == {"holderIdentity": "a"}
    assert "colour" not in warned.json()["metadata"]
    strict = http.post(
        leases(ns), json={**body, "metadata": {"name": "v"}}, params={"fieldValidation": "Strict"}
    )
    assert _bad_request(strict) == (
        'Lease in version "v1" cannot be handled as a Lease: strict decoding error: '
        'unknown field "spec.holder"'
    )
    ignored = http.post(
        leases(ns), json={**body, "metadata": {"name": "w"}}, params={"fieldValidation": "Ignore"}
    )
    assert ignored.status_code == 201 and "warning" not in ignored.headers
    pod = {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "i", "imagePullPolcy": "Always"}]},
    }
    refused = http.post(
        f"/api/v1/namespaces/{ns}/pods", json=pod, params={"fieldValidation": "Strict"}
    )
    assert _bad_request(refused).endswith(
        'strict decoding error: unknown field "spec.containers[0].imagePullPolcy"'
    )


def test_patches_are_decoded_after_they_are_applied(http: httpx.Client, ns: str) -> None:
    created = http.post(leases(ns), json=lease("p", holderIdentity="a")).json()
    merge = http.patch(leases(ns, "p"), json={"spec": {"leaseDurationSeconds": "x"}}, headers=MERGE)
    assert merge.status_code == 422 and merge.json()["reason"] == "Invalid"
    message = merge.json()["message"]
    assert message.startswith(' "" is invalid: patch: Invalid value: "{\\"apiVersion\\":')
    assert f'\\"resourceVersion\\":\\"{created["metadata"]["resourceVersion"]}\\"' in message
    assert message.endswith(
        '": json: cannot unmarshal string into Go struct field '
        "LeaseSpec.spec.leaseDurationSeconds of type int32"
    )
    assert merge.json()["details"] == {
        "causes": [
            {
                "reason": "FieldValueInvalid",
                "message": message[len(' "" is invalid: patch: ') :],
                "field": "patch",
            }
        ]
    }
    smp = http.patch(
        leases(ns, "p"), json={"spec": {"leaseDurationSeconds": "x"}}, headers=STRATEGIC
    )
    assert smp.status_code == 422
    assert smp.json()["message"] == (
        ' "" is invalid: patch: Invalid value: "map[spec:map[leaseDurationSeconds:x]]": '
        "cannot restore int32 from string"
    )
    smp_string = http.patch(
        leases(ns, "p"), json={"spec": {"holderIdentity": 7}}, headers=STRATEGIC
    )
    assert smp_string.json()["message"].endswith(": cannot convert int64 to string")
    strict = http.patch(
        leases(ns, "p"),
        json={"spec": {"bogus": 1}},
        headers=STRATEGIC,
        params={"fieldValidation": "Strict"},
    )
    assert strict.json()["message"] == (
        ' "" is invalid: patch: Invalid value: "map[spec:map[bogus:1]]": '
        'strict decoding error: unknown field "spec.bogus"'
    )
    micro = http.patch(
        leases(ns, "p"), json={"spec": {"renewTime": "2026-12-01T09:00:00Z"}}, headers=MERGE
    )
    assert micro.status_code == 422 and micro.json()["message"].endswith(
        f'": parsing time "2026-12-01T09:00:00Z" as {MICRO}: cannot parse "Z" as ".000000"'
    )
    assert http.get(leases(ns, "p")).json()["spec"] == {"holderIdentity": "a"}


def test_server_side_apply_of_a_built_in_knows_its_schema(http: httpx.Client, ns: str) -> None:
    applied = (
        "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: ssa}\n"
        "spec: {holderIdentity: a, leaseDurationSeconds: 10, bogus: 1}\n"
    )
    response = http.patch(
        leases(ns, "ssa"),
        content=applied,
        headers={"Content-Type": "application/apply-patch+yaml"},
        params={"fieldManager": "t"},
    )
    assert response.status_code == 500
    assert response.json()["message"] == (
        f"failed to create typed patch object (coordination.k8s.io/v1, Kind=Lease; {ns}/ssa): "
        ".spec.bogus: field not declared in schema"
    )


def test_validation_of_leases_events_statefulsets_and_pods(http: httpx.Client, ns: str) -> None:
    zero = http.post(leases(ns), json=lease("z", leaseDurationSeconds=0))
    assert zero.status_code == 422
    assert zero.json()["message"] == (
        'Lease.coordination.k8s.io "z" is invalid: spec.leaseDurationSeconds: Invalid value: 0: '
        "must be greater than 0"
    )
    event = {"metadata": {"name": "e"}, "involvedObject": {"name": "x", "namespace": "other"}}
    mismatch = http.post(f"/api/v1/namespaces/{ns}/events", json=event)
    assert mismatch.json()["message"] == (
        'Event "e" is invalid: involvedObject.namespace: Invalid value: "other": '
        "does not match event.namespace"
    )
    newer = {"metadata": {"name": "n"}, "regarding": {"name": "x", "namespace": ns}}
    strict = http.post(f"/apis/events.k8s.io/v1/namespaces/{ns}/events", json=newer)
    assert strict.status_code == 422
    assert strict.json()["message"] == (
        'Event.events.k8s.io "n" is invalid: [eventTime: Required value, '
        'type: Invalid value: "": has invalid value: ]'
    )
    sts = {
        "metadata": {"name": "s"},
        "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}},
    }
    bad_sts = http.post(f"/apis/apps/v1/namespaces/{ns}/statefulsets", json=sts)
    assert bad_sts.json()["message"] == (
        'StatefulSet.apps "s" is invalid: [spec.selector: Required value, '
        "spec.template.spec.containers[0].image: Required value]"
    )
    sts["spec"]["selector"] = {"matchLabels": {"app": "a"}}
    sts["spec"]["template"]["metadata"] = {"labels": {"app": "b"}}
    sts["spec"]["template"]["spec"]["containers"][0]["image"] = "i"
    mismatch = http.post(f"/apis/apps/v1/namespaces/{ns}/statefulsets", json=sts)
    assert mismatch.json()["message"] == (
        'StatefulSet.apps "s" is invalid: spec.template.metadata.labels: Invalid value: '
        'map[string]string{"app":"b"}: `selector` does not match template `labels`'
    )
    port = {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": "80"}]}]},
    }
    assert _bad_request(http.post(f"/api/v1/namespaces/{ns}/pods", json=port)) == (
        'Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal string into Go '
        "struct field ContainerPort.spec.containers.ports.containerPort of type int32"
    )
    empty = http.post(f"/api/v1/namespaces/{ns}/pods", json={"metadata": {"name": "p"}, "spec": {}})
    assert empty.json()["message"] == 'Pod "p" is invalid: spec.containers: Required value'
