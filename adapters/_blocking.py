"""The blocking socket link the sync and threaded adapters share: one socket, one client engine.

A :class:`_Link` connects, does the handshake, then moves bytes between its
socket and its :class:`~acnet_proto.client.ClientConnection` whenever asked.
It is not thread-safe: one thread at a time owns a link.
"""

from __future__ import annotations

import socket
import time

from acnet_proto.client import ClientConnection
from acnet_proto.lists import ReadBatch
from acnet_proto.types import Reading

__all__ = ["_Link", "_left", "run_batch"]


class _Link:
    """One socket and the client engine on it."""

    def __init__(self, host: str, port: int, deadline: float) -> None:
        self.client = ClientConnection()
        self.sock = socket.create_connection((host, port), timeout=_left(deadline))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(self.client.start())
        while not self.client.ready:
            self.pump(deadline)

    def pump(self, deadline: float) -> list[tuple[int, Reading]]:
        """Wait for bytes until ``deadline``; return the readings they made."""
        return self.pump_for(_left(deadline))

    def pump_for(self, seconds: float) -> list[tuple[int, Reading]]:
        """Wait up to ``seconds`` (0: not at all) for bytes; raises TimeoutError if none."""
        self.sock.settimeout(seconds)
        try:
            data = self.sock.recv(262144)
        except BlockingIOError:
            raise TimeoutError("no data waiting") from None
        return self.client.receive(data, now=time.monotonic())

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline passed")
    return left


def run_batch(link: _Link, batch: ReadBatch, deadline: float) -> None:
    """Read ``batch`` over ``link``: the whole list in one write, replies until done, teardown.

    Raises TimeoutError at ``deadline``, OSError or ProtocolError if the
    connection fails; the link is then mid-list and must be closed. On
    success it is empty again and may be reused.
    """
    link.send(link.client.begin(batch, time.monotonic()))
    while not batch.done:
        link.pump(deadline)
    link.send(link.client.end(time.monotonic()))
