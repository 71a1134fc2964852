"""The transport the settings name: neonize (real WhatsApp) or the sim."""

from __future__ import annotations

from wafleet.core.envconfig import ConfigError
from wafleet.core.settings import Settings
from wafleet.sim.service import SimWhatsApp
from wafleet_connector.engine.client import EngineTransport
from wafleet_connector.engine.supervisor import EngineConfig
from wafleet_connector.frame_client import FrameTimeouts
from wafleet_connector.manager import ManagerConfig
from wafleet_connector.sim_transport import SimTransport, local_dialer, websocket_dialer
from wafleet_connector.transport import Transport


def frame_timeouts(settings: Settings) -> FrameTimeouts:
    """A session's stop must finish inside the runner's own stop timeout."""
    session_stop = ManagerConfig.from_settings(settings).session_stop_timeout
    return FrameTimeouts(stop=max(0.5, session_stop - 1), logout=settings.logout_timeout - 1)


def engine_config(settings: Settings) -> EngineConfig:
    stop = frame_timeouts(settings).stop
    return EngineConfig(
        sessions_per_worker=settings.engine_sessions_per_worker,
        gomemlimit=settings.engine_gomemlimit,
        library=settings.engine_library,
        sessions_dir=settings.sessions_dir,
        stop_timeout=stop,
        log_level="debug" if settings.log_level == "debug" else "warning",
        neonize={
            "stop_timeout": max(0.5, stop - 0.5),
            "logout_timeout": max(1.0, settings.logout_timeout - 3),
        },
    )


def build_transport(settings: Settings, embedded_sim: SimWhatsApp | None = None) -> Transport:
    """``embedded_sim``: a sim in this process (standalone); else WAFLEET_SIM_URL is dialled."""
    timeouts = frame_timeouts(settings)
    if settings.transport == "sim":
        if embedded_sim is not None:
            return SimTransport(local_dialer(embedded_sim), timeouts)
        if settings.sim_url is None:
            raise ConfigError("WAFLEET_TRANSPORT=sim needs WAFLEET_SIM_URL (the sim service)")
        return SimTransport(websocket_dialer(settings.sim_url), timeouts)
    return EngineTransport(engine_config(settings), timeouts)
