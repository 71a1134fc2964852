"""The console's static files: htmx (vendored), its CSS and its one script, from memory.

Only these files are served (not the licence or notes beside them). Each URL carries a
hash of the file (``?v=``), so a browser may keep a file for a long time and still never
runs an old copy after an upgrade.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.resources import files

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from wafleet_api.console.paths import STATIC

SERVED = {
    "htmx.min.js": "text/javascript; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}
LONG_CACHE = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    version: str  # the first 16 hex digits of the file's SHA-256


class Assets:
    def __init__(self) -> None:
        folder = files("wafleet_api.console").joinpath("static")
        self._assets: dict[str, Asset] = {}
        for name, media_type in SERVED.items():
            body = folder.joinpath(name).read_bytes()
            self._assets[name] = Asset(body, media_type, hashlib.sha256(body).hexdigest()[:16])

    def url(self, name: str) -> str:
        return f"{STATIC}/{name}?v={self._assets[name].version}"

    def response(self, request: Request) -> Response:
        asset = self._assets.get(request.path_params["name"])
        if asset is None:
            return PlainTextResponse("no such file", status_code=404)
        etag = f'"{asset.version}"'
        headers = {"ETag": etag, "Cache-Control": LONG_CACHE}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        if request.query_params.get("v") not in (None, asset.version):
            headers["Cache-Control"] = "no-cache"  # an old page asking: do not keep it long
        return Response(asset.body, media_type=asset.media_type, headers=headers)
