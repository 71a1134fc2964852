"""What can go wrong for a person at the command line, and the exit code it ends with.

Two kinds, so a script can tell them apart: a usage or configuration error (exit 2, the
command was not run as asked: fix the command line or the settings) and a refusal or
failure of the API (exit 1: the server said no, or could not be reached).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # the API refused or failed, or what was waited for did not happen
EXIT_USAGE = 2  # a usage or configuration error: nothing was sent
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report a SIGINT


class UsageError(Exception):
    """The command line or the settings are wrong; the message says what to fix."""


class ApiFailure(Exception):
    """The API answered an error, or could not be reached.

    ``transient`` is true when trying again later may work (unreachable, timed out, 503):
    a follower (``--wait``, ``events tail``) retries those, a one-shot command reports them.
    """

    def __init__(
        self, message: str, *, status: int | None = None, code: str = "", transient: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.transient = transient

    def __str__(self) -> str:
        return self.message
