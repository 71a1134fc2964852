"""The one error a conversion reports for an account: what is wrong, and where."""

from __future__ import annotations

from wafleet.core.logs import mask_phones

LEFT_FOR_LINK = "the account is left for a normal link (QR or pairing code)"


class Unconvertible(Exception):
    """The account cannot be converted; ``reason`` says why, as one sentence.

    ``reason`` has the phone numbers of file names masked (it is meant for logs and
    reports); ``file`` and ``what`` keep the raw parts.
    """

    def __init__(self, file: str | None, what: str) -> None:
        self.file = file
        self.what = what
        where = f"{file}: " if file else ""
        self.reason = mask_phones(f"{where}{what}; {LEFT_FOR_LINK}")
        super().__init__(self.reason)


class Garbled(ValueError):
    """A value inside one file is not what Baileys writes; the reader names the file."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(what)
