"""The ``wafleet`` commands for people: accounts, QR codes in the terminal, messages,
events and batch onboarding, over the REST API of a standalone process or a cluster.

These commands talk HTTP only (``client.py``); they import no store and no component.
``add_parsers`` adds them to the ``wafleet`` command, ``COMMANDS`` runs them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from wafleet_app.people import commands_accounts as accounts
from wafleet_app.people.commands_events import tail
from wafleet_app.people.commands_messages import messages, send
from wafleet_app.people.commands_onboard import onboard
from wafleet_app.people.context import Context, Handler, runs
from wafleet_app.people.parsers import add_parsers

ACCOUNT_ACTIONS: dict[str, Handler] = {
    "add": accounts.add,
    "list": accounts.list_accounts,
    "show": accounts.show,
    "regenerate-qr": accounts.regenerate_qr,
    "disconnect": accounts.disconnect,
    "delete": accounts.delete,
}


def _accounts(ctx: Context, args: argparse.Namespace) -> int:
    return ACCOUNT_ACTIONS[args.accounts_command](ctx, args)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "accounts": runs(_accounts),
    "send": runs(send),
    "messages": runs(messages),
    "events": runs(tail),
    "onboard": runs(onboard),
}

__all__ = ["COMMANDS", "add_parsers"]
