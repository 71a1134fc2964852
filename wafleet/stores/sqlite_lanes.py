"""Webhook delivery lanes on SQLite: ``webhook_lanes``, read against the event log.

A lane row is (webhookId, accountId) with its ``cursor``, its claim (``claim``: a random
token, ``claimedBy``: the worker, ``leaseUntil``) and its failure state (``attempts``,
``firstFailureAt``, ``lastError``, ``nextAttemptAt``). Every write after a claim is
conditional on the token and on the cursor its holder saw (:data:`_HELD`), so a worker
whose claim was taken over, or whose lane a replay rewound, writes nothing and drops it.

The functions take the connection (they run on the store's database thread); see
:class:`wafleet.stores.sqlite_webhooks.SqliteWebhookStore` for the calls.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from wafleet.events.model import Event
from wafleet.events.webhooks import Lane, LaneKey, Webhook
from wafleet.stores.base import UnknownEvent
from wafleet.stores.sqlite_db import parse_ts, transaction, ts
from wafleet.stores.sqlite_events import head_seq

logger = logging.getLogger(__name__)

# SQL fragments (constants: only values are bound).
_KEY = "webhookId = ? AND accountId = ?"
_HELD = _KEY + " AND claim = ? AND cursor = ?"
_CLEARED = "attempts = 0, firstFailureAt = NULL, lastError = NULL, nextAttemptAt = NULL"
_UNCLAIMED = "claim = NULL, claimedBy = NULL, leaseUntil = NULL"

_DUE = """
SELECT w.id AS webhookId, h.accountId AS accountId
FROM webhooks w CROSS JOIN event_heads h
LEFT JOIN webhook_lanes l ON l.webhookId = w.id AND l.accountId = h.accountId
WHERE w.id IN (SELECT value FROM json_each(:ids)) AND w.disabledAt IS NULL
  AND (w.accountIds IS NULL OR h.accountId IN (SELECT value FROM json_each(w.accountIds)))
  AND CASE WHEN l.webhookId IS NULL
    THEN (SELECT e.at FROM events e WHERE e.accountId = h.accountId AND e.seq = h.seq)
      >= w.createdAt
    ELSE h.seq > l.cursor
      AND (l.nextAttemptAt IS NULL OR l.nextAttemptAt <= :now)
      AND (l.claim IS NULL OR l.claimedBy = :worker OR l.leaseUntil <= :now)
  END
ORDER BY h.accountId, w.createdAt, w.id
LIMIT :limit
"""


def due(
    conn: sqlite3.Connection, hook_ids: Sequence[str], worker_id: str, now: datetime, limit: int
) -> list[LaneKey]:
    """A lane that does not exist yet is due when its account's newest event is from the
    webhook's creation on; one that exists when the head is past its cursor, it waits for no
    retry later than now, and the claim on it is none, this worker's, or expired."""
    if not hook_ids or limit <= 0:
        return []
    params = {"ids": json.dumps(list(hook_ids)), "now": ts(now), "worker": worker_id}
    rows = conn.execute(_DUE, params | {"limit": limit}).fetchall()
    return [LaneKey(row["webhookId"], row["accountId"]) for row in rows]


def _start(conn: sqlite3.Connection, account_id: str, created_at: datetime) -> int:
    """Where a new lane starts: after the last event the account logged before the webhook
    was created; with none retained from before, just before its oldest retained event
    (or at its head, when nothing is retained at all)."""
    row = conn.execute(
        "SELECT seq FROM events WHERE accountId = ? AND at < ? ORDER BY seq DESC LIMIT 1",
        (account_id, ts(created_at)),
    ).fetchone()
    if row is not None:
        return int(row[0])
    oldest = conn.execute("SELECT MIN(seq) FROM events WHERE accountId = ?", (account_id,))
    first = oldest.fetchone()[0]
    return int(first) - 1 if first is not None else head_seq(conn, account_id)


def _lane(row: sqlite3.Row) -> Lane:
    first_failure = row["firstFailureAt"]
    return Lane(
        webhook_id=row["webhookId"],
        account_id=row["accountId"],
        cursor=int(row["cursor"]),
        claim=row["claim"],
        lease_until=parse_ts(row["leaseUntil"]),
        attempts=int(row["attempts"]),
        first_failure_at=parse_ts(first_failure) if first_failure is not None else None,
        last_error=row["lastError"],
    )


def _row(conn: sqlite3.Connection, webhook_id: str, account_id: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM webhook_lanes WHERE webhookId = ? AND accountId = ?",
        (webhook_id, account_id),
    ).fetchone()
    return row


def _insert(conn: sqlite3.Connection, webhook_id: str, account_id: str, cursor: int) -> None:
    conn.execute(
        "INSERT INTO webhook_lanes (webhookId, accountId, cursor) VALUES (?, ?, ?)",
        (webhook_id, account_id, cursor),
    )


def _set_cursor(conn: sqlite3.Connection, webhook_id: str, account_id: str, cursor: int) -> None:
    """Move the cursor and clear the failure state (the claim, if any, is kept)."""
    conn.execute(
        f"UPDATE webhook_lanes SET cursor = ?, {_CLEARED} WHERE {_KEY}",  # noqa: S608
        (cursor, webhook_id, account_id),
    )


def _taken(row: sqlite3.Row, worker_id: str, now: datetime) -> bool:
    """Another worker holds a live claim on the lane."""
    return (
        row["claim"] is not None
        and row["claimedBy"] != worker_id
        and parse_ts(row["leaseUntil"]) > now
    )


def claim(
    conn: sqlite3.Connection,
    key: LaneKey,
    hook: Webhook,
    *,
    worker_id: str,
    now: datetime,
    lease: timedelta,
) -> Lane | None:
    """See ``WebhookStore.claim_lane``; a new lane row is written even when there is nothing
    to claim (it keeps its start, and ``due`` then needs no creation time for it)."""
    if not hook.enabled or not hook.wants_account(key.account_id):
        return None
    with transaction(conn):
        row = _row(conn, key.webhook_id, key.account_id)
        if row is None:
            webhook = conn.execute("SELECT 1 FROM webhooks WHERE id = ?", (key.webhook_id,))
            if webhook.fetchone() is None:
                return None  # deleted meanwhile
            _insert(
                conn, key.webhook_id, key.account_id, _start(conn, key.account_id, hook.created_at)
            )
            row = _row(conn, key.webhook_id, key.account_id)
            assert row is not None
        elif _taken(row, worker_id, now):
            return None
        elif row["nextAttemptAt"] is not None and parse_ts(row["nextAttemptAt"]) > now:
            return None  # waiting for its retry
        cursor, head = int(row["cursor"]), head_seq(conn, key.account_id)
        if head <= cursor:
            return None
        past = conn.execute(
            "SELECT 1 FROM events WHERE accountId = ? AND seq > ? LIMIT 1",
            (key.account_id, cursor),
        ).fetchone()
        if past is None:  # what lay past the cursor was pruned undelivered: it is gone
            logger.warning(
                "webhook %s: lane %s skips events %d..%d, pruned before delivery",
                key.webhook_id,
                key.account_id,
                cursor + 1,
                head,
            )
            _set_cursor(conn, key.webhook_id, key.account_id, head)
            return None
        conn.execute(
            "UPDATE webhook_lanes SET claim = ?, claimedBy = ?, leaseUntil = ?"
            " WHERE webhookId = ? AND accountId = ?",
            (secrets.token_hex(16), worker_id, ts(now + lease), key.webhook_id, key.account_id),
        )
        claimed = _row(conn, key.webhook_id, key.account_id)
    assert claimed is not None
    return _lane(claimed)


def _held(lane: Lane) -> tuple[object, ...]:
    return (lane.webhook_id, lane.account_id, lane.claim, lane.cursor)


def delivered(
    conn: sqlite3.Connection, lane: Lane, cursor: int, now: datetime, lease: timedelta
) -> Lane | None:
    lease_until = parse_ts(ts(now + lease))
    changed = conn.execute(
        f"UPDATE webhook_lanes SET cursor = ?, {_CLEARED}, leaseUntil = ?"  # noqa: S608
        f" WHERE {_HELD}",
        (cursor, ts(lease_until), *_held(lane)),
    ).rowcount
    if changed != 1:
        return None
    return replace(
        lane,
        cursor=cursor,
        lease_until=lease_until,
        attempts=0,
        first_failure_at=None,
        last_error=None,
    )


def failed(
    conn: sqlite3.Connection, lane: Lane, error: str, now: datetime, next_attempt_at: datetime
) -> bool:
    changed = conn.execute(
        "UPDATE webhook_lanes SET attempts = attempts + 1,"  # noqa: S608 (constant fragments)
        f" firstFailureAt = COALESCE(firstFailureAt, ?), lastError = ?, nextAttemptAt = ?,"
        f" {_UNCLAIMED} WHERE {_HELD}",
        (ts(now), error, ts(next_attempt_at), *_held(lane)),
    ).rowcount
    return bool(changed == 1)


def dead_letter(
    conn: sqlite3.Connection,
    lane: Lane,
    event: Event,
    *,
    error: str,
    now: datetime,
    lease: timedelta,
) -> Lane | None:
    """The failure keeps the lane's failing run: its first failure (or now), its attempts
    with the one that failed just now (dead-lettering follows a failed attempt that
    ``lane_failed`` never recorded), and ``error``, the last one."""
    with transaction(conn):
        row = conn.execute(
            "SELECT * FROM webhook_lanes"
            " WHERE webhookId = ? AND accountId = ? AND claim = ? AND cursor = ?",
            _held(lane),
        ).fetchone()
        if row is None:
            return None
        first = row["firstFailureAt"] if row["firstFailureAt"] is not None else ts(now)
        conn.execute(
            "INSERT INTO webhook_failures (webhookId, eventId, event, attempts, firstFailureAt,"
            " lastError, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                lane.webhook_id,
                event.id,
                json.dumps(event.body(), sort_keys=True),
                int(row["attempts"]) + 1,
                first,
                error,
                ts(now),
            ),
        )
        return delivered(conn, lane, max(event.seq, lane.cursor), now, lease)


def release(conn: sqlite3.Connection, lane: Lane) -> None:
    conn.execute(
        f"UPDATE webhook_lanes SET {_UNCLAIMED} WHERE {_KEY} AND claim = ?",  # noqa: S608
        (lane.webhook_id, lane.account_id, lane.claim),
    )


def replay(conn: sqlite3.Connection, hook: Webhook, after: Event) -> int:
    """See ``WebhookStore.replay``. A missing lane is created at the earlier of its target
    and where it would have started, so that it skips nothing; it counts as rewound when
    that is before its start. Raises UnknownEvent when ``after`` is not in the log."""
    with transaction(conn):
        found = conn.execute("SELECT pos FROM events WHERE id = ?", (after.id,)).fetchone()
        if found is None:
            raise UnknownEvent(after.id)
        targets: dict[str, int] = {}
        if hook.wants_account(after.account_id):
            targets[after.account_id] = after.seq
        firsts = conn.execute(
            "SELECT accountId, MIN(seq) AS first FROM events WHERE pos > ? GROUP BY accountId",
            (int(found["pos"]),),
        )
        for row in firsts:
            account_id = str(row["accountId"])
            if account_id != after.account_id and hook.wants_account(account_id):
                targets[account_id] = int(row["first"]) - 1
        rewound = 0
        for account_id, target in sorted(targets.items()):
            row = _row(conn, hook.id, account_id)
            if row is None:
                was = _start(conn, account_id, hook.created_at)
                _insert(conn, hook.id, account_id, min(was, target))
            else:
                was = int(row["cursor"])
                _set_cursor(conn, hook.id, account_id, min(was, target))
            rewound += target < was
    return rewound
