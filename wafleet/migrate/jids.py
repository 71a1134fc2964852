"""JIDs and Signal addresses as whatsmeow writes them.

whatsmeow's ``JID.String()`` is ``user:device@server`` for a device (``user@server`` for device
0), and ``SignalAddress.String()`` is ``<user>[_<domain>]:<device>``, the domain being 1 for
``lid``, 128 for ``hosted`` and 129 for ``hosted.lid`` (``types/jid.go``). libsignal-node writes
the same address as ``<user>[_<domain>].<device>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PN_SERVER = "s.whatsapp.net"
LID_SERVER = "lid"
DOMAINS = {PN_SERVER: "", LID_SERVER: "_1", "hosted": "_128", "hosted.lid": "_129"}
MAX_DEVICE = 2**16 - 1
# user, an optional ".<agent>", an optional ":<device>", the server (whatsmeow's ParseJID forms)
_JID = re.compile(r"^([0-9]+)(?:\.([0-9]+))?(?::([0-9]+))?@([a-z.]+)$")


@dataclass(frozen=True)
class Jid:
    user: str
    device: int
    server: str

    def __str__(self) -> str:
        if self.device:
            return f"{self.user}:{self.device}@{self.server}"
        return f"{self.user}@{self.server}"

    @property
    def signal_user(self) -> str:
        return self.user + DOMAINS.get(self.server, "")


class BadJid(ValueError):
    pass


def parse_jid(text: str, *, server: str | None = None) -> Jid:
    """A user or device JID; ``BadJid`` says what is wrong (without repeating the number)."""
    match = _JID.match(text.strip())
    if match is None:
        raise BadJid("is not a user JID (<number>[:<device>]@<server>)")
    user, agent, device, found_server = match.groups()
    if agent is not None and int(agent) != 0:
        raise BadJid("has an agent, which a linked WhatsApp device never has")
    if server is not None and found_server != server:
        raise BadJid(f"is on the server {found_server!r}, not {server!r}")
    if found_server not in DOMAINS:
        raise BadJid(f"is on the server {found_server!r}, which is not a user server")
    number = int(device or 0)
    if number > MAX_DEVICE:
        raise BadJid(f"has the device {number}, more than {MAX_DEVICE}")
    return Jid(user, number, found_server)


def whatsmeow_address(node_address: str) -> str:
    """libsignal-node ``<name>.<device>`` → whatsmeow ``<name>:<device>``."""
    name, _, device = node_address.rpartition(".")
    return f"{name}:{device}"


def identity_address(jid: Jid, device_id: int) -> str:
    """The Signal address of ``jid``'s user with the given device."""
    return f"{jid.signal_user}:{device_id}"
