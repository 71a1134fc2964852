"""The engine supervisor: a pool of worker processes that run the shard's neonize sessions.

A worker holds up to ``sessions_per_worker`` sessions. When one dies (a Go fatal error,
a panic, an OOM kill), only its sessions lose their stream: they reconnect through the
session manager's backoff, into the restarted worker (restarts back off too), from
their session files, with no new scan. The connector's lease, journal, outbox, status
writer and API live in the connector process and never notice.

neonize leaks what Python cannot free (a store handle per failed connect, a parked Go
thread per expired QR session); a worker that reports more than its budget retires: it
takes no new session, and it ends once its last session has, so a connected session is
never cut for it. Below the budget an idle worker stays: starting one costs a second of
CPU, more than a few leaked handles cost memory. One connection per account at any time:
a session that moves to another worker waits until the old worker reports its socket
closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wafleet.sim.wire import Conn, ConnClosed
from wafleet_connector.engine.worker import WorkerConfig
from wafleet_connector.pacing import Backoff
from wafleet_connector.sim_transport import unix_dial
from wafleet_connector.transport import SessionSpec

logger = logging.getLogger(__name__)

WORKER_MODULE = "wafleet_connector.engine.worker"


@dataclass(frozen=True)
class EngineConfig:
    sessions_per_worker: int = 10  # see the README: ~70 MiB a worker, a crash ends at most 10
    max_workers: int = 200
    gomemlimit: str | None = None  # GOMEMLIMIT of each worker, e.g. "300MiB"
    library: str = "neonize"  # or "module:function": a stand-in Go library (tests)
    sessions_dir: Path | None = None
    restart: Backoff = field(default_factory=lambda: Backoff(base=1.0, cap=60.0))
    stable_after: float = 60.0  # a worker that lived this long starts its backoff over
    leak_budget: int = 64  # leaked store handles before a worker retires
    parked_budget: int = 8  # parked Go threads before a worker retires
    ready_timeout: float = 30.0  # a dial waits this long for a worker to be ready
    reopen_wait: float = 120.0  # a moving session waits this long for its old socket
    stop_timeout: float = 5.0
    log_level: str = "warning"
    neonize: Mapping[str, Any] = field(default_factory=dict)  # NeonizeConfig fields
    env: Mapping[str, str] = field(default_factory=dict)  # extra environment (tests)

    def __post_init__(self) -> None:
        if self.sessions_per_worker < 1 or self.max_workers < 1:
            raise ValueError("sessions_per_worker and max_workers must be at least 1")


@dataclass(frozen=True)
class WorkerInfo:
    """What ``stats()`` tells of one worker (for logs, metrics and the soak bench)."""

    index: int
    pid: int | None
    sessions: int
    restarts: int
    retiring: bool
    health: Mapping[str, int]
    delays: tuple[float, ...]  # the pauses before each restart, oldest first
    last_exit: str  # how its last process ended ("" if none has)


class _Worker:
    def __init__(self, index: int, socket: Path) -> None:
        self.index = index
        self.socket = socket
        self.process: asyncio.subprocess.Process | None = None
        self.ready = asyncio.Event()
        self.open: set[str] = set()  # accounts whose socket in this worker is not closed
        self.dialling = 0  # dials on their way in: counted against the capacity
        self.health: dict[str, int] = {}
        self.retiring = False
        self.ending = False  # retired and terminated on purpose: not restarted
        self.restarts = 0
        self.delays: list[float] = []  # the last pauses before a restart
        self.crashes = 0  # consecutive short lives
        self.deaths = 0
        self.last_exit = ""
        self.started_at = 0.0
        self.task: asyncio.Task[None] | None = None

    def load(self) -> int:
        return len(self.open) + self.dialling


class EngineSupervisor:
    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self._dir = Path(tempfile.mkdtemp(prefix="wafleet-engine-"))
        os.chmod(self._dir, 0o700)
        self._workers: list[_Worker] = []
        self._home: dict[str, _Worker] = {}  # the worker an account last ran in
        self._next_index = 0
        self._closing = False
        self._changed = asyncio.Condition()  # notified on every worker report
        self._notifying: set[asyncio.Task[None]] = set()

    # ----- dialling --------------------------------------------------------------------
    async def dial(self, spec: SessionSpec) -> Conn:
        """A device stream for ``spec`` in a worker with room; raises ConnClosed if none."""
        if self._closing:
            raise ConnClosed("the engine is stopping")
        account = spec.account_id
        worker = self._pick(account)
        worker.dialling += 1
        try:
            await self._wait_moved(account, worker)
            await self._wait_ready(worker)
            conn = await unix_dial(worker.socket)
        finally:
            worker.dialling -= 1
        worker.open.add(account)  # until the worker reports it closed
        self._home[account] = worker
        return conn

    def _pick(self, account: str) -> _Worker:
        home = self._home.get(account)
        if home is not None and self._usable(home, account):
            return home
        usable = [w for w in self._workers if self._usable(w, account)]
        if usable:
            return min(usable, key=lambda w: (w.load(), w.index))
        if len([w for w in self._workers if not w.retiring]) >= self.config.max_workers:
            raise ConnClosed(f"all {self.config.max_workers} engine workers are full")
        return self._spawn()

    def _usable(self, worker: _Worker, account: str) -> bool:
        room = worker.load() - (account in worker.open) < self.config.sessions_per_worker
        return not worker.retiring and room

    async def _wait_moved(self, account: str, target: _Worker) -> None:
        """One socket per account: wait until other workers closed this account's."""

        def moved() -> bool:
            return not any(account in w.open for w in self._workers if w is not target)

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(moved), self.config.reopen_wait)
            except TimeoutError:
                logger.warning(
                    "old engine socket still open; moving on", extra={"account": account}
                )

    async def _wait_ready(self, worker: _Worker) -> None:
        """Until the worker listens; ConnClosed if it dies or does not start in time."""
        deaths = worker.deaths

        def settled() -> bool:
            return worker.ready.is_set() or worker.deaths != deaths

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(settled), self.config.ready_timeout)
            except TimeoutError:
                raise ConnClosed(f"engine worker {worker.index} is not ready") from None
        if not worker.ready.is_set():
            raise ConnClosed(f"engine worker {worker.index} died ({worker.last_exit})")

    # ----- workers ---------------------------------------------------------------------
    def _spawn(self) -> _Worker:
        index, self._next_index = self._next_index, self._next_index + 1
        worker = _Worker(index, self._dir / f"w{index}.sock")
        self._workers.append(worker)
        worker.task = asyncio.create_task(self._supervise(worker), name=f"engine-worker-{index}")
        return worker

    def _worker_config(self, worker: _Worker) -> WorkerConfig:
        cfg = self.config
        return WorkerConfig(
            socket=str(worker.socket),
            sessions_dir=str(cfg.sessions_dir) if cfg.sessions_dir else None,
            library=cfg.library,
            max_sessions=cfg.sessions_per_worker,
            stop_timeout=cfg.stop_timeout,
            log_level=cfg.log_level,
            neonize=dict(cfg.neonize),
        )

    def _environment(self) -> dict[str, str]:
        env = {**os.environ, **self.config.env}
        if self.config.gomemlimit:
            env["GOMEMLIMIT"] = self.config.gomemlimit
        return env

    async def _supervise(self, worker: _Worker) -> None:
        """Run the worker; restart it with backoff when it dies, until it retires."""
        while not self._closing:
            with contextlib.suppress(FileNotFoundError):
                worker.socket.unlink()
            worker.started_at = time.monotonic()
            code = await self._run_once(worker)
            lived = time.monotonic() - worker.started_at
            worker.deaths += 1
            worker.last_exit = _describe(code)
            self._lost(worker)
            if self._closing or worker.ending:
                self._workers.remove(worker)
                for account in [a for a, w in self._home.items() if w is worker]:
                    del self._home[account]
                return
            worker.crashes = 0 if lived >= self.config.stable_after else worker.crashes + 1
            # Equal jitter: a worker that dies at once still waits half the ceiling.
            restart = self.config.restart
            delay = restart.ceiling(worker.crashes) * restart.rng.uniform(0.5, 1.0)
            logger.error(
                "engine worker died; restarting",
                extra={"worker": worker.index, "exit": worker.last_exit, "delay": round(delay, 1)},
            )
            worker.restarts += 1
            worker.delays = [*worker.delays[-9:], delay]
            await asyncio.sleep(delay)

    async def _run_once(self, worker: _Worker) -> int | None:
        config = self._worker_config(worker).to_json()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            WORKER_MODULE,
            "--config",
            config,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=self._environment(),
        )
        worker.process = process
        assert process.stdout is not None
        try:
            while line := await process.stdout.readline():
                self._on_report(worker, line)
        finally:
            code = await process.wait()
            worker.process = None
        return code

    def _on_report(self, worker: _Worker, line: bytes) -> None:
        try:
            report = json.loads(line)
        except ValueError:
            logger.warning("unreadable engine worker line", extra={"worker": worker.index})
            return
        if not isinstance(report, dict):
            return
        if "ready" in report:
            worker.ready.set()
        elif "open" in report:
            worker.open.add(str(report["open"]))
        elif "closed" in report:
            worker.open.discard(str(report["closed"]))
            self._retire_if_idle(worker)
        elif "health" in report and isinstance(report["health"], dict):
            worker.health = {str(k): int(v) for k, v in report["health"].items()}
            self._check_budget(worker)
        self._notify()

    def _notify(self) -> None:
        async def notify() -> None:
            async with self._changed:
                self._changed.notify_all()

        task = asyncio.get_running_loop().create_task(notify())
        self._notifying.add(task)
        task.add_done_callback(self._notifying.discard)

    def _check_budget(self, worker: _Worker) -> None:
        leaked = worker.health.get("leaked", 0)
        parked = worker.health.get("parked", 0)
        over = leaked >= self.config.leak_budget or parked >= self.config.parked_budget
        if over and not worker.retiring:
            worker.retiring = True
            logger.info(
                "engine worker retires",
                extra={"worker": worker.index, "leaked": leaked, "parked": parked},
            )
        self._retire_if_idle(worker)

    def _retire_if_idle(self, worker: _Worker) -> None:
        """A retiring worker with no session left ends (its leaks end with it)."""
        process = worker.process
        if worker.retiring and not worker.open and not worker.dialling and process is not None:
            worker.ending = True
            with contextlib.suppress(ProcessLookupError):
                process.terminate()

    def _lost(self, worker: _Worker) -> None:
        """The worker's process ended: its sockets are closed with it."""
        worker.ready.clear()
        worker.open.clear()
        worker.health = {}
        worker.retiring = False  # a fresh process: no leaks
        self._notify()

    # ----- the whole pool --------------------------------------------------------------
    def pid_of(self, account_id: str) -> int | None:
        """The process that runs ``account_id``'s session now, if any."""
        for worker in self._workers:
            if account_id in worker.open and worker.process is not None:
                return worker.process.pid
        return None

    def stats(self) -> list[WorkerInfo]:
        return [
            WorkerInfo(
                index=w.index,
                pid=None if w.process is None else w.process.pid,
                sessions=len(w.open),
                restarts=w.restarts,
                retiring=w.retiring,
                health=dict(w.health),
                delays=tuple(w.delays),
                last_exit=w.last_exit,
            )
            for w in self._workers
        ]

    async def close(self) -> None:
        """End every worker: stdin closed and SIGTERM, SIGKILL after the stop timeout."""
        self._closing = True
        processes = [w.process for w in self._workers if w.process is not None]
        for process in processes:
            if process.stdin is not None:
                process.stdin.close()
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        tasks = [w.task for w in self._workers if w.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.config.stop_timeout)
            for process in processes:
                if process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
            if pending:
                await asyncio.wait(pending, timeout=2.0)
            for task in pending:
                task.cancel()
        shutil.rmtree(self._dir, ignore_errors=True)


def _describe(code: int | None) -> str:
    if code is None:
        return "unknown"
    if code < 0:
        with contextlib.suppress(ValueError):
            return signal.Signals(-code).name
        return f"signal {-code}"
    return f"exit {code}" + (" (Go fatal error or panic)" if code == 2 else "")
