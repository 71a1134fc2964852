"""The neonize transport, offline: real Go core where it matters, a fake core for flows
that need a WhatsApp server (QR codes, pairing code, inbound messages)."""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

if importlib.util.find_spec("neonize") is None:
    pytest.skip("neonize is not installed", allow_module_level=True)

from wafleet_connector.engine.ffi import ClientCallbacks, ClientStart, ffi
from wafleet_connector.engine.inprocess import NeonizeConfig, NeonizeTransport
from wafleet_connector.engine.mapping import (
    map_event,
    mask_phone,
    mask_text,
    parse_jid,
    send_error_reached,
)
from wafleet_connector.engine.session import NeonizeSession
from wafleet_connector.transport import (
    ClientOutdated,
    Connected,
    Disconnected,
    InboundMessage,
    KeepAliveTimeout,
    LoggedOut,
    LogoutError,
    Paired,
    PairingCode,
    QRCode,
    Receipt,
    SendError,
    SessionSpec,
    StreamReplaced,
    TemporaryBan,
    TransportEvent,
)

pytestmark = pytest.mark.neonize

pb: Any = ffi().n.pb  # neonize.proto.Neonize_pb2, imported through the transport's loader
e2e: Any = ffi().n.e2e
OWN = "40711111111@s.whatsapp.net"


def spec(tmp_path: Path, account: str = "acc1", login: str = "qr") -> SessionSpec:
    return SessionSpec(
        account_id=account,
        phone="+40711111111",
        login=login,  # type: ignore[arg-type]
        session_path=tmp_path / "sessions" / account / "session.db",
    )


class Recorder:
    def __init__(self) -> None:
        self.events: list[TransportEvent] = []
        self.changed = asyncio.Event()

    async def __call__(self, event: TransportEvent) -> None:
        self.events.append(event)
        self.changed.set()

    async def wait_for(self, kind: type, timeout: float = 10.0) -> Any:
        async def poll() -> Any:
            while True:
                for event in self.events:
                    if isinstance(event, kind):
                        return event
                self.changed.clear()
                await self.changed.wait()

        return await asyncio.wait_for(poll(), timeout)


@pytest.fixture
def blackhole() -> Iterator[str]:
    """An HTTP 'proxy' that accepts connections and never answers: a dial that hangs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    conns: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conns.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()
    for conn in conns:  # the hung dials now fail at once, so Go threads finish
        conn.close()


async def wait_quiesced(*sessions: NeonizeSession, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    for s in sessions:
        while not s.quiesced.is_set():
            assert time.monotonic() < deadline, "background teardown did not finish"
            await asyncio.sleep(0.05)


# ---- real Go core, no network ---------------------------------------------------------


@pytest.mark.asyncio
async def test_open_creates_session_file_0600_and_offline_connect_fails(tmp_path: Path) -> None:
    transport = NeonizeTransport(NeonizeConfig(max_sessions=4, stop_timeout=3.0))
    rec = Recorder()
    s = spec(tmp_path)
    started = time.monotonic()
    session = await transport.open(s, rec)
    assert time.monotonic() - started < 1.0  # open() returns at once
    assert s.session_path.exists()
    assert stat.S_IMODE(s.session_path.stat().st_mode) == 0o600
    event = await rec.wait_for(Disconnected, timeout=15)
    assert event.reason.startswith("connect_failed: ") and len(event.reason) > 16
    assert time.monotonic() - started < 15
    # sqlite created its tables in the file, which is still 0600
    assert s.session_path.stat().st_size > 0
    assert stat.S_IMODE(s.session_path.stat().st_mode) == 0o600
    await session.stop()
    await session.stop()
    await transport.close()
    assert [type(e) for e in rec.events] == [Disconnected]  # nothing after the final event


@pytest.mark.asyncio
async def test_connect_timer_reports_a_hanging_dial(tmp_path: Path, blackhole: str) -> None:
    cfg = NeonizeConfig(max_sessions=2, connect_timeout=1.0, stop_timeout=1.0, proxy=blackhole)
    transport = NeonizeTransport(cfg)
    rec = Recorder()
    session = await transport.open(spec(tmp_path), rec)
    event = await rec.wait_for(Disconnected, timeout=5)
    assert event.reason == "connect_timeout"
    started = time.monotonic()
    await session.stop()
    assert time.monotonic() - started < cfg.stop_timeout + 1.0


@pytest.mark.asyncio
async def test_stop_during_dial_is_bounded_and_idempotent(tmp_path: Path, blackhole: str) -> None:
    cfg = NeonizeConfig(max_sessions=2, stop_timeout=1.5, proxy=blackhole)
    transport = NeonizeTransport(cfg)
    rec = Recorder()
    session = await transport.open(spec(tmp_path), rec)
    await asyncio.sleep(1.5)  # the Go client is now inside its (never-ending) dial
    assert rec.events == []
    started = time.monotonic()
    await session.stop()
    assert time.monotonic() - started < cfg.stop_timeout + 1.0
    started = time.monotonic()
    await session.stop()
    assert time.monotonic() - started < cfg.stop_timeout + 1.0
    assert rec.events == []  # a stopped session reports nothing
    # A new session of the same account is accepted at once and starts after the old
    # socket is closed (here: when the proxy goes away at the end of the test).
    again = await transport.open(spec(tmp_path), rec)
    await again.stop()


@pytest.mark.asyncio
async def test_concurrent_sessions_open_and_stop_without_crashing(
    tmp_path: Path, blackhole: str
) -> None:
    offline = NeonizeTransport(NeonizeConfig(max_sessions=8, stop_timeout=2.0))
    hanging = NeonizeTransport(NeonizeConfig(max_sessions=8, stop_timeout=2.0, proxy=blackhole))
    everything: list[NeonizeSession] = []
    for round_ in range(3):
        opened = await asyncio.gather(
            *(
                (offline if i % 2 else hanging).open(spec(tmp_path, f"r{round_}a{i}"), Recorder())
                for i in range(4)
            )
        )
        await asyncio.sleep(0.2 * round_)
        started = time.monotonic()
        await asyncio.gather(*(s.stop() for s in opened))
        assert time.monotonic() - started < 2.0 + 1.5
        everything.extend(opened)
    await asyncio.gather(offline.close(), hanging.close())
    for s in everything:
        assert s.finished


def test_config_is_validated() -> None:
    with pytest.raises(ValueError):
        NeonizeConfig(max_sessions=0)
    with pytest.raises(ValueError):
        NeonizeConfig(max_sessions=1, browser="NETSCAPE")


# ---- pure mapping -----------------------------------------------------------------


def jid(user: str, server: str = "s.whatsapp.net", device: int = 0) -> Any:
    return pb.JID(User=user, Server=server, RawAgent=0, Device=device, Integrator=0, IsEmpty=False)


def message(text: str | None = None, **source: Any) -> Any:
    body = e2e.Message(conversation=text) if text is not None else e2e.Message()
    src = {"Chat": jid("40722222222"), "Sender": jid("40722222222"), "IsFromMe": False}
    src.update(source)
    info = pb.MessageInfo(
        MessageSource=pb.MessageSource(**src), ID="3EB0ABC", Timestamp=1_741_000_000_123
    )
    return pb.Message(Info=info, Message=body)


def test_map_connection_events() -> None:
    assert map_event(pb.Connected(status=True), OWN) == [Connected(jid=OWN)]
    paired = pb.PairStatus(ID=jid("40711111111", device=12), Status=pb.PairStatus.SUCCESS)
    assert map_event(paired, OWN) == [Paired(jid=OWN)]
    failed = map_event(pb.PairStatus(Status=pb.PairStatus.ERROR, Error="bad"), OWN)
    assert isinstance(failed[0], Disconnected)
    assert map_event(pb.LoggedOut(OnConnect=True, Reason=pb.LOGGED_OUT), OWN) == [
        LoggedOut(reason="logged_out", code=401)
    ]
    assert map_event(pb.TemporaryBan(Code=pb.TemporaryBan.BLOCKED_BY_USERS, Expire=3600), OWN) == [
        TemporaryBan(reason="blocked_by_users", retry_after=3600.0)
    ]
    assert map_event(pb.StreamReplaced(), OWN) == [StreamReplaced()]
    assert map_event(pb.ClientOutdated(), OWN) == [ClientOutdated()]
    assert map_event(pb.Disconnected(status=True), OWN) == [Disconnected(reason="connection_lost")]
    gone = map_event(pb.ConnectFailure(Reason=pb.MAIN_DEVICE_GONE, Message="x"), OWN)
    assert gone == [LoggedOut(reason="main_device_gone", code=403)]
    busy = map_event(pb.ConnectFailure(Reason=pb.SERVICE_UNAVAILABLE), OWN)
    assert busy == [Disconnected(reason="connect_failure: service_unavailable", code=503)]
    assert map_event(pb.KeepAliveTimeout(ErrorCount=1), OWN) == [KeepAliveTimeout(error_count=1)]


def test_map_text_messages() -> None:
    [plain] = map_event(message("hello"), OWN)
    assert plain == InboundMessage(
        wa_id="3EB0ABC",
        chat_jid="40722222222@s.whatsapp.net",
        sender_jid="40722222222@s.whatsapp.net",
        text="hello",
        timestamp=datetime.fromtimestamp(1_741_000_000.123, UTC),
    )
    extended = message()
    extended.Message.extendedTextMessage.text = "see https://example.org"
    assert map_event(extended, OWN)[0].text == "see https://example.org"  # type: ignore[union-attr]
    # LID addressing: the phone-number JID is preferred for the thread and the sender
    lid = message("hi", Chat=jid("1234567", "lid"), Sender=jid("1234567", "lid", device=3))
    lid.Info.MessageSource.SenderAlt.CopyFrom(jid("40733333333"))
    [via_lid] = map_event(lid, OWN)
    assert isinstance(via_lid, InboundMessage)
    assert via_lid.chat_jid == via_lid.sender_jid == "40733333333@s.whatsapp.net"
    group = message("yo", Chat=jid("120363", "g.us"), Sender=jid("40744444444"), IsGroup=True)
    [in_group] = map_event(group, OWN)
    assert isinstance(in_group, InboundMessage)
    assert (in_group.chat_jid, in_group.sender_jid) == (
        "120363@g.us",
        "40744444444@s.whatsapp.net",
    )
    assert map_event(message("mine", IsFromMe=True), OWN) == []
    assert map_event(message(None), OWN) == []  # no text (e.g. an image without caption)
    assert map_event(message("status", Chat=jid("status", "broadcast")), OWN) == []


def test_map_receipts() -> None:
    src = pb.MessageSource(Chat=jid("40722222222"), Sender=jid("40722222222"), IsFromMe=False)
    read = pb.Receipt(MessageSource=src, MessageIDs=["A", "B"], Type=pb.Receipt.READ)
    assert map_event(read, OWN) == [Receipt("A", "read"), Receipt("B", "read")]
    delivered = pb.Receipt(MessageSource=src, MessageIDs=["A"], Type=pb.Receipt.DELIVERED)
    assert map_event(delivered, OWN) == [Receipt("A", "delivered")]
    assert (
        map_event(pb.Receipt(MessageSource=src, MessageIDs=["A"], Type=pb.Receipt.SENDER), OWN)
        == []
    )


def test_masking_jids_and_send_errors() -> None:
    assert mask_phone("+40712345678") == "+407****78"
    assert mask_text("paired 40712345678:12@s.whatsapp.net") == "paired 407****78:12@s.whatsapp.net"
    assert parse_jid("40712345678@s.whatsapp.net") == ("40712345678", "s.whatsapp.net")
    assert parse_jid("+40712345678") == ("40712345678", "s.whatsapp.net")
    assert parse_jid("40712345678:3@s.whatsapp.net") == ("40712345678", "s.whatsapp.net")
    with pytest.raises(ValueError):
        parse_jid("@s.whatsapp.net")
    assert not send_error_reached("failed to send message node: websocket not connected")
    assert send_error_reached("websocket not connected")  # retryFrame, after the write
    assert not send_error_reached("failed to get device list: info query timed out")
    assert send_error_reached("timed out waiting for message send response")
    assert send_error_reached("something new")


# ---- fake Go core: flows that need a server -----------------------------------------


class FakeCore:
    """Stands in for NeonizeFfi; the test drives the Go callbacks by hand."""

    def __init__(self) -> None:
        self.callbacks: ClientCallbacks | None = None
        self.running = threading.Event()
        self.released = threading.Event()
        self.calls: list[str] = []
        self.disconnect_gate = threading.Event()
        self.disconnect_gate.set()

    def run_client(
        self, start: ClientStart, callbacks: ClientCallbacks, may_start: Callable[[], bool]
    ) -> str | None:
        if not may_start():
            return None
        self.callbacks = callbacks
        self.running.set()
        self.released.wait(30)
        return ""

    def stop(self, uuid: bytes) -> None:
        self.calls.append("stop")
        self.released.set()

    def disconnect(self, uuid: bytes) -> None:
        self.calls.append("disconnect")
        self.disconnect_gate.wait(10)  # a real Disconnect waits for a dial in progress

    def logout(self, uuid: bytes) -> str:
        self.calls.append("logout")
        return ""

    def pair_phone(self, uuid: bytes, phone: str, client_type: int, display: str) -> Any:
        self.calls.append(f"pair:{phone}")
        return pb.PairPhoneReturnFunction(Code="ABCD-EFGH")

    def send_text(
        self,
        uuid: bytes,
        to: tuple[str, str],
        text: str,
        lock_timeout: float,
        started: threading.Event,
    ) -> Any:
        started.set()
        return pb.SendMessageReturnFunction(SendResponse=pb.SendResponse(ID="3EB0SENT"))


async def fake_session(
    tmp_path: Path, login: str = "qr", sink: Any = None, **cfg: Any
) -> tuple[NeonizeSession, FakeCore, Recorder]:
    core = FakeCore()
    rec = Recorder()
    transport = NeonizeTransport(NeonizeConfig(max_sessions=2, **cfg), core=core)  # type: ignore[arg-type]
    session = await transport.open(spec(tmp_path, login=login), sink or rec)
    await asyncio.to_thread(core.running.wait, 5)
    return session, core, rec


@pytest.mark.asyncio
async def test_qr_codes_expire_into_qr_timeout(tmp_path: Path) -> None:
    session, core, rec = await fake_session(tmp_path, qr_first_ttl=0.4, qr_ttl=0.2, qr_grace=0.2)
    assert core.callbacks is not None
    core.callbacks.on_qr("2@first")
    first = await rec.wait_for(QRCode)
    assert first.code == "2@first" and first.expires_at > datetime.now(UTC)
    core.callbacks.on_qr("2@second")
    timeout = await rec.wait_for(Disconnected, timeout=3)
    assert timeout.reason == "qr_timeout"
    assert [type(e) for e in rec.events] == [QRCode, QRCode, Disconnected]
    await asyncio.sleep(0.2)
    # still inside the QR loop: disconnected only, never Stop (Stop would crash FetchMe)
    assert core.calls == ["disconnect"]
    core.callbacks.on_qr("2@late")  # nothing is emitted after the final event
    await session.stop()
    assert [type(e) for e in rec.events] == [QRCode, QRCode, Disconnected]
    core.released.set()


@pytest.mark.asyncio
async def test_pairing_code_then_pair_and_connect(tmp_path: Path) -> None:
    session, core, rec = await fake_session(tmp_path, login="pairingCode")
    assert core.callbacks is not None
    core.callbacks.on_qr("2@ignored-in-pairing-mode")
    code = await rec.wait_for(PairingCode)
    assert code == PairingCode(code="ABCD-EFGH") and core.calls == ["pair:40711111111"]
    core.callbacks.on_status("success")
    core.callbacks.on_event(0, pb.Device(JID=jid("40711111111", device=7)))
    core.callbacks.on_event(
        2, pb.PairStatus(ID=jid("40711111111", device=7), Status=pb.PairStatus.SUCCESS)
    )
    core.callbacks.on_event(3, pb.Connected(status=True))
    await rec.wait_for(Connected)
    assert [type(e) for e in rec.events] == [PairingCode, Paired, Connected]
    assert rec.events[-1] == Connected(jid=OWN)
    assert await session.send_text("40722222222@s.whatsapp.net", "hi") == "3EB0SENT"
    await session.stop()
    for _ in range(50):  # in the event pump a full Stop is safe: disconnect, then Stop
        if "stop" in core.calls:
            break
        await asyncio.sleep(0.05)
    assert core.calls[-2:] == ["disconnect", "stop"]
    with pytest.raises(SendError) as err:
        await session.send_text("40722222222@s.whatsapp.net", "hi")
    assert err.value.reached is False


@pytest.mark.asyncio
async def test_inbound_message_blocks_go_thread_until_the_sink_returns(tmp_path: Path) -> None:
    gate = asyncio.Event()
    seen: list[TransportEvent] = []

    async def slow_sink(event: TransportEvent) -> None:
        if isinstance(event, InboundMessage):
            await gate.wait()
        seen.append(event)

    session, core, _ = await fake_session(tmp_path, sink=slow_sink)
    assert core.callbacks is not None
    core.callbacks.on_event(3, pb.Connected(status=True))
    go_thread = threading.Thread(target=core.callbacks.on_event, args=(17, message("one")))
    go_thread.start()
    await asyncio.sleep(0.3)
    assert go_thread.is_alive()  # the Go callback waits for durability
    gate.set()
    await asyncio.to_thread(go_thread.join, 5)
    assert not go_thread.is_alive()
    assert [type(e) for e in seen] == [Connected, InboundMessage]
    with pytest.raises(SendError) as err:
        await session.send_text("not a jid@", "x")
    assert err.value.reached is False
    await session.logout()  # confirmed ("" from Go Logout): returns, reports nothing
    assert "logout" in core.calls and isinstance(seen[-1], InboundMessage)
    assert not any(isinstance(e, LoggedOut) for e in seen)
    await session.stop()
    core.released.set()


@pytest.mark.asyncio
async def test_send_before_connected_is_not_reached(tmp_path: Path) -> None:
    session, core, _ = await fake_session(tmp_path)
    with pytest.raises(SendError) as err:
        await session.send_text("40722222222@s.whatsapp.net", "hi")
    assert err.value.reached is False
    await session.stop()
    core.released.set()


@pytest.mark.asyncio
async def test_reopen_waits_until_the_previous_socket_is_closed(tmp_path: Path) -> None:
    core = FakeCore()
    core.disconnect_gate.clear()
    transport = NeonizeTransport(NeonizeConfig(max_sessions=2, stop_timeout=0.3), core=core)  # type: ignore[arg-type]
    first = await transport.open(spec(tmp_path), Recorder())
    assert await asyncio.to_thread(core.running.wait, 5)
    core.running.clear()
    started = time.monotonic()
    await first.stop()  # bounded although the disconnect is still blocked
    assert time.monotonic() - started < 1.0
    second = await transport.open(spec(tmp_path), Recorder())
    await asyncio.sleep(0.3)
    assert not core.running.is_set()  # the new client waits for the old socket
    core.disconnect_gate.set()
    assert await asyncio.to_thread(core.running.wait, 5)
    await second.stop()
    core.released.set()


@pytest.mark.asyncio
async def test_logout_confirmed_but_store_not_deleted_counts_as_unlinked(tmp_path: Path) -> None:
    # whatsmeow's Logout returns this only after WhatsApp answered the unlink request.
    session, core, rec = await fake_session(tmp_path)
    core.logout = lambda uuid: "error deleting data from store: disk I/O error"  # type: ignore[method-assign]
    assert core.callbacks is not None
    core.callbacks.on_event(3, pb.Connected(status=True))
    await rec.wait_for(Connected)
    await session.logout()  # no LogoutError
    core.logout = lambda uuid: "error sending logout request: info query timed out"  # type: ignore[method-assign]
    again, core2, rec2 = await fake_session(tmp_path / "b")
    core2.logout = core.logout  # type: ignore[method-assign]
    assert core2.callbacks is not None
    core2.callbacks.on_event(3, pb.Connected(status=True))
    await rec2.wait_for(Connected)
    with pytest.raises(LogoutError) as err:
        await again.logout()
    assert "info query timed out" in str(err.value)
    core.released.set()
    core2.released.set()


@pytest.mark.asyncio
async def test_an_abandoned_logout_still_tears_the_client_down(tmp_path: Path) -> None:
    session, core, rec = await fake_session(tmp_path, stop_timeout=2.0)
    answer = threading.Event()

    def slow_logout(uuid: bytes) -> str:
        core.calls.append("logout")
        answer.wait(10)
        return "error sending logout request: websocket disconnected"

    core.logout = slow_logout  # type: ignore[method-assign]
    assert core.callbacks is not None
    core.callbacks.on_event(3, pb.Connected(status=True))
    await rec.wait_for(Connected)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(session.logout(), 0.3)  # the caller gives up
    for _ in range(100):  # the teardown went on: disconnect, then Stop
        if "stop" in core.calls:
            break
        await asyncio.sleep(0.05)
    assert core.calls[-2:] == ["disconnect", "stop"]
    answer.set()
