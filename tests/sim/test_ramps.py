"""Ramp tables: slots of (int16 value, int16 time) points served as the raw SETTING."""

from __future__ import annotations

import struct

import pytest

from acnet_proto.sim import DeviceModel
from acnet_proto.sim.ramps import POINT_BYTES
from acnet_proto.status import Status

NOW = 1763769600.015


def test_a_slot_is_written_and_read_through_setting_raw_as_pacsys_addresses_it() -> None:
    model = DeviceModel.default()
    device = model.device("Z:ACLTS8")
    ramp = device.ramp
    assert ramp is not None and (ramp.slots, ramp.points) == (15, 64)
    slot_bytes = ramp.points * POINT_BYTES
    points = b"".join(struct.pack("<hh", 100 * i, 10) for i in range(ramp.points))
    drf = f"Z:ACLTS8.SETTING{{{2 * slot_bytes}:{slot_bytes}}}.RAW"
    assert model.apply_setting(model.resolve(drf + "@N"), points) == 0
    assert model.resolve(drf).reply(1, NOW).data == points
    # value 300 raw = 300/3276.8 V = 10 A a volt; 10 ticks at 10 kHz = 1000 us
    assert ramp.point(2, 3, device.scaling) == (10.0 * 300 / 3276.8, 1000.0)
    assert model.resolve("Z:ACLTS8.SETTING{0:4}.RAW").reply(1, NOW).data == bytes(4)


def test_set_point_scales_and_refuses_what_an_int16_cannot_hold() -> None:
    device = DeviceModel.default().device("Z:ACLTS8")
    ramp = device.ramp
    assert ramp is not None
    ramp.set_point(0, 1, 5.0, 250.0, device.scaling)
    # 5 A = 0.5 V = 1638.4 counts, held as 1638; 250 us = 2.5 ticks, rounded half to even
    assert ramp.data[4:8] == struct.pack("<hh", 1638, 2)
    assert ramp.point(0, 1, device.scaling) == (10.0 * 1638 / 3276.8, 200.0)
    with pytest.raises(ValueError):
        ramp.set_point(0, 1, 500.0, 0.0, device.scaling)


def test_the_scaled_setting_of_a_ramp_device_is_its_value_between_ramps() -> None:
    model = DeviceModel.default()
    assert model.apply_setting(model.resolve("Z_ACLTS8"), 2.0) == 0
    assert model.resolve("Z_ACLTS8").reply(1, NOW).data == pytest.approx(2.0, abs=10 / 3276.8)


def test_a_range_past_the_table_is_out_of_bounds() -> None:
    reply, entry = DeviceModel.default().add_to_list(1, 1, "Z:ACLTS8.SETTING{3840:4}.RAW")
    assert entry is None and reply.status == Status.from_name("DPM_OUT_OF_BOUNDS").status
