"""Custom resources validated against the CRD's openAPIV3Schema with the API server's messages."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from k8s_emulator.samples import widget, widgets_url

pytestmark = pytest.mark.k8s


def _invalid(http: httpx.Client, ns: str, body: dict[str, Any]) -> dict[str, Any]:
    response = http.post(widgets_url(ns), json=body)
    assert response.status_code == 422, response.text
    status: dict[str, Any] = response.json()
    assert status["reason"] == "Invalid" and status["code"] == 422
    return status


def test_pattern(http: httpx.Client, crd: dict[str, Any], ns: str) -> None:
    status = _invalid(http, ns, widget("x", phone="abc"))
    assert status["message"] == (
        'Widget.example.com "x" is invalid: spec.phone: Invalid value: "abc": spec.phone in body '
        "should match '^\\+[1-9]\\d{6,14}$'"
    )
    assert status["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": (
                "Invalid value: \"abc\": spec.phone in body should match '^\\+[1-9]\\d{6,14}$'"
            ),
            "field": "spec.phone",
        }
    ]


def test_enum_max_length_and_several_errors(
    http: httpx.Client, crd: dict[str, Any], ns: str
) -> None:
    status = _invalid(http, ns, widget("x", login="sms"))
    assert status["message"] == (
        'Widget.example.com "x" is invalid: spec.login: Unsupported value: "sms": supported '
        'values: "qr", "pairingCode"'
    )
    status = _invalid(http, ns, widget("x", displayName="far too long"))
    assert status["message"].endswith("spec.displayName: Too long: may not be more than 8 bytes")
    status = _invalid(http, ns, widget("x", size=11, tags=["a", "b", "c"]))
    assert status["message"] == (
        'Widget.example.com "x" is invalid: [spec.size: Invalid value: 11: spec.size in body '
        "should be less than or equal to 10, spec.tags: Too many: 3: must have at most 2 items]"
    )


def test_type_required_and_null(http: httpx.Client, crd: dict[str, Any], ns: str) -> None:
    status = _invalid(http, ns, widget("x", size="big"))
    assert status["message"].endswith(
        'spec.size: Invalid value: "string": spec.size in body must be of type integer: "string"'
    )
    body = widget("x")
    del body["spec"]["phone"]
    assert _invalid(http, ns, body)["message"].endswith("spec.phone: Required value")
    ok = http.post(widgets_url(ns), json=widget("nullable", note=None))
    assert ok.status_code == 201 and ok.json()["spec"]["note"] is None


def test_unknown_fields_pruned_warned_or_rejected(
    http: httpx.Client, crd: dict[str, Any], ns: str
) -> None:
    body = widget("u", bogus=1, extra={"anything": {"goes": True}})
    strict = http.post(widgets_url(ns), json=body, params={"fieldValidation": "Strict"})
    assert strict.status_code == 400
    assert strict.json()["reason"] == "BadRequest"
    assert strict.json()["message"] == (
        'Widget in version "v1" cannot be handled as a Widget: strict decoding error: '
        'unknown field "spec.bogus"'
    )
    warned = http.post(widgets_url(ns), json=body)
    assert warned.status_code == 201
    assert warned.headers["warning"] == '299 - "unknown field \\"spec.bogus\\""'
    assert "bogus" not in warned.json()["spec"]
    assert warned.json()["spec"]["extra"] == {"anything": {"goes": True}}
    patch = http.patch(
        widgets_url(ns, "u"),
        json={"spec": {"other": 1}},
        params={"fieldValidation": "Strict"},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    # a patch is decoded after it is applied: the error is the patched object's (422 Invalid)
    assert patch.status_code == 422 and patch.json()["reason"] == "Invalid"
    message = patch.json()["message"]
    assert message.startswith(' "" is invalid: patch: Invalid value: "{\\"apiVersion\\":')
    assert message.endswith('": strict decoding error: unknown field "spec.other"')
    assert patch.json()["details"]["causes"][0]["field"] == "patch"
    unknown_meta = http.post(
        widgets_url(ns),
        json={**widget("v"), "metadata": {"name": "v", "bad": 1}},
        params={"fieldValidation": "Strict"},
    )
    assert 'unknown field "metadata.bad"' in unknown_meta.json()["message"]


def test_updates_are_validated_too(http: httpx.Client, crd: dict[str, Any], ns: str) -> None:
    assert http.post(widgets_url(ns), json=widget("v")).status_code == 201
    response = http.patch(
        widgets_url(ns, "v"),
        json={"spec": {"phone": "0712"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 422
    assert "spec.phone in body should match" in response.json()["message"]
    status = http.patch(
        widgets_url(ns, "v", "status"),
        json={"status": {"size": "x"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert status.status_code == 422
    assert "status.size in body must be of type integer" in status.json()["message"]
