"""One SQLite file, one connection, one worker thread.

Every call runs on a single dedicated thread (``await db.run(fn, *args)``, where
``fn(conn, *args)`` runs there), so the event loop never blocks and the
connection is never shared between threads. Writes that must be atomic use
:func:`transaction` (``BEGIN IMMEDIATE``): it takes the write lock up front, so
two connections to one file (two stores, two processes) serialize instead of
failing half-way. Schemas are versioned per component in a ``schema_version``
table and migrated forward on open.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import ClassVar, Concatenate, ParamSpec, Self, TypeVar

from wafleet.core.models import iso, parse_iso

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

FILE_MODE = 0o600
DIR_MODE = 0o700
BUSY_TIMEOUT_MS = 10_000

Migration = Sequence[str]
"""The SQL statements that bring a schema from version N to N + 1."""


@contextmanager
def transaction(conn: sqlite3.Connection, *, immediate: bool = True) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` (or a deferred read ``BEGIN``) ... ``COMMIT``, ``ROLLBACK`` on error.

    For use inside a function given to :meth:`Database.run`. Not reentrant.
    """
    if conn.in_transaction:
        raise RuntimeError("a transaction is already open on this connection")
    conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # some errors (e.g. disk full) already rolled back
            conn.execute("ROLLBACK")
        raise


def ts(value: datetime) -> str:
    """A datetime as stored: ISO 8601 UTC, milliseconds, Z (one format, so text order works)."""
    text = iso(value)
    assert text is not None
    return text


def parse_ts(value: str) -> datetime:
    parsed = parse_iso(value)
    assert parsed is not None
    return parsed


def insert(
    conn: sqlite3.Connection, table: str, row: Mapping[str, object], suffix: str = ""
) -> sqlite3.Cursor:
    """``INSERT INTO table (keys) VALUES (values) suffix``; table and keys are code constants."""
    columns = ", ".join(row)
    names = ", ".join(f":{column}" for column in row)
    sql = f"INSERT INTO {table} ({columns}) VALUES ({names}) {suffix}"  # noqa: S608
    return conn.execute(sql, row)


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    # Create the file ourselves so it never exists with a wider mode; SQLite gives
    # the -wal and -shm files the mode of the database file.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    os.close(fd)
    os.chmod(path, FILE_MODE)
    conn = sqlite3.connect(path, isolation_level=None)  # autocommit: we BEGIN ourselves
    try:
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            logger.warning("SQLite %s: WAL journal mode unavailable, using %s", path, mode)
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def migrate(conn: sqlite3.Connection, component: str, migrations: Sequence[Migration]) -> int:
    """Bring ``component``'s schema up to ``len(migrations)``; return the version found.

    One transaction for all steps. Versions are kept per component (not in
    ``PRAGMA user_version``), so several stores may share one file.
    """
    target = len(migrations)
    with transaction(conn):
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
        )
        row = conn.execute(
            "SELECT version FROM schema_version WHERE component = ?", (component,)
        ).fetchone()
        found = int(row[0]) if row is not None else 0
        if found > target:
            raise RuntimeError(
                f"the {component} schema is at version {found}, newer than this wafleet "
                f"knows ({target}); upgrade wafleet or use another data directory"
            )
        for version in range(found, target):
            for statement in migrations[version]:
                conn.execute(statement)
        if found != target:
            conn.execute(
                "INSERT INTO schema_version (component, version) VALUES (?, ?)"
                " ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                (component, target),
            )
            logger.info("SQLite %s schema migrated from version %d to %d", component, found, target)
    return found


class Database:
    """A SQLite file served by one worker thread. Create with :meth:`open`."""

    def __init__(self, path: Path, executor: ThreadPoolExecutor) -> None:
        self._path = path
        self._executor = executor
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    @classmethod
    async def open(
        cls, path: Path, component: str, migrations: Sequence[Migration] = ()
    ) -> Database:
        """Open (creating) ``path`` and migrate ``component``'s schema."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sqlite-{component}")
        db = cls(path, executor)
        loop = asyncio.get_running_loop()
        try:
            db._conn = await loop.run_in_executor(executor, _connect, path)
            await db.run(migrate, component, migrations)
        except BaseException:
            await db.close()
            raise
        return db

    @property
    def path(self) -> Path:
        return self._path

    async def run(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run ``fn(conn, *args, **kwargs)`` on the worker thread and return its result.

        Calls run one at a time in submission order. If the awaiting task is
        cancelled, a call that already started still runs to its end.
        """
        if self._closed or self._conn is None:
            raise RuntimeError(f"database {self._path} is closed")
        conn = self._conn
        call = functools.partial(fn, conn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def close(self) -> None:
        """Close the connection after the calls already submitted; idempotent."""
        if self._closed:
            return
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, _close, conn)
        self._executor.shutdown(wait=False)


def _close(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("PRAGMA optimize")
    except sqlite3.Error:
        logger.debug("PRAGMA optimize failed on close", exc_info=True)
    conn.close()


class SqliteStore:
    """Base of the SQLite stores: ``store = await Store(path).open()`` or ``async with``."""

    COMPONENT: ClassVar[str]
    MIGRATIONS: ClassVar[Sequence[Migration]]

    def __init__(self, path: Path) -> None:
        self._path = path
        self._database: Database | None = None
        self._open_lock = asyncio.Lock()

    async def open(self) -> Self:
        """Open the file and create or migrate the schema; returns self, idempotent."""
        async with self._open_lock:
            if self._database is None:
                self._database = await Database.open(self._path, self.COMPONENT, self.MIGRATIONS)
        return self

    async def close(self) -> None:
        database, self._database = self._database, None
        if database is not None:
            await database.close()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def db(self) -> Database:
        if self._database is None:
            raise RuntimeError(f"{type(self).__name__} is not open: await its open() first")
        return self._database
