"""The simulated DPM's limits, attacked over real loopback sockets.

Each test starts its own :class:`SimServer` (in a thread of this process) with
limits small enough to be reached in a second or two; what the pure session
decides is tested in ``tests/sim/test_dpm_limits.py``.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from acnet_proto.adapters.dpm.threaded import DPMBackend
from acnet_proto.adapters.sim.dpm import SimServer
from acnet_proto.engine import FrameSplitter, frame
from acnet_proto.engine.framing import HANDSHAKE
from acnet_proto.errors import AcnetProtoError, ConnectionRefusedByProxy
from acnet_proto.limits import ServerLimits
from acnet_proto.pc import dpm
from acnet_proto.sim import DeviceModel
from acnet_proto.sim.dpm import TOO_MANY_ENTRIES, TOO_MANY_STREAMS
from acnet_proto.status import Status
from tests.support.peers import SocketPeer

pytestmark = pytest.mark.integration

DEADLINE = 10.0  # generous: the machine is shared; each step takes well under a second
DPM_BAD_REQUEST = Status.from_name("DPM_BAD_REQUEST").status
LOGGER = "acnet_proto.adapters.sim.dpm"
QUIET = 60.0  # a burst that outlasts the test: only its first line is logged


@contextlib.contextmanager
def simulator(model: DeviceModel | None = None, **limits: Any) -> Iterator[SimServer]:
    limits.setdefault("quiet_period", QUIET)
    with SimServer.in_thread(model, limits=ServerLimits(**limits)) as sim:
        yield sim


def closed_by_server(sock: socket.socket, deadline: float) -> bool:
    """True once the server closed ``sock`` (whatever it sent first is read and dropped)."""
    try:
        while True:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            if not sock.recv(1 << 20):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def wait_for(condition: Callable[[], bool], what: str, limit: float = DEADLINE) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"still waiting, after {limit} s, for {what}")
        time.sleep(0.02)


def logged(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


def vm_rss() -> int:
    """This process's resident memory in bytes (the server runs in one of its threads)."""
    gc.collect()
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def read_one(sim: SimServer) -> float:
    """A normal read through the threaded backend; returns how long it took."""
    began = time.monotonic()
    with DPMBackend(sim.host, sim.port, timeout=5.0) as backend:
        (reading,) = backend.get_many(["M:OUTTMP@I"])
    assert reading.ok, reading
    return time.monotonic() - began


# ------------------------------------------------------------------ silent connections


def test_an_idle_socket_flood_leaves_a_normal_read_answered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    # the timeout outlasts making the flood (slow on a loaded machine), so the cap is reached
    with simulator(max_connections=200, handshake_timeout=2.5) as sim:
        flood = [socket.create_connection((sim.host, sim.port)) for _ in range(300)]
        try:
            assert read_one(sim) < 5.0
            deadline = time.monotonic() + DEADLINE
            assert all(closed_by_server(sock, deadline) for sock in flood)
        finally:
            for sock in flood:
                sock.close()
        assert read_one(sim) < 5.0
    # a hundred shed, the rest timed out: one line each, not one per socket
    assert len(logged(caplog, "simulated DPM: shed")) == 1
    assert len(logged(caplog, "simulated DPM: handshake timeout")) == 1
    assert not logged(caplog, "Traceback")


def test_a_dribbled_handshake_is_closed_at_the_deadline() -> None:
    with simulator(handshake_timeout=1.0) as sim:
        began = time.monotonic()
        sock = socket.create_connection((sim.host, sim.port))
        try:
            closed = False
            for byte in HANDSHAKE[:-1]:  # one byte every 0.1 s: never complete in time
                with contextlib.suppress(OSError):
                    sock.send(bytes([byte]))
                if closed_by_server(sock, time.monotonic() + 0.1):
                    closed = True
                    break
            assert closed
            assert 0.9 <= time.monotonic() - began < DEADLINE
        finally:
            sock.close()


def test_a_silent_connection_is_closed_but_a_streaming_one_is_not() -> None:
    with simulator(idle_timeout=1.0) as sim:
        began = time.monotonic()  # before the silent client's last word, its handshake
        silent, streaming = SocketPeer(sim), SocketPeer(sim)
        try:
            streaming.add("M:OUTTMP@p,200")
            streaming.first(dpm.ScalarReply)
            assert closed_by_server(silent.sock, began + DEADLINE)
            assert time.monotonic() - began >= 0.9
            # the streaming client has said nothing for over twice the idle timeout
            until = time.monotonic() + 1.5
            while time.monotonic() < until:
                streaming.first(dpm.ScalarReply)
        finally:
            silent.close()
            streaming.close()


# --------------------------------------------------------------------- connection cap


def test_beyond_the_cap_the_newest_is_refused_and_logged_once_per_burst(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    with simulator(max_connections=2, quiet_period=1.0) as sim:
        streams = [SocketPeer(sim), SocketPeer(sim)]
        try:
            for client in streams:
                client.add("M:OUTTMP@p,200")
                client.first(dpm.ScalarReply)
            for _ in range(20):
                with pytest.raises(ConnectionRefusedByProxy) as refused:
                    SocketPeer(sim)
                assert refused.value.status_code == 503
            with pytest.raises(AcnetProtoError, match="503"):
                read_one(sim)
            assert len(logged(caplog, "simulated DPM: refused connection")) == 1
            wait_for(lambda: bool(logged(caplog, "21 in the last burst")), "the burst's total")
            for client in streams:  # served all along
                client.first(dpm.ScalarReply)
        finally:
            for client in streams:
                client.close()


def test_a_refused_newcomer_reads_why() -> None:
    with simulator(max_connections=1) as sim:
        holder = SocketPeer(sim)
        try:
            holder.add("M:OUTTMP@p,200")
            holder.first(dpm.ScalarReply)
            with socket.create_connection((sim.host, sim.port), timeout=DEADLINE) as sock:
                answer = b""
                while chunk := sock.recv(4096):
                    answer += chunk
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
            assert b"max_connections" in body
        finally:
            holder.close()


# ------------------------------------------------------------------------- requests


def opened_list(data: bytes) -> int:
    """The list id of the ``OpenList_reply`` that ``data`` (the server's first bytes) holds."""
    (opened,) = FrameSplitter(detect_http_refusal=True).feed(data)
    reply = dpm.decode_reply(opened)
    assert isinstance(reply, dpm.OpenListReply)
    return reply.list_id


def add_request(list_id: int, ref: int, text: str) -> bytes:
    return frame(dpm.encode(dpm.AddToListRequest(list_id=list_id, ref_id=ref, drf_request=text)))


def test_1_mb_drfs_are_refused_and_the_server_stays_small() -> None:
    big = "M:OUTTMP" + "x" * 1_000_000
    with simulator() as sim:

        def attack() -> int:
            """Send 1 MB DRFs on one connection until it is dropped; the number refused."""
            sock = socket.create_connection((sim.host, sim.port), timeout=DEADLINE)
            splitter = FrameSplitter()
            sock.sendall(HANDSHAKE)
            list_id = opened_list(sock.recv(4096))
            refused = 0
            with sock:
                for ref in range(1, 100):
                    try:
                        sock.sendall(add_request(list_id, ref, big))
                        frames: list[bytes] = []
                        while not frames:
                            data = sock.recv(65536)
                            if not data:
                                return refused
                            frames = splitter.feed(data)
                    except (ConnectionResetError, BrokenPipeError):
                        return refused
                    replies = [dpm.decode_reply(f) for f in frames]
                    assert replies == [
                        dpm.AddToListReply(list_id=list_id, ref_id=ref, status=DPM_BAD_REQUEST)
                    ]
                    refused += 1
            pytest.fail("the server kept taking 1 MB DRFs")

        attack()  # warms up whatever the allocator keeps
        before = vm_rss()
        # the engine keeps each ref's text until it is removed, at most a request's worth
        # (max_request_bytes) of over-long ones: one is refused, the next drops the client
        assert [attack() for _ in range(50)] == [1] * 50  # 100 MB sent in all
        grown = vm_rss() - before
        assert read_one(sim) < 5.0
    assert grown < 50 * 1024 * 1024, f"RSS grew by {grown / 2**20:.0f} MiB"


def test_the_entry_beyond_max_list_entries_is_refused() -> None:
    with simulator(max_list_entries=5) as sim:
        client = SocketPeer(sim)
        try:
            client.add(*(f"Z:SIM{i:04d}@I" for i in range(6)))
            statuses = [client.first(dpm.AddToListReply).status for _ in range(6)]
            assert statuses == [0] * 5 + [TOO_MANY_ENTRIES]
            assert client.first(dpm.StartListReply).status == 0
        finally:
            client.close()


def test_streams_beyond_max_streams_per_peer_are_refused_with_a_status(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    with simulator(max_streams_per_peer=2) as sim:
        clients = [SocketPeer(sim) for _ in range(4)]
        try:
            for client in clients:
                client.add("M:OUTTMP@p,200")
            started = [client.first(dpm.StartListReply).status for client in clients]
            assert started == [0, 0, TOO_MANY_STREAMS, TOO_MANY_STREAMS]
            assert read_one(sim) < 5.0  # a one-shot read holds no stream
            clients[0].close()
            late = clients[2]
            deadline = time.monotonic() + DEADLINE
            while True:  # the slot comes back once the server saw the close
                late.send(dpm.StopListRequest(list_id=late.list_id))
                late.send(dpm.StartListRequest(list_id=late.list_id))
                if late.first(dpm.StartListReply).status == 0:
                    break
                assert time.monotonic() < deadline, "the closed client's stream never came back"
            late.first(dpm.ScalarReply)
        finally:
            for client in clients:
                client.close()
    assert len(logged(caplog, "simulated DPM: refused by streams")) == 1


def test_every_way_a_streaming_client_leaves_gives_its_stream_back() -> None:
    with simulator(max_streams_per_peer=8) as sim:
        clients = [SocketPeer(sim) for _ in range(5)]
        try:
            for client in clients:
                client.add("M:OUTTMP@p,200")
                client.first(dpm.ScalarReply)
            assert sim.quota.open() == 5
            stopped, cleared, closed, broken, _ = clients
            stopped.send(dpm.StopListRequest(list_id=stopped.list_id))
            cleared.send(dpm.ClearListRequest(list_id=cleared.list_id))
            closed.close()
            broken.sock.sendall(frame(b"not a DPM request"))  # breaks the protocol: dropped
            wait_for(lambda: sim.quota.open() == 1, "four of the five streams given back")
        finally:
            for client in clients:
                client.close()
    assert sim.quota.open() == 0  # the last one was still streaming when the server stopped


BIG_ARRAY = textwrap.dedent(
    """
    [[device]]
    name = "Z:BIGARR"
    di = 1
    description = "128 KiB of doubles"
    kind = "array"
    length = 16384
    value = 0.0
    step = 1.0
    amplitude = 0.0

    [[device]]
    name = "M:OUTTMP"
    di = 27235
    description = "Outdoor temperature"
    value = 41.7
    """
)


def test_a_client_that_stops_reading_is_dropped_and_others_are_served(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    model = DeviceModel.from_toml(BIG_ARRAY)
    with simulator(model, max_buffered_bytes=256 * 1024) as sim:
        reader = SocketPeer(sim)
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            reader.add("M:OUTTMP@p,100")
            reader.first(dpm.ScalarReply)
            stalled.connect((sim.host, sim.port))
            stalled.sendall(HANDSHAKE)
            list_id = opened_list(stalled.recv(4096))
            start = frame(dpm.encode(dpm.StartListRequest(list_id=list_id)))
            stalled.sendall(add_request(list_id, 1, "Z:BIGARR@p,10") + start)
            # ~13 MB/s that nobody reads: the kernel's buffers, then 256 KiB of the server's
            wait_for(lambda: bool(logged(caplog, "write buffer full")), "the stalled client's drop")
            for _ in range(5):
                reader.first(dpm.ScalarReply)
        finally:
            stalled.close()
            reader.close()
    (line,) = logged(caplog, "write buffer full")
    assert "max_buffered_bytes=262144" in line


# ----------------------------------------------------------------- file descriptors

EMFILE_SERVER = """
import asyncio, logging, resource, sys
from acnet_proto.adapters.sim.dpm import SimServer
from acnet_proto.limits import ServerLimits

logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

async def main():
    sim = SimServer(limits=ServerLimits(quiet_period=60.0))
    await sim.start()
    print(sim.port, flush=True)
    await sim.serve_forever()

asyncio.run(main())
"""


def test_running_out_of_file_descriptors_is_logged_once() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", EMFILE_SERVER],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    flood: list[socket.socket] = []
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        # 64 descriptors in all: most of these wait in the listen backlog, unaccepted
        flood = [socket.create_connection(("127.0.0.1", port)) for _ in range(100)]
        time.sleep(3.5)  # asyncio retries accept() once a second: three more failures
    finally:
        for sock in flood:
            sock.close()
        child.terminate()
        _, errors = child.communicate(timeout=DEADLINE)
    assert errors.count("out of file descriptors") == 1, errors
    assert "Traceback" not in errors, errors
