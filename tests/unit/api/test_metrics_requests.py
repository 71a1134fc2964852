"""Request latency by route template (request_metrics.py), on a small Starlette app of the
test's own and on the API's app wrapped in the middleware; the API's /metrics with every
in-process component of standalone mode; one registry per app."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from wafleet.core.settings import Settings
from wafleet.core.token import AdminToken
from wafleet_api.metrics import api_metrics
from wafleet_api.request_metrics import RequestMetrics
from wafleet_app.standalone import create_standalone_app

with warnings.catch_warnings():
    # Starlette 1.x warns once, at import, that its test client will move to httpx2.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

DURATION = "wafleet_api_request_duration_seconds"
PHONE = "+40712345601"


class Refuse:
    """A middleware that answers 401 before routing when asked to (as BearerAuth does)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (b"x-refuse", b"1") in scope["headers"]:
            await PlainTextResponse("no", status_code=401)(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def item(request: Request) -> Response:
    return JSONResponse({"id": request.path_params["item_id"]})


async def boom(_: Request) -> Response:
    raise RuntimeError("the handler failed")


async def thing(_: Request) -> Response:
    return PlainTextResponse("thing")


def small_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/items/{item_id}", item, methods=["GET"]),
            Route("/boom", boom),
            Mount("/sub", routes=[Route("/things/{name}", thing)]),
        ],
        middleware=[Middleware(RequestMetrics), Middleware(Refuse)],
    )


def count(app: Starlette, route: str, method: str, status: str) -> float | None:
    labels = {"route": route, "method": method, "status": status}
    return api_metrics(app).metrics.sample(f"{DURATION}_count", labels)


def label_values(app: Starlette) -> set[str]:
    return {
        value
        for family in api_metrics(app).metrics.registry.collect()
        if family.name == DURATION
        for sample in family.samples
        for value in sample.labels.values()
    }


def test_routes_are_labelled_by_their_template_never_the_raw_path() -> None:
    app = small_app()
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/items/wa-secret123").status_code == 200
        assert client.get("/items/wa-other456").status_code == 200
        assert client.post("/items/wa-secret123").status_code == 405
        assert client.get("/items/wa-x", headers={"x-refuse": "1"}).status_code == 401
        assert client.get("/boom").status_code == 500
        assert client.get("/sub/things/t-42").status_code == 200
        assert client.get("/no/such/+40712345678").status_code == 404
        assert client.request("BREW", "/items/wa-y").status_code == 405
    assert count(app, "/items/{item_id}", "GET", "2xx") == 2
    assert count(app, "/items/{item_id}", "POST", "4xx") == 1  # 405: the route's template
    assert count(app, "/items/{item_id}", "GET", "4xx") == 1  # refused before routing
    assert count(app, "/boom", "GET", "5xx") == 1
    assert count(app, "/sub/things/{name}", "GET", "2xx") == 1
    assert count(app, "unmatched", "GET", "4xx") == 1
    assert count(app, "/items/{item_id}", "other", "4xx") == 1  # a made-up method
    values = label_values(app)
    assert not [v for v in values if "wa-" in v or "t-42" in v or "+407" in v], values


def test_a_request_is_timed_once_even_when_wrapped_twice() -> None:
    app = small_app()
    with TestClient(RequestMetrics(app)) as client:
        assert client.get("/items/a").status_code == 200
    assert count(app, "/items/{item_id}", "GET", "2xx") == 1


def test_each_app_has_its_own_registry() -> None:
    first, second = small_app(), small_app()
    assert api_metrics(first) is not api_metrics(second)
    with TestClient(first) as client:
        client.get("/items/a")
    assert count(first, "/items/{item_id}", "GET", "2xx") == 1
    assert count(second, "/items/{item_id}", "GET", "2xx") is None


@pytest.fixture
def wrapped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, admin_token: str
) -> Iterator[tuple[Starlette, Any]]:
    """The standalone app (create_app's, with the sim) wrapped in the middleware, as
    app.py's middleware list will have it."""
    monkeypatch.setenv("WAFLEET_SIM_QR_FIRST_TTL", "60")
    settings = Settings(
        data_dir=tmp_path / "data",
        transport="sim",
        admin_token=admin_token,
        start_rate=100.0,
        start_burst=100,
    )
    app = create_standalone_app(settings, AdminToken(admin_token, "environment"))
    headers = {"Authorization": f"Bearer {admin_token}"}
    with TestClient(RequestMetrics(app), headers=headers) as client:
        yield app, client


def scrape(client: Any) -> dict[str, Any]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    return {f.name: f for f in text_string_to_metric_families(response.text)}


def value(families: dict[str, Any], family: str, sample: str, **labels: str) -> float | None:
    for found in families[family].samples:
        if found.name == sample and found.labels == labels:
            return float(found.value)
    return None


def test_the_api_and_standalone_components_on_one_metrics(
    wrapped: tuple[Starlette, Any], onboard: Callable[..., dict[str, Any]]
) -> None:
    _, client = wrapped
    account = onboard(client, PHONE)
    account_id = account["id"]
    assert client.get(f"/api/whatsapp/accounts/{account_id}").status_code == 200
    saved = client.headers.pop("Authorization")
    assert client.get(f"/api/whatsapp/accounts/{account_id}").status_code == 401
    assert client.get("/metrics").status_code == 401  # the API's authentication stays
    client.headers["Authorization"] = saved
    families = scrape(client)

    route = "/api/whatsapp/accounts/{account_id}"
    by_route = families[DURATION]
    assert by_route.type == "histogram"
    assert value(families, DURATION, f"{DURATION}_count", route=route, method="GET", status="2xx")
    assert value(families, DURATION, f"{DURATION}_count", route=route, method="GET", status="4xx")
    labels = {v for s in by_route.samples for k, v in s.labels.items() if k != "le"}
    assert not [v for v in labels if account_id in v or PHONE[1:] in v], labels

    assert families["wafleet_accounts"].type == "gauge"
    assert value(families, "wafleet_accounts", "wafleet_accounts", phase="Connected") == 1
    assert families["wafleet_account_reconnects"].type == "counter"
    assert value(families, "wafleet_account_reconnects", "wafleet_account_reconnects_total") == 0
    connected = value(
        families, "wafleet_session_connected", "wafleet_session_connected", account=account_id
    )
    assert connected == 1
    shard = value(
        families, "wafleet_shard_sessions", "wafleet_shard_sessions", shard="0", phase="Connected"
    )
    assert shard == 1
    assert families["wafleet_outbox_send_latency_seconds"].type == "histogram"
    assert "wafleet_webhook_deliveries" in families
    assert "process_resident_memory_bytes" in families
    for family in families.values():
        for sample in family.samples:
            assert PHONE[1:] not in str(sample.labels), sample  # never a phone in a label
