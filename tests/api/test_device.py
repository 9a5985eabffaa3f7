"""Device objects: the DRFs they build, what they return, and where they send them.

DRF building is checked against the in-memory FakeBackend (its ``reads``
list records every DRF asked); the values against a simulated DPM serving a
model defined here.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

import acnet_proto
from acnet_proto.adapters.dpm.threaded import DPMBackend
from acnet_proto.adapters.sim.dpm import SimServer
from acnet_proto.api.device import (
    ArrayDevice,
    BasicControl,
    Device,
    ScalarDevice,
    TextDevice,
    Verify,
    bound_backend,
    drf_of,
)
from acnet_proto.drf import DRFError, parse
from acnet_proto.errors import DeviceError
from acnet_proto.sim import DeviceModel
from acnet_proto.streams.reconnect import Gap
from acnet_proto.testing import FakeBackend
from acnet_proto.types import Reading, ValueType, WriteResult

MODEL = """
[[device]]
name = "Z:DEVTST"
di = 7001
description = "a scalar under test"
units = "A"
value = 12.5
settable = true
status = { on = true, ready = false, remote = true, positive = false, ramp = true }
analog = { min = -1.0, max = 99.0, enable = true, tries_needed = 3 }
digital = { nominal = 0x5, mask = 0xf, enable = false, tries_needed = 1 }

[[device]]
name = "Z:DEVARR"
di = 7002
description = "an array under test"
kind = "array"
length = 8
value = 1.0
step = 2.0
settable = true

[[device]]
name = "Z:DEVTXT"
di = 7003
description = "text under test"
kind = "text"
value = "hello, device"
"""


@pytest.fixture(scope="module")
def sim(start_sim: Callable[..., SimServer]) -> SimServer:
    return start_sim(DeviceModel.from_toml(MODEL))


@pytest.fixture
def dpm(sim: SimServer) -> Iterator[DPMBackend]:
    with DPMBackend(sim.host, sim.port) as backend:
        yield backend


@pytest.fixture
def fake() -> FakeBackend:
    fake = FakeBackend()
    fake.set_reading("M:OUTTMP", 41.7, units="DegF")
    fake.set_reading("M:OUTTMP.SETTING", 40.0)
    fake.set_reading("Z:ACLTST.STATUS.ON", 1.0)
    fake.set_reading("Z:ACLTST.STATUS", {"on": True, "ready": False})
    fake.set_reading("Z:ACLTST.ANALOG.MAX", 100.0)
    fake.set_reading("Z:ACLTST.DESCRIPTION", "ACL test device")
    fake.set_reading("Z:ACLTS1", [0.0, 1.5, 3.0, 4.5, 6.0])
    fake.set_reading("Z:STRTST", "the quick brown fox")
    return fake


# ------------------------------------------------------------ what a device is


def test_the_drf_is_checked_and_made_canonical_at_construction() -> None:
    assert Device("m_outtmp").drf == "M:OUTTMP.SETTING"
    assert Device(parse("Z:ACLTS1[0:3]@p,1000")).drf == "Z:ACLTS1[0:3]@p,1000"
    assert Device("M:OUTTMP@p,1000").name == "M:OUTTMP"
    with pytest.raises(DRFError):
        Device("M:OUT TMP")
    with pytest.raises(TypeError, match="DRF text"):
        Device(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Backend"):
        Device("M:OUTTMP", backend="localhost")  # type: ignore[arg-type]


def test_devices_are_immutable_and_equal_by_drf() -> None:
    device = Device("M:OUTTMP")
    with pytest.raises(AttributeError, match="immutable"):
        device.drf_text = "Z:ACLTST"  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="immutable"):
        del device._request
    assert Device("m:outtmp") == Device("M:OUTTMP") == ScalarDevice("M:OUTTMP")
    assert len({Device("m:outtmp"), Device("M:OUTTMP"), Device("M:OUTTMP@I")}) == 2
    assert repr(ArrayDevice("Z:ACLTS1[0:3]")) == "ArrayDevice('Z:ACLTS1[0:3]')"


def test_with_methods_make_new_devices_of_the_same_kind_and_backend(fake: FakeBackend) -> None:
    device = ArrayDevice("Z:ACLTS1", fake)
    assert device.with_range(0, 3).drf == "Z:ACLTS1[0:3]"
    assert device.with_range(at=2).drf == "Z:ACLTS1[2]"
    assert device.with_range(4).drf == "Z:ACLTS1[4:]"
    assert device.with_range(0, 3).with_range().drf == "Z:ACLTS1[:]"
    periodic = device.with_event("p,1000")
    assert (periodic.drf, periodic.has_event, periodic.is_periodic) == (
        "Z:ACLTS1@p,1000",
        True,
        True,
    )
    assert periodic.with_event("@e,8f").drf == "Z:ACLTS1@e,8f"
    assert not Device("Z:ACLTS1@U").has_event
    for derived in (device.with_range(1, 2), periodic, device.with_backend(FakeBackend())):
        assert type(derived) is ArrayDevice
    assert periodic.backend is fake
    assert device.drf == "Z:ACLTS1"  # unchanged
    with pytest.raises(ValueError, match="at="):
        device.with_range(0, 3, at=1)
    with pytest.raises(ValueError):
        device.with_range(5, 2)
    with pytest.raises(DRFError):
        device.with_event("p,soon")
    with pytest.raises(TypeError):
        device.with_backend("localhost")  # type: ignore[arg-type]


# ------------------------------------------------------- the DRFs reads send


def test_one_shot_reads_ask_for_their_property_at_once(fake: FakeBackend) -> None:
    outtmp = Device("M:OUTTMP@p,1000", fake)
    acltst = Device("Z:ACLTST", fake)
    assert outtmp.read() == 41.7
    assert outtmp.setting() == 40.0
    assert acltst.status(field="on") is True
    assert acltst.status() == {"on": True, "ready": False}
    assert acltst.analog_alarm(field="maximum") == 100.0
    assert acltst.description() == "ACL test device"
    assert fake.reads == [
        "M:OUTTMP@I",
        "M:OUTTMP.SETTING@I",
        "Z:ACLTST.STATUS.ON@I",
        "Z:ACLTST.STATUS@I",
        "Z:ACLTST.ANALOG.MAX@I",
        "Z:ACLTST.DESCRIPTION@I",
    ]


def test_get_reads_the_devices_own_drf_or_the_property_asked(fake: FakeBackend) -> None:
    device = Device("M:OUTTMP@p,1000", fake)
    reading = device.get()
    assert (reading.drf, reading.value, reading.units) == ("M:OUTTMP@p,1000", 41.7, "DegF")
    assert device.get(prop="set").value == 40.0
    assert fake.reads == ["M:OUTTMP@p,1000", "M:OUTTMP.SETTING@I"]
    assert device.get(prop="DESCRIPTION").is_error  # nothing set for it
    with pytest.raises(ValueError, match="prop="):
        device.get(field="RAW")


def test_a_range_and_a_field_given_at_construction_carry_over(fake: FakeBackend) -> None:
    fake.set_reading("Z:ACLTS1.SETTING.RAW", b"\x00" * 20)
    assert ArrayDevice("Z:ACLTS1[1:2]", fake).read().tolist() == [1.5, 3.0]
    assert Device("Z:ACLTS1.READING.RAW", fake).setting() == b"\x00" * 20
    assert fake.reads == ["Z:ACLTS1[1:2]@I", "Z:ACLTS1.SETTING.RAW@I"]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda d: d.status(field="MAXIMUM"), "MAXIMUM"),
        (lambda d: d.status(field="ON@I"), "field name"),
        (lambda d: d.get(prop="NOPE"), "NOPE"),
        (lambda d: d.get(prop="SETTING[0:3]"), "property name"),
        (lambda d: d.analog_alarm(field=3), "field name"),
    ],
)
def test_bad_props_and_fields_are_value_or_type_errors(fake: FakeBackend, call, match) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        call(Device("Z:ACLTST", fake))
    assert fake.reads == []


def test_typed_devices_check_what_they_read(fake: FakeBackend) -> None:
    assert ScalarDevice("M:OUTTMP", fake).read() == 41.7
    assert isinstance(ArrayDevice("Z:ACLTS1", fake).read(), np.ndarray)
    assert TextDevice("Z:STRTST", fake).read() == "the quick brown fox"
    with pytest.raises(TypeError, match="not a number"):
        ScalarDevice("Z:STRTST", fake).read()
    with pytest.raises(TypeError, match="not an array"):
        ArrayDevice("M:OUTTMP", fake).read()
    with pytest.raises(TypeError, match="not text"):
        TextDevice("Z:ACLTS1", fake).read()
    fake.set_reading("Z:STRTST.DESCRIPTION", 3.0)
    with pytest.raises(TypeError, match="DESCRIPTION"):
        Device("Z:STRTST", fake).description()


def test_an_error_answer_raises_device_error(fake: FakeBackend) -> None:
    fake.set_error("Z:BROKEN", "DPM_NO_SUCH_DEVICE")
    with pytest.raises(DeviceError) as caught:
        Device("Z:BROKEN", fake).read()
    assert (caught.value.facility_code, caught.value.drf) == (17, "Z:BROKEN@I")


def test_a_warning_with_no_data_raises_from_every_read(fake: FakeBackend) -> None:
    # DPM_PEND: how the lab's DPM answers a device it does not have
    from acnet_proto.api.alarms import AnalogAlarm

    for drf in ("Z:NOTFND", "Z:NOTFND.ANALOG", "Z:NOTFND.STATUS.BIT_VALUE"):
        fake.set_error(drf, "DPM_PEND")
    device = Device("Z:NOTFND", fake)
    reads = [device.read, lambda: AnalogAlarm.read(device), device.digital_status]
    for read in reads:
        with pytest.raises(DeviceError, match="check the device name") as caught:
            read()
        assert (caught.value.facility_code, caught.value.error_code) == (17, 1)


# ------------------------------------------------------------------------- streams


def test_subscribe_needs_an_event_that_sends(fake: FakeBackend) -> None:
    plain = Device("M:OUTTMP", fake)
    with pytest.raises(ValueError, match="needs an event"):
        plain.subscribe()
    with pytest.raises(ValueError, match="@N"):
        plain.subscribe(event="N")
    with pytest.raises(ValueError, match="@N"):
        plain.with_event("N").await_next()
    with pytest.raises(ValueError, match="prop="):
        plain.subscribe(field="RAW", event="p,1000")
    with pytest.raises(TypeError, match="callback must be callable"):
        plain.subscribe("p,1000")  # type: ignore[arg-type]
    stream = plain.subscribe(prop="SETTING", event="p,500")
    assert stream.drfs == ["M:OUTTMP.SETTING@p,500"]
    assert plain.with_event("p,1000").subscribe().drfs == ["M:OUTTMP@p,1000"]


def test_await_next_times_out_when_nothing_comes(fake: FakeBackend) -> None:
    with pytest.raises(TimeoutError, match="M:OUTTMP@p,1000"):
        Device("M:OUTTMP@p,1000", fake).await_next(timeout=0.1)


def test_await_next_passes_over_a_gap_to_the_first_reading() -> None:
    """A stream that reconnects before its first reading yields a Gap first: no reading."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    gap = Gap(("M:OUTTMP@p,1000",), at, at, "the server closed the connection", 1)
    reading = Reading("M:OUTTMP@p,1000", ValueType.SCALAR, value=41.7, timestamp=at)

    class Reconnecting(FakeBackend):
        """A backend whose stream reconnects before its first reading."""

        @contextlib.contextmanager  # type: ignore[override]  # a stand-in, not a Subscription
        def subscribe(self, drfs: list[str]) -> Iterator[Any]:
            class Stream:
                def readings(self, timeout: float | None = None) -> Iterator[tuple[Any, Any]]:
                    yield gap, self
                    yield reading, self

            yield Stream()

    assert Device("M:OUTTMP@p,1000", Reconnecting()).await_next(timeout=1.0) is reading


# ------------------------------------------------------------------ confirm()


def test_confirm_reads_back_a_setting_sent_another_way(fake: FakeBackend) -> None:
    """write()'s second half: the SETTING (or ``prop``) read back, or a command's STATUS bit."""
    naps: list[float] = []
    quick = Verify(attempts=2, delay=0.25)
    temp = Device("M:OUTTMP", fake)
    (sent,) = fake.write_many([("M:OUTTMP", 42.0)])
    verified = temp.confirm(sent, 42.0, quick, sleep=naps.append)
    assert (verified.verified, verified.readback, verified.attempts) == (True, 42.0, 1)
    assert fake.reads == ["M:OUTTMP.SETTING@I"] and naps == [0.25]
    wrong = temp.confirm(sent, 43.0, quick, sleep=naps.append)
    assert (wrong.verified, wrong.attempts) == (False, 2) and "not 43.0" in str(wrong.message)
    assert temp.confirm(sent, 43.0, None) is sent  # not asked to verify: as it is
    alarm = Device("Z:ACLTST.ANALOG.MAX", fake)
    assert alarm.confirm(WriteResult(alarm.drf), 100.0, quick, prop="ANALOG", sleep=naps.append)
    assert fake.reads[-1] == "Z:ACLTST.ANALOG.MAX@I"
    on = Device("Z:ACLTST", fake).confirm(
        WriteResult("Z:ACLTST.CONTROL"), BasicControl.ON, quick, sleep=naps.append
    )
    assert on.verified is True and fake.reads[-1] == "Z:ACLTST.STATUS.ON@I"
    with pytest.raises(ValueError, match="STATUS bit"):
        temp.confirm(sent, BasicControl.OFF, quick, prop="SETTING")


# ------------------------------------------------ against a simulated DPM


def test_reads_from_the_simulated_dpm(dpm: DPMBackend) -> None:
    scalar = ScalarDevice("Z:DEVTST", dpm)
    assert scalar.setting() == 12.5
    assert isinstance(scalar.read(), float)
    assert scalar.status() == {
        "on": True,
        "ready": False,
        "remote": True,
        "positive": False,
        "ramp": True,
    }
    assert (scalar.status(field="ON"), scalar.status(field="READY")) == (True, False)
    alarm = scalar.analog_alarm()
    assert (alarm["minimum"], alarm["maximum"], alarm["tries_needed"]) == (-1.0, 99.0, 3)
    assert scalar.analog_alarm(field="MAX") == 99.0
    assert scalar.digital_alarm()["mask"] == 0xF
    assert scalar.description() == "a scalar under test"
    reading = scalar.get(prop="SETTING")
    assert (reading.value_type, reading.units, reading.name) == (ValueType.SCALAR, "A", "Z:DEVTST")
    array = ArrayDevice("Z:DEVARR", dpm).with_range(1, 3)
    assert array.setting().tolist() == [3.0, 5.0, 7.0]
    assert TextDevice("Z:DEVTXT", dpm).read() == "hello, device"


def test_subscribe_and_await_next_on_the_simulated_dpm(dpm: DPMBackend) -> None:
    device = Device("Z:DEVTST", dpm)
    reading = device.await_next(event="p,20", prop="SETTING")
    assert (reading.drf, reading.value) == ("Z:DEVTST.SETTING@p,20", 12.5)
    two = threading.Semaphore(0)
    seen = []

    def collect(reading: Reading, handle: object) -> None:
        seen.append(reading)
        two.release()

    with device.with_event("p,20").subscribe(collect) as stream:
        assert stream.drfs == ["Z:DEVTST@p,20"]
        assert two.acquire(timeout=5) and two.acquire(timeout=5)
    assert all(r.name == "Z:DEVTST" and r.ok for r in seen)


def test_an_unbound_device_uses_the_global_backend(
    sim: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACNET_DPM_HOST", sim.host)
    monkeypatch.setenv("ACNET_DPM_PORT", str(sim.port))
    acnet_proto.shutdown()  # the global backend is made from the variables above
    try:
        assert Device("Z:DEVTST").setting() == 12.5
    finally:
        acnet_proto.shutdown()


# --------------------------------------------------------- helpers and BasicControl


def test_drf_of_and_bound_backend() -> None:
    fake = FakeBackend()
    assert [drf_of(s) for s in ["m:outtmp", parse("m:outtmp"), Device("m:outtmp")]] == [
        "m:outtmp",  # text is passed on as given
        "M:OUTTMP",
        "M:OUTTMP",
    ]
    with pytest.raises(TypeError, match="DRF text"):
        drf_of(3)  # type: ignore[arg-type]
    assert bound_backend(["M:OUTTMP", Device("Z:ACLTST")]) is None
    assert bound_backend([Device("M:OUTTMP", fake), Device("Z:ACLTST", fake)]) is fake
    with pytest.raises(ValueError, match="same backend"):
        bound_backend([Device("M:OUTTMP", fake), "Z:ACLTST"])


def test_basic_control_numbers_are_pacsys_ones() -> None:
    pacsys_types = pytest.importorskip("pacsys.types")
    assert {c.name: c.value for c in BasicControl} == {
        c.name: c.value for c in pacsys_types.BasicControl
    }
