"""The ``wafleet`` command: ``standalone``, the cluster components (``api``, ``connector``,
``operator``) and the simulated WhatsApp (``sim``)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from wafleet import __version__
from wafleet.core.envconfig import ConfigError
from wafleet.core.legacy_env import translate_legacy
from wafleet.core.log_context import set_process_fields
from wafleet.core.logs import setup_logging
from wafleet.core.settings import TRANSPORTS, Settings
from wafleet_app.migrate_cli import add_parser as add_migrate_parser
from wafleet_app.migrate_cli import run_migrate
from wafleet_app.people import COMMANDS as PEOPLE_COMMANDS
from wafleet_app.people import add_parsers as add_people_parsers

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

    for name, text in (
        ("api", "the REST API in a cluster (accounts are WhatsAppAccount resources)"),
        ("connector", "a connector StatefulSet pod: the sessions of its shard"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("--port", type=int, help="default: 8080 (WAFLEET_PORT)")
        command.add_argument("--host", help="default: 127.0.0.1 (WAFLEET_HOST)")
    operator = commands.add_parser("operator", help="the kopf operator: shards and scaling")
    operator.add_argument(
        "--liveness-port", type=int, default=8081, help="kopf's /healthz (default: 8081)"
    )
    operator.add_argument(
        "--readiness-port",
        type=int,
        default=8082,
        help="/readyz: kopf started, its indexes filled, this operator acting (default: 8082)",
    )

    add_migrate_parser(commands)

    sim = commands.add_parser("sim", help="the simulated WhatsApp service")
    sim.add_argument("--port", type=int, default=8090)
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--state", type=Path, help="file that keeps linked devices across restarts")

    add_people_parsers(commands)
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


def _serve(
    app: Starlette, host: str, port: int, log_level: str, forwarded_allow_ips: str = "127.0.0.1"
) -> None:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        forwarded_allow_ips=forwarded_allow_ips,  # proxies whose X-Forwarded-* count
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_HTTP_SECONDS,
        log_config=None,
        ws="websockets-sansio",
    )
    _Server(config).run()


def run_standalone(args: argparse.Namespace) -> int:
    from wafleet.core.token import load_or_create_token
    from wafleet_app.standalone import create_standalone_app

    legacy = translate_legacy(os.environ)  # the legacy server's variables, where they fit
    settings = Settings.from_env(
        legacy.env, transport=args.transport, port=args.port, host=args.host, data_dir=args.data_dir
    )
    setup_logging(settings.log_level, settings.log_format)
    for notice in legacy.notices:
        print(f"wafleet: {notice}", flush=True)
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
    print(
        f"wafleet: the web console is at http://{settings.host}:{settings.port}/ (sign in "
        "with the admin token); `wafleet accounts --help` for the command line",
        flush=True,
    )
    app = create_standalone_app(settings, token)
    _serve(app, settings.host, settings.port, settings.log_level, settings.forwarded_allow_ips)
    return 0


def run_sim(args: argparse.Namespace) -> int:
    from wafleet.sim.routes import create_sim_app
    from wafleet.sim.service import SimWhatsApp, sim_config_from_env

    setup_logging("info")
    sim = SimWhatsApp(sim_config_from_env(state_path=args.state))
    print(f"wafleet: sim on http://{args.host}:{args.port}", flush=True)
    _serve(create_sim_app(sim), args.host, args.port, "info")
    return 0


def run_api(args: argparse.Namespace) -> int:
    from wafleet.core.token import load_or_create_token
    from wafleet.kube.client import KubeClient
    from wafleet.kube.config import load_connection
    from wafleet.stores.factory import open_store, open_webhook_store
    from wafleet_api.app import create_app
    from wafleet_api.cluster_backend import ClusterBackend
    from wafleet_connector.cluster_settings import namespace_from_env

    settings = Settings.from_env(port=args.port, host=args.host)
    namespace = namespace_from_env()
    setup_logging(settings.log_level, settings.log_format)
    token = load_or_create_token(settings.admin_token, settings.data_dir)
    if token.source == "generated":
        print(f"wafleet: admin token (kept in {settings.data_dir}/admin-token): {token.value}")
    kube = KubeClient(load_connection(), watch_read_timeout=settings.kube_watch_timeout)
    backend = ClusterBackend(
        kube,
        namespace,
        lambda: open_store(settings),
        lambda: open_webhook_store(settings),
        settings.kube_watch_seconds,
    )
    app = create_app(settings, backend, admin_token=token.value)
    _serve(app, settings.host, settings.port, settings.log_level, settings.forwarded_allow_ips)
    return 0


def run_connector(args: argparse.Namespace) -> int:
    from wafleet_connector.cluster import create_connector_app
    from wafleet_connector.cluster_settings import ConnectorSettings

    settings = ConnectorSettings.from_env(port=args.port, host=args.host)
    setup_logging(settings.base.log_level, settings.base.log_format)
    set_process_fields(shard=settings.ordinal)  # on every line this pod logs
    print(
        f"wafleet: connector {settings.pod_name} (shard {settings.ordinal}) "
        f"on http://{settings.base.host}:{settings.base.port}",
        flush=True,
    )
    app = create_connector_app(settings)
    _serve(app, settings.base.host, settings.base.port, settings.base.log_level)
    return 0


def run_operator(args: argparse.Namespace) -> int:
    import asyncio

    import wafleet_operator.handlers  # noqa: F401 (registers the handlers)
    from wafleet_connector.cluster_settings import namespace_from_env
    from wafleet_operator.readiness import operate

    if args.readiness_port == args.liveness_port:
        raise ConfigError("--readiness-port and --liveness-port must differ")
    namespace = namespace_from_env()
    base = Settings.from_env()
    setup_logging(base.log_level, base.log_format)
    # As kopf.run does: a cancellation is how kopf stops on SIGTERM/SIGINT.
    with contextlib.suppress(asyncio.CancelledError):
        asyncio.run(operate(namespace, args.liveness_port, args.readiness_port))
    return 0


COMMANDS = {
    "standalone": run_standalone,
    "sim": run_sim,
    "api": run_api,
    "connector": run_connector,
    "operator": run_operator,
    "migrate-legacy": run_migrate,
    **PEOPLE_COMMANDS,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"wafleet: configuration error: {exc}", file=sys.stderr)
        return 2
