"""The account runner: one task per account of the shard (``core.AccountRunner``)."""

from wafleet_connector.runner.context import (
    Command,
    CommandKind,
    CommandRefused,
    RunnerContext,
    UnlinkPending,
)
from wafleet_connector.runner.core import AccountRunner

__all__ = [
    "AccountRunner",
    "Command",
    "CommandKind",
    "CommandRefused",
    "RunnerContext",
    "UnlinkPending",
]
