"""The emulator's control API for faults, over HTTP and from Python.

HTTP, outside the Kubernetes paths (see README.md):
``POST /_emulator/faults`` (one fault object, or ``{"faults": [...]}``),
``GET /_emulator/faults[/ID]``, ``DELETE /_emulator/faults[/ID]``.
``Control(url)`` is the same from a test that runs the emulator as a process;
in the same process, use ``emulator.faults`` (a ``faults.FaultSet``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response

from k8s_emulator.faults import FaultSet, FaultSpecError, fault_from_json
from k8s_emulator.web import json_response

JSON = dict[str, Any]


def _faults(request: Request) -> FaultSet:
    found: FaultSet = request.app.state.emulator.faults
    return found


def _error(code: int, message: str) -> Response:
    return json_response({"kind": "Error", "message": message, "code": code}, code)


async def faults_endpoint(request: Request) -> Response:
    faults = _faults(request)
    fault_id = request.path_params.get("fault_id")
    if request.method == "GET":
        if fault_id:
            found = faults.get(fault_id)
            return json_response(found.as_json()) if found else _error(404, f"no fault {fault_id}")
        return json_response({"kind": "FaultList", "items": [f.as_json() for f in faults.list()]})
    if request.method == "DELETE":
        if fault_id:
            removed = faults.remove(fault_id)
            return (
                json_response(removed.as_json()) if removed else _error(404, f"no fault {fault_id}")
            )
        return json_response({"kind": "FaultList", "items": [f.as_json() for f in faults.clear()]})
    try:
        body = json.loads(await request.body() or b"{}")
        specs = body["faults"] if isinstance(body, dict) and "faults" in body else [body]
        made = [fault_from_json(spec) for spec in specs]
    except (ValueError, FaultSpecError) as error:
        return _error(400, str(error))
    added = [faults.add(fault).as_json() for fault in made]
    if isinstance(body, dict) and "faults" in body:
        return json_response({"kind": "FaultList", "items": added}, 201)
    return json_response(added[0], 201)


class Control:
    """The HTTP control API from a test: ``Control(api.url).add_fault(kind="status", code=429)``."""

    def __init__(self, url: str, timeout: float = 10) -> None:
        self.url = url.rstrip("/") + "/_emulator/faults"
        self.timeout = timeout

    def add_fault(self, **spec: Any) -> JSON:
        """Add a fault (the JSON fields, camelCase: kind, code, resource, verbs, …)."""
        response = httpx.post(self.url, json=spec, timeout=self.timeout)
        if response.status_code != 201:
            raise ValueError(response.json().get("message", response.text))
        added: JSON = response.json()
        return added

    def fault(self, fault_id: str) -> JSON:
        response = httpx.get(f"{self.url}/{fault_id}", timeout=self.timeout)
        response.raise_for_status()
        found: JSON = response.json()
        return found

    def faults(self) -> list[JSON]:
        items: list[JSON] = httpx.get(self.url, timeout=self.timeout).json()["items"]
        return items

    def remove_fault(self, fault_id: str) -> JSON:
        response = httpx.delete(f"{self.url}/{fault_id}", timeout=self.timeout)
        response.raise_for_status()
        removed: JSON = response.json()
        return removed

    def clear_faults(self) -> list[JSON]:
        items: list[JSON] = httpx.delete(self.url, timeout=self.timeout).json()["items"]
        return items

    @contextlib.contextmanager
    def injected(self, **spec: Any) -> Iterator[JSON]:
        """A fault for the ``with`` block; yields it (read its counters with ``fault(id)``)."""
        added = self.add_fault(**spec)
        try:
            yield added
        finally:
            with contextlib.suppress(httpx.HTTPStatusError):
                self.remove_fault(added["id"])
