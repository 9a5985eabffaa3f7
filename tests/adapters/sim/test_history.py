"""Logger windows and fast time plots from the running simulators, over real loopback sockets.

The wire shape is pinned with a client-role engine (DPM/TCP) and grpcio's own stub
(gRPC), independently of any client of this project; then the PyPI pacsys client,
unchanged, reads the same windows.
"""

from __future__ import annotations

import itertools
import json
import logging
import resource
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import grpc
import pacsys
import pytest

from acnet_proto.adapters.grpc.stubs.DAQ_pb2_grpc import DAQStub
from acnet_proto.adapters.sim.acl import CGI_PATH, ACLSimServer
from acnet_proto.adapters.sim.daq import DAQSimServer
from acnet_proto.adapters.sim.dpm import SimServer
from acnet_proto.limits import ServerLimits
from acnet_proto.pc import dpm
from acnet_proto.protos.controls.service.DAQ.v1 import DAQ_pb2
from acnet_proto.services.acl import script_query
from acnet_proto.sim import history as h
from acnet_proto.status import Status
from tests.support.peers import SocketPeer
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

DEADLINE = 10.0  # generous: each of these takes well under a second unloaded
CHILD_DEADLINE = 60.0
POINTS = 1200  # 1200 s of the default logger (1 Hz): two chunks of 487 and one of 226
#: How long a one-shot read may take while another client's huge logger list is served: a
#: slice of that list is tens of milliseconds unloaded; before slices, it was minutes.
STALL = 3.0
#: Peak memory this process may gain while serving the attack (the old server buffered GBs).
MEMORY = 200 * 1024 * 1024


def window(points: int = POINTS, node: str = "") -> str:
    """An M:OUTTMP logger DRF over ``points`` whole seconds that ended a day ago."""
    end = (int(time.time()) - 86_400) * 1000
    return f"M:OUTTMP<-LOGGER:{end - (points - 1) * 1000}:{end}" + (f":{node}" if node else "")


@pytest.fixture
def client(sim: SimServer) -> Iterator[SocketPeer]:
    c = SocketPeer(sim)
    yield c
    c.close()


def chunks_of(client: SocketPeer, ref_id: int) -> list[Any]:
    """The ``TimedScalarArray_reply`` chunks of ``ref_id`` up to its empty end (left off)."""
    chunks: list[Any] = []
    while True:
        event = client.next()
        if isinstance(event, dpm.TimedScalarArrayReply) and event.ref_id == ref_id:
            if not len(event.data):
                assert event.status == 0 and not len(event.micros)
                return chunks
            chunks.append(event)


def test_dpm_sends_a_logger_window_in_the_labs_shape(client: SocketPeer) -> None:
    client.add(window(), "M:OUTTMP@I")
    head = client.until(dpm.ScalarReply, 1)
    assert [type(e) for e in head] == [
        dpm.AddToListReply,
        dpm.AddToListReply,
        dpm.DeviceInfoReply,
        dpm.DeviceInfoReply,
        dpm.StartListReply,
        dpm.ScalarReply,
    ]
    chunks = chunks_of(client, 1)
    assert [len(c.data) for c in chunks] == [487, 487, 226]
    micros = [int(us) for c in chunks for us in c.micros]
    assert len(micros) == POINTS
    assert {b - a for a, b in itertools.pairwise(micros)} == {1_000_000}
    assert all(c.status == 0 and c.timestamp == c.micros[0] // 1000 for c in chunks)
    assert all(41.7 - 0.3 <= v <= 41.7 + 0.3 for c in chunks for v in c.data)


def test_dpm_refuses_an_unknown_logger_with_a_status_and_keeps_the_list(client: SocketPeer) -> None:
    client.add(window(10, "NOPE"), "M:OUTTMP@p,100")
    refusal = client.first(dpm.StatusReply)
    assert refusal.ref_id == 1
    assert Status.from_int(refusal.status).name == "DPM_INVALID_DATASOURCE"
    events = client.until(dpm.ScalarReply, 3)  # the list stays open: the stream goes on
    assert all(getattr(e, "ref_id", 2) == 2 for e in events)


def test_dpm_streams_a_fast_time_plot_until_stopped(client: SocketPeer) -> None:
    client.add("M:OUTTMP@p,100H<-FTP")
    events = client.until(dpm.TimedScalarArrayReply, 3)
    got = [e for e in events if isinstance(e, dpm.TimedScalarArrayReply)]
    micros = [int(us) for e in got for us in e.micros]
    assert {b - a for a, b in itertools.pairwise(micros)} == {10_000}  # 100 Hz, none missed
    assert abs(micros[-1] / 1e6 - time.time()) < DEADLINE
    client.send(dpm.StopListRequest(list_id=client.list_id))
    client.send(dpm.ClearListRequest(list_id=client.list_id))
    client.add("M:OUTTMP@I")  # the same list, reused
    client.until(dpm.ScalarReply)  # whatever the plot sent before the stop came before this
    quiet_until = time.monotonic() + 3 * h.FTP_BATCH_SECONDS
    with pytest.raises(TimeoutError):
        while True:  # heartbeats may come; no more of the plot
            assert not isinstance(client.next(quiet_until), dpm.TimedScalarArrayReply)


def test_pacsys_dpm_reads_a_logger_window(sim: SimServer) -> None:
    with pacsys.dpm(host=sim.host, port=sim.port, timeout=DEADLINE) as backend:
        reading = backend.get(window())
        missing = backend.get(window(10, "NOPE"))
    value: Any = reading.value  # pacsys's timed array: {"data": ..., "micros": ...}
    assert reading.ok and reading.value_type is not None
    assert reading.value_type.name == "TIMED_SCALAR_ARRAY"
    assert len(value["data"]) == len(value["micros"]) == POINTS
    assert not missing.ok and missing.error_code == -42  # DPM_INVALID_DATASOURCE


# --- gRPC -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def daq() -> Iterator[DAQSimServer]:
    with DAQSimServer() as server:
        yield server


def test_grpc_sends_a_logger_window_in_the_labs_shape(daq: DAQSimServer) -> None:
    request = DAQ_pb2.ReadingList(drf=[window(), window(10, "NOPE"), "M:OUTTMP@I"])
    with grpc.insecure_channel(f"{daq.host}:{daq.port}") as channel:
        replies = list(DAQStub(channel).Read(request, timeout=DEADLINE))  # the stream ends
    by_index: dict[int, list[Any]] = {0: [], 1: [], 2: []}
    for reply in replies:
        by_index[reply.index].append(reply)
    *chunks, end = by_index[0]
    assert end.WhichOneof("value") == "readings" and not end.readings.reading
    assert [len(c.readings.reading) for c in chunks] == [487, 487, 226]
    stamps = [r.timestamp.seconds for c in chunks for r in c.readings.reading]
    assert {b - a for a, b in itertools.pairwise(stamps)} == {1}
    assert all(r.data.WhichOneof("value") == "scalar" for c in chunks for r in c.readings.reading)
    (refusal,) = by_index[1]
    assert refusal.WhichOneof("value") == "status"
    assert (refusal.status.facility_code, refusal.status.status_code) == (17, -42)
    assert len(by_index[2]) == 1


def test_grpc_streams_a_fast_time_plot(daq: DAQSimServer) -> None:
    request = DAQ_pb2.ReadingList(drf=["M:OUTTMP@p,100H<-FTP"])
    with grpc.insecure_channel(f"{daq.host}:{daq.port}") as channel:
        call = DAQStub(channel).Read(request, timeout=DEADLINE)
        replies = list(itertools.islice(call, 3))
        call.cancel()
    stamps = [
        r.timestamp.seconds * 1_000_000 + r.timestamp.nanos // 1000
        for reply in replies
        for r in reply.readings.reading
    ]
    assert len(stamps) >= 3 and {b - a for a, b in itertools.pairwise(stamps)} == {10_000}


PACSYS_GRPC = r"""
import json, sys
import pacsys

host, port, drf, missing = sys.argv[1:5]
with pacsys.grpc(host=host, port=int(port), timeout=10) as backend:
    r, m = backend.get_many([drf, missing])
print(json.dumps({"ok": r.ok, "type": r.value_type.name, "points": len(r.value["data"]),
                  "micros": len(r.value["micros"]), "missing": [m.ok, m.error_code]}))
"""


def test_pacsys_grpc_reads_a_logger_window(daq: DAQSimServer) -> None:
    # in a child: pacsys and this project register the same proto files differently
    args = [daq.host, str(daq.port), window(), window(10, "NOPE")]
    done = subprocess.run(
        [sys.executable, "-c", PACSYS_GRPC, *args],
        capture_output=True,
        text=True,
        timeout=CHILD_DEADLINE,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out == {
        "ok": True,
        "type": "TIMED_SCALAR_ARRAY",
        "points": POINTS,
        "micros": POINTS,
        "missing": [False, -42],
    }


# --- bounded serving ------------------------------------------------------------------------


def attack() -> list[str]:
    """A full list (``max_list_entries``) of the longest window one entry may ask for:
    about 450 KB of DRFs asking 10**10 samples."""
    return [window(h.MAX_POINTS)] * ServerLimits().max_list_entries


def peak_rss() -> int:
    """This process's peak resident memory, in bytes (the servers run in its threads)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def timed_dpm_read(sim: SimServer) -> float:
    """Seconds a fresh connection takes to read M:OUTTMP once."""
    began = time.monotonic()
    peer = SocketPeer(sim)
    try:
        peer.add("M:OUTTMP@I")
        peer.first(dpm.ScalarReply)
    finally:
        peer.close()
    return time.monotonic() - began


def test_dpm_serves_a_huge_logger_list_without_stalling_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The attacker never reads: it is dropped at max_buffered_bytes, and while its list is
    served a slice per tick, another connection's read is answered between two slices."""
    caplog.set_level(logging.WARNING, logger="acnet_proto.adapters.sim.dpm")
    limits = ServerLimits(max_buffered_bytes=1024 * 1024, quiet_period=60.0)
    before = peak_rss()
    with SimServer.in_thread(limits=limits) as sim:
        attacker = SocketPeer(sim)
        attacker.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            attacker.add(*attack())
            took = [timed_dpm_read(sim) for _ in range(5)]
            assert max(took) < STALL, took

            def dropped() -> bool:
                return any("write buffer full" in r.getMessage() for r in caplog.records)

            wait_until(dropped, "the attacker's drop", CHILD_DEADLINE)
            assert timed_dpm_read(sim) < STALL
        finally:
            attacker.close()
    assert peak_rss() - before < MEMORY


def test_grpc_serves_a_huge_logger_list_without_stalling_others(daq: DAQSimServer) -> None:
    """The model's lock is held a slice at a time: a read on another channel is answered
    while the attacker's stream is being made and consumed."""
    before = peak_rss()
    stop = threading.Event()
    received: list[int] = []
    with grpc.insecure_channel(f"{daq.host}:{daq.port}") as channel:
        stub = DAQStub(channel)
        call = stub.Read(DAQ_pb2.ReadingList(drf=attack()), timeout=CHILD_DEADLINE)

        def consume() -> None:
            try:
                for _ in call:
                    received.append(1)
                    if stop.is_set():
                        return
            except grpc.RpcError:
                if not stop.is_set():
                    raise  # anything but our own cancel is the server failing

        reader = threading.Thread(target=consume, daemon=True)
        reader.start()
        try:
            wait_until(lambda: len(received) > 20, "the attacker's first chunks", DEADLINE)
            one = DAQ_pb2.ReadingList(drf=["M:OUTTMP@I"])
            for _ in range(5):
                began = time.monotonic()
                (reply,) = stub.Read(one, timeout=DEADLINE)
                assert reply.WhichOneof("value") == "readings"
                assert time.monotonic() - began < STALL
            assert reader.is_alive()  # the attack was still being served
        finally:
            stop.set()
            call.cancel()
            reader.join(DEADLINE)
    assert peak_rss() - before < MEMORY


# --- ACL: live values only -------------------------------------------------------------------


def test_acl_refuses_a_logger_drf_with_a_syntax_line_naming_it() -> None:
    """ACL reads live values: a logger DRF is refused, never answered with the live value."""
    recorded = window(10)
    with ACLSimServer() as sim:
        query = script_query([f"read {recorded}", "read M:OUTTMP"])
        with urllib.request.urlopen(
            f"http://{sim.host}:{sim.port}{CGI_PATH}?{query}", timeout=DEADLINE
        ) as response:
            lines = response.read().decode().splitlines()
    assert lines[0].startswith(f"Invalid device specification ({recorded})")
    assert "recorded data" in lines[0] and lines[0].endswith("DIO_SYNTAX")
    assert len(lines) == 1  # the script stops at its first error
