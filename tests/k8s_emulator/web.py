"""Request and response plumbing shared by the handlers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml
from starlette.requests import Request
from starlette.responses import Response

from k8s_emulator import protobuf
from k8s_emulator.common import Options
from k8s_emulator.errors import (
    bad_request,
    unsupported_media_type,
)
from k8s_emulator.resources import ResourceType

JSON = dict[str, Any]
TRUE = {"1", "t", "T", "true", "TRUE", "True"}
BODY_TYPES = ["application/json", "application/yaml"]
PATCH_TYPES = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
]


class JsonFloat(float):
    """A JSON number with a fraction or exponent, keeping its text for Go's error messages."""

    text: str

    def __new__(cls, text: str) -> JsonFloat:
        number = super().__new__(cls, text)
        number.text = text
        return number


@dataclass
class Target:
    rtype: ResourceType
    namespace: str  # "" for cluster scope or all namespaces
    name: str
    subresource: str
    watch_prefix: bool = False


@dataclass
class Settings:
    bookmark_interval: float = 60.0
    default_watch_timeout: float = 1800.0


def json_response(body: JSON, code: int = 200, warnings: list[str] | None = None) -> Response:
    response = Response(
        json.dumps(body, separators=(",", ":")), status_code=code, media_type="application/json"
    )
    for warning in warnings or []:
        escaped = warning.replace("\\", "\\\\").replace('"', '\\"')
        response.headers.append("Warning", f'299 - "{escaped}"')
    return response


def accepts(request: Request, what: str) -> bool:
    return f"as={what};" in request.headers.get("accept", "").replace(" ", "") + ";"


async def read_body(request: Request, allow_yaml: bool = True) -> Any:
    raw = await request.body()
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if content_type == protobuf.PROTOBUF:
        return protobuf.decode(raw)
    if content_type not in BODY_TYPES and not content_type.endswith(("+json", "+yaml")):
        raise unsupported_media_type(content_type, BODY_TYPES)
    try:
        if "yaml" in content_type and allow_yaml:
            return yaml.safe_load(raw)
        return json.loads(raw or b"null", parse_float=JsonFloat)
    except (ValueError, yaml.YAMLError) as error:
        raise bad_request(f"error decoding request body: {error}") from error


def options(request: Request, patch: bool = False) -> Options:
    validation = request.query_params.get("fieldValidation", "Warn") or "Warn"
    if validation not in ("Strict", "Warn", "Ignore"):
        raise bad_request(
            f"fieldValidation parameter unsupported: {validation}, supported values: Ignore, "
            "Warn, Strict"
        )
    dry_run = request.query_params.getlist("dryRun")
    return Options(dry_run="All" in dry_run, field_validation=validation, patch=patch)
