"""Engine workers as real processes: a dead worker takes only its own sessions with it.

The connector side (session manager, journal, outbox) runs in this test's process; the
sessions run in worker processes with the strict fake Go library (``support.fake_go``)
against a ``wafleet sim`` process, so the frames, the Go-side semantics (receipts before
Python sees a message, unlocked maps) and the process boundaries are all real.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from support.engine import (
    TESTS_DIR,
    EngineShard,
    close_engine_shard,
    engine_config,
    open_engine_shard,
)
from support.process import sim_service, wait_until
from support.shard import account
from wafleet.core.phases import Phase

pytestmark = [pytest.mark.neonize, pytest.mark.e2e]


@pytest.fixture
def sim_url() -> Iterator[str]:
    with sim_service() as url:
        yield url


@pytest.fixture
async def shard(tmp_path: Path, sim_url: str) -> AsyncIterator[EngineShard]:
    shard = await open_engine_shard(tmp_path, sim_url)
    try:
        yield shard
    finally:
        await close_engine_shard(shard)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()


async def send_inbound(shard: EngineShard, to: str, texts: list[str]) -> list[str]:
    ids = []
    for text in texts:
        response = await shard.sim.post(
            "/sim/messages", json={"from": "+40799000001", "to": to, "text": text}
        )
        assert response.status_code == 200, response.text
        ids.append(response.json()["id"])
    return ids


async def stored_texts(shard: EngineShard, account_id: str) -> list[str]:
    threads = await shard.store.list_threads(account_id=account_id, thread_id=None, limit=1000)
    return [m.body for t in threads for m in t.messages if m.direction == "inbound"]


async def wait_stored(shard: EngineShard, wanted: dict[str, str]) -> None:
    """Until each account's store holds its wanted text (the journal forwards in batches)."""
    for _ in range(300):
        await shard.manager.journal.flush()
        texts = {a: await stored_texts(shard, a) for a in wanted}
        if all(text in texts[a] for a, text in wanted.items()):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not all stored: {wanted}")


async def test_a_killed_worker_takes_only_its_own_sessions(shard: EngineShard) -> None:
    specs = [account(n) for n in range(1, 7)]  # 2 per worker: 3 workers
    for spec in specs:
        await shard.link(spec)
    pids = {spec.id: shard.worker_pid(spec.id) for spec in specs}
    assert len(set(pids.values())) == 3, pids
    victim_pid = pids[specs[0].id]
    victims = {spec.id for spec in specs if pids[spec.id] == victim_pid}
    survivors = [spec for spec in specs if spec.id not in victims]
    linked_at = {spec.id: len(shard.history.phases[spec.id]) for spec in specs}

    sent = 0

    async def traffic() -> None:
        nonlocal sent
        for i in range(20):  # 20 messages per account, while the worker dies
            for spec in specs:
                await send_inbound(shard, spec.phone, [f"{spec.id} m{i}"])
                sent += 1
            await asyncio.sleep(0.05)

    sender = asyncio.ensure_future(traffic())
    await shard.wait_for("traffic to flow", lambda: sent >= 30)
    os.kill(victim_pid, signal.SIGKILL)  # a Go fatal error or an OOM kill looks the same
    await sender
    assert sent == 120

    supervisor = shard.transport.supervisor
    for victim in victims:
        await shard.wait_for(
            f"{victim} back in a live worker",
            lambda v=victim: supervisor.pid_of(v) not in (None, victim_pid),
        )
    for spec in specs:
        await shard.wait_phase(spec.id, Phase.CONNECTED)
    # Sessions of the other workers never left Connected.
    for spec in survivors:
        assert shard.history.phases[spec.id][linked_at[spec.id] - 1 :] == [Phase.CONNECTED]
    # The killed worker's sessions came back from their files: no QR, no new device.
    for spec in specs:
        after = shard.history.phases[spec.id][linked_at[spec.id] :]
        assert Phase.QR_READY not in after, after
        assert await shard.devices(spec.phone) == 1
    assert all(shard.history.phases[v][linked_at[v] :] for v in victims), "no reconnect seen"
    # Messages after the crash reach every account; nothing journaled is lost or doubled.
    for spec in specs:
        await send_inbound(shard, spec.phone, [f"{spec.id} after"])
    await wait_stored(shard, {spec.id: f"{spec.id} after" for spec in specs})
    for spec in survivors:
        texts = await stored_texts(shard, spec.id)
        assert sorted(texts) == sorted(
            [f"{spec.id} m{i}" for i in range(20)] + [f"{spec.id} after"]
        )
    for victim in victims:
        texts = await stored_texts(shard, victim)
        assert len(texts) == len(set(texts)), "a message was stored twice"
        assert f"{victim} after" in texts


async def test_a_worker_that_keeps_dying_is_restarted_with_growing_pauses(
    tmp_path: Path, sim_url: str
) -> None:
    engine = engine_config(tmp_path, sim_url, library="support.engine_stubs:die_at_start")
    shard = await open_engine_shard(tmp_path, sim_url, engine=engine)
    spec = account(1)
    try:
        shard.manager.ensure(spec)
        supervisor = shard.transport.supervisor
        await shard.wait_for(
            "three restarts", lambda: any(w.restarts >= 3 for w in supervisor.stats())
        )
        delays = supervisor.stats()[0].delays
        assert delays[2] > delays[0] >= 0.2, delays  # restart.base 0.2: equal jitter
        status = shard.manager.status(spec.id)
        assert status is not None and status.phase in (Phase.RECONNECTING, Phase.CONNECTING)
        assert status.last_disconnect is not None
    finally:
        await close_engine_shard(shard)


async def test_workers_get_gomemlimit_and_end_with_the_connector(
    tmp_path: Path, sim_url: str
) -> None:
    """SIGKILL the connector: its workers see their stdin close and exit too."""
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        sys.path.insert(0, {str(TESTS_DIR)!r})
        from pathlib import Path
        from support.engine import engine_config
        from wafleet_connector.engine.supervisor import EngineSupervisor
        from wafleet_connector.transport import SessionSpec

        async def main():
            data = Path({str(tmp_path)!r})
            cfg = engine_config(
                data, {sim_url!r}, gomemlimit="123MiB", library="neonize", neonize={{}}
            )
            sup = EngineSupervisor(cfg)
            session = data / "sessions" / "wa-one.db"
            spec = SessionSpec("wa-one", "+40712000001", "qr", session)
            await sup.dial(spec)
            print(sup.stats()[0].pid, flush=True)
            await asyncio.sleep(3600)

        asyncio.run(main())
        """
    )
    (tmp_path / "sessions").mkdir()
    connector = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert connector.stdout is not None
        worker_pid = int(connector.stdout.readline())
        environ = Path(f"/proc/{worker_pid}/environ").read_bytes().split(b"\0")
        assert b"GOMEMLIMIT=123MiB" in environ
        connector.send_signal(signal.SIGKILL)
        connector.wait(10)
        wait_until("the orphaned worker to exit", lambda: not alive(worker_pid), 15)
    finally:
        connector.kill()
        connector.wait(10)


async def test_a_leaky_worker_retires_without_cutting_a_connected_session(
    tmp_path: Path, sim_url: str
) -> None:
    """Every client neonize ends keeps a store handle; past the budget the worker retires."""
    engine = engine_config(tmp_path, sim_url, leak_budget=3)
    shard = await open_engine_shard(tmp_path, sim_url, engine=engine)
    steady, churning = account(1), account(2)
    supervisor = shard.transport.supervisor
    try:
        await shard.link(steady)
        await shard.link(churning)
        first = shard.worker_pid(steady.id)
        assert shard.worker_pid(churning.id) == first
        linked_at = len(shard.history.phases[steady.id])
        cycles = 0
        while shard.worker_pid(churning.id) == first:  # each stop ends a client: one leak
            assert cycles < 8, "the leaky worker never retired"
            await shard.manager.command(churning.id, "suspend")
            if cycles >= 2:  # its health report (leaked >= 3) is on its way
                await shard.wait_for(
                    "the report", lambda: any(w.retiring for w in supervisor.stats()), 5
                )
            await shard.manager.command(churning.id, "resume")
            await shard.wait_phase(churning.id, Phase.CONNECTED)
            cycles += 1
        assert cycles == 3, cycles
        assert any(w.retiring and w.pid == first for w in supervisor.stats())
        assert shard.worker_pid(steady.id) == first  # never cut for the retirement
        assert shard.history.phases[steady.id][linked_at - 1 :] == [Phase.CONNECTED]
        # Once its last session is gone, the retired worker ends (and its leaks with it).
        await shard.manager.command(steady.id, "suspend")
        await shard.wait_for("the retired worker to end", lambda: not alive(first))
        await shard.manager.command(steady.id, "resume")
        await shard.wait_phase(steady.id, Phase.CONNECTED)
        assert shard.worker_pid(steady.id) != first
        assert await shard.devices(steady.phone) == 1  # no new scan
    finally:
        await close_engine_shard(shard)


async def test_a_go_fatal_error_in_one_worker_spares_the_others(shard: EngineShard) -> None:
    """A message neonize dies on is redelivered (it was never acknowledged) and kills its
    worker again: a crash loop, with growing pauses, that stays inside that worker."""
    specs = [account(n) for n in range(1, 5)]  # 2 per worker: 2 workers
    for spec in specs:
        await shard.link(spec)
    poisoned = specs[0]
    victim_pid = shard.worker_pid(poisoned.id)
    others = [s for s in specs if shard.worker_pid(s.id) != victim_pid]
    assert len(others) == 2
    linked_at = {s.id: len(shard.history.phases[s.id]) for s in others}
    supervisor = shard.transport.supervisor
    await send_inbound(shard, poisoned.phone, ["__fake_go_fatal__"])
    await shard.wait_for(
        "two crashes of the poisoned worker",
        lambda: any(w.restarts >= 2 for w in supervisor.stats()),
    )
    crashed = next(w for w in supervisor.stats() if w.restarts >= 2)
    assert crashed.last_exit == "exit 2 (Go fatal error or panic)"
    # The other worker's sessions never left Connected and still take messages.
    for spec in others:
        assert shard.history.phases[spec.id][linked_at[spec.id] - 1 :] == [Phase.CONNECTED]
        await send_inbound(shard, spec.phone, [f"{spec.id} fine"])
    await wait_stored(shard, {spec.id: f"{spec.id} fine" for spec in others})


@pytest.mark.parametrize("login", ["qr", "pairingCode"])
async def test_a_passkey_asked_through_a_worker_waits_for_a_command(
    shard: EngineShard, login: str
) -> None:
    # The phone asks for a passkey: the fake Go library does what whatsmeow and goneonize
    # do (the QR channel's "passkey-request"; for a pairing code first the Error line),
    # the worker's session ends with PasskeyRequired, the account waits for a command.
    spec = account(20, login=login)
    on = await shard.sim.post("/sim/passkeys", json={"phone": spec.phone, "required": True})
    assert on.status_code == 200, on.text
    shown = Phase.QR_READY if login == "qr" else Phase.PAIRING_CODE_READY
    shard.manager.ensure(spec)
    await shard.wait_phase(spec.id, shown)
    status = shard.manager.status(spec.id)
    assert status is not None
    if login == "qr":
        answer = await shard.sim.post("/sim/scan", json={"qr": status.qr, "phone": spec.phone})
    else:
        answer = await shard.sim.post(
            "/sim/pair", json={"code": status.pairing_code, "phone": spec.phone}
        )
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "passkey_required"
    await shard.wait_phase(spec.id, Phase.PASSKEY_REQUIRED)
    status = shard.manager.status(spec.id)
    assert status is not None and "migrate-legacy" in (status.reason or "")
    incidents = await shard.store.list_incidents(account_id=spec.id)
    assert [(i.type, i.severity) for i in incidents] == [("passkey_required", "high")]
    signal_seen = incidents[0].details["signal"]
    assert signal_seen == (
        "passkey-request" if login == "qr" else "code pair notification without its key"
    )
    await shard.wait_for(
        "the link to end", lambda: shard.transport.supervisor.pid_of(spec.id) is None
    )

    # Once the phone asks none, regenerate-qr links the account through a worker.
    off = await shard.sim.post("/sim/passkeys", json={"phone": spec.phone, "required": False})
    assert off.status_code == 200, off.text
    await shard.manager.command(spec.id, "regenerate")
    await shard.wait_phase(spec.id, shown)
    status = shard.manager.status(spec.id)
    assert status is not None
    if login == "qr":
        linked = await shard.sim.post("/sim/scan", json={"qr": status.qr, "phone": spec.phone})
    else:
        linked = await shard.sim.post(
            "/sim/pair", json={"code": status.pairing_code, "phone": spec.phone}
        )
    assert linked.status_code == 200, linked.text
    await shard.wait_phase(spec.id, Phase.CONNECTED)
    phases = shard.history.phases[spec.id]
    after = phases[phases.index(Phase.PASSKEY_REQUIRED) + 1 :]
    assert after[0] == Phase.CONNECTING, after  # only the command left the passkey phase
