"""Gathering a logger window's chunks into one History, and FTP chunks, with no I/O.

Replies are built in memory (DPM/TCP messages, and the DAQ service's
``ReadingReply`` for gRPC), in the shape the lab's DPM sends: chunks of at
most 487 timestamped points, then an empty chunk as the end of data.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from acnet_proto.drf import DRFError, parse
from acnet_proto.errors import ConfigurationError, DeviceError, RemoteProtocolError
from acnet_proto.pc import dpm
from acnet_proto.plans.history import (
    CHUNK_POINTS,
    HistoryEntries,
    history_of,
    logger_request,
    unix_ms,
)
from acnet_proto.plans.lists import ListPlan, ReadBatch
from acnet_proto.protos.controls.service.DAQ.v1 import DAQ_pb2
from acnet_proto.services.acl import ACLRead
from acnet_proto.services.daq import GRPCListPlan, GRPCReadBatch
from acnet_proto.services.dmq import ReadJob
from acnet_proto.status import Status
from acnet_proto.types import DeviceMeta, History, Reading, ValueType

START_MS = 1_715_000_000_000
LOGGER = f"M:OUTTMP<-LOGGER:{START_MS}:{START_MS + 3_600_000}"
FTP = "M:OUTTMP@p,100H<-FTP"
NO_DATA = Status.from_name("DAE_LJ_NO_DATA")
FAILED = Status.from_name("DPM_REPLY_OVERFLOW")  # an error that ends a window mid-way
META = DeviceMeta(7, "M:OUTTMP", "outdoor temperature", "DegF")


def points(first: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` values from ``first`` on, one per second from START_MS (as micros)."""
    index = np.arange(first, first + count)
    return index * 0.5 + 40.0, (START_MS + index * 1000) * 1000


def chunk(ref_id: int, first: int, count: int, status: int = 0) -> dpm.TimedScalarArrayReply:
    """The lab's reply shape: stamped with the first sample's millisecond, then the points."""
    values, micros = points(first, count)
    stamp = int(micros[0] // 1000) if count else 0
    return dpm.TimedScalarArrayReply(
        ref_id=ref_id, timestamp=stamp, cycle=0, status=status, data=values, micros=micros
    )


def window(batch: ListPlan, ref_id: int, total: int) -> list[tuple[int, Reading]]:
    """Feed ``total`` points in 487-point chunks, then the end of data; what was made."""
    made = []
    for first in range(0, total, CHUNK_POINTS):
        made += batch.feed(chunk(ref_id, first, min(CHUNK_POINTS, total - first)))
    return made + batch.feed(chunk(ref_id, 0, 0))


def started(batch: ListPlan) -> None:
    for ref_id in range(1, len(batch) + 1):
        batch.feed(dpm.AddToListReply(list_id=1, ref_id=ref_id, status=0))
        batch.feed(dpm.DeviceInfoReply(ref_id=ref_id, di=7, name="M:OUTTMP", description="d"))
    batch.feed(dpm.StartListReply(list_id=1, status=0))


# --- a logger window over DPM/TCP ---------------------------------------------------------------


def test_a_logger_read_is_sent_without_the_immediate_event() -> None:
    batch = ReadBatch([LOGGER, "M:OUTTMP"])
    assert batch.wire == [LOGGER, "M:OUTTMP@I"]


def test_chunks_make_nothing_until_the_end_of_data_then_the_whole_window() -> None:
    batch = ReadBatch([LOGGER])
    started(batch)
    made = window(batch, 1, 1000)  # 487 + 487 + 26
    assert batch.done and len(made) == 1
    (reading,) = batch.readings()
    expected_values, expected_micros = points(0, 1000)
    assert reading.ok and reading.value_type is ValueType.TIMED_SCALAR_ARRAY
    history = reading.value
    assert isinstance(history, History) and len(history) == 1000
    np.testing.assert_array_equal(history.values, expected_values)
    np.testing.assert_array_equal(history.micros, expected_micros)
    assert history.times.dtype == np.dtype("datetime64[us]")
    assert reading.timestamp == datetime.fromtimestamp(START_MS / 1000, UTC)
    assert reading.meta is not None and reading.meta.name == "M:OUTTMP"


def test_the_history_is_read_only_and_reads_as_pacsys_dict() -> None:
    batch = ReadBatch([LOGGER])
    window(batch, 1, 10)
    history = history_of(batch.readings()[0])
    with pytest.raises(ValueError, match="read-only"):
        history.values[0] = 1.0
    assert history["data"] is history.values and history["micros"] is history.micros
    with pytest.raises(KeyError, match="'data'"):
        history["value"]


def test_an_empty_window_is_an_empty_history_not_an_error() -> None:
    batch = ReadBatch([LOGGER])
    batch.feed(chunk(1, 0, 0))
    (reading,) = batch.readings()
    assert reading.ok and reading.value == History() and reading.timestamp is None
    assert len(history_of(reading)) == 0


def test_a_terminator_that_never_comes_times_out_naming_the_drf_and_the_points() -> None:
    batch = ReadBatch([LOGGER, "M:OUTTMP"])
    batch.feed(chunk(1, 0, CHUNK_POINTS))
    batch.feed(chunk(1, CHUNK_POINTS, 100))
    batch.feed(dpm.ScalarReply(ref_id=2, timestamp=START_MS, cycle=0, status=0, data=41.0))
    assert not batch.done
    error = batch.timed_out(2.0)
    assert f"{LOGGER}: 587 points, no end of data" in str(error)
    assert "timeout=2" in str(error)
    logged, live = error.readings
    assert logged.error_code == Status.from_name("ACNET_REQTMO").error and live.value == 41.0


def test_an_error_status_mid_way_ends_the_entry_saying_how_many_points_came() -> None:
    batch = ReadBatch([LOGGER])
    batch.feed(chunk(1, 0, CHUNK_POINTS))
    batch.feed(dpm.StatusReply(ref_id=1, timestamp=0, cycle=0, status=FAILED.status))
    assert batch.done
    (reading,) = batch.readings()
    assert reading.is_error and reading.status == FAILED
    assert "after 487 points of the window" in (reading.message or "")
    with pytest.raises(DeviceError, match="DPM_REPLY_OVERFLOW"):
        history_of(reading)
    # nothing after the end changes it
    assert batch.feed(chunk(1, 0, 0)) == [] and batch.readings() == [reading]


def test_an_error_in_a_chunk_of_its_own_ends_the_entry() -> None:
    batch = ReadBatch([LOGGER])
    batch.feed(chunk(1, 0, 0, status=FAILED.status))
    assert batch.done and batch.readings()[0].status == FAILED


def test_no_data_in_the_window_is_an_empty_history() -> None:
    """DAE_LJ_NO_DATA says the logger holds nothing of the window: that is an answer."""
    batch = ReadBatch([LOGGER])
    batch.feed(dpm.StatusReply(ref_id=1, timestamp=0, cycle=0, status=NO_DATA.status))
    assert batch.done
    (reading,) = batch.readings()
    assert reading.ok and history_of(reading) == History()


def test_no_data_after_some_points_ends_the_window_with_them() -> None:
    batch = ReadBatch([LOGGER])
    batch.feed(chunk(1, 0, 10))
    batch.feed(dpm.StatusReply(ref_id=1, timestamp=0, cycle=0, status=NO_DATA.status))
    (reading,) = batch.readings()
    assert history_of(reading) == History(*points(0, 10))


def test_chunks_for_an_unknown_ref_id_are_ignored() -> None:
    batch = ReadBatch([LOGGER])
    assert batch.feed(chunk(2, 0, 10)) == [] and batch.feed(chunk(0, 0, 0)) == []
    assert batch.feed(chunk(2, 0, 0)) == []
    assert not batch.done
    window(batch, 1, 3)
    assert len(batch.readings()[0].value) == 3


def test_an_array_device_record_on_a_logger_entry_is_an_error_not_a_wrong_value() -> None:
    batch = ReadBatch([LOGGER])
    record = dpm.ScalarArrayReply(ref_id=1, timestamp=START_MS, cycle=0, status=0, data=[1, 2])
    batch.feed(record)
    (reading,) = batch.readings()
    assert reading.status == Status.from_name("ACNET_RPLYPACK")
    assert "SCALAR_ARRAY data, not timestamped points" in (reading.message or "")


def test_an_entry_past_the_limit_ends_with_reply_overflow() -> None:
    entries = HistoryEntries([LOGGER], [parse(LOGGER)], limit=600)
    assert entries.chunk(0, *points(0, 487)) == []
    ((index, reading),) = entries.chunk(0, *points(487, 487))
    assert index == 0 and reading.status == Status.from_name("DPM_REPLY_OVERFLOW")
    assert "more than 600 points" in (reading.message or "")
    assert entries.chunk(0, [], []) == []  # ended: the terminator makes nothing more


def test_the_limit_is_one_budget_for_the_whole_list() -> None:
    """Two windows of 400 points fit one limit of 600 each, not together."""
    entries = HistoryEntries([LOGGER, LOGGER], [parse(LOGGER)] * 2, limit=600)
    assert entries.chunk(0, *points(0, 400)) == []
    ((_, first),) = entries.chunk(0, [], [])
    assert len(history_of(first)) == 400
    ((index, second),) = entries.chunk(1, *points(0, 400))
    assert index == 1 and second.status == Status.from_name("DPM_REPLY_OVERFLOW")
    assert "more than 600 points together" in (second.message or "")


def test_a_chunk_without_one_time_per_value_is_an_error() -> None:
    entries = HistoryEntries([LOGGER], [parse(LOGGER)])
    ((_, reading),) = entries.chunk(0, [1.0, 2.0], [5], META)
    assert reading.status == Status.from_name("ACNET_RPLYPACK") and reading.meta == META


def test_only_logger_and_ftp_entries_are_chunked() -> None:
    entries = HistoryEntries(
        ["M:OUTTMP", LOGGER, FTP], [parse(d) for d in ("M:OUTTMP", LOGGER, FTP)]
    )
    assert 0 not in entries and 1 in entries and 2 in entries and 3 not in entries
    assert not HistoryEntries(["M:OUTTMP"], [parse("M:OUTTMP")])


# --- fast time plots --------------------------------------------------------------------------


def test_each_ftp_chunk_is_a_reading_of_its_own() -> None:
    plan = ListPlan([FTP], default_event=None)
    started(plan)
    first = plan.feed(chunk(1, 0, 50))
    assert plan.feed(chunk(1, 0, 0)) == []  # nothing sampled: no reading
    second = plan.feed(chunk(1, 50, 50))
    assert [index for index, _ in first + second] == [0, 0]
    (_, one), (_, two) = first + second
    assert isinstance(one.value, History) and len(one.value) == len(two.value) == 50
    assert two.value.micros[0] > one.value.micros[-1]
    failed = plan.feed(dpm.StatusReply(ref_id=1, timestamp=0, cycle=0, status=NO_DATA.status))
    assert failed[0][1].status == NO_DATA  # passed on; the stream goes on
    assert len(plan.feed(chunk(1, 100, 5))) == 1


# --- gRPC ----------------------------------------------------------------------------------------


def grpc_chunk(index: int, first: int, count: int) -> DAQ_pb2.ReadingReply:
    values, micros = points(first, count)
    reply = DAQ_pb2.ReadingReply(index=index, readings=DAQ_pb2.Readings())
    for value, us in zip(values, micros, strict=True):
        entry = reply.readings.reading.add()
        entry.data.scalar = float(value)
        entry.timestamp.FromMicroseconds(int(us))
    return reply


def test_grpc_chunks_gather_until_an_empty_reply() -> None:
    batch = GRPCReadBatch([LOGGER, "M:OUTTMP"])
    assert batch.request().drf[0] == LOGGER
    assert batch.feed(grpc_chunk(0, 0, CHUNK_POINTS)) == []
    assert batch.feed(grpc_chunk(0, CHUNK_POINTS, 1)) == []  # one point is a chunk, not a scalar
    made = batch.feed(DAQ_pb2.ReadingReply(index=0, readings=DAQ_pb2.Readings()))
    ((index, reading),) = made
    expected_values, expected_micros = points(0, CHUNK_POINTS + 1)
    assert index == 0 and reading.value == History(expected_values, expected_micros)


def test_grpc_an_error_status_mid_way_and_an_unknown_index() -> None:
    batch = GRPCReadBatch([LOGGER])
    batch.feed(grpc_chunk(0, 0, 10))
    status = {"facility_code": FAILED.facility, "status_code": FAILED.error}
    ((_, reading),) = batch.feed(DAQ_pb2.ReadingReply(index=0, status=status))
    assert reading.status == FAILED and "after 10 points" in (reading.message or "")
    no_data = {"facility_code": NO_DATA.facility, "status_code": NO_DATA.error}
    empty = GRPCReadBatch([LOGGER])
    ((_, reading),) = empty.feed(DAQ_pb2.ReadingReply(index=0, status=no_data))
    assert reading.ok and history_of(reading) == History()
    with pytest.raises(RemoteProtocolError, match="index 3"):
        GRPCReadBatch([LOGGER]).feed(grpc_chunk(3, 0, 1))


def test_grpc_a_timeout_names_the_points() -> None:
    batch = GRPCReadBatch([LOGGER])
    batch.feed(grpc_chunk(0, 0, 12))
    assert "12 points, no end of data" in str(batch.timed_out(1.0))


def test_grpc_ftp_chunks_stream() -> None:
    plan = GRPCListPlan([FTP])
    ((_, reading),) = plan.feed(grpc_chunk(0, 0, 20))
    assert len(reading.value) == 20
    assert plan.feed(DAQ_pb2.ReadingReply(index=0, readings=DAQ_pb2.Readings())) == []


# --- what reads cannot fetch history --------------------------------------------------------


@pytest.mark.parametrize(("make", "what"), [(ReadJob, "DMQ read"), (ACLRead, "ACL read")])
def test_dmq_and_acl_reads_refuse_history_naming_themselves_and_dpm(make: type, what: str) -> None:
    for drf in (LOGGER, FTP):
        with pytest.raises(DRFError) as caught:
            make(["M:OUTTMP", drf])
        message = str(caught.value)
        assert f"the {what} cannot fetch historical data" in message
        assert "acnet_proto.dpm(" in message and "acnet_proto.grpc(" in message
        assert caught.value.position == drf.index("<-")


# --- asking -----------------------------------------------------------------------------------


def test_unix_ms_takes_aware_datetimes_and_seconds() -> None:
    aware = datetime(2024, 5, 6, 12, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert unix_ms(aware, "start") == int(aware.timestamp() * 1000)
    assert unix_ms(1_715_000_000.25, "start") == 1_715_000_000_250
    assert unix_ms(0, "end") == 0


@pytest.mark.parametrize(
    ("when", "error", "said"),
    [
        (datetime(2024, 5, 6), ConfigurationError, "start=.* is a naive datetime"),
        (-1, ConfigurationError, "start=-1 is not a time since 1970"),
        (float("nan"), ConfigurationError, "start=nan"),
        (True, TypeError, "start must be an aware datetime or Unix seconds, not bool"),
        ("2024-05-06", TypeError, "not str"),
    ],
)
def test_unix_ms_refuses_naming_the_argument(when: object, error: type, said: str) -> None:
    with pytest.raises(error, match=said):
        unix_ms(when, "start")


def test_logger_request_keeps_the_request_and_sets_the_window() -> None:
    request = logger_request("M_OUTTMP[0:2]@p,1000", 10, 20.5, node="arkiv")
    assert request.to_drf() == "M:OUTTMP.SETTING[0:2]@p,1000<-LOGGER:10000:20500:ARKIV"
    with pytest.raises(ConfigurationError, match=r"end .* is before start"):
        logger_request("M:OUTTMP", 20, 10)
    with pytest.raises(ConfigurationError, match="node='no good'"):
        logger_request("M:OUTTMP", 10, 20, node="no good")


def test_history_of_takes_pacsys_dicts_and_refuses_other_values() -> None:
    value = {"data": np.array([1.0]), "micros": np.array([5])}
    reading = Reading(LOGGER, ValueType.TIMED_SCALAR_ARRAY, value=value)
    assert history_of(reading) == History([1.0], [5])
    with pytest.raises(TypeError, match="read as float, not logged data"):
        history_of(Reading("M:OUTTMP", ValueType.SCALAR, value=1.0))


def test_history_compares_by_value_and_says_its_span() -> None:
    one = History([1.0, float("nan")], [1_000_000, 2_000_000])
    assert one == History([1.0, float("nan")], [1_000_000, 2_000_000]) != History([1.0], [1])
    assert (
        repr(one) == "History(2 points, 1970-01-01T00:00:01.000000Z .. 1970-01-01T00:00:02.000000Z)"
    )
    assert repr(History()) == "History(0 points)"
    with pytest.raises(ValueError, match="one time per value"):
        History([1.0, 2.0], [1])
    with pytest.raises(AttributeError, match="immutable"):
        one.values = np.array([])
