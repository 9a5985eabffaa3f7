"""The lab's test devices read as they do at the lab (lab-devices.md, "Devices")."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest

from acnet_proto.adapters.acl import ACLBackend
from acnet_proto.api.backend import Backend
from acnet_proto.types import ValueType
from tests.lab.conftest import T

pytestmark = pytest.mark.integration

#: the 20-byte alarm block: flags, two 4-byte limits, tries now/needed, FTD, front-end data
ALARM_BLOCK = struct.Struct("<H4s4sBBH6s")


def dec_f(raw: bytes) -> float:
    """A DEC F_floating value: two little-endian words, sign, excess-128 exponent and a
    24-bit fraction with a hidden leading 1 after the binary point."""
    high: int
    low: int
    high, low = struct.unpack("<HH", raw[:4])
    exponent = (high >> 7) & 0xFF
    if exponent == 0:
        return 0.0
    fraction = ((high & 0x7F) << 16) | low
    value = (0.5 + fraction / (1 << 24)) * math.ldexp(1.0, exponent - 128)
    return -value if high & 0x8000 else value


@pytest.mark.parametrize(
    ("target", "value_type", "python_type"),
    [
        ("M:OUTTMP", ValueType.SCALAR, float),
        ("G:AMANDA", ValueType.SCALAR, float),
        ("B:IRMS06[0]", ValueType.SCALAR, float),
        ("B:BOOSBP", ValueType.TEXT, str),
        ("M~OUTTMP", ValueType.TEXT, str),
        ("M:OUTTMP.RAW", ValueType.RAW, bytes),
        ("Z_ACLTST", ValueType.SCALAR, float),
    ],
)
def test_each_kind_of_device_reads_as_its_type(
    reader: Backend, target: str, value_type: ValueType, python_type: type
) -> None:
    reading = reader.get(target, T)
    assert reading.ok, reading.message
    assert reading.value_type is value_type and isinstance(reading.value, python_type)


def test_b_irms06_0_to_10_is_11_elements(reader: Backend) -> None:
    reading = reader.get("B:IRMS06[0:10]", T)
    assert reading.value_type is ValueType.SCALAR_ARRAY
    assert isinstance(reading.value, np.ndarray) and reading.value.shape == (11,)


def test_b_boosbp_is_text(reader: Backend) -> None:
    text = reader.read("B:BOOSBP", T)
    assert isinstance(text, str) and text.strip()


def test_m_outtmp_raw_reading_is_two_bytes(reader: Backend) -> None:
    assert len(reader.read("M:OUTTMP.RAW", T)) == 2


def test_m_outtmp_is_read_only(dpm_reader: Backend) -> None:
    assert dpm_reader.get("M_OUTTMP", T).is_error


def test_g_amanda_raw_setting_is_the_ieee_float_of_its_setting(dpm_reader: Backend) -> None:
    raw, scaled = dpm_reader.get_many(["G:AMANDA.SETTING.RAW", "G:AMANDA.SETTING"], T)
    assert raw.ok and scaled.ok, (raw.message, scaled.message)
    assert len(raw.value) == 4
    assert struct.unpack("<f", raw.value)[0] == pytest.approx(scaled.value, rel=1e-6)


def test_z_acltst_raw_setting_is_dec_f_floating_scaled_one_to_one(dpm_reader: Backend) -> None:
    raw, scaled = dpm_reader.get_many(["Z:ACLTST.SETTING.RAW", "Z:ACLTST.SETTING"], T)
    assert raw.ok and scaled.ok, (raw.message, scaled.message)
    assert len(raw.value) == 4
    assert dec_f(raw.value) == pytest.approx(scaled.value, rel=1e-6)  # C1 = C2 = 1


def test_n_lgxs_has_a_basic_status(reader: Backend) -> None:
    if isinstance(reader, ACLBackend):
        pytest.skip("the ACL CGI prints a status as text: there is no dict to compare")
    reading = reader.get("N|LGXS", T)
    assert reading.ok, reading.message
    assert reading.value_type is ValueType.BASIC_STATUS and isinstance(reading.value, dict)
    assert reading.value and all(isinstance(bit, bool) for bit in reading.value.values())


def test_n_h801_has_analog_and_digital_alarm_blocks(dpm_reader: Backend) -> None:
    analog, digital = dpm_reader.get_many(["N@H801", "N$H801"], T)
    assert analog.value_type is ValueType.ANALOG_ALARM and {"minimum", "maximum"} <= set(
        analog.value
    )
    assert digital.value_type is ValueType.DIGITAL_ALARM and {"nominal", "mask"} <= set(
        digital.value
    )


def test_n_h801_raw_alarm_limits_are_int16_over_3276_8(dpm_reader: Backend) -> None:
    raw, alarm = dpm_reader.get_many(["N:H801.ANALOG{0:20}.RAW", "N@H801"], T)
    assert raw.ok and alarm.ok, (raw.message, alarm.message)
    _, low, high, *_ = ALARM_BLOCK.unpack(raw.value)
    minimum, maximum = (struct.unpack_from("<h", limit)[0] / 3276.8 for limit in (low, high))
    assert minimum == pytest.approx(alarm.value["minimum"], abs=1 / 3276.8)
    assert maximum == pytest.approx(alarm.value["maximum"], abs=1 / 3276.8)


def test_the_raw_digital_alarm_block_is_the_structured_one(dpm_reader: Backend) -> None:
    raw, alarm = dpm_reader.get_many(["N:H801.DIGITAL{0:20}.RAW", "N$H801"], T)
    assert raw.ok and alarm.ok, (raw.message, alarm.message)
    flags, nominal, mask, _, tries_needed, *_ = ALARM_BLOCK.unpack(raw.value)
    assert struct.unpack("<I", nominal)[0] == alarm.value["nominal"]
    assert struct.unpack("<I", mask)[0] == alarm.value["mask"]
    assert bool(flags & 1) == alarm.value["alarm_enable"]
    assert tries_needed == alarm.value["tries_needed"]


def test_the_description_is_the_devices(reader: Backend) -> None:
    assert "temperature" in reader.read("M~OUTTMP", T).lower()
