"""The gRPC DAQ replies a hostile server can send, as acnet_proto.services.daq reads them.

The mapping itself is tested against the simulated service in
tests/adapters/grpc/test_grpc.py; these are the replies fuzz/fuzz_text.py
found (or checks) that must give a RemoteProtocolError, the error the gRPC
adapters turn into a failed read, never a bare ValueError.
"""

from __future__ import annotations

import pytest

from acnet_proto.errors import RemoteProtocolError
from acnet_proto.protos.controls.service.DAQ.v1 import DAQ_pb2
from acnet_proto.services.daq import GRPCReadBatch, readings_of_reply, timestamp_of


def reply_stamped(*stamps: tuple[int, int]) -> DAQ_pb2.ReadingReply:
    reply = DAQ_pb2.ReadingReply(index=0)
    for seconds, nanos in stamps:
        entry = reply.readings.reading.add()
        entry.timestamp.seconds, entry.timestamp.nanos = seconds, nanos
        entry.data.scalar = 1.0
    return reply


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [(2**62, 0), (-(2**62), 0), (253402300800, 0), (1, -5), (1, 1_000_000_000)],
)
def test_a_timestamp_no_datetime_can_hold_is_a_remote_protocol_error(
    seconds: int, nanos: int
) -> None:
    reply = reply_stamped((seconds, nanos))
    with pytest.raises(RemoteProtocolError, match=f"seconds={seconds} nanos={nanos}"):
        timestamp_of(reply.readings.reading[0])
    with pytest.raises(RemoteProtocolError, match="Timestamp"):
        GRPCReadBatch(["M:OUTTMP"]).feed(reply)


def test_a_timed_array_with_one_bad_timestamp_is_refused_whole() -> None:
    # before the check, micros = seconds * 10**6 overflowed int64 in the timed array
    reply = reply_stamped((1_700_000_000, 0), (2**62, 0))
    with pytest.raises(RemoteProtocolError, match="Timestamp"):
        readings_of_reply(reply, "M:OUTTMP")


def test_the_extreme_timestamps_a_timestamp_can_hold_are_read() -> None:
    [reading] = readings_of_reply(reply_stamped((253402300799, 999_999_999)), "M:OUTTMP")
    assert reading.timestamp is not None and reading.timestamp.year == 9999
    [timed] = readings_of_reply(reply_stamped((-62135596800, 0), (0, 1000)), "M:OUTTMP")
    assert list(timed.value["micros"]) == [-62135596800 * 10**6, 1]
