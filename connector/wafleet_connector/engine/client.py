"""The connector's `neonize` transport: sessions in supervised engine worker processes.

The connector never loads neonize itself. Each session is a device stream to a worker
(``supervisor``), read by the same client as the simulated WhatsApp (``frame_client``).
"""

from __future__ import annotations

from wafleet.sim.wire import Frame
from wafleet_connector.engine.supervisor import EngineConfig, EngineSupervisor
from wafleet_connector.frame_client import FrameTimeouts, FrameTransport
from wafleet_connector.transport import SessionSpec


class EngineCredentials:
    """whatsmeow keeps the device in the session store itself: name the file, that is all."""

    async def hello(self, spec: SessionSpec) -> Frame:
        return {
            "type": "hello",
            "account": spec.account_id,
            "phone": spec.phone,
            "login": spec.login,
            "session": str(spec.session_path),
        }

    async def paired(self, spec: SessionSpec, frame: Frame) -> None:
        return None


class EngineTransport(FrameTransport):
    def __init__(self, config: EngineConfig, timeouts: FrameTimeouts) -> None:
        self.supervisor = EngineSupervisor(config)
        super().__init__(
            "neonize",
            self.supervisor.dial,
            EngineCredentials(),
            timeouts,
            on_close=self.supervisor.close,
        )
