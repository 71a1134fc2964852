"""The event log on SQLite: ``events`` and ``event_heads``, in the message store's file.

- ``events``: one row per logged event, its :meth:`Event.body` as JSON in ``body``. The log
  order is ``pos`` (``AUTOINCREMENT``: never reused, so a pruned position never comes back
  and an ``after`` cursor keeps its meaning). ``UNIQUE (accountId, seq)`` is the last guard
  against a repeated seq.
- ``event_heads``: the last seq logged per account. Pruning drops events, never heads, so
  the next event of an account continues its seq.

:func:`log_events` runs inside the transaction of the write that caused the events (the
inbound message and its event commit together or not at all). ``BEGIN IMMEDIATE`` takes the
write lock first, so two connections (two stores, two processes) never read the same head:
every account's seq goes 1, 2, 3, ... without gaps or repeats.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable
from datetime import datetime

from wafleet.events.model import Event, event_from_body
from wafleet.stores.base import EventQuery, UnknownEvent
from wafleet.stores.sqlite_db import Migration, parse_ts, transaction, ts

logger = logging.getLogger(__name__)

EVENTS_MIGRATION: Migration = (
    """CREATE TABLE events (
        pos INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
        accountId TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL,
        at TEXT NOT NULL, body TEXT NOT NULL,
        UNIQUE (accountId, seq))""",
    "CREATE INDEX events_at ON events (at)",
    "CREATE TABLE event_heads (accountId TEXT PRIMARY KEY, seq INTEGER NOT NULL)",
)
"""The tables of the log; part of the message store's migrations (its second version)."""


def log_events(conn: sqlite3.Connection, events: Iterable[Event]) -> list[Event]:
    """Log ``events`` in the open transaction; return them as logged (seq, time to the ms).

    An event whose id is already logged (a repeat, within ``events`` or from before) is
    dropped and takes no seq.
    """
    if not conn.in_transaction:
        raise RuntimeError("log_events needs the transaction of the write that caused them")
    logged: list[Event] = []
    for event in events:
        head = conn.execute(
            "SELECT seq FROM event_heads WHERE accountId = ?", (event.account_id,)
        ).fetchone()
        seq = (int(head[0]) if head is not None else 0) + 1
        # Stored to the millisecond: what is returned is what a later read gives.
        done = event.logged(seq, parse_ts(ts(event.at)))
        cursor = conn.execute(
            "INSERT INTO events (id, accountId, seq, type, at, body) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO NOTHING",
            (
                done.id,
                done.account_id,
                seq,
                done.type,
                ts(done.at),
                json.dumps(done.body(), sort_keys=True),
            ),
        )
        if cursor.rowcount != 1:
            continue  # already logged: the repeat takes no seq
        conn.execute(
            "INSERT INTO event_heads (accountId, seq) VALUES (?, ?)"
            " ON CONFLICT (accountId) DO UPDATE SET seq = excluded.seq",
            (done.account_id, seq),
        )
        logged.append(done)
    return logged


def append_events(conn: sqlite3.Connection, events: Iterable[Event]) -> list[Event]:
    """Events without a stored cause (phase changes), in one write of their own."""
    with transaction(conn):
        return log_events(conn, events)


def _event(row: sqlite3.Row) -> Event:
    return event_from_body(json.loads(row["body"]))


def get_event(conn: sqlite3.Connection, event_id: str) -> Event | None:
    row = conn.execute("SELECT body FROM events WHERE id = ?", (event_id,)).fetchone()
    return _event(row) if row is not None else None


def latest_event(conn: sqlite3.Connection) -> Event | None:
    row = conn.execute("SELECT body FROM events ORDER BY pos DESC LIMIT 1").fetchone()
    return _event(row) if row is not None else None


def event_logged(conn: sqlite3.Connection, event_id: str) -> bool:
    return conn.execute("SELECT 1 FROM events WHERE id = ?", (event_id,)).fetchone() is not None


def list_events(conn: sqlite3.Connection, query: EventQuery) -> list[Event]:
    """A page in log order (``pos``); for one account that is its seq order too, since seqs
    are given under the write lock in the order of the writes."""
    where: list[str] = []
    params: list[object] = []
    with transaction(conn, immediate=False):  # the cursor and the page from one snapshot
        if query.after is not None:
            row = conn.execute("SELECT pos FROM events WHERE id = ?", (query.after,)).fetchone()
            if row is None:
                raise UnknownEvent(query.after)
            where.append("pos > ?")
            params.append(int(row["pos"]))
        if query.limit <= 0:
            return []
        for column, values in (("accountId", query.account_ids), ("type", query.types)):
            if values is None:
                continue
            if not values:
                return []
            where.append(f"{column} IN ({', '.join('?' * len(values))})")
            params.extend(sorted(values))
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = conn.execute(
            f"SELECT body FROM events {clause} ORDER BY pos LIMIT ?",  # noqa: S608 (fixed SQL)
            (*params, query.limit),
        ).fetchall()
    return [_event(row) for row in rows]


def events_after(conn: sqlite3.Connection, account_id: str, seq: int, limit: int) -> list[Event]:
    if limit <= 0:
        return []
    rows = conn.execute(
        "SELECT body FROM events WHERE accountId = ? AND seq > ? ORDER BY seq LIMIT ?",
        (account_id, seq, limit),
    ).fetchall()
    return [_event(row) for row in rows]


def head_seq(conn: sqlite3.Connection, account_id: str) -> int:
    """The last seq the account logged (0: none yet); pruning keeps it."""
    row = conn.execute("SELECT seq FROM event_heads WHERE accountId = ?", (account_id,)).fetchone()
    return int(row[0]) if row is not None else 0


def prune_events(conn: sqlite3.Connection, before: datetime) -> int:
    """Drop the events logged before ``before``; ``event_heads`` stays as it is."""
    with transaction(conn):
        dropped = conn.execute("DELETE FROM events WHERE at < ?", (ts(before),)).rowcount
    if dropped:
        logger.info("event log: %d events older than %s pruned", dropped, ts(before))
    return dropped
