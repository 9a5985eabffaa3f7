"""A DAQData ``BasicControl`` wire value runs the command that means it, wherever a device's
own control table puts that command (not whatever sits at the standard ordinal)."""

from __future__ import annotations

from acnet_proto.pc import daqdata
from acnet_proto.sim import DeviceModel
from acnet_proto.sim.codes import DIO_SCALEFAIL
from acnet_proto.sim.control import command_at
from acnet_proto.sim.devices import BasicStatus

# ordinals 0..2 hold RAMP, OFF, ON: the standard table has ON at 1 and OFF at 2
CUSTOM = """
[[device]]
name = "Z:CUSTOM"
di = 1
description = "a custom control table"
status = { on = false }
control = [
  { value = 5, name = "RAMP" },
  { value = 2, name = "OFF" },
  { value = 1, name = "ON" },
]
"""


def status_of(model: DeviceModel) -> BasicStatus:
    device = model.device("Z:CUSTOM")
    assert device is not None and device.status is not None
    status = device.status
    return status


def control(model: DeviceModel, value: object) -> int:
    return model.apply_setting(model.resolve("Z:CUSTOM.CONTROL@N"), value)


def test_a_wire_on_and_off_run_the_commands_that_mean_them() -> None:
    model = DeviceModel.from_toml(CUSTOM)
    status = status_of(model)
    assert control(model, daqdata.BasicControl.ON) == 0
    assert status.on is True
    assert control(model, daqdata.BasicControl.OFF) == 0
    assert status.on is False


def test_a_wire_value_picks_the_entry_whose_value_means_it() -> None:
    commands = status_of(DeviceModel.from_toml(CUSTOM)).commands
    picked = {
        wire: command_at(commands, wire)
        for wire in (daqdata.BasicControl.ON, daqdata.BasicControl.OFF, daqdata.BasicControl.RAMP)
    }
    assert {wire.name: c.name for wire, c in picked.items() if c is not None} == {
        "ON": "ON",
        "OFF": "OFF",
        "RAMP": "RAMP",
    }


def test_a_wire_value_no_entry_means_is_scalefail_and_changes_nothing() -> None:
    model = DeviceModel.from_toml(CUSTOM)
    status = status_of(model)
    before = status.word
    assert control(model, daqdata.BasicControl.NEGATIVE) == DIO_SCALEFAIL
    assert status.word == before


def test_an_ordinal_still_selects_by_position() -> None:
    model = DeviceModel.from_toml(CUSTOM)
    assert control(model, 2) == 0  # ordinal 2 is ON in this table
    assert status_of(model).on is True
