"""Logger windows and fast time plots from the running simulators, over real loopback sockets.

The wire shape is pinned with a client-role engine (DPM/TCP) and grpcio's own stub
(gRPC), independently of any client of this project; then the PyPI pacsys client,
unchanged, reads the same windows.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pacsys
import pytest

from acnet_proto.adapters.grpc.stubs.DAQ_pb2_grpc import DAQStub
from acnet_proto.adapters.sim.daq import DAQSimServer
from acnet_proto.adapters.sim.dpm import SimServer
from acnet_proto.pc import dpm
from acnet_proto.protos.controls.service.DAQ.v1 import DAQ_pb2
from acnet_proto.sim import history as h
from acnet_proto.status import Status
from tests.support.peers import SocketPeer

pytestmark = pytest.mark.integration

DEADLINE = 10.0  # generous: each of these takes well under a second unloaded
CHILD_DEADLINE = 60.0
POINTS = 1200  # 1200 s of the default logger (1 Hz): two chunks of 487 and one of 226


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
