"""Fixtures of the console tests: the standalone app of ``tests/unit/api/conftest.py``
(SQLite stores, the in-process sim), driven as a browser would (a cookie jar, forms), and
an app over 1,000 accounts held in memory for the fleet table at scale.

The ``client`` of the API tests keeps its admin bearer header: the console never reads
it (``test_sign_in`` checks that), and the tests use it for REST calls (add a key, ...).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from wafleet.core.models import Account, AccountSpec, AccountStatus, Thread
from wafleet.core.phases import Phase
from wafleet.core.settings import Settings
from wafleet.stores.base import EventLog, WebhookStore
from wafleet_api.account_index import AccountIndex, AccountSnapshot
from wafleet_api.app import create_app

ADMIN_TOKEN = "api-tests-admin-token-0123456789abcdef"  # the API tests' conftest's
LINK_KEY = b"console-tests-link-key-0123456789abcdef"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
FLEET_SIZE = 1000
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
# The phases of the fleet at scale, by account number modulo 10.
SCALE_PHASES = [Phase.CONNECTED] * 6 + [Phase.QR_READY, Phase.RECONNECTING] + [Phase.FAILED] * 2


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def sign_in(client: TestClient, secret: str) -> str:
    """Sign in through the form as a browser does; return the page's CSRF token."""
    form = client.get("/console/sign-in")
    assert form.status_code == 200, form.text
    answer = client.post(
        "/console/sign-in",
        data={"csrf": csrf_of(form.text), "secret": secret, "next": "/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    fleet = client.get(answer.headers["location"])
    assert fleet.status_code == 200, fleet.text
    return csrf_of(fleet.text)


def htmx(csrf: str) -> dict[str, str]:
    """The headers htmx sends with a console poll."""
    return {"HX-Request": "true", "X-CSRF-Token": csrf}


def bearer(secret: str = ADMIN_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def create_key(client: TestClient, **body: Any) -> tuple[dict[str, Any], str]:
    response = client.post("/api/keys", json={"name": "console key", **body}, headers=bearer())
    assert response.status_code == 201, response.text
    answer = response.json()
    return answer["key"], answer["secret"]


# ----- 1,000 accounts in memory ------------------------------------------------------------
def scale_account(n: int) -> Account:
    phase = SCALE_PHASES[n % len(SCALE_PHASES)]
    spec = AccountSpec(
        id=f"wa-{n:020d}",
        phone=f"+4072{n:07d}",
        name=f"Store {n:04d}",
        created_at=T0 + timedelta(seconds=n),
    )
    reason = "the session store cannot be read" if phase == Phase.FAILED else None
    return Account(spec, AccountStatus(phase=phase, reason=reason, reconnects=n % 4))


class MemoryBackend:
    """The read side of an ``AccountBackend`` over a fixed set of accounts in memory."""

    def __init__(self, accounts: Sequence[Account]) -> None:
        self._index = AccountIndex(accounts)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def ready(self) -> bool:
        return True

    async def get(self, account_id: str) -> Account | None:
        return self._index.get(account_id)

    def snapshot(self) -> AccountSnapshot:
        return self._index.snapshot()

    async def threads(
        self, *, account_id: str | None, thread_id: str | None, limit: int
    ) -> list[Thread]:
        return []

    def _unused(self, *_: object) -> Any:
        raise AssertionError("the fleet tests only read")

    add = regenerate_qr = disconnect = delete = send = outbox_item = _unused

    @property
    def event_log(self) -> EventLog:
        return self._unused()  # type: ignore[no-any-return]

    @property
    def webhook_store(self) -> WebhookStore:
        return self._unused()  # type: ignore[no-any-return]

    def deliveries_changed(self) -> None:
        return None


@dataclass(frozen=True)
class Scale:
    client: TestClient
    accounts: list[Account]


@pytest.fixture
def scale(tmp_path: Path) -> Iterator[Scale]:
    """A started app over ``FLEET_SIZE`` accounts; the client is signed in as the admin."""
    accounts = [scale_account(n) for n in range(FLEET_SIZE)]
    settings = Settings(data_dir=tmp_path / "data", admin_token=ADMIN_TOKEN)
    app = create_app(
        settings,
        MemoryBackend(accounts),  # type: ignore[arg-type]
        admin_token=ADMIN_TOKEN,
        link_key=LINK_KEY,
    )
    with TestClient(app) as client:
        yield Scale(client, accounts)


def rows(html: str) -> list[str]:
    """The account ids of a fleet table, in order."""
    return re.findall(r'<tr data-account="([^"]+)"', html)


def response_text(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return response.text
