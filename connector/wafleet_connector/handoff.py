"""The connector's half of a move between shards (docs/design/mobility.md, steps 2 and 4).

The source shard sees a handoff from its ordinal: it lets the session go (stopped, what it
delivered stored, backed up) and writes the generation to ``status.handoff``; from then on
it runs nothing for the account, whatever the label still says. The target shard sees the
account arrive with a handoff to its ordinal and a generation: it puts that generation in
place of what its volume holds, writes ``restored`` (before the session starts, so a
restart never restores twice over a newer file), and only then runs the account.

Each step runs in a task of its own, so a slow backup store never holds up the watch;
while one is in flight the account is held (the shard sync runs nothing for it), and once
it ends the shard sync applies the latest resource again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from wafleet.backups.base import BackupTooOld
from wafleet.core.phases import Phase
from wafleet.kube.account_cr import account_id_of, spec_of
from wafleet.kube.client import ACCOUNTS, KubeClient, KubeError, NotFound
from wafleet.kube.handoff import Handoff, handoff_of, handoff_status_of
from wafleet_connector.manager import SessionManager
from wafleet_connector.pacing import Backoff
from wafleet_connector.vault import RestoreRefused

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
REASON_MAX = 1000
RESTORE_REFUSED_RETRY = 60.0  # seconds between looks at a backup that would not open


@dataclass(frozen=True)
class Role:
    """What this shard does for an account now, given its handoff."""

    hold: bool  # run nothing for it
    step: str | None = None  # "give" or "take": a step to start, if none is in flight


def role_of(cr: Obj, ordinal: int) -> Role:
    """This shard's part in the account's move, from the resource alone."""
    handoff = handoff_of(cr)
    if handoff is None:
        return Role(hold=False)
    done = handoff_status_of(cr)
    mine = done is not None and done.id == handoff.id
    if handoff.source == ordinal and not handoff.relabelled and handoff.target != ordinal:
        # Handed over already (or failed, which the operator cancels): wait either way.
        return Role(hold=True, step=None if mine else "give")
    if handoff.target == ordinal and handoff.relabelled:
        if mine and done is not None and done.restored == handoff.generation:
            return Role(hold=False)  # restored once; from now on the volume's file is newer
        return Role(hold=True, step="take")
    return Role(hold=False)


class HandoffSteps:
    """The source's and the target's steps, one task per account at most."""

    def __init__(
        self,
        kube: KubeClient,
        namespace: str,
        ordinal: int,
        manager: SessionManager,
        again: Callable[[str, Obj | None], Awaitable[None]],
    ) -> None:
        self._kube = kube
        self._namespace = namespace
        self._ordinal = ordinal
        self._manager = manager
        self._again = again  # apply the account's latest resource once a step ended
        self._tasks: dict[str, asyncio.Task[Obj | None]] = {}
        self._backoff = Backoff(base=0.5, cap=15.0)
        self._followups: set[asyncio.Future[None]] = set()
        self._done: dict[str, tuple[str, str]] = {}  # account -> (step, move id) written

    def busy(self, account_id: str) -> bool:
        return account_id in self._tasks

    def start(self, cr: Obj, step: str) -> None:
        account_id = account_id_of(cr)
        if account_id in self._tasks:
            return
        handoff = handoff_of(cr)
        assert handoff is not None
        if self._done.get(account_id) == (step, handoff.id):
            return  # done already: ``cr`` is an event older than the status that says so
        work = self._give(cr, handoff) if step == "give" else self._take(cr, handoff)
        work = self._remembered(account_id, step, handoff.id, work)
        task = asyncio.create_task(work, name=f"handoff-{step}-{account_id}")
        self._tasks[account_id] = task
        task.add_done_callback(lambda t: self._ended(account_id, t))

    async def _remembered(
        self, account_id: str, step: str, move_id: str, work: Awaitable[Obj | None]
    ) -> Obj | None:
        written = await work
        if written is not None:
            self._done[account_id] = (step, move_id)
        return written

    def _ended(self, account_id: str, task: asyncio.Task[Obj | None]) -> None:
        if self._tasks.get(account_id) is task:
            del self._tasks[account_id]
        if task.cancelled():
            return
        written = None
        if task.exception() is not None:
            logger.error(
                "handoff step failed", exc_info=task.exception(), extra={"account": account_id}
            )
        else:
            written = task.result()
        again = asyncio.ensure_future(self._again(account_id, written))
        self._followups.add(again)
        again.add_done_callback(self._followed_up)

    def _followed_up(self, task: asyncio.Future[None]) -> None:
        self._followups.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("applying a moved account failed", exc_info=task.exception())

    async def cancel(self, account_id: str) -> None:
        task = self._tasks.pop(account_id, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def wait_idle(self) -> None:
        """Until no step is in flight (and their follow-ups have run)."""
        while self._tasks or self._followups:
            await asyncio.gather(*self._tasks.values(), *self._followups, return_exceptions=True)

    async def close(self) -> None:
        """End every step in flight (the shard's Lease was lost, or the shard stops): a
        step is taken again from the resource by whoever runs the shard next."""
        tasks: list[asyncio.Future[Any]] = [*self._tasks.values(), *self._followups]
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def restore_to_unlink(self, cr: Obj) -> None:
        """An account deleted after it was relabelled here, before its session was taken
        over: put the handed-over session in place, so that the delete logs out the device
        it holds (this volume may hold nothing for it, or an older stay's file)."""
        handoff = handoff_of(cr)
        assert handoff is not None and handoff.generation is not None
        spec = spec_of(cr)
        try:
            await self._manager.take_over(spec, handoff.generation)
        except Exception as exc:  # the delete goes on with what this volume holds
            logger.warning(
                "handed-over session not restored for its delete",
                extra={"account": spec.id, "error": str(exc)[:200]},
            )

    # ----- the source ------------------------------------------------------------------
    async def _give(self, cr: Obj, handoff: Handoff) -> Obj | None:
        spec = spec_of(cr)
        moving = f"moving from shard {handoff.source} to shard {handoff.target}"
        try:
            generation = await self._manager.hand_over(spec)
        except Exception as exc:  # the backup store refused, no backups configured, ...
            logger.warning(
                "session not handed over", extra={"account": spec.id, "error": str(exc)[:200]}
            )
            why = f"shard {self._ordinal} could not let the session go: {exc}"[:REASON_MAX]
            failed = {"id": handoff.id, "error": why, "generation": None, "restored": None}
            return await self._write(cr, {"handoff": failed})
        logger.info(
            "session handed over",
            extra={"account": spec.id, "to": handoff.target, "generation": generation},
        )
        status = {
            "phase": Phase.MOVING.value,
            "reason": f"{moving}: handed over in backup generation {generation}",
            # The whole object: nothing of an earlier move may stay (its "restored" would
            # read as this move's when the generation is the same).
            "handoff": {
                "id": handoff.id,
                "generation": generation,
                "error": None,
                "restored": None,
            },
        }
        return await self._write(cr, status)

    # ----- the target ------------------------------------------------------------------
    async def _take(self, cr: Obj, handoff: Handoff) -> Obj | None:
        spec = spec_of(cr)
        assert handoff.generation is not None
        attempt = 0
        while True:
            try:
                placed = await self._manager.take_over(spec, handoff.generation)
                break
            except BackupTooOld as exc:
                why = f"waiting for the session handed over by shard {handoff.source} ({exc})"
            except RestoreRefused as exc:
                why = f"the session handed over cannot be opened here: {exc}"
                await self._write(cr, {"phase": Phase.FAILED.value, "reason": why[:REASON_MAX]})
                await asyncio.sleep(RESTORE_REFUSED_RETRY)  # a person fixes the key: rarely
                continue
            except Exception as exc:  # the backup store is unreachable
                why = f"session backup unreachable ({exc}); again soon"
            delay = self._backoff.delay(attempt)
            attempt += 1
            reason = f"{why[:900]}; next look in {delay:.1f} s"
            await self._write(cr, {"phase": Phase.MOVING.value, "reason": reason})
            await asyncio.sleep(delay)
        logger.info(
            "session taken over",
            extra={"account": spec.id, "from": handoff.source, "generation": placed},
        )
        marker = {
            "id": handoff.id,
            "generation": handoff.generation,
            "restored": handoff.generation,
            "error": None,
        }
        reason = f"moved from shard {handoff.source}: starting here"
        status = {"phase": Phase.PENDING.value, "reason": reason, "handoff": marker}
        return await self._write(cr, status)

    async def _write(self, cr: Obj, status: Obj) -> Obj | None:
        """Patch the status until the API server takes it (or the account is gone): the
        next step of the move waits for it. A plain merge: the connectors alone write
        ``status.handoff``, and the phase is the mover's to say meanwhile."""
        name = cr["metadata"]["name"]
        attempt = 0
        while True:
            try:
                written: Obj = await self._kube.patch(
                    ACCOUNTS, self._namespace, name, {"status": status}, subresource="status"
                )
                return written
            except NotFound:
                return None
            except (KubeError, OSError) as exc:
                wait = self._backoff.delay(attempt)
                retry_after = getattr(exc, "retry_after", None)
                if isinstance(retry_after, int | float):
                    wait = max(wait, float(retry_after))
                logger.warning(
                    "handoff status not written; again in %.1f s",
                    wait,
                    extra={"account": name, "error": str(exc)[:200]},
                )
                attempt += 1
                await asyncio.sleep(wait)
