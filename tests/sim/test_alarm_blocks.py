"""Raw alarm blocks: the 20 bytes and the structured view are one block, read and written."""

from __future__ import annotations

import pytest
from pacsys.alarm_block import AnalogAlarm, DigitalAlarm

from acnet_proto.sim import DeviceModel
from acnet_proto.sim.alarm_blocks import BLOCK_SIZE
from acnet_proto.status import Status

NOW = 1763769600.015


@pytest.fixture
def model() -> DeviceModel:
    return DeviceModel.default()


def data(model: DeviceModel, drf: str) -> object:
    return model.resolve(drf).reply(1, NOW).data


def set_(model: DeviceModel, drf: str, value: object) -> str:
    status = model.apply_setting(model.resolve(drf), value)
    return "ok" if status == 0 else str(Status.from_int(status).name)


def test_h801_raw_limits_are_int16_over_3276_8(model: DeviceModel) -> None:
    raw = data(model, "N@H801{0:20}.RAW")
    assert isinstance(raw, bytes) and len(raw) == BLOCK_SIZE
    block = AnalogAlarm.from_bytes(raw)  # the lab's client reads it so
    structured = model.resolve("N@H801").reply(1, NOW)
    assert block.value1 / 3276.8 == structured.minimum
    assert block.value2 / 3276.8 == structured.maximum
    assert block.data_bytes == 2 and block.limit_type == 2 and not block.is_digital
    assert block.tries_needed == structured.tries_needed == 3
    assert block.is_active == structured.alarm_enable
    assert block.is_bad == structured.alarm_status
    assert data(model, "N@H801.FLAGS") == block.flags


@pytest.mark.parametrize("name", ["N:H801", "G:AMANDA", "Z:ACLTST", "M:OUTTMP"])
def test_every_analog_block_agrees_with_its_structured_view(model: DeviceModel, name: str) -> None:
    block = AnalogAlarm.from_bytes(data(model, f"{name}.ANALOG{{0:20}}.RAW"))
    structured = model.resolve(f"{name}.ANALOG").reply(1, NOW)
    scaling = model.device(name).scaling
    assert scaling.decode(block.value1_raw[: scaling.raw.size]) == structured.minimum
    assert scaling.decode(block.value2_raw[: scaling.raw.size]) == structured.maximum
    assert (block.abort, block.abort_inhibit) == (structured.abort, structured.abort_inhibit)
    assert (block.tries_now, block.tries_needed) == (structured.tries_now, structured.tries_needed)


def test_writing_raw_bytes_changes_the_structured_view(model: DeviceModel) -> None:
    block = AnalogAlarm.from_bytes(data(model, "N@H801{0:20}.RAW"))
    block.value1, block.value2 = -3277, 16384  # -1.00006 .. 5.0 V
    block.is_active, block.tries_needed = False, 7
    block.ftd.period_ticks = 60
    assert set_(model, "N:H801.ANALOG{0:20}.RAW@N", block.to_bytes()) == "ok"
    after = model.resolve("N@H801").reply(1, NOW)
    assert (after.minimum, after.maximum) == (-3277 / 3276.8, 16384 / 3276.8)
    assert (after.alarm_enable, after.tries_needed) == (False, 7)
    assert data(model, "N@H801.ALARM_FTD") == 60.0


def test_writing_the_structured_view_changes_the_raw_bytes(model: DeviceModel) -> None:
    assert set_(model, "N@H801.MAX", 2.0) == "ok"
    assert set_(model, "N$H801.MASK", 0x5) == "ok"
    analog = AnalogAlarm.from_bytes(data(model, "N@H801{0:20}.RAW"))
    assert analog.value2 == round(2.0 * 3276.8)
    assert data(model, "N@H801.MAX") == round(2.0 * 3276.8) / 3276.8  # held as the raw holds it
    assert DigitalAlarm.from_bytes(data(model, "N$H801{0:20}.RAW")).mask == 0x5


def test_a_sub_range_reads_and_writes_part_of_the_block(model: DeviceModel) -> None:
    whole = data(model, "N@H801{0:20}.RAW")
    assert data(model, "N@H801{0:4}.RAW") == whole[:4]
    assert data(model, "N@H801{10:2}.RAW") == whole[10:12]
    assert set_(model, "N@H801{10:2}.RAW", bytes([0, 9])) == "ok"  # tries now, tries needed
    assert data(model, "N@H801.TRIES_NEEDED") == 9.0


def test_the_digital_block(model: DeviceModel) -> None:
    block = DigitalAlarm.from_bytes(data(model, "N:H801.DIGITAL{0:20}.RAW"))
    structured = model.resolve("N$H801").reply(1, NOW)
    assert block.is_digital and (block.nominal, block.mask) == (structured.nominal, structured.mask)
    block.nominal = 0x1
    assert set_(model, "N:H801.DIGITAL{0:20}.RAW", block.to_bytes()) == "ok"
    assert data(model, "N$H801.NOM") == 1.0


@pytest.mark.parametrize(
    ("drf", "value", "status"),
    [
        ("N@H801{0:20}.RAW", b"\x00" * 19, "DPM_BAD_LENGTH"),
        ("N@H801{0:20}.RAW", 1.0, "DIO_INVDATA"),
        ("N@H801{0:20}.RAW", b"\x01\x00" + b"\x00" * 18, "DIO_INVDATA"),  # K = 0: nominal/tol
        ("N@H801.TRIES_NEEDED", 256, "DIO_RANGE"),
        ("N@H801.ALARM_FTD", 70000, "DIO_RANGE"),
        ("N@H801.MIN", -11.0, "DIO_SCALEFAIL"),  # beyond an int16 at 3276.8 a volt
    ],
)
def test_what_a_block_cannot_hold_is_refused(
    model: DeviceModel, drf: str, value: object, status: str
) -> None:
    before = data(model, "N@H801{0:20}.RAW")
    assert set_(model, drf, value) == status
    assert data(model, "N@H801{0:20}.RAW") == before


@pytest.mark.parametrize(
    ("drf", "status"),
    [
        ("N@H801{16:8}.RAW", "DPM_OUT_OF_BOUNDS"),
        ("N@H801[0:3].RAW", "DPM_BAD_RANGE"),
        ("N@H801[0].MIN", "DPM_BAD_RANGE"),
        ("N$HBLK2V{0:20}.RAW", "DBM_NOPROP"),
    ],
)
def test_ranges_on_blocks(model: DeviceModel, drf: str, status: str) -> None:
    reply, entry = model.add_to_list(1, 1, drf)
    assert entry is None and Status.from_int(reply.status).name == status
