"""Device writes, readback verification and alarm read-modify-write, end to end.

The simulator holds the session KDC's keytab and its default policy (every
authenticated principal holds ``testing``, which may set ``Z:*``). The
backend records what each ``write_many`` sent, so tests can say which
settings went out. Verification's ``sleep`` is a test function: it records
the delays and lets a test play a second operator changing the device
between the setting and its readback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from acnet_proto.api.alarms import AnalogAlarm, DigitalAlarm
from acnet_proto.api.device import ArrayDevice, BasicControl, Device, TextDevice, Verify
from acnet_proto.errors import AuthenticationError, DeviceError
from acnet_proto.status import Status
from tests.support.servers.kdc import KDC

pytest.importorskip("gssapi")
from acnet_proto.adapters.dpm.threaded import DPMBackend
from acnet_proto.adapters.kerberos import KerberosAuth
from acnet_proto.adapters.sim.dpm import SimServer

pytestmark = pytest.mark.integration

DPM_PRIV = Status.from_name("DPM_PRIV")


class Recording(DPMBackend):
    """A DPMBackend that notes the DRFs of every batch of settings it sends."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[list[str]] = []

    def write_many(self, settings: Any, timeout: float | None = None) -> list:
        self.sent.append([str(drf) for drf, _ in settings])
        return super().write_many(settings, timeout)


@pytest.fixture
def sim(start_sim: Callable[..., SimServer], kdc: KDC) -> SimServer:
    return start_sim(keytab=kdc.keytab)


@pytest.fixture
def backend(sim: SimServer) -> Iterator[Recording]:
    with Recording(sim.host, sim.port, auth=KerberosAuth(), role="testing") as b:
        yield b


@pytest.fixture
def other(sim: SimServer) -> Iterator[DPMBackend]:
    """Another operator's backend, for changing devices behind the first one's back."""
    with DPMBackend(sim.host, sim.port, auth=KerberosAuth(), role="testing") as b:
        yield b


class Naps:
    """A ``sleep`` that records its delays and runs ``then[i]`` at the i-th call, if any."""

    def __init__(self, *then: Callable[[], object]) -> None:
        self.delays: list[float] = []
        self._then = list(then)

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self._then:
            self._then.pop(0)()


# --------------------------------------------------------------------------- write


def test_write_sets_the_setting_and_verifies_it(backend: Recording) -> None:
    naps = Naps()
    result = Device("Z:ACLTST", backend).write(45.0, verify=Verify(delay=0.2), sleep=naps)
    assert result.ok and (result.verified, result.readback, result.attempts) == (True, 45.0, 1)
    assert naps.delays == [0.2]
    assert backend.sent == [["Z:ACLTST.SETTING"]]
    assert backend.read("Z:ACLTST.SETTING") == 45.0


def test_without_verify_nothing_is_read_back(backend: Recording) -> None:
    naps = Naps()
    result = Device("Z:ACLTST", backend).write(46.0, sleep=naps)
    assert result.ok and result.verified is None and result.readback is None
    assert naps.delays == []


def test_a_setting_that_does_not_hold_is_not_verified(
    backend: Recording, other: DPMBackend
) -> None:
    meddle = lambda: other.write("Z:ACLTST", 99.0)  # noqa: E731 - a second operator, at once
    naps = Naps(meddle)
    verify = Verify(attempts=3, delay=0.5)
    result = Device("Z:ACLTST", backend).write(45.0, verify=verify, sleep=naps)
    assert result.ok and not result.confirmed
    assert (result.verified, result.readback, result.attempts) == (False, 99.0, 3)
    assert result.message == "read back 99.0, not 45.0, after 3 attempts"
    assert naps.delays == [0.5, 0.5, 0.5]


def test_verify_retries_until_the_setting_shows(backend: Recording, other: DPMBackend) -> None:
    naps = Naps(lambda: other.write("Z:ACLTST", 12.0), lambda: other.write("Z:ACLTST", 45.03125))
    result = Device("Z:ACLTST", backend).write(
        45.0, verify=Verify(tolerance=0.05, attempts=3, delay=0), sleep=naps
    )
    assert (result.verified, result.readback, result.attempts) == (True, 45.03125, 2)


def test_a_refused_setting_is_returned_without_readback(backend: Recording) -> None:
    naps = Naps()
    result = Device("G:AMANDA", backend).write(1.0, verify=True, sleep=naps)
    assert not result.ok and (result.facility_code, result.error_code) == (17, DPM_PRIV.error)
    assert result.verified is None and naps.delays == []


def test_array_text_and_raw_writes_verify(backend: Recording) -> None:
    quick = Verify(delay=0)
    array = ArrayDevice("Z:ACLTS1[0:2]", backend).write([1.0, 2.0, 3.0], verify=quick)
    assert array.verified and array.readback.tolist() == [1.0, 2.0, 3.0]
    text = TextDevice("Z:STRTST", backend).write("hello", verify=quick)
    assert text.verified and text.readback == "hello"
    raw = bytes.fromhex("f0410000")  # 7.5 as a DEC F_floating number: Z:ACLTST's raw type
    assert Device("Z:ACLTST", backend).write(raw, field="RAW", verify=quick).verified
    assert Device("Z:ACLTST.SETTING.RAW", backend).write(raw, verify=quick).readback == raw
    assert backend.read("Z:ACLTST.SETTING") == 7.5
    assert backend.sent[-1] == ["Z:ACLTST.SETTING.RAW"]


def test_write_checks_its_arguments_before_sending(backend: Recording) -> None:
    dev = Device("Z:ACLTST", backend)
    with pytest.raises(TypeError, match=r"use Device\.control\(\)"):
        dev.write(BasicControl.ON)
    with pytest.raises(TypeError, match="verify must be a Verify"):
        dev.write(1.0, verify=0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'BOGUS' is not a field of SETTING"):
        dev.write(1.0, field="BOGUS")
    assert backend.sent == []


def test_writes_need_credentials(sim: SimServer) -> None:
    with (
        DPMBackend(sim.host, sim.port) as anonymous,
        pytest.raises(AuthenticationError, match="not configured for authenticated"),
    ):
        Device("Z:ACLTST", anonymous).on()


# ------------------------------------------------------------------------- control


def test_on_off_reset_with_status_readback(backend: Recording) -> None:
    dev, quick = Device("Z:ACLTST", backend), Verify(delay=0)
    off = dev.off(verify=quick)
    assert (off.verified, off.readback) == (True, False)
    assert dev.status(field="ON") is False
    on = dev.on(verify=quick)
    assert (on.verified, on.readback) == (True, True)
    reset = dev.reset(verify=quick)
    assert (reset.verified, reset.readback) == (True, True)  # READY
    negative = dev.control(BasicControl.NEGATIVE, verify=quick)
    assert (negative.verified, negative.readback) == (True, False)  # POSITIVE
    assert dev.status()["positive"] is False
    assert backend.sent == [["Z:ACLTST.CONTROL"]] * 4


def test_control_that_does_not_take_is_not_verified(backend: Recording, other: DPMBackend) -> None:
    naps = Naps(lambda: other.write("Z|ACLTST", BasicControl.ON))
    result = Device("Z:ACLTST", backend).off(verify=Verify(attempts=1, delay=0), sleep=naps)
    assert (result.verified, result.readback) == (False, True)


def test_control_takes_only_basic_control(backend: Recording) -> None:
    with pytest.raises(TypeError, match="command must be a BasicControl"):
        Device("Z:ACLTST", backend).control(1)  # type: ignore[arg-type]
    assert backend.sent == []


# --------------------------------------------------------------------------- alarms


def test_set_alarms_from_dicts(backend: Recording) -> None:
    dev = Device("Z:ACLTST", backend)
    assert dev.set_analog_alarm({"minimum": 40.0, "maximum": 50.0}).ok
    assert dev.set_digital_alarm({"nominal": 0x1, "mask": 0xFF}).ok
    assert backend.sent == [
        ["Z:ACLTST.ANALOG.MIN"],
        ["Z:ACLTST.ANALOG.MAX"],
        ["Z:ACLTST.DIGITAL.NOM"],
        ["Z:ACLTST.DIGITAL.MASK"],
    ]
    assert (dev.analog_alarm(field="MIN"), dev.analog_alarm(field="MAX")) == (40.0, 50.0)
    assert dev.digital_alarm()["mask"] == 0xFF
    with pytest.raises(ValueError, match="unknown digital alarm key"):
        dev.set_digital_alarm({"minimum": 1.0})
    with pytest.raises(TypeError, match="must be a dict of fields"):
        dev.set_analog_alarm([("minimum", 1.0)])  # type: ignore[arg-type]


def test_modify_writes_only_what_changed(backend: Recording) -> None:
    with AnalogAlarm.modify("Z:ACLTST", backend=backend) as alarm:
        assert (alarm.minimum, alarm.maximum, alarm.alarm_enable) == (0.0, 100.0, True)
        alarm.maximum = 50.0
        alarm.minimum = 40  # an int is a number too
        alarm.tries_needed = 2  # what it already was: not a change
    assert backend.sent == [["Z:ACLTST.ANALOG.MIN"], ["Z:ACLTST.ANALOG.MAX"]]
    read = AnalogAlarm.read("Z:ACLTST", backend)
    assert (read.minimum, read.maximum, read.tries_needed) == (40.0, 50.0, 2)


def test_bypass_disables_the_alarm_first(backend: Recording) -> None:
    with AnalogAlarm.modify(Device("Z@ACLTST.MAX", backend)) as alarm:
        alarm.maximum = 80.0
        alarm.bypass = True
        assert alarm.alarm_enable is False
    # disabled before the limits move, so it cannot trip on half-changed limits
    assert backend.sent == [["Z:ACLTST.ANALOG.ALARM_ENABLE"], ["Z:ACLTST.ANALOG.MAX"]]
    after = Device("Z:ACLTST", backend).analog_alarm()
    assert (after["alarm_enable"], after["maximum"], after["abort_inhibit"]) == (False, 80.0, False)
    with AnalogAlarm.modify("Z:ACLTST", backend) as alarm:
        alarm.bypass = False
        alarm.abort_inhibit = True
    assert backend.sent[-2:] == [
        ["Z:ACLTST.ANALOG.ABORT_INHIBIT"],
        ["Z:ACLTST.ANALOG.ALARM_ENABLE"],  # armed last, with its new limits in place
    ]
    assert AnalogAlarm.read("Z:ACLTST", backend).alarm_enable is True


def test_nothing_is_written_when_the_body_raises_or_changes_nothing(backend: Recording) -> None:
    with (
        pytest.raises(RuntimeError, match="changed my mind"),
        AnalogAlarm.modify("Z:ACLTST", backend) as alarm,
    ):
        alarm.maximum = 1.0
        raise RuntimeError("changed my mind")
    with AnalogAlarm.modify("Z:ACLTST", backend) as alarm:
        alarm.maximum = alarm.maximum
    assert backend.sent == []
    assert AnalogAlarm.read("Z:ACLTST", backend).maximum == 100.0


def test_fields_are_checked_as_they_are_set(backend: Recording) -> None:
    alarm = AnalogAlarm.read("Z:ACLTST", backend)
    with pytest.raises(AttributeError, match="alarm_status is read-only"):
        alarm.alarm_status = True
    with pytest.raises(AttributeError):
        alarm.maxmum = 5.0  # a typo must not pass silently
    with pytest.raises(TypeError, match="maximum must be a number"):
        alarm.maximum = "50"
    with pytest.raises(ValueError, match="maximum must be finite"):
        alarm.maximum = float("nan")
    with pytest.raises(TypeError, match="alarm_enable must be True or False"):
        alarm.alarm_enable = 1
    assert alarm.changes() == {}
    assert repr(alarm).startswith("AnalogAlarm('Z:ACLTST', minimum=0.0, maximum=100.0")


def test_digital_modify(backend: Recording) -> None:
    with DigitalAlarm.modify("Z$ACLTST", backend) as alarm:
        assert (alarm.nominal, alarm.mask, alarm.bypass) == (0x3, 0x3, True)
        alarm.mask = 0x1
        alarm.bypass = False
    assert backend.sent == [["Z:ACLTST.DIGITAL.MASK"], ["Z:ACLTST.DIGITAL.ALARM_ENABLE"]]
    after = DigitalAlarm.read("Z:ACLTST", backend)
    assert (after.nominal, after.mask, after.alarm_enable) == (0x3, 0x1, True)


def test_a_refused_modify_raises_at_the_exit(backend: Recording) -> None:
    with (
        pytest.raises(DeviceError, match="DPM_PRIV"),  # M: is not the testing role's
        AnalogAlarm.modify("M:OUTTMP", backend) as alarm,
    ):
        alarm.maximum = 120.0
    assert AnalogAlarm.read("M:OUTTMP", backend).maximum == 110.0


def test_reading_a_device_without_the_alarm_is_a_device_error(backend: Recording) -> None:
    with pytest.raises(DeviceError):
        DigitalAlarm.read("M:OUTTMP", backend)
