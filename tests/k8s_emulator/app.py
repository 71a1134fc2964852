"""The Starlette application: URL parsing, authentication, audit, RBAC, routing."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from k8s_emulator import discovery, rbac
from k8s_emulator.audit import AuditEntry, AuditLog, Authenticator, Identity, timestamp
from k8s_emulator.common import Options
from k8s_emulator.control import faults_endpoint
from k8s_emulator.errors import ApiError, internal, route_not_found
from k8s_emulator.faults import FaultSet, RequestInfo
from k8s_emulator.handlers import Handlers
from k8s_emulator.operations import Operations
from k8s_emulator.store import Store
from k8s_emulator.web import TRUE, Settings, Target, json_response

JSON = dict[str, Any]
log = logging.getLogger("k8s_emulator")
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


@dataclass
class Emulator:
    store: Store
    ops: Operations
    handlers: Handlers
    audit: AuditLog = field(default_factory=AuditLog)
    auth: Authenticator = field(default_factory=Authenticator)
    faults: FaultSet = field(default_factory=FaultSet)
    enforce_rbac: bool = False


def parse(emulator: Emulator, path: str) -> tuple[str, str, list[str]] | None:
    """(group, version, rest) for an API path, None for anything else."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        return "", parts[1], parts[2:]
    if len(parts) >= 3 and parts[0] == "apis":
        return parts[1], parts[2], parts[3:]
    return None


def target_for(emulator: Emulator, group: str, version: str, rest: list[str]) -> Target:
    registry = emulator.store.registry
    watch_prefix = bool(rest) and rest[0] == "watch"
    if watch_prefix:
        rest = rest[1:]
    namespace = ""
    if (
        len(rest) >= 3
        and rest[0] == "namespaces"
        and not (group == "" and rest[2] in ("status", "finalize"))
    ):
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        raise route_not_found()
    rtype = registry.find(group, version, rest[0])
    if rtype is None or (namespace and not rtype.namespaced):
        raise route_not_found()
    name = rest[1] if len(rest) > 1 else ""
    return Target(rtype, namespace, name, rest[2] if len(rest) > 2 else "", watch_prefix)


def verb_for(method: str, target: Target | None, watch_param: bool) -> str:
    if target is None:
        return method.lower()
    if method == "GET":
        if target.name:
            return "watch" if target.watch_prefix else "get"
        return "watch" if watch_param or target.watch_prefix else "list"
    if method == "DELETE" and not target.name:
        return "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(
        method, method.lower()
    )


def _discovery(emulator: Emulator, request: Request, path: str) -> JSON | bytes | None:
    registry = emulator.store.registry
    parts = [p for p in path.split("/") if p]
    if path in ("/version", "/version/"):
        return discovery.KUBE_VERSION
    if parts == ["api"]:
        return discovery.api_versions()
    if parts == ["apis"]:
        return discovery.api_group_list(registry)
    if len(parts) == 2 and parts[0] == "apis":
        return discovery.api_group(registry, parts[1])
    if (len(parts) == 2 and parts[0] == "api") or (len(parts) == 3 and parts[0] == "apis"):
        group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
        return discovery.resource_list(registry, group, version)
    if parts == ["openapi", "v2"]:
        if "protobuf" in request.headers.get("accept", ""):
            return discovery.openapi_v2_protobuf()
        return discovery.openapi_v2_json()
    if parts == ["openapi", "v3"]:
        return discovery.openapi_v3_root(registry)
    if len(parts) >= 4 and parts[:2] == ["openapi", "v3"]:
        group, version = (
            ("", parts[3]) if parts[2] == "api" else (parts[3], parts[4] if len(parts) > 4 else "")
        )
        if registry.in_version(group, version):
            return discovery.openapi_v3_group_version(registry, group, version)
    return None


async def api(request: Request) -> Response:
    emulator: Emulator = request.app.state.emulator
    path = request.url.path
    identity = emulator.auth.identify(
        request.headers.get("authorization"),
        request.headers.get("impersonate-user"),
        tuple(request.headers.getlist("impersonate-group")),
    )
    target: Target | None = None
    code = 500
    verb = request.method.lower()
    try:
        parsed = parse(emulator, path)
        if parsed is not None and parsed[2]:
            target = target_for(emulator, *parsed)
        verb = verb_for(request.method, target, request.query_params.get("watch") in TRUE)
        if identity is None:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        if target is not None:
            injected = await _inject(emulator, request, target, verb)
            if injected is not None:
                code = injected.status_code
                return injected
        _authorize(emulator, identity, target, verb, path)
        if target is not None:
            response = await emulator.handlers.handle(request, target, verb)
        else:
            found = _discovery(emulator, request, path) if request.method == "GET" else None
            if found is None:
                raise route_not_found()
            if isinstance(found, bytes):
                media = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
                response = Response(found, media_type=media)
            else:
                response = json_response(found)
        code = response.status_code
        return response
    except ApiError as error:
        code = error.code
        failed = json_response(error.status(), error.code)
        failed.headers.update(error.response_headers())
        return failed
    except Exception as error:  # an emulator bug: answer like the API server would
        log.exception("internal error on %s %s", request.method, path)
        code = 500
        return json_response(internal(repr(error)).status(), 500)
    finally:
        _record(emulator, request, identity, target, verb, code)


async def _inject(
    emulator: Emulator, request: Request, target: Target, verb: str
) -> Response | None:
    """The faults in force for this request: added latency, an error answer, a broken watch."""
    info = RequestInfo(
        verb=verb,
        group=target.rtype.group,
        resource=target.rtype.plural,
        namespace=target.namespace,
        name=target.name,
    )
    decision = emulator.faults.decide(info)
    if decision.latency > 0:
        await asyncio.sleep(decision.latency)
    request.state.watch_fault = decision.watch
    return None if decision.answer is None else decision.answer.response()


def _authorize(
    emulator: Emulator, identity: Identity, target: Target | None, verb: str, path: str
) -> None:
    if not emulator.enforce_rbac:
        return
    attrs = rbac.Attributes(
        verb=verb,
        group=target.rtype.group if target else "",
        resource=target.rtype.plural if target else "",
        subresource=target.subresource if target else "",
        namespace=target.namespace if target and target.rtype.namespaced else "",
        name=target.name if target else "",
        path=path,
        resource_request=target is not None,
    )
    if not rbac.allowed(emulator.store, identity, attrs):
        details: JSON = {}
        if target is not None:
            details = {
                "name": target.name,
                "group": target.rtype.group,
                "kind": target.rtype.plural,
            }
            details = {k: v for k, v in details.items() if v}
        raise ApiError(403, "Forbidden", rbac.forbidden_message(identity, attrs), details)


def _record(
    emulator: Emulator,
    request: Request,
    identity: Identity | None,
    target: Target | None,
    verb: str,
    code: int,
) -> None:
    emulator.audit.record(
        AuditEntry(
            time=timestamp(),
            verb=verb,
            apiGroup=target.rtype.group if target else "",
            apiVersion=target.rtype.version if target else "",
            resource=target.rtype.plural if target else "",
            subresource=target.subresource if target else "",
            namespace=target.namespace if target and target.rtype.namespaced else "",
            name=target.name if target else "",
            user=identity.user if identity else "",
            groups=list(identity.groups) if identity else [],
            method=request.method,
            path=request.url.path,
            code=code,
            nonResourceURL=target is None,
        )
    )


async def audit_endpoint(request: Request) -> Response:
    emulator: Emulator = request.app.state.emulator
    if request.method == "DELETE":
        emulator.audit.clear()
        return json_response({"kind": "AuditLog", "items": []})
    return json_response(emulator.audit.as_json(request.query_params.get("user")))


async def tokens_endpoint(request: Request) -> Response:
    """POST {"token": ..., "user": ...}: make a bearer token stand for a user."""
    emulator: Emulator = request.app.state.emulator
    body = json.loads(await request.body())
    emulator.auth.tokens[str(body["token"])] = str(body["user"])
    return json_response({"token": body["token"], "user": body["user"]}, 201)


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


def create_app(
    store: Store | None = None,
    settings: Settings | None = None,
    tokens: dict[str, str] | None = None,
    enforce_rbac: bool = False,
) -> Starlette:
    store = store or Store()
    ops = Operations(store)
    for name in DEFAULT_NAMESPACES:
        if store.get(("", "namespaces"), "", name) is None:
            namespace_type = store.registry.find("", "v1", "namespaces")
            assert namespace_type is not None
            ops.create(namespace_type, "", {"metadata": {"name": name}}, Options())
    emulator = Emulator(store, ops, Handlers(ops, settings or Settings()))
    emulator.auth.tokens.update(tokens or {})
    emulator.enforce_rbac = enforce_rbac
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    app = Starlette(
        routes=[
            Route("/_emulator/audit", audit_endpoint, methods=["GET", "DELETE"]),
            Route("/_emulator/tokens", tokens_endpoint, methods=["POST"]),
            Route("/_emulator/faults", faults_endpoint, methods=["GET", "POST", "DELETE"]),
            Route("/_emulator/faults/{fault_id}", faults_endpoint, methods=["GET", "DELETE"]),
            Route("/healthz", healthz),
            Route("/livez", healthz),
            Route("/readyz", healthz),
            Route("/{path:path}", api, methods=methods),
        ]
    )
    app.state.emulator = emulator
    return app
