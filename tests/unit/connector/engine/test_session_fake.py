"""Neonize sessions on the strict fake Go library (tests/support/fake_go/), whose
"WhatsApp" is a stub device-stream server the test scripts frame by frame."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from typing import Any

import pytest

if importlib.util.find_spec("neonize") is None:
    pytest.skip("neonize is not installed", allow_module_level=True)

from unit.connector.engine.enginekit import CONTACT, OWN, Recorder, make_rig, spec, until
from unit.connector.engine.stubsim import StubSim

from support.fake_go import FakeGoLibrary, FakeGoTiming
from wafleet_connector.engine.ffi import NeonizeFfi
from wafleet_connector.engine.inprocess import NeonizeConfig, NeonizeTransport
from wafleet_connector.engine.store import linked_device_jid
from wafleet_connector.transport import (
    ClientOutdated,
    Connected,
    Disconnected,
    InboundMessage,
    KeepAliveRestored,
    KeepAliveTimeout,
    LoggedOut,
    LogoutError,
    Paired,
    PairingCode,
    PasskeyRequired,
    QRCode,
    Receipt,
    SendError,
    StreamReplaced,
    TemporaryBan,
    TransportEvent,
)

pytestmark = pytest.mark.neonize
TS = "2025-01-01T00:00:00.000Z"


def message(i: int, **extra: Any) -> dict[str, Any]:
    return {"type": "message", "id": f"M{i:03d}", "from": CONTACT, "text": f"m{i}", "ts": TS,
            **extra}  # fmt: skip


class GatedSink(Recorder):
    """Holds the first inbound message until ``gate`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.holding = asyncio.Event()

    async def __call__(self, event: TransportEvent) -> None:
        if isinstance(event, InboundMessage) and not self.gate.is_set():
            self.holding.set()
            await self.gate.wait()
        await super().__call__(event)


def inbound_ids(rec: Recorder) -> list[str]:
    return [m.wa_id for m in rec.of(InboundMessage)]


# ---- linking, resuming, what a session reports -----------------------------------------


async def test_qr_link_then_resume_without_a_new_scan(tmp_path: Path, stub: StubSim) -> None:
    rig = make_rig(tmp_path, stub)
    rec = Recorder()
    session, conn = await rig.linked(rec)
    assert conn.hello["device"] is None and conn.hello["login"] == "qr"
    assert rec.kinds() == [QRCode, Paired, Connected] and rec.of(Paired)[0].jid == OWN
    path = spec(tmp_path).session_path
    assert linked_device_jid(path) is not None  # the fake's store reads like whatsmeow's
    await session.stop()
    again = Recorder()
    resumed, conn2 = await rig.open(again)
    assert conn2.hello["device"] == {"id": "d1", "secret": "s1"}
    conn2.send({"type": "connected", "jid": OWN})
    await again.wait_for(Connected)
    assert again.kinds() == [Connected]
    await resumed.stop()
    assert rig.transport.health().leaked == 2  # two Neonize calls returned (after Stop)


async def test_stream_replaced_ends_the_session_without_disconnected(
    tmp_path: Path, stub: StubSim
) -> None:
    rig = make_rig(tmp_path, stub)
    rec = Recorder()
    session, conn = await rig.linked(rec)
    conn.send({"type": "stream_replaced"})  # goneonize: NULL payload, no Disconnected after
    conn.close()
    await rec.wait_for(StreamReplaced)
    await until("the teardown", lambda: session.done)
    assert rec.kinds() == [QRCode, Paired, Connected, StreamReplaced]
    assert session.finished and ("Stop", rig.uuid_of(session)) in rig.lib.calls
    assert stub.pending() == 0  # whatsmeow expected the close: no auto-reconnect
    assert rig.transport.health().live == 0


async def test_client_outdated_is_final(tmp_path: Path, stub: StubSim) -> None:
    rig = make_rig(tmp_path, stub)
    rec = Recorder()
    session, conn = await rig.linked(rec)
    conn.send({"type": "client_outdated"})
    assert await rec.wait_for(ClientOutdated) == ClientOutdated()
    await until("the teardown", lambda: session.done)
    assert rec.kinds()[-1] is ClientOutdated and Disconnected not in rec.kinds()


async def test_keepalive_events_pass_through_and_do_not_end_the_session(
    tmp_path: Path, stub: StubSim
) -> None:
    rig = make_rig(tmp_path, stub)
    rec = Recorder()
    session, conn = await rig.linked(rec)
    conn.send({"type": "keepalive_timeout", "errorCount": 1})
    conn.send({"type": "keepalive_timeout", "errorCount": 2})
    conn.send({"type": "keepalive_restored"})  # goneonize: NULL payload
    await rec.wait_for(KeepAliveRestored)
    assert rec.of(KeepAliveTimeout) == [KeepAliveTimeout(1), KeepAliveTimeout(2)]
    assert not session.finished
    sending = asyncio.create_task(session.send_text(CONTACT, "still here"))
    frame = await conn.arecv("send")
    conn.send({"type": "sent", "ref": frame["ref"], "id": "3EB0OK"})
    assert await sending == "3EB0OK"
    await session.stop()


async def test_connected_after_a_keepalive_timeout_is_passed_on(
    tmp_path: Path, stub: StubSim
) -> None:
    # keepalive failing for longer than KeepAliveMaxFailTime (0 here): whatsmeow disconnects
    # and reconnects by itself, with no Disconnected event; a Connected follows.
    rig = make_rig(tmp_path, stub, FakeGoTiming(keepalive_max_fail=0.0))
    rec = Recorder()
    session, conn = await rig.linked(rec)
    conn.send({"type": "keepalive_timeout", "errorCount": 1})
    again = await stub.aaccept()
    assert again.hello["device"] == {"id": "d1", "secret": "s1"}
    again.send({"type": "connected", "jid": OWN})
    await rec.wait_for(Connected, count=2)
    assert rec.kinds() == [QRCode, Paired, Connected, KeepAliveTimeout, Connected]
    assert not session.finished
    await session.stop()


async def test_temporary_ban_and_server_logout_are_final(tmp_path: Path, stub: StubSim) -> None:
    rig = make_rig(tmp_path, stub)
    banned = Recorder()
    session, conn = await rig.linked(banned, "ban")
    conn.send({"type": "temp_ban", "retryAfter": 30})
    ban = await banned.wait_for(TemporaryBan)
    assert ban.retry_after == 30.0 and ban.reason == "send_to_too_many_people"
    await until("the teardown", lambda: session.done)

    removed = Recorder()
    session, conn = await rig.linked(removed, "gone")
    conn.send({"type": "logged_out", "reason": "logged_out_from_phone", "code": 401})
    assert await removed.wait_for(LoggedOut) == LoggedOut(reason="logged_out", code=401)
    await until("the teardown", lambda: session.done)
    assert linked_device_jid(spec(tmp_path, "gone").session_path) is None  # whatsmeow deleted it
    assert Disconnected not in banned.kinds() + removed.kinds()


async def test_a_stream_that_closes_is_disconnected(tmp_path: Path, stub: StubSim) -> None:
    rig = make_rig(tmp_path, stub)
    rec = Recorder()
    session, conn = await rig.linked(rec)
    conn.close()
    assert await rec.wait_for(Disconnected) == Disconnected(reason="connection_lost")
    await until("the teardown", lambda: session.done)
    assert session.finished


async def test_receipts_and_lid_senders(tmp_path: Path, stub: StubSim) -> None:
    rig = make_rig(tmp_path, stub)
    rec = Recorder()
    session, conn = await rig.linked(rec)
    conn.send({"type": "receipt", "id": "3EB0A", "status": "read"})
    conn.send(message(1, **{"from": "123456789@lid", "fromPn": CONTACT}))
    conn.send(message(2, **{"from": "987654321@lid"}))
    await rec.wait_for(InboundMessage, count=2)
    assert rec.of(Receipt) == [Receipt("3EB0A", "read")]
    first, second = rec.of(InboundMessage)
    assert first.chat_jid == first.sender_jid == CONTACT  # the phone JID is preferred
    assert second.chat_jid == second.sender_jid == "987654321@lid"  # no alt: the LID stays
    await session.stop()


async def test_pairing_code_login(tmp_path: Path, stub: StubSim) -> None:
    rig = make_rig(tmp_path, stub)
    rec = Recorder()
    session, conn = await rig.open(rec, login="pairingCode")
    conn.send({"type": "qr", "code": "2@one", "expiresAt": "2099-01-01T00:00:00.000Z"})
    paired = await stub.aaccept()  # the fake asks the sim for a code in a new hello
    assert paired.hello["login"] == "pairingCode" and paired.hello["phone"] == "+40711111111"
    paired.send({"type": "pairing_code", "code": "ABCD-EFGH"})
    assert await rec.wait_for(PairingCode) == PairingCode("ABCD-EFGH")
    paired.send({"type": "paired", "jid": OWN, "device": {"id": "d2", "secret": "s2"}})
    paired.send({"type": "connected", "jid": OWN})
    await rec.wait_for(Connected)
    assert rec.kinds() == [PairingCode, Paired, Connected]
    await session.stop()


async def test_a_passkey_request_on_the_qr_channel_ends_the_link(
    tmp_path: Path, stub: StubSim
) -> None:
    # whatsmeow (qrchan.go) puts "passkey-request" in the QR channel and keeps it open: more
    # codes follow (dead ones: the secret they carry was replaced). goneonize hands the
    # item to the login-status callback. The session reports PasskeyRequired, nothing after.
    rig = make_rig(tmp_path, stub)
    rec = Recorder()
    session, conn = await rig.open(rec)
    conn.send_all(
        [
            {"type": "qr", "code": "2@one", "expiresAt": "2099-01-01T00:00:00.000Z"},
            {"type": "passkey_request"},
            {"type": "qr", "code": "2@two", "expiresAt": "2099-01-01T00:00:00.000Z"},
        ]
    )
    assert await rec.wait_for(PasskeyRequired) == PasskeyRequired(reason="passkey-request")
    await until("the teardown", lambda: session.done)
    assert rec.kinds() == [QRCode, PasskeyRequired]
    assert ("Disconnect", rig.uuid_of(session)) in rig.lib.calls
    assert rig.transport.health().live == 0
    assert linked_device_jid(spec(tmp_path).session_path) is None


async def _pairing_code_shown(rig: Any, rec: Recorder) -> tuple[Any, Any]:
    session, conn = await rig.open(rec, login="pairingCode")
    conn.send({"type": "qr", "code": "2@one", "expiresAt": "2099-01-01T00:00:00.000Z"})
    paired = await rig.stub.aaccept()  # the fake asks the sim for a code in a new hello
    paired.send({"type": "pairing_code", "code": "ABCD-EFGH"})
    await rec.wait_for(PairingCode)
    return session, paired


async def test_a_passkey_asked_for_a_pairing_code_ends_the_link_once(
    tmp_path: Path, stub: StubSim
) -> None:
    # The phone asks for a passkey after the code was entered: whatsmeow logs that the
    # code-pair notification lacks its key, and (the QR channel is open: wafleet asks for
    # the code on a QR session) also puts "passkey-request" in the channel. One event.
    rig = make_rig(tmp_path, stub)
    rec = Recorder()
    session, conn = await _pairing_code_shown(rig, rec)
    conn.send({"type": "passkey_request"})
    assert await rec.wait_for(PasskeyRequired) == PasskeyRequired(
        reason="code pair notification without its key"
    )
    await until("the teardown", lambda: session.done)
    assert rec.kinds() == [PairingCode, PasskeyRequired]


async def test_a_passkey_seen_only_in_whatsmeow_logs_ends_the_link(
    tmp_path: Path, stub: StubSim
) -> None:
    # As on neonize's own pairing-code path, and in tulir/whatsmeow#1233: no passkey event
    # reaches Python, only whatsmeow's Error line (logged at the default level, WARN).
    rig = make_rig(tmp_path, stub)
    rig.lib.pairing_passkey_event = False
    rec = Recorder()
    session, conn = await _pairing_code_shown(rig, rec)
    conn.send({"type": "passkey_request"})
    assert await rec.wait_for(PasskeyRequired) == PasskeyRequired(
        reason="code pair notification without its key"
    )
    await until("the teardown", lambda: session.done)
    assert rec.kinds() == [PairingCode, PasskeyRequired]


async def test_at_debug_level_the_received_passkey_notification_is_seen_first(
    tmp_path: Path, stub: StubSim
) -> None:
    # whatsmeow's Recv logger prints every node it receives at DEBUG, before handling it.
    rig = make_rig(tmp_path, stub, whatsmeow_log_level="DEBUG")
    rec = Recorder()
    session, conn = await rig.open(rec)
    conn.send({"type": "qr", "code": "2@one", "expiresAt": "2099-01-01T00:00:00.000Z"})
    await rec.wait_for(QRCode)  # the log line comes on another Go thread than the code
    conn.send({"type": "passkey_request"})
    assert await rec.wait_for(PasskeyRequired) == PasskeyRequired(
        reason="passkey_prologue_request notification"
    )
    await until("the teardown", lambda: session.done)
    assert rec.kinds() == [QRCode, PasskeyRequired]


async def test_passkey_words_in_other_log_lines_do_not_end_a_session(
    tmp_path: Path, stub: StubSim
) -> None:
    rig = make_rig(tmp_path, stub, whatsmeow_log_level="DEBUG")
    rec = Recorder()
    session, conn = await rig.linked(rec)
    client = rig.lib.client(rig.uuid_of(session))
    assert client is not None
    # A sent node and a passkey confirmation mention passkeys but ask for none.
    client._log("DEBUG", "Client/Send", '<iq id="1" type="set"><passkey_prologue/></iq>')
    client._log("DEBUG", "Client", "Sending automatic passkey confirmation")
    conn.send({"type": "receipt", "id": "3EB0X", "status": "read"})  # a barrier: in order
    await rec.wait_for(Receipt)
    assert rec.kinds() == [QRCode, Paired, Connected, Receipt]
    await session.stop()


# ---- inbound messages while a session ends -------------------------------------------


async def test_whatsmeow_acks_what_is_queued_before_python_sees_it(
    tmp_path: Path, stub: StubSim
) -> None:
    rig = make_rig(tmp_path, stub)
    rec = GatedSink()
    session, conn = await rig.linked(rec)
    stats = rig.lib.stats(rig.uuid_of(session))
    conn.send_all([message(i) for i in range(103)])
    await asyncio.wait_for(rec.holding.wait(), 15)
    # M000 is in the Python callback; the 100-slot channel holds M001..M100, each acked;
    # M101 waits for a free slot (its handler blocks), so it is not acked yet.
    await until("the channel to fill", lambda: len(stats.acked) == 101)
    assert stats.acked == [f"M{i:03d}" for i in range(101)] and inbound_ids(rec) == []
    rec.gate.set()
    await until("every message", lambda: len(inbound_ids(rec)) == 103)
    assert inbound_ids(rec) == stats.acked == stats.seen == [f"M{i:03d}" for i in range(103)]
    await session.stop()


async def test_messages_arriving_during_stop_all_reach_the_sink_before_stop_returns(
    tmp_path: Path, stub: StubSim
) -> None:
    rig = make_rig(tmp_path, stub, stop_timeout=20.0)
    rec = Recorder(inbound_delay=0.02)
    session, conn = await rig.linked(rec)
    stats = rig.lib.stats(rig.uuid_of(session))
    sent = [f"M{i:03d}" for i in range(50)]
    conn.send_all([message(i) for i in range(50)])
    await until("all 50 acked by whatsmeow", lambda: len(stats.acked) == 50)
    await until("the first messages", lambda: len(inbound_ids(rec)) >= 3)
    assert len(inbound_ids(rec)) < 50  # stop() comes while most are still queued in Go
    await session.stop()
    assert inbound_ids(rec) == stats.seen == stats.acked == sent
    assert stats.lost == [] and session.done
    calls = [name for name, uuid in rig.lib.calls if uuid == rig.uuid_of(session)]
    assert calls == ["Neonize", "Disconnect", "Stop"]  # the socket closes first, then Stop


async def test_what_go_still_holds_when_the_drain_runs_out_is_the_documented_loss(
    tmp_path: Path, stub: StubSim
) -> None:
    rig = make_rig(tmp_path, stub, stop_timeout=1.0)  # the drain gets 0.5 s
    rec = Recorder(inbound_delay=0.1)
    session, conn = await rig.linked(rec)
    stats = rig.lib.stats(rig.uuid_of(session))
    conn.send_all([message(i) for i in range(50)])
    await until("all 50 acked by whatsmeow", lambda: len(stats.acked) == 50)
    await session.stop()
    await until("the teardown", lambda: session.done)
    # Every message the Python callback saw was journaled; the rest were acked by
    # whatsmeow, still queued in goneonize's channel when Stop cancelled the pump.
    assert inbound_ids(rec) == stats.seen
    assert stats.lost and set(stats.seen).isdisjoint(stats.lost)
    assert sorted(stats.seen + stats.lost) == sorted(stats.acked)


async def test_messages_behind_a_final_event_still_reach_the_sink(
    tmp_path: Path, stub: StubSim
) -> None:
    rig = make_rig(tmp_path, stub)
    rec = GatedSink()
    session, conn = await rig.linked(rec)
    stats = rig.lib.stats(rig.uuid_of(session))
    conn.send(message(0))
    await asyncio.wait_for(rec.holding.wait(), 15)  # the pump is busy with M000
    conn.send_all([{"type": "stream_replaced"}, message(1), message(2), message(3)])
    await until("M001..M003 queued and acked", lambda: len(stats.acked) == 4)
    rec.gate.set()
    await until("the teardown", lambda: session.done)
    kinds = rec.kinds(inbound=True)
    assert kinds[-5:] == [InboundMessage, StreamReplaced, *[InboundMessage] * 3]
    assert inbound_ids(rec) == stats.acked == ["M000", "M001", "M002", "M003"]


# ---- logout ------------------------------------------------------------------------------


async def test_logout_success_unlinks_the_device(tmp_path: Path, stub: StubSim) -> None:
    rig = make_rig(tmp_path, stub)
    rec = Recorder()
    session, conn = await rig.linked(rec)
    logging_out = asyncio.create_task(session.logout())
    await conn.arecv("logout")
    conn.send({"type": "logged_out", "reason": "logout", "code": 401})
    await logging_out  # no LogoutError: WhatsApp confirmed the unlink
    assert linked_device_jid(spec(tmp_path).session_path) is None  # whatsmeow deleted it
    assert rec.kinds() == [QRCode, Paired, Connected]  # no LoggedOut event needed
    assert session.done and session.finished


async def test_logout_refused_raises_and_keeps_the_device(tmp_path: Path, stub: StubSim) -> None:
    rig = make_rig(tmp_path, stub)
    rec = Recorder()
    session, conn = await rig.linked(rec)
    logging_out = asyncio.create_task(session.logout())
    await conn.arecv("logout")
    conn.send({"type": "logout_failed", "error": "server busy"})
    with pytest.raises(LogoutError) as err:
        await logging_out
    assert "server busy" in str(err.value) and "still linked" in str(err.value)
    assert linked_device_jid(spec(tmp_path).session_path) is not None
    assert session.finished and rec.kinds() == [QRCode, Paired, Connected]
    with pytest.raises(SendError):
        await session.send_text(CONTACT, "after logout")


async def test_logout_without_an_answer_times_out(tmp_path: Path, stub: StubSim) -> None:
    rig = make_rig(tmp_path, stub, logout_timeout=0.5)
    rec = Recorder()
    session, conn = await rig.linked(rec)
    with pytest.raises(LogoutError) as err:
        await session.logout()
    assert "no answer within 0.5 s" in str(err.value)
    assert (await conn.arecv("logout"))["type"] == "logout"  # it was asked, never answered
    assert linked_device_jid(spec(tmp_path).session_path) is not None
    await until("the teardown", lambda: session.done)


async def test_logout_when_not_connected_raises(tmp_path: Path, stub: StubSim) -> None:
    rig = make_rig(tmp_path, stub)
    rec = Recorder()
    session, conn = await rig.open(rec)
    conn.send({"type": "qr", "code": "2@one", "expiresAt": "2099-01-01T00:00:00.000Z"})
    await rec.wait_for(QRCode)
    with pytest.raises(LogoutError) as err:
        await session.logout()
    assert "not connected" in str(err.value)
    assert ("Logout", rig.uuid_of(session)) not in rig.lib.calls
    with pytest.raises(LogoutError):  # the session has ended
        await session.logout()


# ---- sending ------------------------------------------------------------------------------


async def test_send_errors_are_classified(tmp_path: Path, stub: StubSim) -> None:
    rig = make_rig(tmp_path, stub)
    rec = Recorder()
    session, conn = await rig.linked(rec)

    async def answered(answer: dict[str, Any]) -> SendError:
        sending = asyncio.create_task(session.send_text(CONTACT, "hi"))
        frame = await conn.arecv("send")
        assert frame["to"] == CONTACT and frame["text"] == "hi"
        conn.send({**answer, "ref": frame["ref"]})
        with pytest.raises(SendError) as err:
            await sending
        return err.value

    gone = await answered({"type": "send_error", "error": "not on WhatsApp", "reached": False})
    assert gone.reached is False and "no LID found" in str(gone)
    server = await answered({"type": "send_error", "error": "rejected", "reached": True})
    assert server.reached is True
    with pytest.raises(SendError) as bad:
        await session.send_text("not a jid@", "nowhere")
    assert bad.value.reached is False
    sending = asyncio.create_task(session.send_text(CONTACT, "cut off"))
    await conn.arecv("send")
    conn.close()  # no answer: the message may have been delivered
    with pytest.raises(SendError) as cut:
        await sending
    assert cut.value.reached is True
    await session.stop()


# ---- what never returns, what leaks --------------------------------------------------------


async def test_a_qr_timeout_parks_the_go_thread_and_health_counts_it(
    tmp_path: Path, stub: StubSim
) -> None:
    rig = make_rig(tmp_path, stub, FakeGoTiming(qr_codes=2))
    rec = Recorder()
    session, conn = await rig.open(rec)
    for code in ("2@one", "2@two", "2@three"):  # whatsmeow has no third code: "timeout"
        conn.send({"type": "qr", "code": code, "expiresAt": "2099-01-01T00:00:00.000Z"})
    assert await rec.wait_for(Disconnected) == Disconnected(reason="qr_timeout")
    await until("the teardown", lambda: session.done)
    uuid = rig.uuid_of(session)
    client = rig.lib.client(uuid)
    assert client is not None and not client.returned.is_set()  # FetchMe waits for good
    assert ("Stop", uuid) not in rig.lib.calls  # Stop now would crash FetchMe
    assert rig.transport.health() == type(rig.transport.health())(live=0, parked=1, leaked=0)
    assert rig.core.held_callbacks() == 1  # Go may still call them: they stay referenced
    assert session._timers == {} and not session._tasks
    await session.stop()  # bounded, and still no Stop
    assert ("Stop", uuid) not in rig.lib.calls


async def test_a_failed_first_connect_on_the_fake_leaks_its_store(tmp_path: Path) -> None:
    dead = StubSim()
    url_port = dead.port
    dead.close()  # nothing listens there any more
    lib = FakeGoLibrary(f"ws://127.0.0.1:{url_port}/sim/ws")
    transport = NeonizeTransport(NeonizeConfig(max_sessions=4), core=NeonizeFfi(lib=lib))
    for i in range(3):
        rec = Recorder()
        session = await transport.open(spec(tmp_path, f"a{i}"), rec)
        event = await rec.wait_for(Disconnected)
        assert event.reason.startswith("connect_failed: failed to dial whatsapp web websocket")
        await until("the teardown", lambda: session.done)  # noqa: B023
    assert lib.leaked_stores() == 3 and transport.health().leaked == 3


async def test_sessions_start_and_stop_concurrently_on_the_strict_fake(
    tmp_path: Path, stub: StubSim
) -> None:
    rig = make_rig(tmp_path, stub)
    recs = [Recorder() for _ in range(4)]
    sessions = await asyncio.gather(
        *(rig.transport.open(spec(tmp_path, f"c{i}"), rec) for i, rec in enumerate(recs))
    )
    conns = [await stub.aaccept() for _ in sessions]
    for i, conn in enumerate(conns):
        conn.send({"type": "qr", "code": f"2@{i}", "expiresAt": "2099-01-01T00:00:00.000Z"})
        conn.send({"type": "paired", "jid": OWN, "device": {"id": f"d{i}", "secret": "s"}})
        conn.send({"type": "connected", "jid": OWN})
        conn.send_all([message(j) for j in range(10)])
    for rec in recs:
        await rec.wait_for(InboundMessage, count=10)
    await asyncio.gather(*(s.stop() for s in sessions))  # four Stops: writers, one at a time
    assert all(s.done for s in sessions)
    assert rig.transport.health().leaked == 4 and rig.transport.health().live == 0
