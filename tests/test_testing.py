"""FakeBackend, the in-memory backend users test their own code with."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import numpy as np
import pytest

from acnet_proto.api.backend import Backend
from acnet_proto.drf import DRFError
from acnet_proto.errors import ConnectionLost, DeviceError, ReadError
from acnet_proto.testing import FakeBackend
from acnet_proto.types import Reading, ValueType


@pytest.fixture
def fake() -> FakeBackend:
    return FakeBackend()


def test_it_imports_no_io() -> None:
    code = (
        "import sys, acnet_proto.testing; "
        "print([m for m in ('socket', 'selectors', 'asyncio', 'trio', 'acnet_proto.adapters') "
        "if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_set_reading_is_what_reads_return(fake: FakeBackend) -> None:
    at = datetime(2025, 11, 22, tzinfo=UTC)
    fake.set_reading("M:OUTTMP", 72, units="DegF", description="outdoor", timestamp=at, cycle=3)
    assert isinstance(fake, Backend)
    assert fake.read("M:OUTTMP") == 72.0
    reading = fake.get("m:outtmp@p,1000")  # any event, any spelling: the same device
    assert reading.drf == "m:outtmp@p,1000"
    assert (reading.value, reading.value_type, reading.units, reading.name) == (
        72.0,
        ValueType.SCALAR,
        "DegF",
        "M:OUTTMP",
    )
    assert (reading.timestamp, reading.cycle, reading.meta.description) == (at, 3, "outdoor")
    assert fake.get("M:OUTTMP").timestamp == at  # the fake has no clock: stamps are as set
    assert fake.reads == ["M:OUTTMP", "m:outtmp@p,1000", "M:OUTTMP"]
    assert fake.was_read("M:OUTTMP@I") and not fake.was_read("M:OUTTMP.SETTING")


@pytest.mark.parametrize(
    ("value", "value_type"),
    [
        ("text", ValueType.TEXT),
        (b"\x01\x02", ValueType.RAW),
        (["a", "b"], ValueType.TEXT_ARRAY),
        ([1, 2.5], ValueType.SCALAR_ARRAY),
        (np.arange(3.0), ValueType.SCALAR_ARRAY),
        (True, ValueType.SCALAR),
        ({"on": True}, ValueType.BASIC_STATUS),
    ],
)
def test_value_types_are_inferred(fake: FakeBackend, value: object, value_type: ValueType) -> None:
    fake.set_reading("Z:THING", value)
    assert fake.get("Z:THING").value_type is value_type


def test_alarm_blocks_are_typed_by_property(fake: FakeBackend) -> None:
    fake.set_reading("Z:ACLTST.ANALOG", {"minimum": 0.0, "maximum": 100.0})
    fake.set_reading("Z:ACLTST.DIGITAL", {"nominal": 3, "mask": 3})
    assert fake.get("Z@ACLTST").value_type is ValueType.ANALOG_ALARM
    assert fake.get("Z$ACLTST").value_type is ValueType.DIGITAL_ALARM


def test_a_value_that_is_not_its_declared_type_is_refused(fake: FakeBackend) -> None:
    with pytest.raises(TypeError, match="SCALAR"):
        fake.set_reading("Z:THING", "12", ValueType.SCALAR)
    with pytest.raises(TypeError, match="TEXT_ARRAY"):
        fake.set_reading("Z:THING", ["a", 1], ValueType.TEXT_ARRAY)
    with pytest.raises(TypeError, match="RAW"):
        fake.set_reading("Z:THING", True, ValueType.RAW)
    with pytest.raises(DRFError):
        fake.set_reading("Z:BAD NAME", 1.0)


def test_arrays_are_read_through_their_range(fake: FakeBackend) -> None:
    values = [0.0, 1.5, 3.0, 4.5]
    fake.set_reading("Z:ACLTS1", values)
    np.testing.assert_array_equal(fake.read("Z:ACLTS1[1:2]"), values[1:3])
    np.testing.assert_array_equal(fake.read("Z:ACLTS1[2:]"), values[2:])
    np.testing.assert_array_equal(fake.read("Z:ACLTS1[3]"), values[3:])
    beyond = fake.get("Z:ACLTS1[2:9]")
    assert beyond.status.name == "DPM_OUT_OF_BOUNDS"
    with pytest.raises(DeviceError):
        fake.read("Z:ACLTS1[2:9]")


def test_errors_are_error_readings(fake: FakeBackend) -> None:
    fake.set_error("Z:GONE", "DPM_NO_SUCH_DEVICE", "unplugged")
    fake.set_error("Z:TIRED", -6)
    fake.set_reading("M:OUTTMP", 41.7)
    gone, tired, outtmp = fake.get_many(["Z:GONE", "Z:TIRED", "M:OUTTMP"])
    assert (gone.status.name, gone.value, "unplugged" in gone.message) == (
        "DPM_NO_SUCH_DEVICE",
        None,
        True,
    )
    assert (tired.facility_code, tired.error_code) == (1, -6)
    assert outtmp.ok
    with pytest.raises(DeviceError) as caught:
        fake.read("Z:GONE")
    assert caught.value.drf == "Z:GONE"
    with pytest.raises(ReadError) as batch:
        fake.read_many(["M:OUTTMP", "Z:TIRED"])
    assert [r.ok for r in batch.value.readings] == [True, False]
    with pytest.raises(TypeError):
        fake.set_error("Z:GONE", 1.5)  # type: ignore[arg-type]


def test_what_was_never_set_answers_as_dpm_would(fake: FakeBackend) -> None:
    fake.set_reading("Z:ACLTST", 45.0)
    assert fake.get("Z:NOTFND").status.name == "DPM_NO_SUCH_DEVICE"
    assert fake.get("Z:ACLTST.DESCRIPTION").status.name == "DBM_NOPROP"
    with pytest.raises(DRFError, match="@N never sends data"):  # before any "I/O"
        fake.get_many(["Z:ACLTST", "Z:ACLTST@N"])
    with pytest.raises(DRFError):
        fake.get_many(["Z:ACLTST", "Z:ACL TST"])
    assert fake.reads == ["Z:NOTFND", "Z:ACLTST.DESCRIPTION"]


def test_settings_are_recorded_and_read_back_where_they_went(fake: FakeBackend) -> None:
    result = fake.write("Z:ACLTST", 46.0)
    assert result.ok and result.drf == "Z:ACLTST"
    assert fake.read("Z:ACLTST.SETTING") == 46.0
    assert fake.get("Z:ACLTST").is_error  # the READING was not set
    results = fake.write_many({"Z_ACLTS1": [1.0, 2.0], "Z:STRTST": "hi", "Z|ACLTST": 1})
    assert all(r.ok for r in results)
    assert fake.read("Z:ACLTS1.SETTING").tolist() == [1.0, 2.0]
    assert fake.writes == [
        ("Z:ACLTST", 46.0),
        ("Z_ACLTS1", [1.0, 2.0]),
        ("Z:STRTST", "hi"),
        ("Z|ACLTST", 1),
    ]
    assert fake.was_written("Z:ACLTST.SETTING@N") and fake.was_written("Z:ACLTST.CONTROL")
    assert not fake.was_written("M:OUTTMP")
    with pytest.raises(DRFError):
        fake.write("Z:ACLTST.DESCRIPTION", "not writable")
    with pytest.raises(TypeError, match="pair"):
        fake.write_many([("Z:ACLTST",)])
    assert len(fake.writes) == 4


def test_iterator_streams_get_what_is_emitted(fake: FakeBackend) -> None:
    stream = fake.subscribe(["M:OUTTMP@p,1000", "Z:ACLTST@p,1000"])
    other = fake.subscribe(["G:AMANDA@p,500"])
    assert fake.emit_reading("m:outtmp@P,1000", 1.0) == 1
    assert fake.emit_reading("Z:ACLTST@p,1000", 2.0) == 1
    assert fake.emit_reading("M:OUTTMP@p,500", 3.0) == 0  # another event: nobody asked
    got = [(r.name, r.value, h is stream) for r, h in stream.readings(timeout=1)]
    assert got == [("M:OUTTMP", 1.0, True), ("Z:ACLTST", 2.0, True)]
    assert list(other.readings()) == []
    stream.stop()
    assert stream.stopped
    assert fake.emit_reading("M:OUTTMP@p,1000", 4.0) == 0
    assert list(stream.readings()) == []


def test_a_stream_holds_a_bounded_queue(fake: FakeBackend) -> None:
    stream = fake.subscribe(["M:OUTTMP@p,1000"], queue_size=2)
    for value in range(5):
        fake.emit_reading("M:OUTTMP@p,1000", float(value))
    assert [r.value for r, _ in stream.readings()] == [0.0, 1.0]
    assert stream.dropped == 3


def test_callbacks_run_inside_emit(fake: FakeBackend) -> None:
    seen: list[tuple[Reading, object]] = []
    stream = fake.subscribe(["M:OUTTMP@p,1000"], callback=lambda r, h: seen.append((r, h)))
    fake.emit_reading("M:OUTTMP@p,1000", 5.0)
    assert [(r.value, h) for r, h in seen] == [(5.0, stream)]
    with pytest.raises(RuntimeError, match="callback"):
        next(stream.readings())
    with pytest.raises(TypeError, match="two arguments"):
        fake.subscribe(["M:OUTTMP@p,1000"], callback=lambda reading: None)


def test_emit_error_kills_streams_after_their_readings(fake: FakeBackend) -> None:
    errors: list[Exception] = []
    stream = fake.subscribe(["M:OUTTMP@p,1000"], on_error=lambda e, h: errors.append(e))
    fake.emit_reading("M:OUTTMP@p,1000", 6.0)
    fake.emit_error()
    assert stream.stopped and isinstance(stream.exc, ConnectionLost)
    assert errors == [stream.exc]
    got = []
    with pytest.raises(ConnectionLost):
        for reading, _ in stream.readings():
            got.append(reading.value)
    assert got == [6.0]
    assert fake.emit_reading("M:OUTTMP@p,1000", 7.0) == 0


def test_a_closed_fake_refuses_work(fake: FakeBackend) -> None:
    stream = fake.subscribe(["M:OUTTMP@p,1000"])
    with fake:
        pass
    assert stream.stopped
    with pytest.raises(RuntimeError, match="closed"):
        fake.get("M:OUTTMP")
    with pytest.raises(RuntimeError, match="closed"):
        fake.write("M:OUTTMP", 1.0)


# --- the seeds' FakeBackend surface ----------------------------------------------------------


def test_set_error_is_a_status_only_answer(fake: FakeBackend) -> None:
    fake.set_reading("M:BADDEV", 1.0)
    fake.set_error("M:BADDEV", -42, "Device not found")  # the seeds' example: replaces the value
    fake.set_error("Z:WARN", 5, "stale data")
    bad, warn = fake.get_many(["M:BADDEV", "Z:WARN"])
    assert (bad.facility_code, bad.error_code, bad.value) == (1, -42, None)
    assert bad.message.endswith("Device not found")
    assert (warn.error_code, warn.is_warning, warn.value, warn.ok) == (5, True, None, False)
    with pytest.raises(DeviceError) as caught:
        fake.read("Z:WARN")
    assert (caught.value.drf, caught.value.error_code) == ("Z:WARN", 5)
    fake.set_reading("M:BADDEV", 2.0)  # and a value replaces the error
    assert fake.read("M:BADDEV") == 2.0
    with pytest.raises(ValueError, match="set_reading"):
        fake.set_error("Z:OK", 0, "not an error")


def test_set_write_result_decides_what_a_setting_answers(fake: FakeBackend) -> None:
    fake.set_reading("Z:ACLTST.SETTING", 45.0)
    fake.set_write_result("Z:ACLTST", success=False, message="locked out")
    refused = fake.write("Z:ACLTST.SETTING@N", 50.0)  # the same target, written another way
    assert (refused.ok, refused.drf, refused.message) == (False, "Z:ACLTST.SETTING@N", "locked out")
    assert (refused.facility_code, refused.error_code) == (1, -1)  # ACNET_RETRY, as the seeds
    assert fake.read("Z:ACLTST.SETTING") == 45.0  # a refused setting changes nothing
    assert fake.was_written("Z:ACLTST") and fake.get_written_value("Z:ACLTST") == 50.0
    fake.set_write_result("Z:ACLTST", error_code="DPM_PRIV")
    privileged = fake.write("Z:ACLTST", 51.0)
    assert privileged.status.name == "DPM_PRIV" and "DPM_PRIV" in privileged.message
    fake.set_write_result("Z:ACLTST")  # success again: applied
    assert fake.write("Z:ACLTST", 52.0).ok and fake.read("Z:ACLTST.SETTING") == 52.0
    assert [r.ok for r in fake.write_many([("Z:ACLTST", 1.0), ("Z:OTHER", 2.0)])] == [True, True]
    with pytest.raises(ValueError, match="non-zero"):
        fake.set_write_result("Z:ACLTST", success=False, error_code=0)


def test_get_written_value_is_the_last_value_written_there(fake: FakeBackend) -> None:
    assert fake.get_written_value("Z:ACLTST") is None
    fake.write_many([("Z:ACLTST", 1.0), ("Z|ACLTST", 1), ("Z:ACLTST.SETTING", 2.0)])
    assert fake.get_written_value("Z:ACLTST.SETTING@N") == 2.0
    assert fake.get_written_value("Z:ACLTST.CONTROL") == 1


def test_alarm_blocks_are_set_on_their_property(fake: FakeBackend) -> None:
    fake.set_analog_alarm("Z:ACLTST", {"minimum": 0.0, "maximum": 100.0})
    fake.set_digital_alarm("Z:ACLTST.DIGITAL", {"nominal": 3, "mask": 3})
    analog, digital = fake.get_many(["Z@ACLTST", "Z$ACLTST"])
    assert (analog.value_type, analog.value["maximum"]) == (ValueType.ANALOG_ALARM, 100.0)
    assert (digital.value_type, digital.value["mask"]) == (ValueType.DIGITAL_ALARM, 3)
    with pytest.raises(ValueError, match="ANALOG"):
        fake.set_analog_alarm("Z:ACLTST.SETTING", {"minimum": 0.0})
    with pytest.raises(TypeError, match="dict"):
        fake.set_digital_alarm("Z:ACLTST", [3, 3])  # type: ignore[arg-type]


def test_reset_forgets_everything_and_stays_open(fake: FakeBackend) -> None:
    fake.set_reading("M:OUTTMP", 1.0)
    fake.set_error("Z:GONE", -6)
    fake.set_write_result("Z:ACLTST", success=False)
    fake.read("M:OUTTMP")
    fake.write("Z:ACLTST", 2.0)
    stream = fake.subscribe(["M:OUTTMP@p,1000"])
    fake.reset()
    assert (fake.reads, fake.writes, stream.stopped) == ([], [], True)
    assert fake.get("M:OUTTMP").status.name == "DPM_NO_SUCH_DEVICE"
    assert fake.get("Z:GONE").status.name == "DPM_NO_SUCH_DEVICE"
    assert fake.write("Z:ACLTST", 3.0).ok  # the write result went too
    assert fake.emit_reading("M:OUTTMP@p,1000", 1.0) == 0


def test_a_silent_device_times_out_naming_the_timeout(fake: FakeBackend) -> None:
    fake.set_reading("M:OUTTMP", 1.0)
    fake.set_silent("Z:SLOW")
    with pytest.raises(ReadError) as caught:
        fake.get_many(["M:OUTTMP", "Z:SLOW"], timeout=0.5)
    error = caught.value
    assert "no reading of Z:SLOW within 0.5 s (timeout=0.5)" in str(error)
    assert "1 of 2 readings arrived" in str(error) and "6.5 min" not in str(error)
    arrived, slow = error.readings
    assert arrived.value == 1.0
    assert slow.status.name == "ACNET_REQTMO"
    assert slow.message == "ACNET_REQTMO [1 -6]: no reading within 0.5 s (timeout=0.5)"
    with pytest.raises(ReadError, match=r"within 5 s \(timeout=5\)"):  # the fake's default
        fake.read("Z:SLOW")
    fake.set_reading("Z:SLOW", 2.0)
    assert fake.read("Z:SLOW") == 2.0


def test_subscriptions_are_the_seeds_subscription_handle(fake: FakeBackend) -> None:
    import acnet_proto
    import acnet_proto.types
    from acnet_proto.api.backend import Subscription, SubscriptionHandle

    assert acnet_proto.SubscriptionHandle is acnet_proto.types.SubscriptionHandle
    assert SubscriptionHandle is Subscription is acnet_proto.SubscriptionHandle
    assert "SubscriptionHandle" in acnet_proto.__all__ and "SubscriptionHandle" in dir(acnet_proto)
    with fake.subscribe(["M:OUTTMP@p,1000"]) as handle:
        assert isinstance(handle, acnet_proto.SubscriptionHandle)
