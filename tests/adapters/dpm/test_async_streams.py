"""The event-loop adapters' own streams: asyncio's protocol in place of a StreamReader and
StreamWriter, trio's socket driven without a trip through the scheduler per send. Each
must keep the contract of what it replaced: bounded buffering, the peer's end as ``b""``,
a broken connection as an error, and (trio) a read that is still a checkpoint."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Callable, Iterator

import pytest
import trio

from acnet_proto.adapters.dpm.asyncio import AsyncioDPMBackend, _AsyncioKit
from acnet_proto.adapters.dpm.trio import TrioDPMBackend, _TrioKit
from acnet_proto.adapters.sim.dpm import SimServer
from tests.support.waiting import PATIENCE

pytestmark = pytest.mark.integration

PAYLOAD = bytes(range(256)) * 8192  # 2 MiB: far more than a stream holds unread

#: Serves one connection with the function given; returns its address.
Peer = Callable[[Callable[[socket.socket], None]], tuple[str, int]]


def _reset(conn: socket.socket) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


@pytest.fixture
def peer() -> Iterator[Peer]:
    threads: list[threading.Thread] = []
    listeners: list[socket.socket] = []

    def start(serve: Callable[[socket.socket], None]) -> tuple[str, int]:
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)

        def run() -> None:
            conn, _ = listener.accept()
            serve(conn)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
        host, port = listener.getsockname()[:2]
        return host, port

    yield start
    for thread in threads:
        thread.join(5)
    for listener in listeners:
        listener.close()


def _send_then_close(conn: socket.socket) -> None:
    with conn:
        conn.sendall(PAYLOAD)


def _wait_then_reset(conn: socket.socket) -> None:
    conn.recv(1)  # the client's word that it is waiting
    _reset(conn)


def _holding_open(until: threading.Event) -> Callable[[socket.socket], None]:
    def serve(conn: socket.socket) -> None:
        with conn:
            until.wait(10)

    return serve


# -------------------------------------------------------------------------- asyncio


def test_asyncio_stops_reading_what_piles_up_and_hands_all_of_it_over(peer: Peer) -> None:
    host, port = peer(_send_then_close)

    async def main() -> bytes:
        kit = _AsyncioKit()
        stream = await kit.connect(host, port)
        async with asyncio.timeout(PATIENCE):
            while stream.transport.is_reading():  # the peer's bytes pile up, unread
                await asyncio.sleep(0.01)
        got = bytearray()
        while chunk := await stream.receive_some(65536):
            assert len(chunk) <= 65536
            got += chunk
        assert await stream.receive_some(65536) == b""  # the end stays the end
        await kit.aclose(stream)
        return bytes(got)

    assert asyncio.run(main()) == PAYLOAD


def test_asyncio_a_reset_connection_raises_for_a_receive_and_a_send(peer: Peer) -> None:
    host, port = peer(_wait_then_reset)

    async def main() -> None:
        kit = _AsyncioKit()
        stream = await kit.connect(host, port)
        await stream.send_all(b"!")
        with pytest.raises(ConnectionResetError):
            await stream.receive_some(65536)
        with pytest.raises(ConnectionResetError):
            await stream.send_all(b"more")
        await kit.abort(stream)

    asyncio.run(main())


def test_asyncio_a_stream_aborted_by_another_task_ends_a_waiting_receive(peer: Peer) -> None:
    done = threading.Event()
    host, port = peer(_holding_open(done))

    async def main() -> bytes:
        kit = _AsyncioKit()
        stream = await kit.connect(host, port)
        asyncio.get_running_loop().call_later(0.05, stream.transport.abort)
        return await stream.receive_some(65536)

    try:
        assert asyncio.run(main()) == b""
    finally:
        done.set()


# ----------------------------------------------------------------------------- trio


def test_trio_reads_the_peers_bytes_to_its_end(peer: Peer) -> None:
    host, port = peer(_send_then_close)

    async def main() -> bytes:
        kit = _TrioKit()
        stream = await kit.connect(host, port)
        got = bytearray()
        while chunk := await stream.receive_some(65536):
            got += chunk
        await kit.aclose(stream)
        return bytes(got)

    assert trio.run(main) == PAYLOAD


def test_trio_a_reset_connection_is_a_broken_resource(peer: Peer) -> None:
    host, port = peer(_wait_then_reset)

    async def main() -> None:
        kit = _TrioKit()
        stream = await kit.connect(host, port)
        await stream.send_all(b"!")
        with pytest.raises(trio.BrokenResourceError):
            await stream.receive_some(65536)
        await kit.abort(stream)

    trio.run(main)


def test_trio_a_stream_closed_by_another_task_ends_a_waiting_receive(peer: Peer) -> None:
    done = threading.Event()
    host, port = peer(_holding_open(done))

    async def main() -> None:
        kit = _TrioKit()
        stream = await kit.connect(host, port)

        async def close_soon() -> None:
            await trio.sleep(0.05)
            await kit.abort(stream)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(close_soon)
            with pytest.raises(trio.ClosedResourceError):
                await stream.receive_some(65536)
        with pytest.raises(trio.ClosedResourceError):
            await stream.send_all(b"late")

    try:
        trio.run(main)
    finally:
        done.set()


def test_trio_a_read_is_still_a_checkpoint(sim: SimServer) -> None:
    async def main() -> None:
        async with TrioDPMBackend(sim.host, sim.port) as backend:
            assert (await backend.get("M:OUTTMP")).ok  # a pooled connection, ready
            with trio.CancelScope() as scope:
                scope.cancel()
                await backend.get("M:OUTTMP")
            assert scope.cancelled_caught
            assert (await backend.get("M:OUTTMP")).ok  # the cancelled read's link was dropped

    trio.run(main)


def test_asyncio_reads_after_a_cancelled_one(sim: SimServer) -> None:
    async def main() -> None:
        async with AsyncioDPMBackend(sim.host, sim.port) as backend:
            assert (await backend.get("M:OUTTMP")).ok
            task = asyncio.create_task(backend.get("M:OUTTMP"))
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert (await backend.get("M:OUTTMP")).ok

    asyncio.run(main())
