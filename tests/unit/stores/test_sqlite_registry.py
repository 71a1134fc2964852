"""SqliteRegistry (and the Database helper under it), against real SQLite files."""

from __future__ import annotations

import sqlite3
import stat
import threading
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from wafleet.core.models import AccountSpec, AccountStatus, Disconnect, iso
from wafleet.core.phases import Phase
from wafleet.stores.base import AccountRegistry
from wafleet.stores.sqlite_db import Database, migrate, transaction
from wafleet.stores.sqlite_registry import PhoneInUseError, SqliteRegistry

T0 = datetime(2025, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)  # millisecond precision, as stored


def spec(n: int = 1, **changes: object) -> AccountSpec:
    base = AccountSpec(
        id=f"wa-{n:020d}", phone=f"+4071234{n:04d}", name=f"Account {n}", created_at=T0
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "registry.db"


@pytest.fixture
async def registry(path: Path) -> AsyncIterator[SqliteRegistry]:
    reg = await SqliteRegistry(path).open()
    yield reg
    await reg.close()


def test_implements_the_protocol(path: Path) -> None:
    reg: AccountRegistry = SqliteRegistry(path)
    assert reg is not None


async def test_create_is_idempotent_by_id(registry: SqliteRegistry) -> None:
    account, created = await registry.create(spec(1))
    assert created
    assert account.spec == spec(1)
    assert account.status.phase is Phase.PENDING

    again, created = await registry.create(spec(1, name="Renamed", login="pairingCode"))
    assert not created
    assert again == account  # the first one, unchanged
    assert await registry.get(account.id) == account


async def test_create_refuses_a_phone_that_another_account_has(registry: SqliteRegistry) -> None:
    await registry.create(spec(1))
    with pytest.raises(PhoneInUseError) as error:
        await registry.create(spec(2, phone=spec(1).phone))
    assert error.value.existing_account_id == spec(1).id
    assert spec(1).phone not in str(error.value)
    assert await registry.get(spec(2).id) is None


async def test_status_round_trip_with_every_field(registry: SqliteRegistry) -> None:
    await registry.create(spec(1))
    full = AccountStatus(
        phase=Phase.RECONNECTING,
        reason="stream lost",
        qr="2@abc,def,ghi",
        qr_expires_at=T0 + timedelta(seconds=20),
        pairing_code="ABCD-EFGH",
        jid="40712340001@s.whatsapp.net",
        last_event_at=T0 + timedelta(seconds=1),
        last_message_at=T0 + timedelta(seconds=2),
        connected_at=T0 - timedelta(hours=1),
        reconnects=7,
        last_disconnect=Disconnect(reason="connection closed", code=428, at=T0),
        updated_at=T0 + timedelta(seconds=3),
    )
    assert await registry.update_status(spec(1).id, full)
    stored = await registry.get(spec(1).id)
    assert stored is not None
    assert stored.status == full
    assert stored.spec == spec(1)

    no_code = replace(full, last_disconnect=Disconnect(reason="", code=None, at=T0))
    assert await registry.update_status(spec(1).id, no_code)
    assert (await registry.get(spec(1).id)).status == no_code  # type: ignore[union-attr]

    empty = AccountStatus(phase=Phase.CONNECTED, updated_at=T0)  # every optional field None
    assert await registry.update_status(spec(1).id, empty)
    assert (await registry.get(spec(1).id)).status == empty  # type: ignore[union-attr]


async def test_update_status_of_a_missing_account(registry: SqliteRegistry) -> None:
    assert not await registry.update_status("wa-missing", AccountStatus())


async def test_datetimes_are_stored_as_utc_iso_with_milliseconds(registry: SqliteRegistry) -> None:
    local = datetime(2025, 3, 1, 14, 0, 0, 123456, tzinfo=UTC).astimezone()
    account, _ = await registry.create(spec(1, created_at=local))
    assert account.spec.created_at == datetime(2025, 3, 1, 14, 0, 0, 123000, tzinfo=UTC)
    row = await registry.db.run(lambda c: c.execute("SELECT createdAt FROM accounts").fetchone()[0])
    assert row == "2025-03-01T14:00:00.123Z"


async def test_suspended_toggle(registry: SqliteRegistry) -> None:
    account, _ = await registry.create(spec(1))
    suspended = await registry.set_suspended(account.id, True)
    assert suspended is not None
    assert suspended.spec.suspended
    assert suspended.status == account.status  # the status is the connector's
    resumed = await registry.set_suspended(account.id, False)
    assert resumed is not None
    assert not resumed.spec.suspended
    assert await registry.set_suspended("wa-missing", True) is None


async def test_delete(registry: SqliteRegistry) -> None:
    await registry.create(spec(1))
    await registry.create(spec(2))
    assert await registry.delete(spec(1).id)
    assert not await registry.delete(spec(1).id)
    assert await registry.get(spec(1).id) is None
    assert [a.id for a in await registry.list()] == [spec(2).id]
    # the phone is free again
    _, created = await registry.create(spec(3, phone=spec(1).phone))
    assert created


async def test_list_orders_by_created_at_then_id(registry: SqliteRegistry) -> None:
    await registry.create(spec(3, created_at=T0))
    await registry.create(spec(1, created_at=T0 + timedelta(minutes=1)))
    await registry.create(spec(2, created_at=T0))
    await registry.create(spec(4, created_at=T0 - timedelta(days=1)))
    assert [a.id for a in await registry.list()] == [spec(n).id for n in (4, 2, 3, 1)]


async def test_reopening_keeps_the_data(path: Path) -> None:
    async with SqliteRegistry(path) as reg:
        await reg.create(spec(1))
        await reg.update_status(spec(1).id, AccountStatus(phase=Phase.CONNECTED, updated_at=T0))
    async with SqliteRegistry(path) as reg:
        account = await reg.get(spec(1).id)
    assert account is not None
    assert account.status.phase is Phase.CONNECTED


async def test_file_modes_and_pragmas(registry: SqliteRegistry, path: Path) -> None:
    await registry.create(spec(1))  # writes, so the -wal and -shm files exist
    files = sorted(path.parent.iterdir())
    assert {f.name for f in files} >= {"registry.db", "registry.db-wal", "registry.db-shm"}
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f.name

    def pragmas(conn: sqlite3.Connection) -> tuple[object, ...]:
        return tuple(
            conn.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        )

    mode, synchronous, foreign_keys, busy_timeout = await registry.db.run(pragmas)
    assert (mode, synchronous, foreign_keys) == ("wal", 1, 1)  # 1 = NORMAL
    assert isinstance(busy_timeout, int) and busy_timeout > 0


async def test_an_existing_file_gets_mode_0600(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.touch(mode=0o644)
    path.chmod(0o644)
    async with SqliteRegistry(path):
        pass
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_calls_run_on_one_named_worker_thread(registry: SqliteRegistry) -> None:
    def thread_name(_: sqlite3.Connection) -> str:
        return threading.current_thread().name

    names = {await registry.db.run(thread_name) for _ in range(5)}
    assert len(names) == 1
    assert names.pop().startswith("sqlite-registry")
    assert threading.current_thread().name not in names


async def test_transaction_rolls_back_on_error(registry: SqliteRegistry) -> None:
    def failing_insert(conn: sqlite3.Connection) -> None:
        with transaction(conn):
            conn.execute("UPDATE accounts SET name = 'changed'")
            raise RuntimeError("boom")

    await registry.create(spec(1))
    with pytest.raises(RuntimeError, match="boom"):
        await registry.db.run(failing_insert)
    account = await registry.get(spec(1).id)
    assert account is not None
    assert account.spec.name == spec(1).name
    assert not await registry.db.run(lambda c: c.in_transaction)


async def test_schema_version_is_recorded_and_newer_schemas_refused(path: Path) -> None:
    async with SqliteRegistry(path) as reg:
        version = await reg.db.run(
            lambda c: c.execute(
                "SELECT version FROM schema_version WHERE component = 'registry'"
            ).fetchone()[0]
        )
        assert version == len(SqliteRegistry.MIGRATIONS)
        await reg.db.run(lambda c: c.execute("UPDATE schema_version SET version = 99"))
    with pytest.raises(RuntimeError, match="newer"):
        await SqliteRegistry(path).open()


async def test_forward_migration_runs_only_new_steps(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    step1 = ("CREATE TABLE a (x INTEGER)",)
    step2 = ("ALTER TABLE a ADD COLUMN y TEXT", "INSERT INTO a (x, y) VALUES (1, 'two')")
    db = await Database.open(path, "demo", [step1])
    await db.run(lambda c: c.execute("INSERT INTO a (x) VALUES (0)"))
    await db.close()
    db = await Database.open(path, "demo", [step1, step2])
    rows = await db.run(lambda c: [tuple(r) for r in c.execute("SELECT x, y FROM a ORDER BY x")])
    await db.close()
    assert rows == [(0, None), (1, "two")]


async def test_closed_store_refuses_calls(path: Path) -> None:
    reg = await SqliteRegistry(path).open()
    await reg.close()
    await reg.close()  # idempotent
    with pytest.raises(RuntimeError, match="not open"):
        await reg.get("wa-x")


async def test_a_registry_of_the_first_schema_gains_resource_names(path: Path) -> None:
    """A data directory from before legacy ids opens, keeps its accounts, and then stores
    the legacy id of a new account apart from its wafleet name."""

    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as conn:
        migrate(conn, SqliteRegistry.COMPONENT, SqliteRegistry.MIGRATIONS[:1])
        conn.execute(
            "INSERT INTO accounts (accountId, name, phone, login, createdAt, updatedAt, phase)"
            " VALUES (?, ?, ?, 'qr', ?, ?, 'Pending')",
            (spec(1).id, spec(1).name, spec(1).phone, iso(T0), iso(T0)),
        )

    reg = await SqliteRegistry(path).open()
    try:
        [kept] = await reg.list()
        assert kept.spec == spec(1)
        assert kept.spec.legacy_id is None
        legacy = spec(2, id="account_prod_" + "a" * 32, resource_name=f"wa-{2:020d}")
        await reg.create(legacy)
        again = await reg.get(legacy.id)
        assert again is not None
        assert again.spec.resource_name == f"wa-{2:020d}"
        assert again.spec.legacy_id == legacy.id
    finally:
        await reg.close()
