"""kopf handlers meet a throttled API server: retried after its Retry-After, not 60 s later."""

from __future__ import annotations

from typing import Any

import kopf
import pytest

from wafleet.kube.client import Conflict, KubeError, TooManyRequests
from wafleet_operator import actions, handlers


async def run_timer(monkeypatch: pytest.MonkeyPatch, error: KubeError) -> None:
    async def failing(*_: Any) -> None:
        raise error

    monkeypatch.setattr(actions, "reconcile", failing)
    monkeypatch.setattr(actions.Indexes, "of", staticmethod(lambda kwargs: None))
    memo = kopf.Memo(state=None)
    await handlers.retry_pending(body=kopf.Body({"metadata": {"name": "wa-x"}}), memo=memo)


async def test_a_throttled_api_server_is_retried_after_its_retry_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(kopf.TemporaryError) as later:
        await run_timer(monkeypatch, TooManyRequests(429, "TooManyRequests", "", retry_after=3))
    assert later.value.delay == 3
    with pytest.raises(kopf.TemporaryError) as soon:
        await run_timer(monkeypatch, KubeError(503, "ServiceUnavailable", "etcd"))
    assert soon.value.delay == handlers.API_RETRY


async def test_a_refusal_is_not_dressed_up_as_temporary(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(Conflict):
        await run_timer(monkeypatch, Conflict(409, "Conflict", "modified"))
