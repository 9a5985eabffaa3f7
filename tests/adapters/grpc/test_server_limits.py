"""What every gRPC server of ours holds its clients to (``GRPCServer`` and ``ServerLimits``), over
real grpcio on loopback: the handshake deadline, the idle timeout, the connection cap, the
message size, the list and DRF limits, the thread pool's bound, and burst logging.

Each connection-level limit is checked on the wire, against the simulated DAQ, the simulated
DevDB and the supervised proxy (each a :class:`GRPCServer` with small limits), rather than
trusted from grpc's documentation: a raw TCP socket that says nothing, one that says only the
HTTP/2 preface, and the SETTINGS frame the server sends. The per-peer stream limits have
their own tests (``tests/adapters/sim/test_daq_limits.py`` and
``tests/adapters/proxy/test_starvation.py``).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from acnet_proto.adapters.grpc.server import (
    UNARY_WORKERS,
    GRPCServer,
    StreamSlots,
    with_max_streams,
)
from acnet_proto.adapters.grpc.stubs.DAQ_pb2_grpc import DAQStub
from acnet_proto.adapters.grpc.stubs.DevDB_pb2_grpc import DevDBStub
from acnet_proto.adapters.proxy.supervised import SupervisedServer
from acnet_proto.adapters.sim.daq import DAQSimServer
from acnet_proto.adapters.sim.devdb import DevDBSimServer
from acnet_proto.drf import MAX_DRF_LENGTH
from acnet_proto.limits import DEFAULT_LIMITS, ServerLimits
from acnet_proto.protos.controls.service.DAQ.v1 import DAQ_pb2
from acnet_proto.protos.controls.service.DevDB.v1 import DevDB_pb2
from acnet_proto.testing import FakeBackend
from tests.support.clients import GRPC_ADAPTERS
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

#: Slack on every timed wait: the machine running the tests may be loaded.
SLACK = 4.0
WAIT = 10.0
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
SETTINGS, GOAWAY = 0x4, 0x7
MAX_CONCURRENT_STREAMS = 0x3


def fake_backend() -> FakeBackend:
    fake = FakeBackend()
    fake.set_reading("M:OUTTMP", 72.5)
    return fake


SERVERS: dict[str, Callable[[ServerLimits], GRPCServer]] = {
    "daq": lambda limits: DAQSimServer(limits=limits),
    "devdb": lambda limits: DevDBSimServer(limits=limits),
    "proxy": lambda limits: SupervisedServer(fake_backend(), 0, "127.0.0.1", limits=limits),
}


@pytest.fixture(params=sorted(SERVERS))
def make_server(request: pytest.FixtureRequest) -> Callable[[ServerLimits], GRPCServer]:
    return SERVERS[request.param]


@contextlib.contextmanager
def raw(server: GRPCServer) -> Iterator[socket.socket]:
    with socket.create_connection((server.host, server.port), timeout=WAIT) as sock:
        yield sock


Frames = list[tuple[int, bytes]]


def frames_until_closed(sock: socket.socket, within: float) -> tuple[Frames, float]:
    """The HTTP/2 frames (type, payload) the server sent until it closed ``sock``, and when
    (seconds from now); fails if it is still open after ``within`` seconds."""
    start, data = time.monotonic(), b""
    sock.settimeout(within)
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        pytest.fail(f"the server kept the connection open for {within} s")
    except ConnectionResetError:
        pass
    elapsed, frames = time.monotonic() - start, []
    while len(data) >= 9:
        length, kind = int.from_bytes(data[:3], "big"), data[3]
        frames.append((kind, data[9 : 9 + length]))
        data = data[9 + length :]
    return frames, elapsed


def settings_of(frames: Frames) -> dict[int, int]:
    payload = next(p for kind, p in frames if kind == SETTINGS)
    return dict(struct.iter_unpack(">HI", payload))


# --- the pieces, without a server ---------------------------------------------------------


def test_stream_slots_refuse_the_newest_beyond_either_limit_and_free_on_give_back() -> None:
    slots = StreamSlots(per_peer=2, total=3)
    assert slots.take("ipv4:10.0.0.1:1") is None and slots.take("ipv4:10.0.0.1:2") is None
    per_peer = slots.take("ipv4:10.0.0.1:3")
    assert per_peer is not None and "2 streams" in per_peer and "max_streams_per_peer" in per_peer
    assert slots.take("ipv4:10.0.0.2:1") is None
    total = slots.take("ipv4:10.0.0.3:1")
    assert total is not None and "3 streams" in total and "(max_streams)" in total
    assert (slots.open("ipv4:10.0.0.1:9"), slots.open()) == (2, 3)
    slots.give_back("ipv4:10.0.0.1:1")
    assert slots.take("ipv4:10.0.0.3:1") is None
    assert (slots.open("ipv4:10.0.0.1:9"), slots.open("ipv4:10.0.0.3:0"), slots.open()) == (1, 1, 3)


def test_max_streams_replaces_the_limits_own_and_nothing_else() -> None:
    limits = ServerLimits(max_streams=7, max_list_entries=5)
    assert with_max_streams(limits, None) is limits
    assert with_max_streams(limits, 3) == ServerLimits(max_streams=3, max_list_entries=5)
    with pytest.raises(ValueError, match="max_streams"):
        with_max_streams(limits, 0)


def test_streams_get_their_threads_and_unary_calls_keep_theirs() -> None:
    assert DAQSimServer().workers == DEFAULT_LIMITS.max_streams + UNARY_WORKERS
    assert DAQSimServer(max_streams=5).workers == 5 + UNARY_WORKERS
    assert DAQSimServer(max_streams=5).limits.max_streams == 5
    server = SupervisedServer(fake_backend(), 0, limits=ServerLimits(max_streams=9))
    assert server.workers == 9 + UNARY_WORKERS
    assert DevDBSimServer().workers == UNARY_WORKERS  # it serves no streams
    with pytest.raises(TypeError, match="limits must be a ServerLimits"):
        DevDBSimServer(limits={"max_streams": 3})  # type: ignore[arg-type]


# --- on the wire: every server ------------------------------------------------------------


def test_a_connection_that_never_says_hello_is_closed_after_the_handshake_timeout(
    make_server: Callable[[ServerLimits], GRPCServer],
) -> None:
    with make_server(ServerLimits(handshake_timeout=0.5)) as server, raw(server) as sock:
        _, elapsed = frames_until_closed(sock, 0.5 + SLACK)
    assert elapsed >= 0.4


def test_a_connection_that_says_only_hello_is_closed_after_the_idle_timeout(
    make_server: Callable[[ServerLimits], GRPCServer],
) -> None:
    limits = ServerLimits(idle_timeout=0.5, max_streams_per_peer=3)
    with make_server(limits) as server, raw(server) as sock:
        sock.sendall(PREFACE)
        frames, elapsed = frames_until_closed(sock, 0.5 + SLACK)
    assert elapsed >= 0.4
    goaway = next(payload for kind, payload in frames if kind == GOAWAY)
    assert b"idle" in goaway[8:]  # the debug text after the last stream id and error code
    # no cap on one connection's calls: in grpcio 1.85 one connection at it stalls the others
    assert MAX_CONCURRENT_STREAMS not in settings_of(frames)


def test_a_channel_without_calls_is_closed_after_the_idle_timeout() -> None:
    states: list[grpc.ChannelConnectivity] = []
    idle = threading.Event()

    def seen(state: grpc.ChannelConnectivity) -> None:
        states.append(state)
        if grpc.ChannelConnectivity.READY in states and state is grpc.ChannelConnectivity.IDLE:
            idle.set()

    with (
        DAQSimServer(limits=ServerLimits(idle_timeout=0.5)) as server,
        grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        channel.subscribe(seen, try_to_connect=False)
        list(DAQStub(channel).Read(DAQ_pb2.ReadingList(drf=["M:OUTTMP@I"]), timeout=WAIT))
        start = time.monotonic()
        assert idle.wait(0.5 + SLACK), f"the connection stayed up: {states}"
        channel.unsubscribe(seen)
    assert time.monotonic() - start >= 0.4


def test_a_running_stream_keeps_its_connection_past_the_idle_timeout() -> None:
    with (
        DAQSimServer(limits=ServerLimits(idle_timeout=0.3)) as server,
        grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        call = DAQStub(channel).Read(DAQ_pb2.ReadingList(drf=["M:OUTTMP@p,100"]), timeout=WAIT)
        start, replies = time.monotonic(), 0
        for _ in call:
            replies += 1
            if time.monotonic() - start > 1.2:  # four idle timeouts
                break
        call.cancel()
    assert replies >= 5


@pytest.mark.parametrize("flavour", list(GRPC_ADAPTERS))
def test_a_connection_flood_beyond_the_cap_still_lets_a_read_through_within_its_timeout(
    flavour: str,
) -> None:
    """grpc's connection quota closes each connection beyond the cap at once (the newest,
    whoever it is); the flood's half-open sockets are reaped at the handshake timeout. Our
    clients take a connection closed before any reply for a busy server, not a gone one,
    and wait for it (``wait_for_ready``): the read is answered within its timeout."""
    limits = ServerLimits(max_connections=8, handshake_timeout=1.0)
    with contextlib.ExitStack() as flood, DAQSimServer(limits=limits) as server:
        socks = [flood.enter_context(raw(server)) for _ in range(40)]
        time.sleep(0.2)  # lets the server accept them all; asserted below, not assumed
        closed = sum(1 for sock in socks if _closed_at_once(sock))
        assert closed >= 40 - 8
        start = time.monotonic()
        client = GRPC_ADAPTERS[flavour]("127.0.0.1", server.port, None)
        try:
            [reading] = client.get_many(["M:OUTTMP"], timeout=WAIT)
        finally:
            client.close()
        assert reading.ok and reading.value > 0
        assert time.monotonic() - start < WAIT


def _closed_at_once(sock: socket.socket) -> bool:
    sock.settimeout(SLACK)
    try:
        while sock.recv(65536):  # a server within the cap sends its SETTINGS and waits
            sock.settimeout(0.05)
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


# --- on the wire: what a request may hold ----------------------------------------------------


def test_a_message_over_max_request_bytes_is_refused_resource_exhausted(
    make_server: Callable[[ServerLimits], GRPCServer],
) -> None:
    with (
        make_server(ServerLimits(max_request_bytes=4096)) as server,
        grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        too_big = ["M:OUTTMP"] * 1000
        with pytest.raises(grpc.RpcError) as info:
            if isinstance(server, DevDBSimServer):
                DevDBStub(channel).getDeviceInfo(DevDB_pb2.DeviceList(device=too_big), timeout=WAIT)
            else:
                list(DAQStub(channel).Read(DAQ_pb2.ReadingList(drf=too_big), timeout=WAIT))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max (" in (info.value.details() or "")


def test_a_list_over_max_list_entries_is_refused_invalid_argument(
    make_server: Callable[[ServerLimits], GRPCServer],
) -> None:
    with (
        make_server(ServerLimits(max_list_entries=4)) as server,
        grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel,
        pytest.raises(grpc.RpcError) as info,
    ):
        if isinstance(server, DevDBSimServer):
            request = DevDB_pb2.AlarmTextIdList(alarm_text_id=[1, 2, 3, 4, 5])
            DevDBStub(channel).getAlarmText(request, timeout=WAIT)
        else:
            drfs = ["M:OUTTMP@I"] * 5
            list(DAQStub(channel).Read(DAQ_pb2.ReadingList(drf=drfs), timeout=WAIT))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "has 5 entries; this server takes at most 4 (max_list_entries)" in (
        info.value.details() or ""
    )


def test_one_megabyte_drfs_are_refused_at_once_and_take_no_memory(
    make_server: Callable[[ServerLimits], GRPCServer],
) -> None:
    """The 1 MB DRFs that once took a connection to 4 GB: refused by their length, before
    they are parsed, kept or echoed. The peak RSS is reset first (Linux ``clear_refs``)."""
    drf = "M:OUTTMP" + "[0]" * 333_331  # 1,000,001 characters
    with (
        make_server(DEFAULT_LIMITS) as server,
        grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        before = _reset_peak_rss()
        for _ in range(20):
            with pytest.raises(grpc.RpcError) as info:
                if isinstance(server, DevDBSimServer):
                    request = DevDB_pb2.DeviceList(device=[drf])
                    DevDBStub(channel).getDeviceInfo(request, timeout=WAIT)
                else:
                    list(DAQStub(channel).Read(DAQ_pb2.ReadingList(drf=[drf]), timeout=WAIT))
            details = info.value.details() or ""
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert f"1000001 characters long; the limit is {MAX_DRF_LENGTH}" in details
            assert len(details) < 300
        grown = _peak_rss() - before
    assert grown < 200 * 1024 * 1024, f"the peak RSS grew by {grown // 2**20} MiB"


def _peak_rss() -> int:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def _reset_peak_rss() -> int:
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pytest.skip("this system cannot reset a process's peak RSS (/proc/self/clear_refs)")
    return _peak_rss()


# --- the thread pool and the log ---------------------------------------------------------


def test_a_call_beyond_the_thread_pool_is_refused_at_once_not_left_waiting() -> None:
    """16 DevDB calls held on one connection (the test holds the model's lock) take every
    thread; the next, on another connection, is refused RESOURCE_EXHAUSTED at once instead of
    waiting for its deadline (with ``grpc.max_concurrent_streams`` at 16, grpcio 1.85 would
    not even deliver it)."""
    lock = threading.Lock()
    with (
        DevDBSimServer(lock=lock) as server,
        grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel,
        ThreadPoolExecutor(UNARY_WORKERS) as pool,
    ):
        stub = DevDBStub(channel)
        request = DevDB_pb2.DeviceList(device=["M:OUTTMP"])
        with lock:
            held = [pool.submit(stub.getDeviceInfo, request, timeout=WAIT) for _ in range(16)]
            wait_until(
                lambda: _threads("sim-devdb") >= UNARY_WORKERS, "the calls all to start", WAIT
            )
            start = time.monotonic()
            with (
                grpc.insecure_channel(f"127.0.0.1:{server.port}") as another,
                pytest.raises(grpc.RpcError) as info,
            ):
                DevDBStub(another).getDeviceInfo(request, timeout=WAIT)
            refused_after = time.monotonic() - start
        assert all(len(f.result(WAIT).set) == 1 for f in held)  # and they are answered
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert refused_after < SLACK


def _threads(prefix: str) -> int:
    """The server's threads: each blocked in a call, as none can finish while the lock is held."""
    return sum(1 for thread in threading.enumerate() if thread.name.startswith(prefix))


def test_refusals_are_logged_once_per_burst_with_the_peer_text_escaped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limits = ServerLimits(quiet_period=60.0)
    with (
        caplog.at_level(logging.WARNING, logger="acnet_proto.adapters.grpc.server"),
        DevDBSimServer(limits=limits) as server,
        grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        request = DevDB_pb2.DeviceList(device=["\x1b[2J\nFAKE LOG LINE" + "x" * 2000])
        for _ in range(25):
            with pytest.raises(grpc.RpcError):
                DevDBStub(channel).getDeviceInfo(request, timeout=WAIT)
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 2, refused  # the first of the burst, then its total at stop()
    assert "(once per burst: more may follow)" in refused[0]
    assert "refused 25 DeviceList too large in the burst" in refused[1]
    assert all("\n" not in line and "\x1b" not in line for line in refused)
