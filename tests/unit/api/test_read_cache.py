"""The in-memory account index and the answer cache the read routes are served from."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from wafleet.core.models import Account, AccountSpec, AccountStatus
from wafleet.core.phases import Phase
from wafleet_api import qr
from wafleet_api.account_index import AccountIndex
from wafleet_api.listing import ListOptions, page
from wafleet_api.view_cache import Body, ViewCache
from wafleet_api.views import account_view, dashboard_account

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def account(n: int, *, at: datetime | None = None, qr_code: str | None = None) -> Account:
    spec = AccountSpec(
        id=f"wa-{n:04d}", phone=f"+4071200{n:04d}", name=f"A{n}", created_at=at or T0
    )
    status = AccountStatus(phase=Phase.QR_READY, qr=qr_code) if qr_code else AccountStatus()
    return Account(spec, status)


def test_the_snapshot_is_rebuilt_only_on_a_change() -> None:
    one = account(1)
    index = AccountIndex([one])
    first = index.snapshot()
    index.put(replace(one))  # an equal copy: nothing changed
    assert index.snapshot() is first
    index.put_status("wa-0001", AccountStatus(phase=Phase.CONNECTED))
    second = index.snapshot()
    assert second is not first and second.accounts[0].status.phase == Phase.CONNECTED
    index.put_status("wa-9999", AccountStatus(phase=Phase.CONNECTED))  # not ours
    assert index.snapshot() is second and len(index) == 1
    index.remove("wa-0001")
    assert index.snapshot() is not second and index.get("wa-0001") is None


def test_snapshot_is_in_creation_order_then_id_and_reused_until_a_change() -> None:
    late, early = account(1, at=T0 + timedelta(seconds=5)), account(2, at=T0)
    same_time = account(3, at=T0)
    index = AccountIndex([late, same_time, early])
    snapshot = index.snapshot()
    assert [a.id for a in snapshot.accounts] == ["wa-0002", "wa-0003", "wa-0001"]
    assert index.snapshot() is snapshot
    index.put_spec(replace(early.spec, suspended=True))
    changed = index.snapshot()
    assert changed is not snapshot and changed.accounts[0].spec.suspended
    assert changed.accounts[0].status == early.status  # a new spec keeps the status


def test_pages_walk_every_account_once_even_with_whole_second_timestamps() -> None:
    # Times with and without microseconds: a cursor compares formatted times as text.
    accounts = [
        account(n, at=T0 + timedelta(seconds=n // 3, microseconds=n % 2)) for n in range(50)
    ]
    snapshot = AccountIndex(accounts).snapshot()
    seen: list[str] = []
    cursor: str | None = None
    while True:
        query = {"limit": "7"} | ({"cursor": cursor} if cursor else {})
        chosen, cursor = page(snapshot, ListOptions.of(query))
        seen += [a.id for a in chosen]
        if cursor is None:
            break
    assert seen == [a.id for a in snapshot.accounts]
    assert len(set(seen)) == 50


def test_cached_answers_are_the_views_and_rebuilt_after_a_change() -> None:
    index = AccountIndex(
        [account(1), account(2, qr_code="2@abc,def,ghi,jkl")] + [account(n) for n in range(3, 12)]
    )
    views = ViewCache()
    snapshot = index.snapshot()

    def listing(accounts: Sequence[Account]) -> Body:
        return views.answer(("all",), accounts, lambda: views.accounts(accounts, "png"), True)

    body = listing(snapshot.accounts)
    decoded = json.loads(body.raw)
    assert decoded == [account_view(a) for a in snapshot.accounts]
    assert decoded[1]["qrCode"].startswith("data:image/png;base64,")
    assert body.gzipped is not None and gzip.decompress(body.gzipped) == body.raw
    assert listing(snapshot.accounts) is body  # the same accounts: the cached answer
    index.put_status("wa-0001", AccountStatus(phase=Phase.CONNECTED, jid="1@s.whatsapp.net"))
    fresh = listing(index.snapshot().accounts)
    assert fresh is not body
    assert json.loads(fresh.raw)[0]["phase"] == "Connected"
    first_page = index.snapshot().accounts[1:3]
    page_body = views.answer(
        ("page",), first_page, lambda: views.accounts(first_page, "raw"), False
    )
    index.put_status("wa-0011", AccountStatus(phase=Phase.CONNECTED))  # not on that page
    same_page = index.snapshot().accounts[1:3]
    assert views.answer(("page",), same_page, lambda: b"rebuilt", False) is page_body
    assert json.loads(views.dashboard_array(same_page)) == [dashboard_account(a) for a in same_page]


def test_qr_forms_are_cached_apart() -> None:
    one = account(1, qr_code="2@form,test,code,x")
    views = ViewCache()
    assert json.loads(views.account(one, "none"))["qr"] is None
    assert json.loads(views.account(one, "raw"))["qrCode"] is None
    assert json.loads(views.account(one, "png"))["qrCode"].startswith("data:image/png")


async def test_a_code_many_readers_wait_for_is_rendered_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rendered: list[str] = []
    real = qr.qr_png_data_url

    def counting(code: str) -> str:
        rendered.append(code)
        return real(code)

    monkeypatch.setattr(qr, "qr_png_data_url", counting)
    renderer = qr.QrRenderer()
    try:
        codes = [f"2@render-once-{n},a,b,c" for n in range(3)]
        await asyncio.gather(*(renderer.ready(codes) for _ in range(8)))
        assert sorted(rendered) == sorted(codes)
        assert all(qr.is_cached(code) for code in codes)
    finally:
        renderer.close()
