"""What every command for people starts with and ends with.

``runs(handler)`` turns ``handler(ctx, args)`` into a ``COMMANDS`` entry of the
``wafleet`` command: it reads the settings once (flags, environment, config file), opens
the API client and the consoles, and maps what went wrong to the exit code and one
message on stderr (2: usage or configuration, 1: the API refused or failed, 130: Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from wafleet_app.people.client import Api
from wafleet_app.people.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    ApiFailure,
    UsageError,
)
from wafleet_app.people.settings import CliSettings, Flags, resolve

logger = logging.getLogger(__name__)


@dataclass
class Context:
    settings: CliSettings
    api: Api
    out: Console  # what the person reads (stdout)
    err: Console  # warnings and errors (stderr)
    json: bool = False  # machine output: JSON on stdout, nothing else there

    def emit(self, value: Any) -> None:
        """One JSON document on a line of stdout (not through rich: no markup, no wrap)."""
        sys.stdout.write(json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    def say(self, message: str, style: str = "") -> None:
        """A line for the person: on stdout, or on stderr when stdout carries JSON."""
        (self.err if self.json else self.out).print(
            message, style=style, markup=False, soft_wrap=True
        )

    def warn(self, message: str) -> None:
        self.err.print(f"wafleet: warning: {message}", style="yellow", markup=False, soft_wrap=True)


Handler = Callable[[Context, argparse.Namespace], int]


def settings_of(args: argparse.Namespace) -> CliSettings:
    """The one place the environment is read for these commands."""
    return resolve(Flags(url=args.url, key=args.key, config=args.config), os.environ)


def runs(handler: Handler) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        err = Console(stderr=True, highlight=False)
        try:
            settings = settings_of(args)
        except UsageError as exc:
            err.print(f"wafleet: {exc}", style="red", markup=False, soft_wrap=True)
            return EXIT_USAGE
        ctx = Context(
            settings=settings,
            api=Api(settings),
            out=Console(highlight=False),
            err=err,
            json=bool(getattr(args, "json", False)),
        )
        for warning in settings.warnings:
            ctx.warn(warning)
        try:
            return handler(ctx, args)
        except UsageError as exc:
            err.print(f"wafleet: {exc}", style="red", markup=False, soft_wrap=True)
            return EXIT_USAGE
        except ApiFailure as exc:
            logger.debug("the API failed: status %s code %s", exc.status, exc.code)
            err.print(f"wafleet: {exc}", style="red", markup=False, soft_wrap=True)
            return EXIT_FAILED
        except KeyboardInterrupt:
            err.print("wafleet: interrupted", style="yellow", markup=False, soft_wrap=True)
            return EXIT_INTERRUPTED
        except BrokenPipeError:  # `wafleet ... | head`: the reader has all it wanted
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return EXIT_OK
        finally:
            ctx.api.close()

    run.__name__ = f"run_{handler.__name__}"
    run.__doc__ = handler.__doc__
    return run
