"""``python -m k8s_emulator --port P``: serve the emulator on 127.0.0.1."""

from __future__ import annotations

import argparse
import logging

import uvicorn

from k8s_emulator.app import create_app
from k8s_emulator.server import QuietDroppedWatches, Server
from k8s_emulator.store import DEFAULT_HISTORY, Store
from k8s_emulator.web import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="k8s_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument(
        "--history",
        type=int,
        default=DEFAULT_HISTORY,
        help="watch cache: events kept per resource (default 102400, the API server's bound)",
    )
    parser.add_argument("--bookmark-interval", type=float, default=60.0, help="seconds")
    parser.add_argument(
        "--watch-timeout",
        type=float,
        default=1800.0,
        help="seconds a watch lasts without timeoutSeconds",
    )
    parser.add_argument(
        "--token",
        action="append",
        default=[],
        metavar="TOKEN=USER",
        help="a bearer token and the user it stands for (repeatable)",
    )
    parser.add_argument("--rbac", action="store_true", help="enforce RBAC (admin token excepted)")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    tokens = dict(item.split("=", 1) for item in args.token)
    store = Store(history_size=args.history)
    settings = Settings(
        bookmark_interval=args.bookmark_interval, default_watch_timeout=args.watch_timeout
    )
    app = create_app(store, settings, tokens=tokens, enforce_rbac=args.rbac)
    logging.basicConfig(level=args.log_level.upper())
    logging.getLogger("uvicorn.error").addFilter(QuietDroppedWatches())
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        timeout_graceful_shutdown=3,
        access_log=False,
    )
    server = Server(config)
    server.store = store
    server.run()


if __name__ == "__main__":
    main()
