"""The webhook receiver the delivery tests and the benchmark send to."""

from __future__ import annotations

import socket

from support.receiver import Receiver, _handler, _Server


def test_connections_arriving_at_once_are_all_queued_for_accept() -> None:
    # A dispatcher opening its connection pool connects many times at once. A listen
    # backlog too short for that makes the kernel drop SYNs, and each sender waits a
    # second to retransmit: seconds of latency that are the receiver's, not wafleet's.
    server = _Server(("127.0.0.1", 0), _handler(Receiver()))  # listening, not accepting
    clients: list[socket.socket] = []
    try:
        for _ in range(64):
            client = socket.socket()
            client.settimeout(0.5)
            clients.append(client)
            client.connect(server.server_address)  # completes once the kernel queues it
    finally:
        for client in clients:
            client.close()
        server.server_close()
    assert len(clients) == 64
