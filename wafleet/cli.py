"""The ``wafleet`` command: ``standalone`` and ``sim`` (cluster commands come later)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from wafleet import __version__
from wafleet.core.envconfig import ConfigError
from wafleet.core.logs import setup_logging
from wafleet.core.settings import TRANSPORTS, Settings

GRACEFUL_HTTP_SECONDS = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wafleet", description=__doc__)
    parser.add_argument("--version", action="version", version=f"wafleet {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    standalone = commands.add_parser(
        "standalone", help="API + one connector + SQLite in one process"
    )
    standalone.add_argument("--transport", choices=TRANSPORTS, help="default: neonize")
    standalone.add_argument("--port", type=int, help="default: 8080 (WAFLEET_PORT)")
    standalone.add_argument("--host", help="default: 127.0.0.1 (WAFLEET_HOST)")
    standalone.add_argument("--data-dir", type=Path, help="default: ./data (WAFLEET_DATA_DIR)")

    sim = commands.add_parser("sim", help="the simulated WhatsApp service")
    sim.add_argument("--port", type=int, default=8090)
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--state", type=Path, help="file that keeps linked devices across restarts")
    return parser


class _Server(uvicorn.Server):
    """Exit with status 0 after a graceful stop on SIGTERM/SIGINT.

    uvicorn re-raises the signal once it has shut down, so the process would end
    "killed by SIGTERM" although it stopped cleanly; that reads as a crash.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            self._captured_signals.clear()


def _serve(app: Starlette, host: str, port: int, log_level: str) -> None:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_HTTP_SECONDS,
        log_config=None,
        ws="websockets-sansio",
    )
    _Server(config).run()


def run_standalone(args: argparse.Namespace) -> int:
    from wafleet.core.token import load_or_create_token
    from wafleet.standalone import create_standalone_app

    settings = Settings.from_env(
        transport=args.transport, port=args.port, host=args.host, data_dir=args.data_dir
    )
    setup_logging(settings.log_level)
    token = load_or_create_token(settings.admin_token, settings.data_dir)
    if token.source == "generated":
        print(f"wafleet: admin token (kept in {settings.data_dir}/admin-token): {token.value}")
    elif token.source != "environment":
        print(f"wafleet: admin token is in {token.source}")
    print(
        f"wafleet: standalone on http://{settings.host}:{settings.port} "
        f"(transport {settings.transport}, data in {settings.data_dir})",
        flush=True,
    )
    app = create_standalone_app(settings, token)
    _serve(app, settings.host, settings.port, settings.log_level)
    return 0


def run_sim(args: argparse.Namespace) -> int:
    from wafleet.sim.routes import create_sim_app
    from wafleet.sim.service import SimWhatsApp, sim_config_from_env

    setup_logging("info")
    sim = SimWhatsApp(sim_config_from_env(state_path=args.state))
    print(f"wafleet: sim on http://{args.host}:{args.port}", flush=True)
    _serve(create_sim_app(sim), args.host, args.port, "info")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "standalone":
            return run_standalone(args)
        return run_sim(args)
    except ConfigError as exc:
        print(f"wafleet: configuration error: {exc}", file=sys.stderr)
        return 2
