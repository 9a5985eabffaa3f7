"""Ramp tables: slots of (int16 value, int16 time) points, served as the SETTING of a ramp card.

Element ``i = 64 * s + p`` of the SETTING is point *p* of slot *s*: its 4 raw bytes, or the
scaled value word (the lab's ``B_HS23T[65]`` is point 1 of slot 1).
"""

from __future__ import annotations

import math
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acnet_proto.sim import DeviceModel
from acnet_proto.sim.devices import SimDevice
from acnet_proto.sim.ramps import POINT_BYTES
from acnet_proto.sim.scaling import ScalingError
from acnet_proto.status import Status

NOW = 1763769600.015

# The lab's ramp cards: (name, common c1 / c2 of raw / 3276.8, the card's clock in Hz),
# as pacsys.ramp scales them.
LAB_CARDS = [
    ("B:HS23T", 4.0, 100_000),
    ("B:QS23T", 6.5, 100_000),
    ("R:QT606T", 2.0, 720),
    ("R:S202T", 12.0 / 10.0, 720),
    ("R:SC319T", 1.2000000477, 100_000),
    ("R:H626T", 12.0 / 10.0, 720),
]

INT16 = st.integers(-(2**15), 2**15 - 1)


# one model for the property tests: each example writes what it then reads
SHARED = DeviceModel.default()


def data(model: DeviceModel, drf: str) -> object:
    reply: Any = model.resolve(drf).reply(1, NOW)  # a value reply: it has data
    return reply.data


def status_of(model: DeviceModel, drf: str, value: object) -> str | None:
    """The name of the status a setting gets ("ok" when it is done)."""
    status = model.apply_setting(model.resolve(drf + "@N"), value)
    return "ok" if status == 0 else Status.from_int(status).name


def device_of(model: DeviceModel, name: str) -> SimDevice:
    device = model.device(name)
    assert device is not None and device.ramp is not None, f"{name} is no ramp card"
    return device


def test_a_slot_is_written_and_read_through_setting_raw_as_pacsys_addresses_it() -> None:
    model = DeviceModel.default()
    device = device_of(model, "Z:ACLTS8")
    ramp = device.ramp
    assert ramp is not None and (ramp.slots, ramp.points) == (15, 64)
    slot_bytes = ramp.points * POINT_BYTES
    points = b"".join(struct.pack("<hh", 100 * i, 10) for i in range(ramp.points))
    drf = f"Z:ACLTS8.SETTING{{{2 * slot_bytes}:{slot_bytes}}}.RAW"
    assert status_of(model, drf, points) == "ok"
    assert data(model, drf) == points
    # value 300 raw = 300/3276.8 V = 10 A a volt
    element = 2 * ramp.points + 3
    assert ramp.values(element, element + 1, device.scaling) == [10.0 * 300 / 3276.8]
    assert ramp.raw(element, element + 1) == struct.pack("<hh", 300, 10)
    assert data(model, "Z:ACLTS8.SETTING{0:4}.RAW") == bytes(4)


def test_store_values_keeps_the_time_words_and_refuses_what_an_int16_cannot_hold() -> None:
    device = device_of(DeviceModel.default(), "Z:ACLTS8")
    ramp = device.ramp
    assert ramp is not None
    ramp.store_raw(1, struct.pack("<hh", 0, 2))
    ramp.store_values(1, [5.0], device.scaling)
    # 5 A = 0.5 V = 1638.4 counts, held as 1638; the time word stays
    assert ramp.raw(1, 2) == struct.pack("<hh", 1638, 2)
    assert ramp.values(1, 2, device.scaling) == [10.0 * 1638 / 3276.8]
    for bad in (500.0, math.nan, math.inf):
        with pytest.raises(ScalingError):
            ramp.store_values(1, [bad], device.scaling)
    assert ramp.raw(1, 2) == struct.pack("<hh", 1638, 2)


@pytest.mark.parametrize(("name", "gain", "rate"), LAB_CARDS)
def test_a_lab_card_scales_point_p_of_slot_s_as_element_64s_plus_p(
    name: str, gain: float, rate: int
) -> None:
    model = DeviceModel.default()
    ramp = device_of(model, name).ramp
    assert ramp is not None and (ramp.slots, ramp.points, ramp.update_rate) == (15, 64, rate)
    slot1 = b"".join(struct.pack("<hh", 1000 - 37 * p, p % 5) for p in range(64))
    assert status_of(model, f"{name}.SETTING{{256:256}}.RAW", slot1) == "ok"
    qualified = name.replace(":", "_")
    for p in (0, 1, 63):
        assert data(model, f"{qualified}[{64 + p}]") == (1000 - 37 * p) / 3276.8 * gain
    assert data(model, f"{qualified}[1]") == 0.0  # slot 0 is untouched


def test_the_whole_scaled_setting_is_every_point_and_the_reading_is_the_value() -> None:
    model = DeviceModel.default()
    scaled = data(model, "B_HS23T")
    assert isinstance(scaled, tuple | list) and len(scaled) == 15 * 64
    assert data(model, "B:HS23T") == 0.0  # READING: the device's value, a scalar
    assert len(data(model, "B:HS23T.SETTING.RAW")) == 15 * 64 * POINT_BYTES  # type: ignore[arg-type]


def test_a_scaled_write_changes_the_value_word_and_keeps_the_time() -> None:
    model = DeviceModel.default()
    assert status_of(model, "B:HS23T.SETTING[65].RAW", struct.pack("<hh", 7, 123)) == "ok"
    assert status_of(model, "B_HS23T[65]", 2.5) == "ok"
    counts = round(2.5 / 4.0 * 3276.8)  # 2048.0: exact
    assert data(model, "B:HS23T.SETTING[65].RAW") == struct.pack("<hh", counts, 123)
    assert data(model, "B_HS23T[65]") == 2.5
    assert data(model, "B:HS23T.SETTING[65].PRIMARY") == counts / 3276.8
    assert status_of(model, "B:HS23T.SETTING[64:65].PRIMARY", [0.25, 0.5]) == "ok"
    # 0.25 V is 819.2 counts, held as 819
    assert data(model, "B_HS23T[64:65]") == (4.0 * 819 / 3276.8, 4.0 * 1638 / 3276.8)


def test_a_scaled_write_an_int16_cannot_hold_changes_nothing() -> None:
    model = DeviceModel.default()
    before = data(model, "B:HS23T.SETTING.RAW")
    # 40 A is 10 V: 32768 counts, one past an int16
    assert status_of(model, "B_HS23T[0:1]", [1.0, 40.0]) == "DIO_SCALEFAIL"
    assert data(model, "B:HS23T.SETTING.RAW") == before


@pytest.mark.parametrize(
    ("drf", "value", "status"),
    [
        ("B:HS23T.SETTING{2:4}.RAW", None, "DPM_BAD_FRAMING"),
        ("B:HS23T.SETTING{3840:4}.RAW", None, "DPM_OUT_OF_BOUNDS"),
        ("B_HS23T[960]", None, "DPM_OUT_OF_BOUNDS"),
        ("B:HS23T.SETTING{0:8}.RAW", bytes(4), "DPM_BAD_LENGTH"),
        ("B_HS23T[0:1]", [1.0], "DPM_BAD_LENGTH"),
    ],
)
def test_ranges_and_lengths_count_whole_points(drf: str, value: object, status: str) -> None:
    model = DeviceModel.default()
    if value is None:
        reply, entry = model.add_to_list(1, 1, drf)
        assert entry is None and reply.status == Status.from_name(status).status
    else:
        assert status_of(model, drf, value) == status


@given(st.lists(st.tuples(INT16, INT16), min_size=2, max_size=64), st.integers(0, 896))
def test_raw_points_written_read_back_and_scale_to_the_scaled_setting(
    points: list[tuple[int, int]], first: int
) -> None:
    model = SHARED
    device = device_of(model, "R:S202T")
    raw = b"".join(struct.pack("<hh", v, t) for v, t in points)
    span = f"{{{first * POINT_BYTES}:{len(raw)}}}"
    assert status_of(model, f"R:S202T.SETTING{span}.RAW", raw) == "ok"
    assert data(model, f"R:S202T.SETTING{span}.RAW") == raw
    scaled = data(model, f"R_S202T[{first}:{first + len(points) - 1}]")
    expected = [device.scaling.decode(struct.pack("<h", v)) for v, _ in points]
    assert scaled == tuple(expected)


@given(INT16)
def test_a_scaled_value_read_and_written_back_leaves_the_raw_word(counts: int) -> None:
    model = SHARED
    assert status_of(model, "R:SC319T.SETTING[5].RAW", struct.pack("<hh", counts, 9)) == "ok"
    assert status_of(model, "R_SC319T[5]", data(model, "R_SC319T[5]")) == "ok"
    assert data(model, "R:SC319T.SETTING[5].RAW") == struct.pack("<hh", counts, 9)
