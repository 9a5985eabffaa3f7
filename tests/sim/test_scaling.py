"""Raw types and scaling: DEC F_floating exactly, integer raw types, the transforms."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acnet_proto.sim.scaling import (
    DEC_F_MAX,
    DEC_F_MIN,
    RawType,
    Scaling,
    ScalingError,
    dec_f_decode,
    dec_f_encode,
)

# (value, its DEC F_floating bytes as a VAX stores them): the sign-and-exponent word first
DEC_PATTERNS = [
    (1.0, "80400000"),  # 0.5 * 2**1: exponent 129
    (45.0, "34430000"),  # 0.703125 * 2**6: exponent 134, fraction .0110100...
    (-0.5, "00c00000"),
    (0.0, "00000000"),
    (0.10000000149011612, "cc3ecdcc"),  # 0.1 held in 24 bits (VAX longword 0xCCCD3ECC)
    (DEC_F_MIN, "80000000"),  # 0.5 * 2**-127: exponent 1, fraction 0
    (DEC_F_MAX, "ff7fffff"),  # (1 - 2**-24) * 2**127: every bit set
    (-DEC_F_MAX, "ffffffff"),
]


@pytest.mark.parametrize(("value", "pattern"), DEC_PATTERNS)
def test_dec_f_known_bit_patterns(value: float, pattern: str) -> None:
    assert dec_f_encode(value).hex() == pattern
    assert dec_f_decode(bytes.fromhex(pattern)) == value


def test_dec_f_limits_are_the_format_s() -> None:
    assert DEC_F_MIN == 2.0**-128
    assert DEC_F_MAX == (1 - 2.0**-24) * 2.0**127


def test_dec_f_agrees_with_the_ieee_word_swap_where_both_are_defined() -> None:
    # ACNET's transform 22: swap the words, read IEEE, divide by 4
    for value in (1.0, 45.0, -0.5, 123.456, 1e-20, 3e37):
        data = dec_f_encode(value)
        swapped = data[2:] + data[:2]
        assert struct.unpack("<f", swapped)[0] / 4 == dec_f_decode(data)


@pytest.mark.parametrize(
    ("value", "problem"),
    [(math.nan, "no DEC"), (math.inf, "no DEC"), (2.0**127, "beyond DEC"), (-1e39, "beyond")],
)
def test_dec_f_refuses_what_it_cannot_hold(value: float, problem: str) -> None:
    with pytest.raises(ScalingError, match=problem):
        dec_f_encode(value)


def test_dec_f_flushes_below_its_smallest_to_the_nearest() -> None:
    assert dec_f_encode(DEC_F_MIN * 0.4) == bytes(4)
    assert dec_f_encode(DEC_F_MIN * 0.6) == dec_f_encode(DEC_F_MIN)


def test_dec_f_reserved_operand_is_no_value_and_dirty_zero_is_zero() -> None:
    with pytest.raises(ScalingError, match="reserved operand"):
        dec_f_decode(bytes.fromhex("00801234"))
    assert dec_f_decode(bytes.fromhex("7f001234")) == 0.0


dec_values = st.floats(min_value=-DEC_F_MAX, max_value=DEC_F_MAX).filter(
    lambda v: v == 0 or abs(v) >= DEC_F_MIN
)


@given(dec_values)
def test_dec_f_round_trips_to_the_nearest_24_bit_value(value: float) -> None:
    held = dec_f_decode(dec_f_encode(value))
    assert held == 0.0 if value == 0 else abs(held - value) <= abs(value) * 2.0**-24
    assert dec_f_encode(held) == dec_f_encode(value)  # what it holds encodes the same


@given(st.binary(min_size=4, max_size=4))
def test_every_dec_f_bit_pattern_decodes_or_is_a_reserved_operand(data: bytes) -> None:
    reserved = data[1] & 0x80 and (int.from_bytes(data[:2], "little") >> 7) & 0xFF == 0
    if reserved:
        with pytest.raises(ScalingError):
            dec_f_decode(data)
        return
    value = dec_f_decode(data)
    exponent_zero = (int.from_bytes(data[:2], "little") >> 7) & 0xFF == 0
    assert dec_f_encode(value) == (bytes(4) if exponent_zero else data)


@pytest.mark.parametrize(
    ("raw", "number", "data"),
    [
        (RawType.INT16, -2.0, "feff"),
        (RawType.UINT16, 65535.0, "ffff"),
        (RawType.INT32, 70000.0, "70110100"),
        (RawType.UINT32, 4e9, "00286bee"),
        (RawType.FLOAT32, 2.5, "00002040"),
        (RawType.DEC_F, 45.0, "34430000"),
    ],
)
def test_raw_types_are_little_endian(raw: RawType, number: float, data: str) -> None:
    assert raw.pack(number).hex() == data
    assert raw.unpack(bytes.fromhex(data)) == number
    assert raw.size == len(data) // 2


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        (RawType.INT16, 32768.0),
        (RawType.INT16, math.nan),
        (RawType.UINT16, -1.0),
        (RawType.INT32, 2.0**31),
        (RawType.FLOAT32, 1e39),
    ],
)
def test_raw_types_refuse_what_they_cannot_hold(raw: RawType, number: float) -> None:
    with pytest.raises(ScalingError):
        raw.pack(number)


N_H801 = Scaling(raw=RawType.INT16, divisor=3276.8, exact=True)


def test_the_h801_transform_is_raw_over_3276_8() -> None:
    assert N_H801.decode((16384).to_bytes(2, "little", signed=True)) == 16384 / 3276.8
    assert N_H801.encode(1.0) == (3277).to_bytes(2, "little")  # 3276.8 rounds to 3277
    assert N_H801.quantise(1.0) == 3277 / 3276.8
    with pytest.raises(ScalingError, match="outside int16"):
        N_H801.encode(10.0)  # 32768 raw


def test_a_general_linear_and_common_transform() -> None:
    s = Scaling(raw=RawType.UINT16, offset=100.0, scale=0.5, c1=2.0, c2=4.0, c3=1.0, exact=True)
    # raw 300 -> primary (300 - 100) * 0.5 = 100 -> common 2 * 100 / 4 + 1 = 51
    assert s.decode((300).to_bytes(2, "little")) == 51.0
    assert s.encode(51.0) == (300).to_bytes(2, "little")
    assert s.primary_value(51.0) == 100.0


def test_saturation_is_for_readings_only() -> None:
    assert N_H801.encode(20.0, saturate=True) == (32767).to_bytes(2, "little")
    with pytest.raises(ScalingError):
        N_H801.encode(20.0)


def test_the_default_keeps_doubles_and_serves_their_float32() -> None:
    s = Scaling()
    assert s.quantise(0.1) == 0.1
    assert s.encode(0.1) == struct.pack("<f", 0.1)
    assert s.encode(1e39, saturate=True) == struct.pack("<f", 3.4028234663852886e38)


@pytest.mark.parametrize(
    ("scaling", "indices"),
    [
        (Scaling(), (16, 0, ())),
        (Scaling(raw=RawType.DEC_F, exact=True), (22, 0, ())),
        (N_H801, (2, 0, ())),
        (Scaling(raw=RawType.INT16, divisor=3276.8, c1=20.0, exact=True), (2, 2, (20.0, 1.0, 0.0))),
        (Scaling(raw=RawType.INT32, scale=0.001, exact=True), (10, 2, (0.001, 1.0, 0.0))),
        (
            Scaling(raw=RawType.UINT16, offset=100.0, scale=0.5, exact=True),
            (20, 2, (0.5, 1.0, -50.0)),
        ),
    ],
)
def test_the_device_database_states_an_equivalent_acnet_scaling(
    scaling: Scaling, indices: tuple[int, int, tuple[float, ...]]
) -> None:
    assert scaling.acnet_indices() == indices


def test_dec_f_rounds_to_the_nearest_24_bit_mantissa() -> None:
    assert dec_f_encode(0.1).hex() == "cc3ecdcc"  # 0.8 * 2**-3, rounded up in the last bit
