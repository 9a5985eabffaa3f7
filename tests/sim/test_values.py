"""Values as the lab's devices hold them: raw types, scaling, limits, sample and hold, ramps."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acnet_proto.sim import DeviceModel, Entry
from acnet_proto.sim.scaling import dec_f_encode
from acnet_proto.status import Status

NOW = 1763769600.015


@pytest.fixture
def model() -> DeviceModel:
    return DeviceModel.default()


def data(model: DeviceModel, drf: str, now: float = NOW) -> object:
    return model.resolve(drf).reply(1, now).data


def status_of(model: DeviceModel, drf: str, value: object) -> str | None:
    """The name of the status a setting gets ("ok" when it is done)."""
    status = model.apply_setting(model.resolve(drf), value)
    return "ok" if status == 0 else Status.from_int(status).name


def test_outtmp_reads_two_raw_bytes_that_scale_to_its_reading(model: DeviceModel) -> None:
    device = model.device("M:OUTTMP")
    for t in (NOW, NOW + 7.3, NOW + 61.9):
        raw = data(model, "M:OUTTMP.RAW", t)
        assert isinstance(raw, bytes) and len(raw) == 2
        assert device.scaling.decode(raw) == data(model, "M:OUTTMP", t)
        volts = int.from_bytes(raw, "little", signed=True) / 3276.8
        assert data(model, "M:OUTTMP.PRIMARY", t) == volts
        assert data(model, "M:OUTTMP", t) == 20.48 * volts


def test_acltst_raw_setting_is_dec_f_scaling_to_45(model: DeviceModel) -> None:
    assert data(model, "Z:ACLTST.SETTING.RAW") == bytes.fromhex("34430000")
    assert data(model, "Z_ACLTST") == 45.0
    assert status_of(model, "Z:ACLTST.SETTING.RAW", dec_f_encode(-0.5)) == "ok"
    assert data(model, "Z_ACLTST") == -0.5
    assert status_of(model, "Z_ACLTST", 12.5) == "ok"
    assert data(model, "Z:ACLTST.SETTING.RAW") == bytes.fromhex("48420000")


def test_a_dec_reserved_operand_is_not_a_setting(model: DeviceModel) -> None:
    assert status_of(model, "Z:ACLTST.SETTING.RAW", bytes.fromhex("00800000")) == "DIO_SCALEFAIL"
    assert data(model, "Z_ACLTST") == 45.0


def test_amanda_raw_bytes_are_the_ieee_value(model: DeviceModel) -> None:
    assert data(model, "G:AMANDA.SETTING.RAW") == struct.pack("<f", 1.0)
    assert status_of(model, "G_AMANDA", 0.1) == "ok"
    assert data(model, "G_AMANDA") == struct.unpack("<f", struct.pack("<f", 0.1))[0]


def test_a_scaled_setting_holds_what_the_raw_type_can(model: DeviceModel) -> None:
    assert status_of(model, "Z_ACLTS3[1:2]", [1.23456, -2.0]) == "ok"
    assert list(data(model, "Z_ACLTS3[1:2]")) == [1.235, -2.0]  # int32 raw in thousandths
    raw = data(model, "Z:ACLTS3.SETTING[1:2].RAW")
    assert struct.unpack("<2i", raw) == (1235, -2000)


@pytest.mark.parametrize(
    ("drf", "value"),
    [("Z_ACLTS3[0]", 1e7), ("Z_ACLTS3[0]", math.nan), ("Z_REMSE2", -1.0), ("Z_ACLTST", 1e39)],
)
def test_what_the_raw_type_cannot_hold_is_dio_scalefail(
    model: DeviceModel, drf: str, value: float
) -> None:
    before = data(model, drf)
    assert status_of(model, drf, value) == "DIO_SCALEFAIL"
    assert data(model, drf) == before


def test_settings_outside_the_database_limits_are_dio_range(model: DeviceModel) -> None:
    assert status_of(model, "Z_ACLTS2", 1000.0) == "ok"
    assert status_of(model, "Z_ACLTS2", 1000.5) == "DIO_RANGE"
    assert status_of(model, "Z_ACLTS2", -1000.5) == "DIO_RANGE"
    assert data(model, "Z_ACLTS2") == 1000.0
    # raw settings bypass scaling, and so the limits
    assert status_of(model, "Z:ACLTS2.SETTING.RAW", struct.pack("<f", 5000.0)) == "ok"


def test_a_primary_setting_goes_through_the_common_transform(model: DeviceModel) -> None:
    # Z:ACLTS8 (a ramp card: element 0 is point 0 of slot 0): raw int16 / 3276.8 volts, 10 A a volt
    assert status_of(model, "Z:ACLTS8.SETTING[0].PRIMARY", 0.5) == "ok"
    held = round(0.5 * 3276.8)  # 1638.4 volts-in-counts, held as the nearest int16
    assert data(model, "Z:ACLTS8.SETTING[0].PRIMARY") == held / 3276.8
    assert data(model, "Z_ACLTS8[0]") == 10.0 * (held / 3276.8)


@given(st.integers(-(2**15), 2**15 - 1))
def test_raw_written_is_raw_read_and_scales_to_the_setting(raw: int) -> None:
    model = DeviceModel.default()
    data_in = raw.to_bytes(2, "little", signed=True)
    assert model.apply_setting(model.resolve("Z:ACLTS8.SETTING[0].PRIMARY"), raw / 3276.8) == 0
    assert (
        model.resolve("Z:ACLTS8.SETTING").device.scaling.encode(
            model.resolve("Z_ACLTS8[0]").reply(1, NOW).data
        )
        == data_in
    )


@given(st.floats(-3000.0, 3000.0))
def test_reading_raw_then_scaling_it_is_the_reading(value: float) -> None:
    model = DeviceModel.default()
    device = model.device("N:H801")
    device.setting_numbers[0] = device.scaling.quantise(value / 1000)
    raw = model.resolve("N:H801.RAW").reply(1, NOW).data
    assert device.scaling.decode(raw) == model.resolve("N:H801").reply(1, NOW).data


def test_sample_and_hold_reads_agree_between_samples(model: DeviceModel) -> None:
    entry: Entry = model.resolve("B:IRMS06[0:10]")
    period = model.device("B:IRMS06").update_period
    start = model.device("B:IRMS06").sample_time(NOW)
    first, second = entry.reply(1, start + 0.001), entry.reply(1, start + 0.002)
    assert first.data == second.data and len(first.data) == 11
    assert first.timestamp == second.timestamp == round(start * 1000)
    later = entry.reply(1, start + period * 1.5)
    assert later.data != first.data
    assert later.timestamp == round((start + period) * 1000)


def test_continuous_devices_are_stamped_now(model: DeviceModel) -> None:
    assert model.resolve("M:OUTTMP").reply(1, NOW + 0.0123).timestamp == round(
        (NOW + 0.0123) * 1000
    )


def test_sample_time_is_its_own_sample_time(model: DeviceModel) -> None:
    device = model.device("B:IRMS06")
    for k in range(1000):
        t = device.sample_time(NOW + k * 0.0131)
        assert device.sample_time(t) == t <= NOW + k * 0.0131


def test_lab_devices_are_there_as_the_lab_has_them(model: DeviceModel) -> None:
    settable = ["G:AMANDA", "Z:ACLTST", "Z:CUBE", "Z:CUBE_X", "Z:CUBE_Y", "Z:CUBE_Z", "Z:REMSE2"]
    settable += ["Z:RICH", "Z:SNDBOXSTJOHN", "Z:STRINGTEST", "Z:STRINGTEST2", "Z:STRTST"]
    settable += [f"Z:ACLTS{i}" for i in range(1, 9)]
    assert all(model.device(name).settable for name in settable)
    assert len(data(model, "Z_ACLTS3[0:3]")) == 4
    assert isinstance(data(model, "B:BOOSBP"), str)
    assert model.device("N:LGXS").status is not None
    assert model.device("N:HBLK2V").digital is None
    assert not model.device("B:IRMS06").settable


def test_the_device_database_states_the_scaling_and_limits(model: DeviceModel) -> None:
    from acnet_proto.sim.devdb import info_entry

    acltst = info_entry(model, "Z:ACLTST").device.reading
    assert (acltst.p_index, acltst.c_index) == (22, 0)  # DEC float in, native float out
    outtmp = info_entry(model, "M:OUTTMP").device.reading
    assert (outtmp.p_index, outtmp.c_index, list(outtmp.coeff)) == (2, 2, [20.48, 1.0, 0.0])
    limited = info_entry(model, "Z:ACLTS2").device.setting
    assert (limited.min_val, limited.max_val) == (-1000.0, 1000.0)
