"""The blocking link's socket: blocking, its deadlines kept by SO_RCVTIMEO and SO_SNDTIMEO,
which are set only when the time a call has left is shorter than what they hold."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from acnet_proto.adapters.dpm._blocking import _Link, run_plan
from acnet_proto.adapters.sim.dpm import SimServer
from acnet_proto.engine.transcript import load
from acnet_proto.plans.lists import ReadBatch
from tests.support.faults import Fault, Proxy
from tests.support.vectors import SHARED

pytestmark = pytest.mark.integration

HANDSHAKE, OPEN_REPLY = load(SHARED / "transcripts" / "read-one-shot.jsonl")[:2]
# How long past its deadline a call may take to raise: a hang fails the test instead.
HAND_OVER = 2.0


class CountingSocket:
    """A link's socket, counting the timeouts set on it."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.timeouts_set = 0

    def setsockopt(self, level: int, option: int, value: Any) -> None:
        if option in (socket.SO_RCVTIMEO, socket.SO_SNDTIMEO):
            self.timeouts_set += 1
        self._sock.setsockopt(level, option, value)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def counted(link: _Link) -> CountingSocket:
    counting = CountingSocket(link.sock)
    link.sock = counting  # type: ignore[assignment]
    return counting


def read(link: _Link, seconds: float = 5.0) -> None:
    batch = ReadBatch(["M:OUTTMP"])
    run_plan(link, batch, time.monotonic() + seconds)
    assert batch.readings()[0].ok


@pytest.fixture
def link(sim: SimServer) -> Iterator[_Link]:
    link = _Link(sim.host, sim.port, time.monotonic() + 5)
    yield link
    link.close()


@pytest.fixture
def deaf() -> Iterator[tuple[str, int]]:
    """A DPM server that opens the list, then never reads again (its receive buffer small)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    done = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            got = b""
            while len(got) < len(HANDSHAKE.data):
                got += conn.recv(len(HANDSHAKE.data) - len(got))
            conn.sendall(OPEN_REPLY.data)
            done.wait(10)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    yield listener.getsockname()[:2]
    done.set()
    server.join(5)
    listener.close()


def test_the_socket_stays_blocking(link: _Link) -> None:
    # a timeout of Python's own would poll() before every recv and send
    read(link)
    assert link.sock.gettimeout() is None


def test_reads_with_time_to_spare_set_no_timeout(link: _Link) -> None:
    read(link)
    sock = counted(link)
    for _ in range(20):
        read(link)
    assert sock.timeouts_set == 0


def test_a_poll_for_what_is_waiting_neither_waits_nor_sets_a_timeout(link: _Link) -> None:
    sock = counted(link)
    with pytest.raises(TimeoutError):
        link.pump_for(0)
    assert sock.timeouts_set == 0
    assert link.client.usable


def test_a_short_deadline_after_long_ones_is_kept(link: _Link) -> None:
    read(link, seconds=60)  # the socket now holds a timeout of half a minute
    began = time.monotonic()
    with pytest.raises(TimeoutError):
        link.pump(began + 0.1)  # nothing is coming
    waited = time.monotonic() - began
    assert 0.1 <= waited < 0.1 + HAND_OVER


def test_a_wait_outlasting_the_socket_timeout_goes_on_to_the_deadline(link: _Link) -> None:
    with pytest.raises(TimeoutError):
        link.pump_for(0.02)  # the socket now holds a timeout of 10 ms
    began = time.monotonic()
    with pytest.raises(TimeoutError):
        link.pump(began + 0.3)
    assert time.monotonic() - began >= 0.3


def test_a_reply_slower_than_the_socket_timeout_still_arrives(sim: SimServer) -> None:
    slow = Fault("delay", at=0, times=None, seconds=0.15)  # every frame of the server's
    with Proxy((sim.host, sim.port), [[slow]]) as proxy:
        link = _Link(proxy.host, proxy.port, time.monotonic() + 5)
        try:
            with pytest.raises(TimeoutError):
                link.pump_for(0.02)
            read(link)
        finally:
            link.close()


def test_a_send_the_peer_does_not_take_ends_at_its_deadline(deaf: tuple[str, int]) -> None:
    link = _Link(*deaf, time.monotonic() + 5)
    try:
        link.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        began = time.monotonic()
        with pytest.raises(TimeoutError):
            link.send(bytes(8 << 20), began + 0.3)
        waited = time.monotonic() - began
        assert 0.3 <= waited < 0.3 + HAND_OVER
        # past its deadline a send takes no wait at all: the socket is full
        with pytest.raises(TimeoutError):
            link.send(b"more", time.monotonic() - 1)
    finally:
        link.close()


def test_past_its_deadline_a_send_still_sends_what_goes_at_once(link: _Link) -> None:
    batch = ReadBatch(["M:OUTTMP"])
    link.send(link.client.begin(batch, time.monotonic()), time.monotonic() - 1)
    while not batch.done:
        link.pump(time.monotonic() + 5)
    assert batch.readings()[0].ok
