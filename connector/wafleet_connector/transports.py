"""The transport the settings name: neonize (real WhatsApp) or the sim."""

from __future__ import annotations

from wafleet.core.envconfig import ConfigError
from wafleet.core.settings import Settings
from wafleet.sim.service import SimWhatsApp
from wafleet_connector.manager import ManagerConfig
from wafleet_connector.sim_transport import SimTransport, local_dialer, websocket_dialer
from wafleet_connector.transport import Transport

NEONIZE_MAX_SESSIONS = 1000


def build_transport(settings: Settings, embedded_sim: SimWhatsApp | None = None) -> Transport:
    """``embedded_sim``: a sim in this process (standalone); else WAFLEET_SIM_URL is dialled."""
    if settings.transport == "sim":
        if embedded_sim is not None:
            return SimTransport(local_dialer(embedded_sim))
        if settings.sim_url is None:
            raise ConfigError("WAFLEET_TRANSPORT=sim needs WAFLEET_SIM_URL (the sim service)")
        return SimTransport(websocket_dialer(settings.sim_url))
    # Imported here: neonize loads its Go library and libmagic, which sim users never need.
    from wafleet_connector.engine.inprocess import NeonizeConfig, NeonizeTransport  # noqa: PLC0415

    # Its stop must finish inside the runner's own stop timeout.
    session_stop = ManagerConfig.from_settings(settings).session_stop_timeout
    transport: Transport = NeonizeTransport(
        NeonizeConfig(max_sessions=NEONIZE_MAX_SESSIONS, stop_timeout=max(1.0, session_stop - 1))
    )
    return transport
