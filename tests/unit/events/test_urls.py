"""Webhook URLs: their form, and the addresses they may reach (no external DNS here)."""

from __future__ import annotations

import ipaddress

import pytest

from wafleet.events.urls import (
    address_allowed,
    check_url,
    check_url_form,
    check_url_resolving,
    refused_kind,
)

REFUSED = [
    ("http://10.0.0.5/x", "a private address (10.0.0.5)"),
    ("http://172.16.3.4/x", "a private address"),
    ("http://192.168.1.1:8080/x", "a private address"),
    ("http://127.0.0.1/x", "a loopback address"),
    ("http://127.8.9.10/x", "a loopback address"),
    ("http://169.254.169.254/latest/meta-data", "a link-local address"),
    ("http://0.0.0.0/x", "an unspecified address"),
    ("http://224.0.0.1/x", "a multicast address"),
    ("http://240.0.0.1/x", "a reserved address"),
    ("http://100.64.0.1/x", "a non-public address"),
    ("http://[::1]/x", "a loopback address"),
    ("http://[::]/x", "an unspecified address"),
    ("http://[fe80::1]/x", "a link-local address"),
    ("http://[fe80::1%25eth0]/x", "a link-local address"),
    ("http://[fc00::1]/x", "a private address"),
    ("http://[fd12:3456::1]/x", "a private address"),
    ("http://[ff02::1]/x", "a multicast address"),
    ("http://[::ffff:10.0.0.5]/x", "a private address (10.0.0.5 in"),
    ("http://[::ffff:127.0.0.1]/x", "a loopback address (127.0.0.1 in"),
    ("http://[::ffff:169.254.169.254]/x", "a link-local address"),
    ("http://[2002:a00:5::1]/x", "a private address (10.0.0.5 in"),  # 6to4 of 10.0.0.5
    ("http://[64:ff9b::a00:5]/x", "a private address (10.0.0.5 in"),  # NAT64 of 10.0.0.5
    ("http://localhost:9000/hook", "a loopback address"),
]


@pytest.mark.parametrize(("url", "kind"), REFUSED)
def test_non_public_addresses_are_refused(url: str, kind: str) -> None:
    with pytest.raises(ValueError, match=r"resolves to") as raised:
        check_url(url, allow_private=False)
    text = str(raised.value)
    assert kind in text
    assert text.startswith(f"webhook URL {url} resolves to")
    assert "WAFLEET_WEBHOOK_ALLOW_PRIVATE=true" in text


def test_the_message_names_the_url_and_the_address() -> None:
    with pytest.raises(ValueError) as raised:
        check_url("http://10.0.0.5/x", allow_private=False)
    assert str(raised.value).startswith(
        "webhook URL http://10.0.0.5/x resolves to a private address (10.0.0.5); "
    )


@pytest.mark.parametrize(("url", "kind"), REFUSED)
def test_the_setting_allows_them(url: str, kind: str) -> None:
    assert check_url(url, allow_private=True) == url


@pytest.mark.parametrize(
    "url",
    [
        "https://8.8.8.8/hook",
        "http://1.1.1.1:8443/a/b?c=d",
        "https://[2001:4860:4860::8888]/hook",
        "http://[::ffff:8.8.8.8]/hook",
    ],
)
def test_public_literal_addresses_pass(url: str) -> None:
    assert check_url(url, allow_private=False) == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://8.8.8.8/x", "has 'ftp'; use an http:// or https:// URL"),
        ("file:///etc/passwd", "has 'file'"),
        ("javascript:alert(1)", "has 'javascript'"),
        ("8.8.8.8/hook", "has no scheme"),
        ("//8.8.8.8/hook", "has no scheme"),
        ("http:///hook", "has no host"),
        ("https://", "has no host"),
        ("http://8.8.8.8:99999/x", "invalid port"),
        ("http://8.8.8.8:0/x", "port 0"),
        ("http://8.8.8.8/a b", "spaces or control characters"),
        ("http://8.8.8.8/a\nb", "spaces or control characters"),
        ("http://[::1/x", "cannot be read"),
    ],
)
def test_bad_forms_are_refused(url: str, message: str) -> None:
    with pytest.raises(ValueError, match="webhook URL") as raised:
        check_url(url, allow_private=True)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    "url",
    ["http://user:hunter2@8.8.8.8/x", "https://token@example.com/x", "http://:pw@[::1]/"],
)
def test_credentials_in_the_url_are_refused_without_echoing_them(url: str) -> None:
    with pytest.raises(ValueError, match="credentials") as raised:
        check_url(url, allow_private=True)
    text = str(raised.value)
    assert "hunter2" not in text
    assert "token" not in text
    assert url not in text


def test_an_at_sign_in_the_path_is_not_credentials() -> None:
    url = "https://8.8.8.8/users/@me"
    assert check_url(url, allow_private=False) == url


def test_length_is_limited() -> None:
    url = "https://8.8.8.8/" + "a" * 2032
    assert len(url) == 2048
    assert check_url_form(url) == url
    with pytest.raises(ValueError, match="2049 characters long; use at most 2048"):
        check_url_form(url + "a")


def test_an_unresolvable_name_is_refused() -> None:
    url = "https://no-such-host.invalid/hook"  # .invalid never resolves (RFC 6761)
    with pytest.raises(ValueError, match="does not resolve"):
        check_url(url, allow_private=False)


def test_form_checks_do_not_need_dns() -> None:
    assert check_url_form("https://no-such-host.invalid/x") == "https://no-such-host.invalid/x"
    assert check_url("https://no-such-host.invalid/x", allow_private=True)


async def test_check_url_resolving() -> None:
    with pytest.raises(ValueError, match="a loopback address"):
        await check_url_resolving("http://localhost/x", allow_private=False)
    with pytest.raises(ValueError, match="'gopher'"):
        await check_url_resolving("gopher://localhost/x", allow_private=True)
    assert await check_url_resolving("http://localhost/x", allow_private=True)
    assert await check_url_resolving("https://8.8.4.4/x", allow_private=False)


async def test_address_allowed_at_delivery() -> None:
    refusal = await address_allowed("http://127.0.0.1:9/x", allow_private=False)
    assert refusal is not None
    assert "a loopback address (127.0.0.1)" in refusal
    refusal = await address_allowed("http://localhost:9/x", allow_private=False)
    assert refusal is not None
    assert "a loopback address" in refusal
    assert await address_allowed("http://127.0.0.1:9/x", allow_private=True) is None
    assert await address_allowed("https://8.8.8.8/x", allow_private=False) is None
    refusal = await address_allowed("ftp://8.8.8.8/x", allow_private=True)
    assert refusal is not None
    assert "'ftp'" in refusal


def test_refused_kind() -> None:
    assert refused_kind(ipaddress.ip_address("8.8.8.8")) is None
    assert refused_kind(ipaddress.ip_address("2606:4700::1111")) is None
    assert refused_kind(ipaddress.ip_address("192.0.2.1")) is not None  # documentation
    assert refused_kind(ipaddress.ip_address("2001:db8::1")) is not None  # documentation
