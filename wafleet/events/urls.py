"""Webhook URLs: what may be registered, and where a delivery may go.

A webhook makes wafleet send requests to a URL a client chose. Unless
``WAFLEET_WEBHOOK_ALLOW_PRIVATE`` is set, such a URL may not reach the network wafleet
runs in (private, loopback, link-local, ... addresses: server-side request forgery).
Registration checks the URL's form and every address its host resolves to
(:func:`check_url`, :func:`check_url_resolving`); each delivery checks the addresses
again (:func:`address_allowed`), since a name can later resolve elsewhere (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
SCHEMES = ("http", "https")
ALLOW_PRIVATE_HINT = "set WAFLEET_WEBHOOK_ALLOW_PRIVATE=true to allow such addresses"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # the well-known NAT64 prefix


@dataclass(frozen=True)
class Target:
    """A URL's host (lowercase, without IPv6 brackets) and port (the scheme's default)."""

    host: str
    port: int


def _form_error(url: str, problem: str) -> ValueError:
    return ValueError(f"webhook URL {url} {problem}")


def parse_target(url: str) -> Target:
    """Check the form of ``url`` (no DNS): http or https, a host, no credentials, at most
    2048 characters. Raises ValueError saying what to fix."""
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(
            f"the webhook URL is {len(url)} characters long; use at most {MAX_URL_LENGTH}"
        )
    if any(char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F for char in url):
        raise ValueError(
            "the webhook URL contains spaces or control characters; percent-encode them"
        )
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ValueError(
            f"the webhook URL cannot be read ({exc}); use http(s)://host/path"
        ) from exc
    if "@" in parts.netloc:
        # Never echo the URL: it holds a password.
        raise ValueError(
            "the webhook URL has credentials in it (user:password@host); remove them: "
            "deliveries are signed with the webhook's secret, check the signature instead"
        )
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        shown = f"'{parts.scheme}'" if parts.scheme else "no scheme"
        raise _form_error(url, f"has {shown}; use an http:// or https:// URL")
    host = parts.hostname
    if not host:
        raise _form_error(url, "has no host; use http(s)://host/path")
    try:
        port = parts.port
    except ValueError as exc:
        raise _form_error(url, "has an invalid port; use a number from 1 to 65535") from exc
    if port == 0:
        raise _form_error(url, "has port 0; use a number from 1 to 65535")
    return Target(host=host, port=port or (443 if scheme == "https" else 80))


def check_url_form(url: str) -> str:
    """``url`` if its form is fine (see :func:`parse_target`); no DNS lookup."""
    parse_target(url)
    return url


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.partition("%")[0])  # no IPv6 zone id
    except ValueError:
        return None


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64), which the packet
    reaches in the end."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refused_kind(address: IPAddress) -> str | None:
    """What makes ``address`` unfit for a webhook ("a private address"), or None if public."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_v4(address)
        if inner is not None:
            return refused_kind(inner)
    checks = (
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private address"),
        (not address.is_global, "a non-public address"),  # e.g. 100.64.0.0/10 (CGNAT)
    )
    for refused, kind in checks:
        if refused:
            return kind
    return None


def _resolve(target: Target) -> list[IPAddress]:
    """Every address ``target.host`` resolves to (blocking: run it in a thread)."""
    literal = _literal(target.host)
    if literal is not None:
        return [literal]
    infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = _literal(str(sockaddr[0]))
        if address is not None and address not in found:
            found.append(address)
    return found


def _refusal(url: str, target: Target, addresses: list[IPAddress]) -> str | None:
    if not addresses:
        return f"webhook URL {url}: {target.host} resolves to no address; check the host name"
    for address in addresses:
        kind = refused_kind(address)
        if kind is not None:
            inner = _embedded_v4(address) if isinstance(address, ipaddress.IPv6Address) else None
            shown = f"{inner} in {address}" if inner is not None else str(address)
            return (
                f"webhook URL {url} resolves to {kind} ({shown}); use a URL that "
                f"resolves to public addresses only, or {ALLOW_PRIVATE_HINT}"
            )
    return None


def _lookup_failure(url: str, target: Target, exc: OSError) -> str:
    return f"webhook URL {url}: {target.host} does not resolve ({exc}); check the host name"


def check_url(url: str, *, allow_private: bool) -> str:
    """``url`` if it may be registered: its form is fine and, unless ``allow_private``,
    every address its host resolves to is public. Blocks on DNS: from async code use
    :func:`check_url_resolving`. Raises ValueError saying what to fix."""
    target = parse_target(url)
    if allow_private:
        return url
    try:
        addresses = _resolve(target)
    except OSError as exc:
        raise ValueError(_lookup_failure(url, target, exc)) from exc
    refusal = _refusal(url, target, addresses)
    if refusal is not None:
        raise ValueError(refusal)
    return url


async def check_url_resolving(url: str, *, allow_private: bool) -> str:
    """:func:`check_url`, with the DNS lookup in a thread."""
    parse_target(url)
    if allow_private:
        return url
    return await asyncio.to_thread(check_url, url, allow_private=allow_private)


async def address_allowed(url: str, allow_private: bool) -> str | None:
    """At delivery: why ``url`` may not be sent to now, or None when it may.

    A refusal counts as a failed attempt (the name may resolve to a public address again).
    """
    try:
        target = parse_target(url)
    except ValueError as exc:
        return str(exc)
    if allow_private:
        return None
    try:
        addresses = await asyncio.to_thread(_resolve, target)
    except OSError as exc:
        return _lookup_failure(url, target, exc)
    return _refusal(url, target, addresses)
