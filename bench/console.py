"""The web console at fleet scale: 1,000 accounts (300 QRReady), 4 browsers, HTTP only.

Starts ``wafleet standalone --transport sim`` as a real process, adds the accounts through
the API and links 700 of them through the simulator (as ``bench/api.py`` does), signs in
to the console with the admin token as a browser does (the form, its CSRF token, the
session cookie), then runs 4 concurrent clients for ``--seconds`` against each page and
prints p50, p99, requests per second and the body size:

- the fleet page (``GET /``: counts by phase and the first 50 rows);
- the table's live poll when nothing changed (``GET /console/fleet?v=<digest>``: 204);
- a search and a phase filter with paging (the table fragment);
- one account's page (status, conversations, phase history).

The issue asks that the console "works at 1,000 accounts": every page is paged on the
server, so no page grows with the fleet.

Usage: .venv/bin/python bench/console.py [--accounts 1000] [--qr-ready 300] [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from api import onboard, report  # bench/api.py: the same fleet
from support.process import TOKEN, Standalone, phones

CLIENTS = 4
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_VERSION = re.compile(r"[?&]v=([0-9a-f]{16})")
_HX_CSRF = re.compile(r'"X-CSRF-Token": "([^"]+)"')  # the page's hx-headers


def sign_in(url: str) -> tuple[httpx.Cookies, str]:
    """The console's session cookie, got through its sign-in form, and the CSRF token its
    pages give htmx (htmx sends it with every request it makes)."""
    with httpx.Client(base_url=url, timeout=30) as browser:
        form = browser.get("/console/sign-in")
        match = _CSRF.search(form.text)
        assert form.status_code == 200 and match is not None, form.text[:300]
        done = browser.post(
            "/console/sign-in",
            data={"csrf": match.group(1), "secret": TOKEN, "next": "/"},
            headers={"Origin": url},
        )
        assert done.status_code == 303, done.text[:300]
        page = browser.get("/")
        token = _HX_CSRF.search(page.text)
        assert page.status_code == 200 and token is not None, page.text[:300]
        return browser.cookies, token.group(1)


@dataclass(frozen=True)
class Browser:
    cookies: httpx.Cookies
    csrf: str

    def headers(self, htmx: bool) -> dict[str, str]:
        """What the browser sends: htmx's requests carry its headers and the CSRF token."""
        if not htmx:
            return {"Accept-Encoding": "gzip"}
        return {"Accept-Encoding": "gzip", "HX-Request": "true", "X-CSRF-Token": self.csrf}


async def load(
    url: str, browser: Browser, path: str, status: int, seconds: float
) -> tuple[list[float], int, int]:
    latencies: list[float] = []
    sizes: list[int] = []
    deadline = time.monotonic() + seconds
    headers = browser.headers(htmx=path.startswith("/console/fleet"))
    cookies = browser.cookies

    async def client() -> None:
        async with httpx.AsyncClient(
            base_url=url, cookies=cookies, headers=headers, timeout=60
        ) as http:
            while time.monotonic() < deadline:
                began = time.perf_counter()
                response = await http.get(path)
                latencies.append(time.perf_counter() - began)
                assert response.status_code == status, (path, response.status_code)
                sizes.append(int(response.headers.get("content-length") or len(response.content)))

    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return latencies, len(latencies), sorted(sizes)[len(sizes) // 2] if sizes else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--qr-ready", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    env = {
        "WAFLEET_START_RATE": "200",
        "WAFLEET_START_BURST": "200",
        "WAFLEET_LOG_LEVEL": "warning",
    }
    with tempfile.TemporaryDirectory(prefix="wafleet-bench-console-") as tmp:
        proc = Standalone(data_dir=Path(tmp) / "data", env=env)
        proc.start(ready_timeout=60)
        try:
            ids = onboard(proc.url, phones(args.accounts), args.qr_ready)
            browser = Browser(*sign_in(proc.url))
            with httpx.Client(base_url=proc.url, cookies=browser.cookies, timeout=30) as http:
                table = http.get("/console/fleet", headers=browser.headers(htmx=True))
                version = _VERSION.search(table.text)
                assert table.status_code == 200 and version is not None, table.text[:300]
            print(f"{args.accounts} accounts, {args.qr_ready} QRReady; {CLIENTS} browsers")
            pages = {
                "fleet page": ("/", 200),
                "poll, unchanged": (f"/console/fleet?v={version.group(1)}", 204),
                "search": ("/console/fleet?q=4071200", 200),
                "filter, page 3": ("/console/fleet?phase=Connected&page=3", 200),
                "an account": (f"/console/accounts/{ids[len(ids) // 2]}", 200),
            }
            for name, (path, status) in pages.items():
                latencies, count, size = asyncio.run(
                    load(proc.url, browser, path, status, args.seconds)
                )
                report(name, latencies, count, size, args.seconds)
        finally:
            proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
