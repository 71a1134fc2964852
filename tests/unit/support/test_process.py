"""The test harness's port picker: a port handed to one process is never handed to another."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from support.process import free_port


def ephemeral_range() -> tuple[int, int]:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return int(low), int(high)


def test_ports_handed_out_before_anyone_binds_them_are_all_different() -> None:
    # The cluster harness picks the operator's port, starts it, and picks the API's port
    # before the operator has bound its own: the two must never be the same port.
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)


def test_ports_are_outside_the_kernels_ephemeral_range() -> None:
    # Outgoing connections and bind(0) take ports from the ephemeral range, so a port
    # picked there can be taken by any client before the server under test binds it.
    low, high = ephemeral_range()
    for _ in range(50):
        port = free_port()
        assert not low <= port <= high, port


def test_a_port_handed_out_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()


def test_parallel_workers_pick_from_disjoint_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    picked: dict[str, set[int]] = {}
    for worker in ("gw0", "gw1"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
        picked[worker] = {free_port() for _ in range(100)}
    assert max(picked["gw0"]) < min(picked["gw1"])
