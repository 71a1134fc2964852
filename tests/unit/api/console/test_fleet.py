"""The fleet table at 1,000 accounts (paged, searched and filtered on the server; never
1,000 rows), its live fragment, and a scoped key seeing and acting on its accounts only."""

from __future__ import annotations

import re
from typing import Any

import pytest
from starlette.testclient import TestClient

from wafleet.core.models import AccountStatus
from wafleet.core.phases import Phase

from .conftest import (
    ADMIN_TOKEN,
    FLEET_SIZE,
    Scale,
    bearer,
    create_key,
    htmx,
    response_text,
    rows,
    sign_in,
)

PAGE = 50


def ids(numbers: range | list[int]) -> list[str]:
    return [f"wa-{n:020d}" for n in numbers]


def test_the_first_page_shows_50_of_1000_with_counts_by_phase(scale: Scale) -> None:
    sign_in(scale.client, ADMIN_TOKEN)
    page = response_text(scale.client.get("/"))
    assert rows(page) == ids(range(PAGE))  # creation order, one page only
    assert "Showing <b>1\u201350</b> of <b>1,000</b>" in page
    counts = dict(
        re.findall(
            r'>(All|Connected|QRReady|Reconnecting|Failed) <span class="count">([\d,]+)<', page
        )
    )
    assert counts == {
        "All": "1,000",
        "Connected": "600",
        "QRReady": "100",
        "Reconnecting": "100",
        "Failed": "200",
    }
    assert 'href="/?page=20"' in page and 'href="/?page=2"' in page  # first/last pages linked


def test_pages_walk_the_fleet_and_past_the_end_is_the_last(scale: Scale) -> None:
    sign_in(scale.client, ADMIN_TOKEN)
    seen: list[str] = []
    for number in range(1, FLEET_SIZE // PAGE + 1):
        seen += rows(response_text(scale.client.get("/", params={"page": number})))
    assert seen == [a.id for a in scale.accounts]
    last = response_text(scale.client.get("/", params={"page": 999}))
    assert rows(last) == ids(range(950, 1000)) and "Showing <b>951\u20131,000</b>" in last
    assert rows(response_text(scale.client.get("/", params={"page": "x"}))) == ids(range(PAGE))


@pytest.mark.parametrize(
    ("query", "matched", "first"),
    [
        ({"phase": "Failed"}, 200, [n for n in range(1000) if n % 10 in (8, 9)][:PAGE]),
        ({"q": "store 0123"}, 1, [123]),  # a name, any case
        ({"q": "Store 01"}, 100, list(range(100, 150))),
        ({"q": "0720000777"}, 1, [777]),  # a phone written the local way
        ({"q": "+40 720 000 777"}, 1, [777]),
        ({"q": "Store 01", "phase": "QRReady"}, 10, list(range(106, 200, 10))),
        ({"q": "nobody"}, 0, []),
        ({"phase": "NotAPhase"}, 1000, list(range(PAGE))),  # ignored
    ],
)
def test_search_and_filter_at_scale(
    scale: Scale, query: dict[str, str], matched: int, first: list[int]
) -> None:
    sign_in(scale.client, ADMIN_TOKEN)
    page = response_text(scale.client.get("/", params=query))
    assert rows(page) == ids(first)
    if matched:
        assert f"of <b>{matched:,}</b>" in page
    else:
        assert "No account matches" in page
    fragment = response_text(
        scale.client.get(
            "/console/fleet", params=query, headers=htmx(sign_in(scale.client, ADMIN_TOKEN))
        )
    )
    assert rows(fragment) == ids(first)


def test_the_polled_table_is_204_until_something_changes(scale: Scale) -> None:
    csrf = sign_in(scale.client, ADMIN_TOKEN)
    page = response_text(scale.client.get("/", params={"phase": "Connected"}))
    [poll] = re.findall(r'hx-get="(/console/fleet\?[^"]*v=[0-9a-f]{16})"', page)
    poll = poll.replace("&amp;", "&")
    assert scale.client.get(poll, headers=htmx(csrf)).status_code == 204
    backend = scale.client.app.state.backend  # type: ignore[attr-defined]
    backend._index.put_status(ids([0])[0], AccountStatus(phase=Phase.RECONNECTING))
    changed = scale.client.get(poll, headers=htmx(csrf))
    assert changed.status_code == 200
    assert ids([0])[0] not in rows(changed.text)  # no longer Connected
    assert 'Reconnecting <span class="count">101<' in changed.text
    assert scale.client.get(poll, headers=htmx(csrf)).status_code == 200  # its old digest


def test_the_fragment_alone_is_the_whole_page(scale: Scale) -> None:
    sign_in(scale.client, ADMIN_TOKEN)
    response = scale.client.get("/console/fleet", params={"q": "x"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/?q=x"


# ----- scoped keys ------------------------------------------------------------------------
@pytest.fixture
def two_accounts(client: TestClient, add_account: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    return add_account(client, "+40712345678", name="Mine"), add_account(
        client, "+40712345679", name="Theirs"
    )


def test_a_scoped_key_sees_only_its_accounts(
    client: TestClient, two_accounts: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    mine, theirs = two_accounts
    _, secret = create_key(client, scopes=["read", "send", "manage"], accountIds=[mine["id"]])
    csrf = sign_in(client, secret)
    fleet = response_text(client.get("/"))
    assert rows(fleet) == [mine["id"]] and "Theirs" not in fleet
    assert rows(response_text(client.get("/", params={"q": "Theirs"}))) == []
    assert response_text(client.get(f"/console/accounts/{mine['id']}"))
    for path in ["", "/link", "/delete"]:
        refused = client.get(f"/console/accounts/{theirs['id']}{path}")
        assert refused.status_code == 403 and "not allowed" in refused.text, path
    polled = client.get(f"/console/accounts/{theirs['id']}/part/status", headers=htmx(csrf))
    assert (
        polled.status_code == 200
        and "not allowed" in polled.text
        and "hx-trigger" not in polled.text
    )
    for action in ["disconnect", "regenerate-qr", "delete"]:
        data = {"csrf": csrf, "confirm": theirs["id"]}
        refused = client.post(f"/console/accounts/{theirs['id']}/{action}", data=data)
        assert refused.status_code == 403, action
    send = {"csrf": csrf, "to": "+40799000001", "message": "hi"}
    assert client.post(f"/console/accounts/{theirs['id']}/send", data=send).status_code == 403
    added = client.post("/console/accounts", data={"csrf": csrf, "phone": "+40712345670"})
    assert added.status_code == 403  # a new account is not in its list either
    listed = client.get("/api/whatsapp/accounts", params={"qr": "none"}, headers=bearer())
    assert [a["suspended"] for a in listed.json()["accounts"]] == [False, False]
    assert len(listed.json()["accounts"]) == 2


def test_a_read_only_key_is_offered_no_action_and_refused_them(
    client: TestClient, two_accounts: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    mine, _ = two_accounts
    _, secret = create_key(client, scopes=["read"])
    csrf = sign_in(client, secret)
    fleet = response_text(client.get("/"))
    assert len(rows(fleet)) == 2 and "Add account" not in fleet
    page = response_text(client.get(f"/console/accounts/{mine['id']}"))
    for offered in ["Disconnect", "Delete", "New QR code", 'name="message"']:
        assert offered not in page, offered
    refused = client.post(
        f"/console/accounts/{mine['id']}/send",
        data={"csrf": csrf, "to": "+40799000001", "message": "hi"},
    )
    assert refused.status_code == 403 and "lacks the &#39;send&#39; scope" in refused.text
    assert client.get("/console/accounts/new").status_code == 403
