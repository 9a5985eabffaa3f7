"""The model refuses values it cannot hold, and serves every entry even if one got in.

A NaN or infinity written through any settings path (raw bytes, scaled,
primary, arrays, alarm limits, raw alarm-block bytes, ramp values) is
``DIO_SCALEFAIL`` and changes nothing. Were such a value held anyway, a read
of it is a ``Status_reply`` of ``DIO_SCALEFAIL`` for that entry, never an
exception out of :meth:`Entry.reply`.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import pytest

from acnet_proto.pc import dpm
from acnet_proto.sim import DeviceModel
from acnet_proto.sim.codes import DIO_SCALEFAIL
from acnet_proto.sim.scaling import RawType, Scaling, ScalingError

NOW = 1763769600.015
F32_NAN, F32_INF = struct.pack("<f", math.nan), struct.pack("<f", math.inf)
NON_FINITE = [math.nan, math.inf, -math.inf]

# every DRF of a device that a client may read after a refused setting
READS = {
    "G:AMANDA": ["G:AMANDA", "G:AMANDA.RAW", "G:AMANDA.PRIMARY", "G:AMANDA.SETTING",
                 "G:AMANDA.SETTING.RAW", "G:AMANDA.ANALOG", "G:AMANDA.ANALOG{0:20}.RAW"],
    "N:HBLK2V": ["N:HBLK2V", "N:HBLK2V.RAW", "N:HBLK2V.ANALOG", "N:HBLK2V.ANALOG{0:20}.RAW",
                 "N:HBLK2V.ANALOG.MIN", "N:HBLK2V.ANALOG.MAX"],
    "Z:PSTEST": ["Z:PSTEST", "Z:PSTEST.RAW", "Z:PSTEST.SETTING", "Z:PSTEST.SETTING.RAW"],
    "Z:ACLTST": ["Z:ACLTST", "Z:ACLTST.SETTING.RAW", "Z:ACLTST.PRIMARY"],
    "Z:ACLTS1": ["Z:ACLTS1", "Z:ACLTS1.RAW", "Z:ACLTS1.SETTING", "Z:ACLTS1.SETTING.RAW"],
    "Z:ACLTS3": ["Z:ACLTS3", "Z:ACLTS3.SETTING.RAW"],
    "B:HS23T": ["B:HS23T", "B:HS23T.SETTING[0:3]", "B:HS23T.SETTING{0:12}.RAW"],
}  # fmt: skip


def set_(model: DeviceModel, drf: str, value: object) -> int:
    return model.apply_setting(model.resolve(drf + "@N"), value)


def served(model: DeviceModel, device: str) -> list[tuple[Any, ...]]:
    """What each read of ``device`` answers now, less the stamps; each must be data."""
    out = []
    for drf in READS[device]:
        reply = model.resolve(drf).reply(1, NOW)
        assert type(reply) is not dpm.StatusReply, (drf, reply)
        out.append(tuple(reply[3:]))
    return out


# (device, DRF set, value): one of each settings path, each value not finite
PATHS = [
    *[("G:AMANDA", "G:AMANDA.SETTING.RAW", raw) for raw in (F32_NAN, F32_INF)],
    ("Z:PSTEST", "Z:PSTEST.SETTING.RAW", F32_NAN),  # no raw type: float32 bytes all the same
    ("Z:ACLTS1", "Z:ACLTS1.SETTING.RAW", struct.pack("<10f", *range(9), math.nan)),
    *[("G:AMANDA", "G:AMANDA.SETTING", v) for v in NON_FINITE],
    *[("Z:PSTEST", "Z:PSTEST.SETTING", v) for v in NON_FINITE],
    *[("G:AMANDA", "G:AMANDA.SETTING.PRIMARY", v) for v in NON_FINITE],
    *[("Z:ACLTST", "Z:ACLTST.SETTING.PRIMARY", v) for v in NON_FINITE],
    ("Z:ACLTS1", "Z:ACLTS1.SETTING", [1.0] * 9 + [math.nan]),
    ("Z:ACLTS1", "Z:ACLTS1.SETTING[2:3]", [math.inf, 1.0]),
    ("Z:ACLTS3", "Z:ACLTS3.SETTING", [math.nan] * 8),
    *[("N:HBLK2V", f"N:HBLK2V.ANALOG.{f}", v) for f in ("MIN", "MAX", "NOM", "TOL")
      for v in NON_FINITE],
    *[("G:AMANDA", f"G:AMANDA.ANALOG.{f}", math.nan) for f in ("MIN", "MAX")],
    ("N:HBLK2V", "N:HBLK2V.ANALOG{2:4}.RAW", F32_NAN),
    ("N:HBLK2V", "N:HBLK2V.ANALOG{6:4}.RAW", F32_INF),
    ("G:AMANDA", "G:AMANDA.ANALOG{2:4}.RAW", F32_NAN),
    *[("B:HS23T", "B:HS23T.SETTING[0]", v) for v in NON_FINITE],
    ("B:HS23T", "B:HS23T.SETTING[1].PRIMARY", math.nan),
]  # fmt: skip


@pytest.mark.parametrize(("device", "drf", "value"), PATHS, ids=lambda p: repr(p)[:40])
def test_a_value_that_is_not_finite_is_scalefail_and_changes_nothing(
    device: str, drf: str, value: object
) -> None:
    model = DeviceModel.default()
    before = served(model, device)
    assert set_(model, drf, value) == DIO_SCALEFAIL
    assert served(model, device) == before


def test_the_device_still_takes_finite_values_after_a_refusal() -> None:
    model = DeviceModel.default()
    assert set_(model, "G:AMANDA.SETTING.RAW", F32_NAN) == DIO_SCALEFAIL
    assert set_(model, "G:AMANDA.SETTING.RAW", struct.pack("<f", 2.5)) == 0
    assert model.resolve("G:AMANDA.SETTING").reply(1, NOW).data == 2.5  # type: ignore[union-attr]


# ------------------------------------------------------------ serving is robust


@pytest.mark.parametrize("drf", ["G:AMANDA", "G:AMANDA.RAW", "G:AMANDA.PRIMARY"])
def test_a_value_that_got_in_anyway_is_served_as_scalefail_for_its_entry(drf: str) -> None:
    model = DeviceModel.default()
    model.device("G:AMANDA").setting_numbers[0] = math.nan  # type: ignore[union-attr]
    reply = model.resolve(drf).reply(7, NOW)
    assert type(reply) is dpm.StatusReply
    assert (reply.ref_id, reply.status) == (7, DIO_SCALEFAIL)
    # other devices are untouched by it
    assert type(model.resolve("Z:ACLTST").reply(8, NOW)) is dpm.ScalarReply


def test_an_alarm_limit_that_got_in_anyway_is_served_as_scalefail() -> None:
    model = DeviceModel.default()
    analog = model.device("G:AMANDA").analog  # type: ignore[union-attr]
    assert analog is not None
    analog.minimum = math.nan
    reply = model.resolve("G:AMANDA.ANALOG{0:20}.RAW").reply(1, NOW)
    assert type(reply) is dpm.StatusReply and reply.status == DIO_SCALEFAIL


# ------------------------------------------------------------ raw alarm-block writes


def test_a_raw_block_write_keeps_the_limits_it_did_not_touch() -> None:
    model = DeviceModel.default()  # N:HBLK2V has no raw type: its block holds float32 limits
    assert set_(model, "N:HBLK2V.ANALOG.MIN", 0.1) == 0
    assert set_(model, "N:HBLK2V.ANALOG.MAX", 0.7) == 0
    assert set_(model, "N:HBLK2V.ANALOG{11:1}.RAW", b"\x05") == 0
    read = {f: model.resolve(f"N:HBLK2V.ANALOG.{f}").reply(1, NOW).data for f in ("MIN", "MAX")}  # type: ignore[union-attr]
    assert read == {"MIN": 0.1, "MAX": 0.7}
    assert model.resolve("N:HBLK2V.ANALOG.TRIES_NEEDED").reply(1, NOW).data == 5.0  # type: ignore[union-attr]


def test_a_raw_block_write_of_a_limit_sets_it_to_its_bytes() -> None:
    model = DeviceModel.default()
    assert set_(model, "N:HBLK2V.ANALOG.MIN", 0.1) == 0
    assert set_(model, "N:HBLK2V.ANALOG{6:4}.RAW", struct.pack("<f", 0.3)) == 0
    analog = model.device("N:HBLK2V").analog  # type: ignore[union-attr]
    assert analog is not None
    assert (analog.minimum, analog.maximum) == (0.1, struct.unpack("<f", struct.pack("<f", 0.3))[0])


# ------------------------------------------------------------ scaling checks lengths


@pytest.mark.parametrize("raw", list(RawType))
def test_unpack_refuses_the_wrong_number_of_bytes(raw: RawType) -> None:
    with pytest.raises(ScalingError, match=f"{raw.size} bytes"):
        raw.unpack(bytes(raw.size + 1))


@pytest.mark.parametrize("length", [1, 3, 5, 7])
def test_decode_all_refuses_a_part_element(length: int) -> None:
    with pytest.raises(ScalingError, match="whole"):
        Scaling(raw=RawType.INT16, exact=True).decode_all(bytes(length))


def test_decode_all_of_whole_elements_decodes_each() -> None:
    scaling = Scaling(raw=RawType.INT16, divisor=2.0, exact=True)
    assert scaling.decode_all(struct.pack("<3h", 2, -4, 7)) == [1.0, -2.0, 3.5]


@pytest.mark.parametrize("value", NON_FINITE)
@pytest.mark.parametrize("exact", [False, True])
def test_quantise_refuses_what_is_not_finite_with_any_scaling(value: float, exact: bool) -> None:
    with pytest.raises(ScalingError, match="finite"):
        Scaling(exact=exact).quantise(value, saturate=True)


def test_decode_refuses_raw_that_the_transforms_carry_past_a_float() -> None:
    scaling = Scaling(raw=RawType.INT16, scale=1e308, exact=True)
    with pytest.raises(ScalingError, match="finite"):
        scaling.decode(struct.pack("<h", 100))
