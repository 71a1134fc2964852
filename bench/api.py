"""API reads at fleet scale: 1,000 accounts (300 QRReady), 8 clients, from outside, HTTP only.

Starts ``wafleet standalone --transport sim`` as a real process, adds the accounts through
the API, links 700 of them through the simulator (the other 300 stay QRReady, each with a
QR code and its PNG), then runs 8 concurrent clients for ``--seconds`` against each read
and prints p50, p99 and requests per second:

- the full legacy list (``GET /api/whatsapp/accounts``);
- a page of 100 (``?limit=100``; the server ignores the parameter until it paginates);
- one account (``GET /api/whatsapp/accounts/{id}``);
- the dashboard (``GET /api/status/dashboard``).

Targets (issue: the API at fleet scale): full list p99 under 250 ms; a page or one account
p99 under 20 ms and above 500 requests/s, on a 2-core machine.

Usage: .venv/bin/python bench/api.py [--accounts 1000] [--qr-ready 300] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.process import TOKEN, Standalone, phones, wait_until

CLIENTS = 8


def onboard(url: str, numbers: list[str], qr_ready: int) -> list[str]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        ids = []
        for i, phone in enumerate(numbers):
            added = client.post("/api/whatsapp/add-account", json={"phone": phone, "name": f"A{i}"})
            assert added.status_code in (200, 201), added.text
            ids.append(added.json()["account"]["id"])
        to_link = set(numbers[qr_ready:])

        def linked() -> bool:
            accounts = client.get("/api/whatsapp/accounts").json()["accounts"]
            for account in accounts:
                if account["phone"] in to_link and account["phase"] == "QRReady":
                    client.post("/sim/scan", json={"qr": account["qr"], "phone": account["phone"]})
            phases = [a["phase"] for a in accounts]
            return phases.count("Connected") == len(to_link) and phases.count("QRReady") == qr_ready

        wait_until("the fleet linked", linked, 600, interval=1.0)
        return ids


async def load(url: str, path: str, seconds: float) -> tuple[list[float], int, int]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept-Encoding": "gzip"}
    latencies: list[float] = []
    sizes: list[int] = []
    deadline = time.monotonic() + seconds

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
            while time.monotonic() < deadline:
                began = time.perf_counter()
                response = await http.get(path)
                latencies.append(time.perf_counter() - began)
                assert response.status_code == 200, response.text[:200]
                sizes.append(int(response.headers.get("content-length") or len(response.content)))

    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return latencies, len(latencies), int(statistics.median(sizes)) if sizes else 0


def report(name: str, latencies: list[float], count: int, size: int, seconds: float) -> None:
    ordered = sorted(latencies)
    p50 = ordered[len(ordered) // 2] * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    print(
        f"{name:22s} p50 {p50:8.1f} ms  p99 {p99:8.1f} ms  {count / seconds:8.1f} req/s  "
        f"body {size / 1024:8.1f} KiB",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--qr-ready", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    env = {
        "WAFLEET_START_RATE": "200",
        "WAFLEET_START_BURST": "200",
        "WAFLEET_LOG_LEVEL": "warning",
    }
    with tempfile.TemporaryDirectory(prefix="wafleet-bench-api-") as tmp:
        proc = Standalone(data_dir=Path(tmp) / "data", env=env)
        proc.start(ready_timeout=60)
        try:
            ids = onboard(proc.url, phones(args.accounts), args.qr_ready)
            print(f"{args.accounts} accounts, {args.qr_ready} QRReady; {CLIENTS} clients")
            reads = {
                "full legacy list": "/api/whatsapp/accounts",
                "a page of 100": "/api/whatsapp/accounts?limit=100",
                "one account": f"/api/whatsapp/accounts/{ids[len(ids) // 2]}",
                "dashboard": "/api/status/dashboard",
            }
            for name, path in reads.items():
                latencies, count, size = asyncio.run(load(proc.url, path, args.seconds))
                report(name, latencies, count, size, args.seconds)
        finally:
            proc.stop(timeout=60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
