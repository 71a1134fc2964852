"""Where the console lives: ``/`` (the fleet) and everything under ``/console/``.

Kept apart (and free of imports) so that the bearer middleware can tell console paths,
which authenticate with the console's own session cookie, from ``/api/...`` paths, which
take a bearer credential only: a cookie must never authenticate a REST call.
"""

from __future__ import annotations

from urllib.parse import quote

ROOT = "/"
PREFIX = "/console"
STATIC = PREFIX + "/static"
SIGN_IN = PREFIX + "/sign-in"
SIGN_OUT = PREFIX + "/sign-out"
FLEET_TABLE = PREFIX + "/fleet"
NEW_ACCOUNT = PREFIX + "/accounts/new"
ACCOUNTS = PREFIX + "/accounts"

MAX_NEXT = 300  # characters of a path to come back to after signing in


def is_console_path(path: str) -> bool:
    return path in (ROOT, PREFIX) or path.startswith(PREFIX + "/")


def account_path(account_id: str, tail: str = "") -> str:
    """``/console/accounts/<id>[/tail]``; the id quoted (it comes from a path parameter)."""
    base = f"{ACCOUNTS}/{quote(account_id, safe='')}"
    return f"{base}/{tail}" if tail else base


def safe_next(value: str | None) -> str:
    """A place to go back to after signing in: a console page on this site, or ``/``.

    Only a local path of the console is taken (not ``//host``, not a scheme, not a
    backslash some browsers read as a slash), so the sign-in form cannot be made to
    send a person elsewhere; the query is dropped, so it never carries anything along.
    """
    if not value or len(value) > MAX_NEXT or "\\" in value or not value.isascii():
        return ROOT
    path = value.split("?", 1)[0].split("#", 1)[0]
    if path.startswith("//") or not is_console_path(path) or path.startswith(STATIC):
        return ROOT
    if path in (SIGN_IN, SIGN_OUT) or any(c < " " for c in path):
        return ROOT
    return path
