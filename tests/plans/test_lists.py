"""Planning lists and folding DPM replies into readings, with no I/O.

Replies are built in memory (and, where it matters, round-tripped through the
codec). pacsys's own DPM decoder and reply mapping are the oracle for what a
reply's value, value type, status, timestamp and cycle must be.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pacsys import dpm_protocol as pacsys_dpm
from pacsys.backends.dpm_http import _reply_to_reading as pacsys_reading

from acnet_proto.drf import DRFError, parse
from acnet_proto.engine.events import StaleReply
from acnet_proto.errors import DeviceError, ReadError, RemoteProtocolError
from acnet_proto.pc import dpm
from acnet_proto.pc._message import Message
from acnet_proto.plans.lists import (
    NO_DATA,
    UNREADABLE,
    ListPlan,
    ReadBatch,
    error_reading,
    reading_from_reply,
    timestamp,
    value_of,
)
from acnet_proto.status import Status, pack
from acnet_proto.types import DeviceMeta, Reading, ValueType
from tests.support.strategies import message_strategy

LIST_ID = 48813
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLIS = 1_715_000_000_123  # May 2024, with milliseconds
NO_SUCH_DEVICE = Status.from_name("DPM_NO_SUCH_DEVICE")
STALE = Status.from_name("DPM_STALE")  # a warning
PEND = Status.from_name("DPM_PEND")  # the lab's DPM's answer for a device it does not have
REQTMO = Status.from_name("ACNET_REQTMO")
YEAR_2200_MS = 7_258_118_400_000

DATA_REPLIES = (
    dpm.ScalarReply,
    dpm.ScalarArrayReply,
    dpm.RawReply,
    dpm.TextReply,
    dpm.TextArrayReply,
    dpm.TimedScalarArrayReply,
    dpm.AnalogAlarmReply,
    dpm.DigitalAlarmReply,
    dpm.BasicStatusReply,
)


def as_utc(millis: int) -> datetime:
    """The reference conversion: integer arithmetic, no floats."""
    return EPOCH + timedelta(milliseconds=millis)


def scalar(ref: int, data: float, *, cycle: int = 1, status: int = 0) -> Message:
    return dpm.ScalarReply(ref_id=ref, timestamp=MILLIS, cycle=cycle, status=status, data=data)


def status_reply(ref: int, status: Status, *, cycle: int = 1) -> Message:
    return dpm.StatusReply(ref_id=ref, timestamp=MILLIS, cycle=cycle, status=status.status)


def add_reply(ref: int, status: int = 0) -> Message:
    return dpm.AddToListReply(list_id=LIST_ID, ref_id=ref, status=status)


def feed_all(plan: ListPlan, *replies: Any) -> list[tuple[int, Reading]]:
    made = []
    for reply in replies:
        made += plan.feed(reply)
    return made


def same(a: Any, b: Any) -> bool:
    """Value equality where NaN equals NaN and arrays compare by content and dtype."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


# ------------------------------------------------------------------ timestamps


def test_timestamp_zero_means_not_stamped() -> None:
    assert timestamp(0) is None


@given(st.integers(1, YEAR_2200_MS))
def test_timestamp_is_utc_aware_and_exact_to_the_millisecond(millis: int) -> None:
    stamped = timestamp(millis)
    assert stamped is not None
    assert stamped.utcoffset() == timedelta(0)
    assert stamped == as_utc(millis)
    assert stamped.microsecond % 1000 == 0


@pytest.mark.parametrize("millis", [2**62, -(2**62), 2**63 - 1])
def test_a_stamp_no_date_can_hold_is_the_peers_fault(millis: int) -> None:
    with pytest.raises(RemoteProtocolError, match=f"stamped {millis} ms after 1970"):
        timestamp(millis)


@pytest.mark.parametrize("kind", [dpm.ScalarReply, dpm.StatusReply])
def test_a_reply_stamped_with_no_date_spoils_its_reading_not_the_connection(
    kind: type[Message],
) -> None:
    fields = {"data": 1.0} if kind is dpm.ScalarReply else {}
    reply = kind(ref_id=1, timestamp=2**62, cycle=0, status=0, **fields)
    reading = reading_from_reply(reply, "M:OUTTMP")
    assert (reading.facility_code, reading.error_code) == (UNREADABLE.facility, UNREADABLE.error)
    assert "which is no date" in (reading.message or "")


# ------------------------------------------------- data replies, one by one


def reply_of(kind: type[Message], **fields: Any) -> Message:
    common = {"ref_id": 1, "timestamp": MILLIS, "cycle": 42}
    if "status" in kind.field_names:
        common["status"] = 0
    return kind(**{**common, **fields})


EXAMPLES = [
    (dpm.ScalarReply, {"data": 72.5}, ValueType.SCALAR, 72.5),
    (
        dpm.ScalarArrayReply,
        {"data": [1.0, 2.5, float("inf")]},
        ValueType.SCALAR_ARRAY,
        np.array([1.0, 2.5, float("inf")]),
    ),
    (dpm.RawReply, {"data": b"\x00\x01\xff"}, ValueType.RAW, b"\x00\x01\xff"),
    (dpm.TextReply, {"data": "Outdoor temperature"}, ValueType.TEXT, "Outdoor temperature"),
    (dpm.TextArrayReply, {"data": ["on", "off"]}, ValueType.TEXT_ARRAY, ("on", "off")),
    (
        dpm.TimedScalarArrayReply,
        {"data": [1.0, 2.0], "micros": [100, 200]},
        ValueType.TIMED_SCALAR_ARRAY,
        {"data": np.array([1.0, 2.0]), "micros": np.array([100, 200], dtype=np.int64)},
    ),
    (
        dpm.TimedScalarArrayReply,
        {"data": [1.0, 2.0], "micros": []},
        ValueType.SCALAR_ARRAY,
        np.array([1.0, 2.0]),
    ),
    (
        dpm.AnalogAlarmReply,
        {
            "minimum": -1.5,
            "maximum": 9.5,
            "alarm_enable": True,
            "alarm_status": False,
            "abort": False,
            "abort_inhibit": True,
            "tries_needed": 3,
            "tries_now": 1,
        },
        ValueType.ANALOG_ALARM,
        {
            "minimum": -1.5,
            "maximum": 9.5,
            "alarm_enable": True,
            "alarm_status": False,
            "abort": False,
            "abort_inhibit": True,
            "tries_needed": 3,
            "tries_now": 1,
        },
    ),
    (
        dpm.DigitalAlarmReply,
        {
            "nominal": 5,
            "mask": 7,
            "alarm_enable": False,
            "alarm_status": True,
            "abort": True,
            "abort_inhibit": False,
            "tries_needed": 2,
            "tries_now": 0,
        },
        ValueType.DIGITAL_ALARM,
        {
            "nominal": 5,
            "mask": 7,
            "alarm_enable": False,
            "alarm_status": True,
            "abort": True,
            "abort_inhibit": False,
            "tries_needed": 2,
            "tries_now": 0,
        },
    ),
    (
        dpm.BasicStatusReply,
        {"on": True, "ready": False, "ramp": True},
        ValueType.BASIC_STATUS,
        {"on": True, "ready": False, "ramp": True},
    ),
]


@pytest.mark.parametrize(
    ("kind", "fields", "value_type", "value"),
    EXAMPLES,
    ids=[f"{e[0].__name__}-{e[2].name}" for e in EXAMPLES],
)
@pytest.mark.parametrize("wire", [False, True], ids=["built", "decoded"])
def test_each_data_reply_becomes_a_reading(
    kind: type[Message], fields: dict[str, Any], value_type: ValueType, value: Any, wire: bool
) -> None:
    reply = reply_of(kind, **fields)
    if wire:
        reply = dpm.decode_reply(dpm.encode(reply))
    reading = reading_from_reply(reply, "M:OUTTMP@I", META)
    assert reading.value_type is value_type
    assert same(reading.value, value), reading.value
    assert reading.timestamp == as_utc(MILLIS)
    assert reading.timestamp.tzinfo is not None
    assert reading.cycle == 42
    assert (reading.facility_code, reading.error_code) == (0, 0)
    assert reading.message is None
    assert reading.meta is META
    assert reading.drf == "M:OUTTMP@I"
    assert reading.ok


META = DeviceMeta(27235, "M:OUTTMP", "Outdoor temperature", "DegF", 2)


@pytest.mark.parametrize("wire", [False, True], ids=["built", "decoded"])
def test_array_values_are_read_only_float64_arrays(wire: bool) -> None:
    replies = [
        reply_of(dpm.ScalarArrayReply, data=[1.0, 2.0]),
        reply_of(dpm.TimedScalarArrayReply, data=[1.0, 2.0], micros=[5, 6]),
    ]
    for reply in replies:
        if wire:
            reply = dpm.decode_reply(dpm.encode(reply))
        value = reading_from_reply(reply, "Z:ACLTS1").value
        arrays = value.values() if isinstance(value, dict) else [value]
        for arr in arrays:
            assert isinstance(arr, np.ndarray)
            assert not arr.flags.writeable
        assert (value["data"] if isinstance(value, dict) else value).dtype == np.float64


def test_basic_status_leaves_out_the_bits_the_server_did_not_send() -> None:
    reading = reading_from_reply(reply_of(dpm.BasicStatusReply, on=False), "Z|ACLTST")
    assert reading.value == {"on": False}


def test_a_warning_status_keeps_the_value_and_names_the_status() -> None:
    reading = reading_from_reply(scalar(1, 3.5, status=STALE.status), "M:OUTTMP")
    assert reading.value == 3.5
    assert (reading.facility_code, reading.error_code) == (STALE.facility, STALE.error)
    assert reading.is_warning and reading.ok
    assert "DPM_STALE" in reading.message


def test_an_error_status_on_a_data_reply_makes_an_error_reading() -> None:
    reading = reading_from_reply(scalar(1, 3.5, status=NO_SUCH_DEVICE.status, cycle=9), "M:X")
    assert reading.value is None
    assert reading.is_error and not reading.ok
    assert (reading.facility_code, reading.error_code) == (17, NO_SUCH_DEVICE.error)
    assert "DPM_NO_SUCH_DEVICE" in reading.message
    assert reading.timestamp == as_utc(MILLIS)
    assert reading.cycle == 9


def test_a_status_reply_is_an_error_reading_naming_the_status() -> None:
    reading = reading_from_reply(status_reply(1, NO_SUCH_DEVICE, cycle=7), "M:NOSUCH@I", META)
    assert reading.value is None and reading.value_type is None
    assert reading.facility_code == NO_SUCH_DEVICE.facility == 17
    assert reading.error_code == NO_SUCH_DEVICE.error < 0
    assert "DPM_NO_SUCH_DEVICE" in reading.message
    assert NO_SUCH_DEVICE.text in reading.message
    assert reading.timestamp == as_utc(MILLIS)
    assert reading.cycle == 7
    assert reading.meta is META
    assert reading.is_error and not reading.ok


def test_a_reply_that_carries_no_data_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="ListStatusReply"):
        reading_from_reply(dpm.ListStatusReply(list_id=LIST_ID, status=0), "M:OUTTMP")


# ------------------------------------------- the same mapping as pacsys's


_ASCII = st.text(st.characters(max_codepoint=127), max_size=40)


def _with_status_at_most_warning(
    kind: type[Message], ascii_only: bool = False
) -> st.SearchStrategy[Message]:
    stamps = st.one_of(st.just(0), st.integers(1, YEAR_2200_MS))
    fields: dict[str, st.SearchStrategy[Any]] = {"timestamp": stamps}
    if "status" in kind.field_names:
        fields["status"] = st.builds(pack, st.integers(0, 255), st.integers(0, 127))
    # pacsys decodes strings as ISO-8859-1, the spec says UTF-8: they agree on ASCII
    if ascii_only and kind is dpm.TextReply:
        fields["data"] = _ASCII
    if ascii_only and kind is dpm.TextArrayReply:
        fields["data"] = st.lists(_ASCII, max_size=12)
    return st.tuples(message_strategy(dpm.codec, kind), st.fixed_dictionaries(fields)).map(
        lambda pair: pair[0].replace(**pair[1])
    )


_ANY_DATA_REPLY = st.one_of(*(_with_status_at_most_warning(kind) for kind in DATA_REPLIES))
_ASCII_DATA_REPLY = st.one_of(
    *(_with_status_at_most_warning(kind, ascii_only=True) for kind in DATA_REPLIES)
)
_ANY_STATUS_REPLY = st.builds(
    lambda ref, stamp, cycle, status: dpm.StatusReply(
        ref_id=ref, timestamp=stamp, cycle=cycle, status=status
    ),
    st.integers(1, 2**31),
    st.integers(0, YEAR_2200_MS),
    st.integers(-(2**63), 2**63 - 1),
    st.integers(-0x8000, 0x7FFF),
)


@given(st.one_of(_ASCII_DATA_REPLY, _ANY_STATUS_REPLY))
def test_readings_match_pacsys_for_any_reply(reply: Message) -> None:
    """Decoded by pacsys and mapped by pacsys, every reply means what it means to us."""
    encoded = dpm.encode(reply)
    theirs = pacsys_reading(pacsys_dpm.unmarshal_reply(iter(encoded)), "M:OUTTMP", None)
    ours = reading_from_reply(dpm.decode_reply(encoded), "M:OUTTMP")
    assert (ours.facility_code, ours.error_code) == (theirs.facility_code, theirs.error_code)
    assert ours.timestamp == theirs.timestamp
    assert ours.cycle == theirs.cycle
    if type(reply) is dpm.StatusReply:
        assert ours.value is None and ours.value_type is None
        said = str(Status.from_int(reply.status))
        # a status that is no error, with no data, says what that means
        assert ours.message == (said if ours.is_error else f"{said}; {NO_DATA}")
        return
    assert (ours.message is None) == (theirs.message is None)
    assert ours.value_type.value == theirs.value_type.value
    if ours.value_type is ValueType.TEXT_ARRAY:
        assert ours.value == tuple(theirs.value)  # the one deliberate difference
    else:
        assert same(ours.value, theirs.value), (ours.value, theirs.value)


@given(_ANY_DATA_REPLY)
def test_built_and_decoded_replies_make_equal_readings(reply: Message) -> None:
    decoded = dpm.decode_reply(dpm.encode(reply))
    assert reading_from_reply(reply, "M:OUTTMP") == reading_from_reply(decoded, "M:OUTTMP")


# ------------------------------------------------------------ error_reading


def test_error_reading_takes_a_status_or_its_packed_int() -> None:
    from_status = error_reading("M:X", REQTMO, META, at=MILLIS, cycle=3)
    from_int = error_reading("M:X", REQTMO.status, META, at=MILLIS, cycle=3)
    assert from_status == from_int
    assert from_status.message == str(REQTMO)
    assert from_status.timestamp == as_utc(MILLIS)
    assert from_status.cycle == 3


def test_error_reading_appends_the_note() -> None:
    reading = error_reading("M:X", REQTMO, note="no reply within 5 s")
    assert reading.message.startswith(str(REQTMO))
    assert reading.message.endswith("no reply within 5 s")
    assert reading.timestamp is None


# ------------------------------------------------------------------ value_of


def test_value_of_returns_the_value_of_a_good_or_warning_reading() -> None:
    assert value_of(reading_from_reply(scalar(1, 2.5), "M:OUTTMP")) == 2.5
    assert value_of(reading_from_reply(scalar(1, 2.5, status=STALE.status), "M:OUTTMP")) == 2.5


def test_value_of_an_error_reading_raises_device_error() -> None:
    reading = reading_from_reply(status_reply(1, NO_SUCH_DEVICE), "M:NOSUCH@I")
    with pytest.raises(DeviceError) as caught:
        value_of(reading)
    error = caught.value
    assert error.drf == "M:NOSUCH@I"
    assert (error.facility_code, error.error_code) == (17, NO_SUCH_DEVICE.error)
    assert "DPM_NO_SUCH_DEVICE" in error.message
    assert "M:NOSUCH@I" in str(error)


def test_value_of_a_reading_without_a_value_raises() -> None:
    with pytest.raises(DeviceError) as caught:
        value_of(Reading("M:OUTTMP"))
    assert caught.value.drf == "M:OUTTMP"
    assert NO_DATA in caught.value.message


@pytest.mark.parametrize("reply", [status_reply(1, PEND), add_reply(1, PEND.status)])
def test_a_warning_with_no_data_is_not_ok_and_read_raises(reply: Message) -> None:
    [(_, reading)] = feed_all(ReadBatch(["Z:NOTFND"]), reply)
    assert (reading.facility_code, reading.error_code) == (17, 1)
    assert reading.value is None and reading.is_warning
    assert not reading.ok and not reading.is_error  # the seeds' meanings of both
    assert reading.message.startswith("DPM_PEND [17 1]") and reading.message.endswith(NO_DATA)
    with pytest.raises(DeviceError) as caught:
        value_of(reading)
    error = caught.value
    assert (error.drf, error.facility_code, error.error_code) == ("Z:NOTFND", 17, 1)
    assert str(error) == f"Z:NOTFND: {reading.message}"  # NO_DATA once, the code once


def test_a_warning_reading_without_data_from_another_service_raises_saying_so() -> None:
    # gRPC and DMQ make their readings themselves, with the server's words
    reading = Reading("Z:NOTFND", facility_code=17, error_code=1, message="Request pending")
    with pytest.raises(DeviceError) as caught:
        value_of(reading)
    assert str(caught.value) == f"Z:NOTFND: Request pending; {NO_DATA} [17 1]"


# ------------------------------------------------------------ bad input


@pytest.mark.parametrize("make", [ReadBatch, lambda drfs: ListPlan(drfs, None)])
class TestInput:
    def test_a_bare_string_is_refused(self, make: Any) -> None:
        with pytest.raises(TypeError, match=r"drfs.*str"):
            make("M:OUTTMP")

    @pytest.mark.parametrize("drfs", [b"M:OUTTMP", 5, None, {"M:OUTTMP"}, iter(["M:OUTTMP"])])
    def test_a_non_sequence_is_refused(self, make: Any, drfs: Any) -> None:
        with pytest.raises(TypeError, match=f"drfs.*{type(drfs).__name__}"):
            make(drfs)

    @pytest.mark.parametrize("drfs", [[], ()])
    def test_an_empty_list_is_refused(self, make: Any, drfs: Any) -> None:
        with pytest.raises(ValueError, match="drfs is empty"):
            make(drfs)

    @pytest.mark.parametrize(
        ("drfs", "where", "kind"),
        [([1, 2], "drfs\\[0\\]", "int"), (["M:OUTTMP", "G:AMANDA", None], "drfs\\[2\\]", "None")],
    )
    def test_an_item_that_is_not_a_drf_is_named(
        self, make: Any, drfs: list[Any], where: str, kind: str
    ) -> None:
        with pytest.raises(TypeError, match=f"{where}.*{kind}"):
            make(drfs)

    def test_invalid_drf_text_raises_drf_error_naming_it(self, make: Any) -> None:
        with pytest.raises(DRFError) as caught:
            make(["M:OUTTMP", "M:OUTTMP.BOGUS@p,1000"])
        assert isinstance(caught.value, ValueError)
        assert caught.value.text == "M:OUTTMP.BOGUS@p,1000"
        assert "M:OUTTMP.BOGUS@p,1000" in str(caught.value)

    def test_data_requests_are_accepted_as_canonical_text(self, make: Any) -> None:
        plan = make([parse("m:outtmp.reading"), "G:AMANDA"])
        assert plan.drfs == ["M:OUTTMP", "G:AMANDA"]
        assert len(plan) == 2


# ------------------------------------------------------------ commands


def test_a_batch_adds_each_entry_read_once_then_starts() -> None:
    drfs = ["M:OUTTMP", "Z:ACLTS1[0:4]@p,1000", "G:AMANDA@U"]
    commands = ReadBatch(drfs).commands(LIST_ID)
    adds, start = commands[:-1], commands[-1]
    assert [type(c) for c in adds] == [dpm.AddToListRequest] * 3
    assert [c.ref_id for c in adds] == [1, 2, 3]
    assert all(c.list_id == LIST_ID for c in adds)
    # no event: read now; an explicit event is the caller's and stays as written
    assert [c.drf_request for c in adds] == ["M:OUTTMP@I", drfs[1], drfs[2]]
    assert start == dpm.StartListRequest(list_id=LIST_ID)


def test_a_plan_without_a_default_event_sends_the_drfs_as_given() -> None:
    drfs = ["M:OUTTMP", "Z:ACLTS1@p,1000"]
    commands = ListPlan(drfs, None).commands(LIST_ID)
    assert [c.drf_request for c in commands[:-1]] == drfs


def test_teardown_stops_a_plan_and_stops_and_clears_a_batch() -> None:
    assert ListPlan(["M:OUTTMP"], None).teardown(LIST_ID) == [dpm.StopListRequest(list_id=LIST_ID)]
    assert ReadBatch(["M:OUTTMP"]).teardown(LIST_ID) == [
        dpm.StopListRequest(list_id=LIST_ID),
        dpm.ClearListRequest(list_id=LIST_ID),
    ]


# ------------------------------------------------------------ folding replies


def device_info(ref: int, name: str = "M:OUTTMP", units: str | None = "DegF") -> Message:
    return dpm.DeviceInfoReply(
        ref_id=ref, di=27235, name=name, description="Outdoor temperature", units=units
    )


def test_device_info_is_attached_to_the_entrys_readings() -> None:
    plan = ListPlan(["m:outtmp@p,1000", "G:AMANDA@p,1000"], None)
    assert plan.feed(device_info(1)) == []
    [(index, reading)] = plan.feed(scalar(1, 70.0))
    assert index == 0
    assert reading.meta == DeviceMeta(27235, "M:OUTTMP", "Outdoor temperature", "DegF", None)
    assert reading.units == "DegF"
    [(_, other)] = plan.feed(scalar(2, 1.0))
    assert other.meta is None


@pytest.mark.parametrize("ref", [0, 3, -1, 2**40])
def test_replies_for_refs_not_on_the_plan_are_ignored(ref: int) -> None:
    plan = ListPlan(["M:OUTTMP", "G:AMANDA"], None)
    assert feed_all(plan, device_info(ref), add_reply(ref, NO_SUCH_DEVICE.status)) == []
    if ref != 0:  # ref 0 is the list itself (tested below)
        assert feed_all(plan, scalar(ref, 1.0), status_reply(ref, NO_SUCH_DEVICE)) == []
    assert plan.meta == [None, None]


def test_a_subscription_plan_returns_every_reading() -> None:
    plan = ListPlan(["M:OUTTMP@p,1000", "G:AMANDA@p,1000"], None)
    made = feed_all(plan, scalar(1, 1.0, cycle=1), scalar(2, 2.0), scalar(1, 3.0, cycle=2))
    assert [(i, r.value) for i, r in made] == [(0, 1.0), (1, 2.0), (0, 3.0)]
    assert [r.cycle for i, r in made if i == 0] == [1, 2]


def test_successful_list_replies_make_no_readings() -> None:
    plan = ReadBatch(["M:OUTTMP"])
    made = feed_all(
        plan,
        add_reply(1),
        dpm.StartListReply(list_id=LIST_ID, status=0),
        dpm.ListStatusReply(list_id=LIST_ID, status=0),
        dpm.StatusReply(ref_id=0, timestamp=MILLIS, cycle=0, status=0),
    )
    assert made == []
    assert not plan.done


def test_an_add_to_list_failure_is_one_error_reading_and_the_ref_goes_quiet() -> None:
    plan = ListPlan(["M:NOSUCH@p,1000", "M:OUTTMP@p,1000"], None)
    [(index, reading)] = plan.feed(add_reply(1, NO_SUCH_DEVICE.status))
    assert index == 0
    assert reading.drf == "M:NOSUCH@p,1000"
    assert (reading.facility_code, reading.error_code) == (17, NO_SUCH_DEVICE.error)
    assert "DPM_NO_SUCH_DEVICE" in reading.message
    assert reading.value is None
    # whatever else the server says about ref 1 is ignored; ref 2 is unaffected
    later = feed_all(
        plan, status_reply(1, NO_SUCH_DEVICE), scalar(1, 5.0), add_reply(1, REQTMO.status)
    )
    assert later == []
    assert [(i, r.value) for i, r in plan.feed(scalar(2, 6.0))] == [(1, 6.0)]


def test_a_per_entry_status_reply_is_that_entrys_error() -> None:
    batch = ReadBatch(["M:OUTTMP", "M:NOSUCH"])
    [(index, reading)] = batch.feed(status_reply(2, NO_SUCH_DEVICE))
    assert index == 1
    assert reading.is_error and "DPM_NO_SUCH_DEVICE" in reading.message
    assert not batch.done


@pytest.mark.parametrize(
    "failure",
    [
        dpm.StatusReply(ref_id=0, timestamp=MILLIS, cycle=0, status=NO_SUCH_DEVICE.status),
        dpm.StartListReply(list_id=LIST_ID, status=NO_SUCH_DEVICE.status),
    ],
    ids=["StatusReply ref 0", "StartListReply"],
)
def test_a_job_failure_is_every_waiting_entrys_error(failure: Message) -> None:
    batch = ReadBatch(["M:OUTTMP", "G:AMANDA", "M:NOSUCH"])
    batch.feed(scalar(1, 70.0))
    batch.feed(add_reply(3, REQTMO.status))
    made = batch.feed(failure)
    assert [i for i, _ in made] == [1]
    assert made[0][1].error_code == NO_SUCH_DEVICE.error
    assert batch.done
    readings = batch.readings()
    assert readings[0].value == 70.0
    assert readings[1].error_code == NO_SUCH_DEVICE.error
    assert readings[2].error_code == REQTMO.error  # its own, earlier, error stays


def test_a_job_failure_ends_a_subscription_plans_entries() -> None:
    plan = ListPlan(["M:OUTTMP@p,1000", "G:AMANDA@p,1000"], None)
    plan.feed(scalar(1, 70.0))
    failure = dpm.StatusReply(ref_id=0, timestamp=MILLIS, cycle=0, status=REQTMO.status)
    made = plan.feed(failure)
    assert [(i, r.error_code) for i, r in made] == [(0, REQTMO.error), (1, REQTMO.error)]
    assert all(r.timestamp == as_utc(MILLIS) for _, r in made)
    assert plan.feed(scalar(1, 71.0)) == []
    assert plan.feed(failure) == []


def test_stale_replies_are_ignored() -> None:
    batch = ReadBatch(["M:OUTTMP"])
    assert batch.feed(StaleReply(scalar(1, 1.0))) == []
    assert batch.feed(StaleReply(status_reply(1, NO_SUCH_DEVICE))) == []
    assert not batch.done
    [(_, reading)] = batch.feed(scalar(1, 2.0))
    assert reading.value == 2.0


# ------------------------------------------------------------ ReadBatch


def test_a_batch_keeps_only_the_first_reading_of_each_entry() -> None:
    batch = ReadBatch(["M:OUTTMP@p,1000", "G:AMANDA"])
    assert [r.value for _, r in batch.feed(scalar(1, 1.0))] == [1.0]
    assert batch.feed(scalar(1, 2.0)) == []
    assert batch.feed(status_reply(1, NO_SUCH_DEVICE)) == []
    assert not batch.done
    batch.feed(scalar(2, 3.0))
    assert batch.feed(scalar(2, 4.0)) == []
    assert batch.done
    assert [r.value for r in batch.readings()] == [1.0, 3.0]


def test_a_batch_returns_readings_in_input_order_whatever_the_reply_order() -> None:
    drfs = ["M:OUTTMP", "G:AMANDA", "Z:ACLTST"]
    batch = ReadBatch(drfs)
    for ref in (3, 1, 2):
        batch.feed(scalar(ref, float(ref)))
    assert batch.done
    readings = batch.readings()
    assert [r.drf for r in readings] == drfs
    assert [r.value for r in readings] == [1.0, 2.0, 3.0]


def test_readings_before_done_raise_naming_the_missing_entry() -> None:
    batch = ReadBatch(["M:OUTTMP", "G:AMANDA"])
    batch.feed(scalar(1, 1.0))
    with pytest.raises(RuntimeError, match="G:AMANDA"):
        batch.readings()


@pytest.mark.parametrize("missing", [REQTMO, REQTMO.status], ids=["Status", "packed"])
def test_readings_backfill_missing_entries_with_the_given_status(missing: Any) -> None:
    batch = ReadBatch(["M:OUTTMP", "G:AMANDA", "Z:ACLTST"])
    batch.feed(device_info(3, "Z:ACLTST", None))
    batch.feed(scalar(2, 2.0))
    readings = batch.readings(missing=missing, note="no reply within 5 s")
    assert [r.drf for r in readings] == ["M:OUTTMP", "G:AMANDA", "Z:ACLTST"]
    assert readings[1].value == 2.0
    for reading in (readings[0], readings[2]):
        assert (reading.facility_code, reading.error_code) == (REQTMO.facility, REQTMO.error)
        assert "ACNET_REQTMO" in reading.message
        assert "no reply within 5 s" in reading.message
        assert reading.value is None
    assert readings[2].meta is not None and readings[2].name == "Z:ACLTST"
    assert not batch.done  # backfilling is a view, not a reply


# ------------------------------------------------- what a one-shot read refuses, and its timeout


def _one_shot_plans() -> list[Any]:
    from acnet_proto.services.acl import ACLRead
    from acnet_proto.services.daq import GRPCReadBatch
    from acnet_proto.services.dmq import ReadJob

    return [ReadBatch, GRPCReadBatch, ReadJob, ACLRead]


@pytest.mark.parametrize("plan", _one_shot_plans(), ids=lambda p: p.__name__)
@pytest.mark.parametrize("never", ["Z:ACLTST@N", "z@acltst@n", "Z:ACLTS1[0:2]@N"])
def test_every_one_shot_read_refuses_at_n_naming_it_and_what_to_use(plan: Any, never: str) -> None:
    with pytest.raises(DRFError) as caught:
        plan(["M:OUTTMP", never])
    error = caught.value
    assert (error.text, error.position) == (never, never.rfind("@"))
    assert str(error).startswith(f"cannot read {never!r}")
    assert "@N never sends data" in str(error) and "@I" in str(error)
    plan(["M:OUTTMP", never[: never.rfind("@")] + "@I"])  # the same device, read now: fine


def test_a_timeout_names_what_is_missing_and_the_timeout_set() -> None:
    drfs = ["M:OUTTMP", "Z:ACLTST", "G:AMANDA", "Z:ACLTS1", "Z:ACLTS2"]
    batch = ReadBatch(drfs)
    batch.feed(dpm.ScalarReply(ref_id=1, timestamp=MILLIS, cycle=0, status=0, data=1.0))
    error = batch.timed_out(0.5, TimeoutError("all 2 pooled connections stayed busy"))
    assert error.message == (
        "read timed out: no reading of Z:ACLTST, G:AMANDA, Z:ACLTS1 and 1 more "
        "within 0.5 s (timeout=0.5) (all 2 pooled connections stayed busy); "
        "1 of 5 readings arrived; pass a longer timeout if the devices answer slowly"
    )
    first, *late = error.readings
    assert first.value == 1.0
    assert {r.status for r in late} == {REQTMO}
    late_text = "ACNET_REQTMO [1 -6]: no reading within 0.5 s (timeout=0.5)"
    assert {r.message for r in late} == {late_text}
    plain = ReadBatch(["M:OUTTMP"]).timed_out(5, TimeoutError("timed out")).message
    assert plain.startswith("read timed out: no reading of M:OUTTMP within 5 s (timeout=5); ")


def test_a_read_error_says_whether_its_deadline_passed() -> None:
    assert ReadBatch(["M:OUTTMP"]).timed_out(5).timed_out is True
    assert ReadBatch(["M:OUTTMP"]).disconnected(ConnectionResetError("reset")).timed_out is False
    assert ReadError([], "no value for M:OUTTMP").timed_out is False  # not cut short at all


def test_error_reading_text_stands_in_for_the_status_text() -> None:
    reading = error_reading("M:X", REQTMO, text="no reading within 2 s", note="slow")
    assert reading.message == "ACNET_REQTMO [1 -6]: no reading within 2 s: slow"
    assert reading.status == REQTMO
