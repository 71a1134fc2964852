"""LID addressing: WhatsApp names many contacts by a "<lid>@lid" jid instead of their number.

Each phone has one stable LID of 15 digits, derived from SHA-256 of the phone (so
it needs no storage) and never equal to the phone's own digits. The sim can turn a
LID back into a phone only for phones it has come across (a linked device, a sender
or recipient, a LID lookup): as on WhatsApp, a LID nobody was ever shown is unknown.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from wafleet.core.phones import JID_SUFFIX, InvalidPhone, normalize_phone

LID_SUFFIX = "@lid"
LID_DIGITS = 15
_LID_FLOOR = 10 ** (LID_DIGITS - 1)
_USER_JID = re.compile(r"([1-9][0-9]{0,19})(?::[0-9]{1,3})?@(s\.whatsapp\.net|lid)")


def lid_of(phone: str) -> str:
    """The LID digits of an E.164 phone: deterministic, 15 digits, not the phone's."""
    digits = phone.lstrip("+")
    salt = 0
    while True:
        seed = phone if salt == 0 else f"{phone}#{salt}"
        value = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big")
        lid = str(_LID_FLOOR + value % (9 * _LID_FLOOR))
        if lid != digits:
            return lid
        salt += 1


def lid_jid(phone: str) -> str:
    return lid_of(phone) + LID_SUFFIX


@dataclass(frozen=True)
class Target:
    """The recipient of a device's send: a phone-number jid or a LID jid."""

    user: str  # the digits before "@" (without a ":device" part)
    is_lid: bool


def parse_target(jid: str) -> Target | None:
    """A user jid ("<digits>@s.whatsapp.net" or "<digits>@lid"), or None for anything else."""
    match = _USER_JID.fullmatch(jid)
    if match is None:
        return None
    return Target(user=match.group(1), is_lid=match.group(2) == "lid")


def phone_of_pn_user(user: str) -> str | None:
    """The E.164 phone of a phone-number jid's digits, or None if no number has them."""
    try:
        return normalize_phone(user + JID_SUFFIX)
    except InvalidPhone:
        return None


class LidDirectory:
    """The phones whose LID the sim can resolve."""

    def __init__(self, phones: Iterable[str] = ()) -> None:
        self._phones: dict[str, str] = {}  # lid digits -> phone
        for phone in phones:
            self.remember(phone)

    def remember(self, phone: str) -> bool:
        """Make ``phone``'s LID resolvable; True if it was not known yet."""
        lid = lid_of(phone)
        if lid in self._phones:
            return False
        self._phones[lid] = phone
        return True

    def resolve(self, lid: str) -> str | None:
        return self._phones.get(lid)

    def phones(self) -> list[str]:
        return sorted(self._phones.values())
