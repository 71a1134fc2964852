"""Behind a proxy that ends TLS: the console's cookie is Secure when the proxy is trusted
(``WAFLEET_FORWARDED_ALLOW_IPS``) and says the request came over https, and only then."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from support.process import Standalone

pytestmark = pytest.mark.e2e

HTTPS = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}


def cookie_line(proc: Standalone) -> str:
    with httpx.Client(base_url=proc.url) as browser:
        page = browser.get("/console/sign-in", headers=HTTPS)
    assert page.status_code == 200, page.text
    [line] = [v for k, v in page.headers.multi_items() if k == "set-cookie"]
    return line.lower()


@pytest.mark.parametrize(
    ("trusted", "secure"), [(None, True), ("10.0.0.0/8", False), ("10.0.0.0/8,127.0.0.1", True)]
)
def test_the_cookie_is_secure_only_through_a_trusted_proxy(
    tmp_path: Path, trusted: str | None, secure: bool
) -> None:
    env = {} if trusted is None else {"WAFLEET_FORWARDED_ALLOW_IPS": trusted}
    proc = Standalone(data_dir=tmp_path / "data", env=env)
    try:
        proc.start()
        line = cookie_line(proc)
    finally:
        proc.kill()
    assert "httponly" in line and "samesite=strict" in line
    assert ("; secure" in line) is secure, line
