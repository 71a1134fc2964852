"""The accounts mirror: debounced, ordered, retried, owner-only writes of accounts/{id}.

Time is driven (``FakeTime``): the mirror's clock and sleep are the test's, so "nothing
was written before the delay" is a fact of the fake clock, not of a real wait.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions

from support.shard import account, close_shard, open_shard
from wafleet.core.models import AccountSpec, AccountStatus
from wafleet.core.phases import Phase
from wafleet.core.settings import Settings
from wafleet.stores.firestore_accounts import AccountState, account_state
from wafleet_connector.accounts_mirror import AccountsMirror, MirrorConfig, open_accounts_mirror
from wafleet_connector.pacing import Backoff

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SPEC = AccountSpec(id="wa-mirror1", phone="+40712000001", name="Desk")


class Highest(random.Random):
    """Full jitter drawing its ceiling: backoff delays become exact (2, 4, 8 ... s)."""

    def uniform(self, a: float, b: float) -> float:
        return b


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (self.now + seconds, future)
        self._sleepers.append(entry)
        try:
            await future
        finally:
            if entry in self._sleepers:
                self._sleepers.remove(entry)

    async def advance(self, seconds: float) -> None:
        """Move the clock on, waking each sleeper at its time, in order."""
        target = self.now + seconds
        while True:
            await settle()
            due = [(at, f) for at, f in self._sleepers if at <= target and not f.done()]
            if not due:
                break
            self.now = max(self.now, min(at for at, _ in due))
            for at, future in due:
                if at <= self.now:
                    future.set_result(None)
        self.now = target
        await settle()


async def settle() -> None:
    """Let every task run until it waits again (the fakes never wait on real I/O)."""
    for _ in range(30):
        await asyncio.sleep(0)


@dataclass
class FakeSink:
    """Records writes; ``errors`` are raised by the next writes, ``gate`` holds them."""

    writes: list[AccountState] = field(default_factory=list)
    attempts: list[AccountState] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    errors: list[Exception] = field(default_factory=list)
    gate: asyncio.Event | None = None
    in_flight: int = 0
    most_in_flight: int = 0
    closed: bool = False
    ownership_seen: list[bool] = field(default_factory=list)

    def state(self, spec: AccountSpec, status: AccountStatus) -> AccountState:
        return account_state(spec, status)

    async def write(self, state: AccountState, still_ours: Callable[[], bool]) -> bool:
        self.attempts.append(state)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.errors:
                raise self.errors.pop(0)
            self.ownership_seen.append(still_ours())
            self.writes.append(state)
            return True
        finally:
            self.in_flight -= 1

    async def mark_deleted(self, account_id: str) -> bool:
        if self.gate is not None:
            await self.gate.wait()
        if self.errors:
            raise self.errors.pop(0)
        self.deletes.append(account_id)
        return True

    def forget(self, account_id: str) -> None:
        self.forgotten.append(account_id)

    async def close(self) -> None:
        self.closed = True


@dataclass
class Rig:
    time: FakeTime
    sink: FakeSink
    owned: dict[str, AccountSpec]
    mirror: AccountsMirror

    def put(self, phase: Phase, spec: AccountSpec = SPEC, **changes: Any) -> None:
        stamp = T0 + timedelta(seconds=self.time.now)
        changes.setdefault("last_event_at", stamp)
        self.mirror.put(spec.id, AccountStatus(phase=phase, updated_at=stamp, **changes))

    def written(self) -> list[tuple[str, str | None]]:
        return [(s.status, s.qr) for s in self.sink.writes]


@pytest.fixture
def rig() -> Rig:
    time = FakeTime()
    sink = FakeSink()
    owned = {SPEC.id: SPEC}
    config = MirrorConfig(delay=2.0, retry=Backoff(1.0, 60.0, rng=Highest()), close_timeout=1.0)
    mirror = AccountsMirror(sink, owned.get, config, clock=time.clock, sleep=time.sleep)
    return Rig(time, sink, owned, mirror)


# ----- debounce ------------------------------------------------------------------------------


async def test_changes_within_the_delay_are_written_once_and_the_last_wins(rig: Rig) -> None:
    rig.put(Phase.PENDING)
    await rig.time.advance(0.5)
    rig.put(Phase.CONNECTING)
    await rig.time.advance(0.5)
    rig.put(Phase.QR_READY, qr="code-1")
    await rig.time.advance(0.99)
    assert rig.written() == []  # 1.99 s after the first change
    await rig.time.advance(0.01)
    assert rig.written() == [("qr_ready", "code-1")]
    await rig.time.advance(60)
    assert len(rig.sink.attempts) == 1


async def test_a_qr_code_rotating_every_20_s_costs_one_write_per_code(rig: Rig) -> None:
    rig.put(Phase.CONNECTING)
    for n in range(6):
        await rig.time.advance(0.3 if n == 0 else 20)
        rig.put(Phase.QR_READY, qr=f"code-{n}")
    await rig.time.advance(20)
    assert rig.written() == [("qr_ready", f"code-{n}") for n in range(6)]


async def test_a_report_that_changes_nothing_shown_writes_nothing(rig: Rig) -> None:
    rig.put(Phase.CONNECTED, jid="40712000001@s.whatsapp.net")
    await rig.time.advance(2)
    assert len(rig.sink.writes) == 1
    for n in range(5):  # newer event times, reconnect counts: not on the document
        rig.put(Phase.CONNECTED, jid="40712000001@s.whatsapp.net", reconnects=n)
        await rig.time.advance(3)
    assert len(rig.sink.attempts) == 1
    rig.put(Phase.CONNECTED, jid="40712000001@s.whatsapp.net", last_message_at=T0)
    await rig.time.advance(2)
    assert len(rig.sink.writes) == 2 and rig.sink.writes[-1].last_message_at == T0


async def test_a_change_and_its_undoing_within_the_delay_write_nothing(rig: Rig) -> None:
    rig.put(Phase.CONNECTED)
    await rig.time.advance(2)
    rig.put(Phase.RECONNECTING, reason="keepalive")
    await rig.time.advance(1)
    rig.put(Phase.CONNECTED)
    await rig.time.advance(5)
    assert rig.written() == [("connected", None)]


async def test_one_write_at_a_time_and_put_never_waits(rig: Rig) -> None:
    rig.sink.gate = asyncio.Event()
    rig.put(Phase.QR_READY, qr="code-1")
    await rig.time.advance(2)
    assert len(rig.sink.attempts) == 1  # in flight, held by the gate
    rig.put(Phase.QR_READY, qr="code-2")  # returns at once although a write is pending
    rig.put(Phase.QR_READY, qr="code-3")
    await rig.time.advance(10)
    assert len(rig.sink.attempts) == 1 and rig.sink.most_in_flight == 1
    rig.sink.gate.set()
    await rig.time.advance(0)
    assert rig.written() == [("qr_ready", "code-1"), ("qr_ready", "code-3")]


async def test_a_zero_delay_writes_at_once(rig: Rig) -> None:
    rig.mirror.config = replace(rig.mirror.config, delay=0.0)
    rig.put(Phase.QR_READY, qr="code-1")
    await rig.time.advance(0)
    assert rig.written() == [("qr_ready", "code-1")]


# ----- failures ------------------------------------------------------------------------------


async def test_a_failed_write_is_retried_with_backoff_newest_state_only(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="wafleet_connector.accounts_mirror")
    leak = f"unavailable for {SPEC.phone}"  # an error text that names a phone
    rig.sink.errors = [exceptions.ServiceUnavailable(leak), exceptions.DeadlineExceeded("slow")]
    rig.put(Phase.QR_READY, qr="code-1")
    await rig.time.advance(2)
    assert [s.qr for s in rig.sink.attempts] == ["code-1"]  # failed; next try in 2 s
    rig.put(Phase.QR_READY, qr="code-2")
    rig.put(Phase.QR_READY, qr="code-3")
    await rig.time.advance(1.99)
    assert len(rig.sink.attempts) == 1
    await rig.time.advance(0.01)
    assert [s.qr for s in rig.sink.attempts] == ["code-1", "code-3"]  # failed; next in 4 s
    await rig.time.advance(3.99)
    assert len(rig.sink.attempts) == 2
    await rig.time.advance(0.01)
    assert rig.written() == [("qr_ready", "code-3")]
    assert len(rig.sink.attempts) == 3
    await rig.time.advance(120)
    assert len(rig.sink.attempts) == 3  # written: no more retries

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # the first failure of a streak; the others at debug
    for record in caplog.records:
        assert SPEC.phone not in record.getMessage()
        assert SPEC.phone not in str(record.__dict__)
    assert "+407****01" in str(warnings[0].__dict__["error"])


async def test_a_failed_write_is_retried_without_new_reports(rig: Rig) -> None:
    rig.sink.errors = [RuntimeError("boom")] * 3
    rig.put(Phase.CONNECTED)
    await rig.time.advance(2 + 2 + 4 + 8)
    assert rig.written() == [("connected", None)]


async def test_errors_in_a_report_never_reach_the_manager(rig: Rig) -> None:
    def broken(account_id: str) -> AccountSpec | None:
        raise RuntimeError("registry gone")

    rig.mirror._spec_of = broken
    rig.put(Phase.CONNECTED)  # does not raise
    await rig.time.advance(10)
    assert rig.sink.attempts == []


# ----- ownership -----------------------------------------------------------------------------


async def test_an_account_released_before_its_write_is_not_written(rig: Rig) -> None:
    rig.put(Phase.CONNECTED)
    await rig.time.advance(1)
    del rig.owned[SPEC.id]  # released: moved to another shard, or the lease was lost
    await rig.time.advance(5)
    assert rig.sink.attempts == [] and rig.sink.forgotten == [SPEC.id]
    rig.put(Phase.RECONNECTING)  # reports after the release are not ours either
    await rig.time.advance(5)
    assert rig.sink.attempts == []


async def test_the_writer_asks_for_ownership_at_write_time(rig: Rig) -> None:
    rig.sink.gate = asyncio.Event()
    rig.put(Phase.CONNECTED)
    await rig.time.advance(2)
    del rig.owned[SPEC.id]  # released while the write is in flight
    rig.sink.gate.set()
    await rig.time.advance(0)
    assert rig.sink.ownership_seen == [False]


# ----- delete --------------------------------------------------------------------------------


async def test_a_delete_replaces_what_is_pending_and_is_written_at_once(rig: Rig) -> None:
    rig.put(Phase.QR_READY, qr="code-1")
    await rig.time.advance(1)
    del rig.owned[SPEC.id]
    written = rig.mirror.deleted(SPEC.id)
    await rig.time.advance(0)
    assert rig.sink.deletes == [SPEC.id] and rig.sink.attempts == []
    assert written.result() is True


async def test_an_account_added_again_after_its_delete_is_written_again(rig: Rig) -> None:
    rig.put(Phase.CONNECTED)
    await rig.time.advance(2)
    rig.mirror.deleted(SPEC.id)
    await rig.time.advance(0)
    rig.put(Phase.CONNECTED)  # the same state as before the delete: written all the same
    await rig.time.advance(2)
    assert rig.written() == [("connected", None), ("connected", None)]


async def test_a_new_status_supersedes_a_pending_delete(rig: Rig) -> None:
    rig.sink.gate = asyncio.Event()
    rig.put(Phase.CONNECTED)
    await rig.time.advance(2)  # held in flight
    superseded = rig.mirror.deleted(SPEC.id)
    rig.put(Phase.QR_READY, qr="code-1")
    rig.sink.gate.set()
    await rig.time.advance(2)
    assert superseded.result() is False and rig.sink.deletes == []
    assert rig.written() == [("connected", None), ("qr_ready", "code-1")]


async def test_mark_deleted_waits_a_bounded_time_then_goes_on_in_the_background() -> None:
    sink = FakeSink(gate=asyncio.Event())
    mirror = AccountsMirror(sink, {}.get, MirrorConfig(delete_wait=0.05))
    assert await mirror.mark_deleted(SPEC.id) is False  # not written within 50 ms
    sink.gate.set()
    await settle()
    assert sink.deletes == [SPEC.id]
    await mirror.close()


# ----- shutdown ------------------------------------------------------------------------------


async def test_close_writes_what_is_pending_without_waiting_out_the_delay(rig: Rig) -> None:
    rig.put(Phase.CONNECTED)
    await rig.mirror.close()
    assert rig.written() == [("connected", None)] and rig.sink.closed
    rig.put(Phase.RECONNECTING)
    await rig.time.advance(10)
    assert len(rig.sink.attempts) == 1


async def test_close_is_bounded_when_firestore_hangs() -> None:
    sink = FakeSink(gate=asyncio.Event())
    owned = {SPEC.id: SPEC}
    mirror = AccountsMirror(sink, owned.get, MirrorConfig(delay=0, close_timeout=0.05))
    mirror.put(SPEC.id, AccountStatus(phase=Phase.CONNECTED))
    await settle()
    await asyncio.wait_for(mirror.close(), 2)
    assert sink.writes == [] and sink.closed


# ----- factory -------------------------------------------------------------------------------


def test_the_mirror_is_on_only_with_firestore_and_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:9")  # no credentials needed
    sqlite = Settings()
    firestore = Settings(store="firestore", firestore_project="demo-wafleet")
    assert open_accounts_mirror(sqlite, {}.get, service="s") is None
    off = replace(firestore, accounts_mirror=False)
    assert open_accounts_mirror(off, {}.get, service="s") is None
    mirror = open_accounts_mirror(
        replace(firestore, accounts_mirror_delay=0.5), {}.get, service="s"
    )
    assert mirror is not None and mirror.config.delay == 0.5


# ----- with the session manager --------------------------------------------------------------


async def test_the_manager_reports_through_the_mirror_and_stops_at_release(
    tmp_path: Path,
) -> None:
    shard = await open_shard(tmp_path)
    sink = FakeSink()
    mirror = AccountsMirror(sink, shard.manager.spec, MirrorConfig(delay=0.02))
    shard.manager.on_status = mirror.put
    spec = account(1)
    try:
        await shard.link(spec)
        await shard.wait_for(
            "connected written", lambda: sink.writes and sink.writes[-1].status == "connected"
        )
        assert sink.writes[-1].jid == "40712000001@s.whatsapp.net"
        await shard.manager.release(spec.id)
        assert shard.manager.spec(spec.id) is None
        count = len(sink.attempts)
        mirror.put(spec.id, AccountStatus(phase=Phase.CONNECTING))  # a late report
        await mirror.flush()
        assert len(sink.attempts) == count
    finally:
        await mirror.close()
        await close_shard(shard)
