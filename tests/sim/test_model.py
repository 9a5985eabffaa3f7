"""The device model: metadata, values over time, DRF checks and statuses, replies, settings."""

from __future__ import annotations

import itertools
import math
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from acnet_proto import drf
from acnet_proto.engine import transcript
from acnet_proto.pc import daqdata, dpm
from acnet_proto.sim import (
    MIN_PERIOD_US,
    DeviceModel,
    DeviceModelError,
    Entry,
    Kind,
    Motion,
    RequestRejected,
    status_reply,
)
from acnet_proto.status import Status
from tests.support.vectors import SHARED

NOW = 1763769600.015  # the one-shot transcript's reading timestamp, in seconds
TRANSCRIPTS = sorted((SHARED / "transcripts").glob("*.jsonl"))


def code(name: str) -> int:
    return Status.from_name(name).status


def replies_of(path: Path) -> list:
    return [
        m
        for line, items in transcript.messages_of(transcript.load(path))
        if line.direction == "s2c"
        for m in items
    ]


def requests_of(path: Path) -> list:
    return [
        m
        for line, items in transcript.messages_of(transcript.load(path))
        if line.direction == "c2s"
        for m in items
        if isinstance(m, dpm.AddToListRequest)
    ]


@pytest.fixture
def model() -> DeviceModel:
    return DeviceModel.default()


def entry(model: DeviceModel, text: str) -> Entry:
    return model.resolve(text)


# ------------------------------------------------------------ the transcripts


def test_the_transcripts_are_there() -> None:
    assert len(TRANSCRIPTS) == 3


# Where the recordings' server departs from the lab: the lab's DPM and DevDB (pacsys's
# tests against them) number Z:ACLTST 140013, "ACL test device!" in blips, so Z:ACLTS1
# has moved off 140013.
LAB_DEVICE_INFO = {
    "Z:ACLTST": {"di": 140013, "description": "ACL test device!", "units": "blip"},
    "Z:ACLTS1": {"di": 140032},
}


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.stem)
def test_device_info_matches_every_recorded_device_info(model: DeviceModel, path: Path) -> None:
    infos = [m for m in replies_of(path) if isinstance(m, dpm.DeviceInfoReply)]
    drfs = {r.ref_id: r.drf_request for r in requests_of(path)}
    assert infos
    for info in infos:
        ours = model.resolve(drfs[info.ref_id]).device_info(info.ref_id)
        lab = info.replace(**LAB_DEVICE_INFO.get(info.name, {}))
        # format_hint differs between the recordings of M:OUTTMP (2, then absent)
        assert ours.replace(format_hint=None) == lab.replace(format_hint=None)


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.stem)
def test_add_to_list_statuses_match_the_recordings(model: DeviceModel, path: Path) -> None:
    recorded = [m for m in replies_of(path) if isinstance(m, dpm.AddToListReply) and m.ref_id]
    drfs = {r.ref_id: r.drf_request for r in requests_of(path)}
    assert recorded
    for reply in recorded:
        ours, _ = model.add_to_list(reply.list_id, reply.ref_id, drfs[reply.ref_id])
        # the recordings' server said DPM_NO_SUCH_DEVICE for Z:NOTFND; the lab's DPM says DPM_PEND
        absent = reply.status == code("DPM_NO_SUCH_DEVICE")
        assert ours == (reply.replace(status=code("DPM_PEND")) if absent else reply)


def test_the_one_shot_reading_has_the_recorded_shape(model: DeviceModel) -> None:
    replies = replies_of(SHARED / "transcripts/read-one-shot.jsonl")
    recorded = next(m for m in replies if isinstance(m, dpm.ScalarReply))
    ours = entry(model, "M:OUTTMP@I").reply(1, NOW)
    assert ours.timestamp == recorded.timestamp
    assert (ours.ref_id, ours.cycle, ours.status) == (recorded.ref_id, 0, 0)
    assert abs(ours.data - recorded.data) <= 0.3  # base 41.7, amplitude 0.3


def test_transcript_metadata_exactly() -> None:
    model = DeviceModel.default()
    expected = {
        "M:OUTTMP": (27235, "Outdoor temperature", "DegF", Kind.SCALAR),
        "Z:ACLTST": (140013, "ACL test device!", "blip", Kind.SCALAR),
        "Z:ACLTS1": (140032, "test array device", "mm", Kind.ARRAY),
    }
    for name, (di, description, units, kind) in expected.items():
        device = model.device(name)
        assert (device.di, device.description, device.units, device.kind) == (
            di,
            description,
            units,
            kind,
        )
    assert model.device("Z:NOTFND") is None


# ------------------------------------------------------------------- values


def test_readings_are_deterministic_in_now_and_move_with_it(model: DeviceModel) -> None:
    e = entry(model, "M:OUTTMP")
    assert e.reply(1, NOW) == e.reply(1, NOW)
    samples = {e.reply(1, NOW + t).data for t in range(0, 60, 5)}
    assert len(samples) > 5
    assert all(41.7 - 0.3 <= v <= 41.7 + 0.3 for v in samples)


def test_timestamps_are_milliseconds_since_the_epoch(model: DeviceModel) -> None:
    for text in (
        "M:OUTTMP",
        "Z:ACLTS1",
        "Z:STRTST",
        "Z:RAWTST",
        "Z|ACLTST",
        "Z@ACLTST",
        "Z$ACLTST",
    ):
        assert entry(model, text).reply(3, 1700000000.25).timestamp == 1700000000250


def test_every_kind_gets_its_reply(model: DeviceModel) -> None:
    kinds = {
        "M:OUTTMP": dpm.ScalarReply,
        "Z:ACLTS1": dpm.ScalarArrayReply,
        "Z:ACLTS1[3]": dpm.ScalarReply,
        "Z:STRTST": dpm.TextReply,
        "Z:RAWTST": dpm.RawReply,
        "M:OUTTMP.RAW": dpm.RawReply,
        "Z:STRTST.RAW": dpm.RawReply,
        "Z|ACLTST": dpm.BasicStatusReply,
        "Z|ACLTST.ON": dpm.ScalarReply,
        "Z|ACLTST.TEXT": dpm.TextReply,
        "Z|ACLTST.RAW": dpm.RawReply,
        "Z@ACLTST": dpm.AnalogAlarmReply,
        "Z@ACLTST.MAX": dpm.ScalarReply,
        "Z$ACLTST": dpm.DigitalAlarmReply,
        "Z$ACLTST.MASK": dpm.ScalarReply,
        "M~OUTTMP": dpm.TextReply,
        "M#OUTTMP": dpm.TextReply,
        "M^OUTTMP": dpm.ScalarReply,
        "Z_ACLTST": dpm.ScalarReply,
    }
    for text, cls in kinds.items():
        reply = entry(model, text).reply(1, NOW)
        assert type(reply) is cls, text
        dpm.encode(reply)  # every reply is a valid message


def test_array_ranges_slice_the_reading(model: DeviceModel) -> None:
    whole = entry(model, "Z:ACLTS1").reply(1, NOW).data
    assert len(whole) == 10
    assert entry(model, "Z:ACLTS1[0:4]").reply(1, NOW).data == pytest.approx(whole[0:5])
    assert entry(model, "Z:ACLTS1[8:]").reply(1, NOW).data == pytest.approx(whole[8:])
    assert entry(model, "Z:ACLTS1[7]").reply(1, NOW).data == pytest.approx(whole[7])
    # the setting has no wave: element i is 1.5 * i
    assert entry(model, "Z_ACLTS1[2:3]").reply(1, NOW).data == pytest.approx([3.0, 4.5])


def test_byte_ranges_of_doubles_are_whole_elements(model: DeviceModel) -> None:
    whole = entry(model, "Z:ACLTS1").reply(1, NOW).data
    assert entry(model, "Z:ACLTS1{8:8}").reply(1, NOW).data == pytest.approx(whole[2:4])
    raw = entry(model, "Z:ACLTS1.READING{8:8}.RAW").reply(1, NOW).data
    assert struct.unpack("<2f", raw) == pytest.approx(whole[2:4], rel=1e-6)


def test_raw_devices_slice_bytes(model: DeviceModel) -> None:
    assert entry(model, "Z:RAWTST").reply(1, NOW).data == bytes.fromhex(
        "00112233445566778899aabbccddeeff"
    )
    assert entry(model, "Z:RAWTST{2:3}").reply(1, NOW).data == bytes.fromhex("223344")
    assert entry(model, "Z:RAWTST[15]").reply(1, NOW).data == b"\xff"


def test_info_properties(model: DeviceModel) -> None:
    assert entry(model, "M~OUTTMP").reply(1, NOW).data == "Outdoor temperature"
    assert entry(model, "M^OUTTMP").reply(1, NOW).data == 27235.0
    assert entry(model, "M#OUTTMP").reply(1, NOW).data == "Outdoor temperature"


def test_devices_by_index(model: DeviceModel) -> None:
    assert entry(model, "0:27235").device is model.device("M:OUTTMP")
    assert entry(model, "0:900042").device.name == "Z:SIM0042"


# ------------------------------------------------------------------ families


def test_the_family_has_ten_thousand_scalars(model: DeviceModel) -> None:
    first, last = model.device("Z:SIM0000"), model.device("Z:SIM9999")
    assert (first.di, last.di) == (900000, 909999)
    assert last.description == "simulated scalar 9999"
    assert last.kind is Kind.SCALAR and last.units == "V" and last.settable
    for missing in ("Z:SIM10000", "Z:SIM999", "Z:SIMABCD", "Z:SIM²²²²", "0:910000", "0:²"):
        assert model.device(missing) is None, missing


def test_family_devices_keep_their_state(model: DeviceModel) -> None:
    a = entry(model, "Z_SIM0007")
    assert model.apply_setting(a, 12.5) == 0
    assert entry(model, "Z_SIM0007").reply(1, NOW).data == 12.5
    assert model.device("Z:SIM0007") is a.device


def test_default_builds_a_fresh_model_every_time() -> None:
    one, two = DeviceModel.default(), DeviceModel.default()
    assert one.apply_setting(one.resolve("Z_ACLTST"), 1.0) == 0
    assert two.resolve("Z_ACLTST").reply(1, NOW).data == 45.0


# --------------------------------------------------------------- refusals


REFUSALS = [
    ("Z:NOTFND", "DPM_PEND"),  # a warning with no data, as the lab's DPM answers
    ("0:123", "DPM_PEND"),
    ("M:OUT TMP", "DPM_BAD_REQUEST"),
    ("M:OUTTMP.NOPE", "DPM_BAD_REQUEST"),
    ("M:OUTTMP@Z", "DPM_BAD_EVENT"),
    ("M:OUTTMP@p,", "DPM_BAD_EVENT"),
    ("M_OUTTMP", "DBM_NOPROP"),
    ("M|OUTTMP", "DBM_NOPROP"),
    ("M&OUTTMP@N", "DBM_NOPROP"),
    ("M$OUTTMP", "DBM_NOPROP"),
    ("Z@ACLTS1", "DBM_NOPROP"),
    ("M!OUTTMP", "DBM_NOPROP"),
    ("Z|ACLTST.EXTENDED_TEXT", "DPM_NO_SUCH_FIELD"),
    ("Z@ACLTST.RAW_MIN", "DPM_NO_SUCH_FIELD"),
    ("Z$ACLTST.TEXT", "DPM_NO_SUCH_FIELD"),
    ("Z:ACLTS1[16]", "DPM_OUT_OF_BOUNDS"),
    ("Z:ACLTS1[10:16]", "DPM_OUT_OF_BOUNDS"),
    ("M:OUTTMP[1]", "DPM_OUT_OF_BOUNDS"),
    ("Z:ACLTS1{60:8}", "DPM_OUT_OF_BOUNDS"),
    ("Z:RAWTST{10:7}", "DPM_OUT_OF_BOUNDS"),
    ("Z:ACLTS1{3:8}", "DPM_BAD_FRAMING"),
    ("Z:ACLTS1{4:6}", "DPM_BAD_FRAMING"),
    ("Z:STRTST[0:3]", "DPM_BAD_RANGE"),
    ("Z|ACLTST[0]", "DPM_BAD_RANGE"),
    ("M~OUTTMP[0:1]", "DPM_BAD_RANGE"),
    ("Z:RAWTST.SCALED", "DPM_NO_SCALE"),
    ("Z:STRTST.PRIMARY", "DPM_NO_SCALE"),
    ("M:OUTTMP@p,999U", "DPM_ILLFTD"),
    ("M:OUTTMP@s,M:OUTTMP,1,0,=", "DPM_NOT_YET"),
    ("Z&ACLTST", "DIO_SETONLY"),
    ("Z&ACLTST@p,1000", "DIO_SETONLY"),
]


@pytest.mark.parametrize(("text", "name"), REFUSALS)
def test_refusals_carry_the_real_status(model: DeviceModel, text: str, name: str) -> None:
    with pytest.raises(RequestRejected) as info:
        model.resolve(text)
    assert Status.from_int(info.value.status).name == name
    assert info.value.drf == text
    reply, bound = model.add_to_list(9, 4, text)
    assert bound is None
    assert reply == dpm.AddToListReply(list_id=9, ref_id=4, status=code(name))


def test_the_transcripts_not_found_status_is_dpm_no_such_device() -> None:
    assert code("DPM_NO_SUCH_DEVICE") == -6639


def test_a_non_string_drf_is_a_bad_request(model: DeviceModel) -> None:
    with pytest.raises(RequestRejected) as info:
        model.resolve(42)  # type: ignore[arg-type]
    assert info.value.status == code("DPM_BAD_REQUEST")


def test_the_fastest_period_is_accepted(model: DeviceModel) -> None:
    assert entry(model, f"M:OUTTMP@p,{MIN_PERIOD_US}U").event == drf.PeriodicEvent(MIN_PERIOD_US)


def test_control_is_accepted_for_settings(model: DeviceModel) -> None:
    e = entry(model, "Z&ACLTST@N")
    assert e.event == drf.NeverEvent()


# ------------------------------------------------------------------- events


def test_events(model: DeviceModel) -> None:
    assert entry(model, "M:OUTTMP").event == drf.ImmediateEvent()  # the device's default
    assert entry(model, "M:OUTTMP@U").event == drf.ImmediateEvent()
    assert entry(model, "M:OUTTMP@p,500").event == drf.PeriodicEvent(500_000)
    assert entry(model, "M:OUTTMP@q,500").event == drf.PeriodicEvent(500_000, continuous=False)
    assert entry(model, "M:OUTTMP@e,2,H,10").event == drf.ClockEvent(
        2, drf.ClockType.HARDWARE, 10_000
    )
    assert entry(model, "M:OUTTMP@N").event == drf.NeverEvent()


def test_a_device_default_event_comes_from_the_file() -> None:
    model = DeviceModel.from_toml(
        '[[device]]\nname = "Z:A"\ndi = 1\ndescription = "a"\ndefault_event = "p,250"\n'
    )
    assert model.resolve("Z:A").event == drf.PeriodicEvent(250_000)
    assert model.resolve("Z:A@U").event == drf.PeriodicEvent(250_000)
    assert model.resolve("Z:A@I").event == drf.ImmediateEvent()


def test_clock_periods(model: DeviceModel) -> None:
    assert model.clock_period(0x02) == pytest.approx(1 / 15)
    assert model.clock_period(0x0F) == 1.0
    assert model.clock_period(0x77) == model.default_clock_period == 1.0


def test_status_reply() -> None:
    assert status_reply(3, -6639, 1763769600.0) == dpm.StatusReply(
        ref_id=3, timestamp=1763769600000, cycle=0, status=-6639
    )


# ------------------------------------------------------------------ alarms


def test_the_analog_alarm_follows_the_reading(model: DeviceModel) -> None:
    alarm = entry(model, "Z@ACLTST")
    assert alarm.reply(1, NOW).alarm_status is False
    assert model.apply_setting(entry(model, "Z@ACLTST.MAX"), 10.0) == 0
    reply = alarm.reply(1, NOW)
    assert (reply.maximum, reply.alarm_status) == (10.0, True)
    assert entry(model, "Z@ACLTST.ALARM_STATUS").reply(1, NOW).data == 1.0


def test_the_digital_alarm_follows_the_status(model: DeviceModel) -> None:
    assert model.apply_setting(entry(model, "Z$ACLTST.ALARM_ENABLE"), 1) == 0
    digital = entry(model, "Z$ACLTST")
    assert digital.reply(1, NOW).alarm_status is False  # on and ready, as nominal
    assert model.apply_setting(entry(model, "Z&ACLTST@N"), daqdata.BasicControl.OFF) == 0
    assert digital.reply(1, NOW).alarm_status is True


def test_nominal_and_tolerance_of_the_analog_alarm(model: DeviceModel) -> None:
    assert entry(model, "Z@ACLTST.NOM").reply(1, NOW).data == 50.0
    assert entry(model, "Z@ACLTST.TOL").reply(1, NOW).data == 50.0
    assert model.apply_setting(entry(model, "Z@ACLTST.NOM"), 20.0) == 0
    assert model.apply_setting(entry(model, "Z@ACLTST.TOL"), 5.0) == 0
    reply = entry(model, "Z@ACLTST").reply(1, NOW)
    assert (reply.minimum, reply.maximum) == (15.0, 25.0)


# ---------------------------------------------------------------- settings


def test_the_reading_follows_the_setting(model: DeviceModel) -> None:
    assert model.apply_setting(entry(model, "Z:ACLTST.SETTING@N"), [12.0]) == 0
    assert entry(model, "Z_ACLTST").reply(1, NOW).data == 12.0
    assert abs(entry(model, "Z:ACLTST").reply(1, NOW).data - 12.0) <= 0.05


def test_array_settings_write_their_range(model: DeviceModel) -> None:
    assert model.apply_setting(entry(model, "Z_ACLTS1[2:3]"), (-1.0, -2.0)) == 0
    data = entry(model, "Z_ACLTS1").reply(1, NOW).data
    assert data[:5] == pytest.approx([0.0, 1.5, -1.0, -2.0, 6.0])


def test_raw_settings_are_float32_little_endian(model: DeviceModel) -> None:
    assert model.apply_setting(entry(model, "G:AMANDA.SETTING.RAW@N"), struct.pack("<f", 2.5)) == 0
    assert entry(model, "G_AMANDA").reply(1, NOW).data == 2.5
    assert entry(model, "G:AMANDA.SETTING.RAW").reply(1, NOW).data == struct.pack("<f", 2.5)


def test_text_and_raw_device_settings(model: DeviceModel) -> None:
    assert model.apply_setting(entry(model, "Z_STRTST"), ["hello"]) == 0
    assert entry(model, "Z:STRTST").reply(1, NOW).data == "hello"
    assert model.apply_setting(entry(model, "Z_RAWTST{1:2}"), b"\xab\xcd") == 0
    assert entry(model, "Z:RAWTST{0:4}").reply(1, NOW).data == bytes.fromhex("00abcd33")


@pytest.mark.parametrize(
    ("command", "attribute", "state"),
    [
        (daqdata.BasicControl.OFF, "on", False),
        (daqdata.BasicControl.ON, "on", True),
        (daqdata.BasicControl.NEGATIVE, "positive", False),
        (daqdata.BasicControl.RAMP, "ramp", True),
        (daqdata.BasicControl.DC, "ramp", False),
        (2, "on", False),  # Java's BasicControlDefs ordinal for OFF, as DPM/TCP clients send
        (5.0, "ramp", True),  # RAMP, as a scaled setting
    ],
)
def test_control_commands_change_the_basic_status(
    model: DeviceModel, command: object, attribute: str, state: bool
) -> None:
    assert model.apply_setting(entry(model, "Z&ACLTST@N"), [float(command)]) == 0
    assert getattr(entry(model, "Z|ACLTST").reply(1, NOW), attribute) is state


def test_reset_makes_the_device_ready(model: DeviceModel) -> None:
    model.device("Z:ACLTST").status.ready = False
    assert model.apply_setting(entry(model, "Z&ACLTST@N"), daqdata.BasicControl.RESET) == 0
    assert entry(model, "Z|ACLTST.READY").reply(1, NOW).data == 1.0


SETTING_REFUSALS = [
    ("M:OUTTMP", 1.0, "DIO_READONLY"),
    ("M~OUTTMP", "x", "DIO_READONLY"),
    ("Z|ACLTST", 1.0, "DIO_READONLY"),
    ("Z@ACLTST.ALARM_STATUS", 1.0, "DIO_READONLY"),
    ("Z@ACLTST.TRIES_NOW", 1.0, "DIO_READONLY"),
    ("Z_ACLTST", [1.0, 2.0], "DPM_BAD_LENGTH"),
    ("Z_ACLTS1[0:3]", [1.0], "DPM_BAD_LENGTH"),
    ("Z_ACLTST", b"\x00\x00", "DPM_BAD_LENGTH"),
    ("Z_RAWTST", b"\x00", "DPM_BAD_LENGTH"),
    ("Z_STRTST", "x" * 65, "DPM_BAD_LENGTH"),
    ("Z@ACLTST.MAX", [1.0, 2.0], "DPM_BAD_LENGTH"),
    ("Z_ACLTST", "text", "DIO_INVDATA"),
    ("Z_ACLTST", ["a", "b"], "DIO_INVDATA"),
    ("Z_STRTST", 1.0, "DIO_INVDATA"),
    ("Z_RAWTST", 1.0, "DIO_INVDATA"),
    ("Z&ACLTST@N", 25, "DIO_SCALEFAIL"),  # beyond its 12-command table, as the real DPM says
    ("Z&ACLTST@N", 1.5, "DIO_INVDATA"),
    ("Z&ACLTST@N", "ON", "DIO_INVDATA"),
    ("Z$ACLTST.MASK", 1.5, "DIO_INVDATA"),
    ("Z@ACLTST.MAX", "high", "DIO_INVDATA"),
    ("Z@ACLTST", 1.0, "DPM_NO_SUCH_FIELD"),
    ("Z$ACLTST.MASK", 2.0**40, "DIO_RANGE"),
    ("Z@ACLTST.TRIES_NEEDED", -(2.0**31) - 1, "DIO_RANGE"),
]


@pytest.mark.parametrize(("text", "value", "name"), SETTING_REFUSALS)
def test_setting_refusals(model: DeviceModel, text: str, value: object, name: str) -> None:
    before = [entry(model, t).reply(1, NOW) for t in ("Z_ACLTST", "Z_ACLTS1", "Z@ACLTST")]
    assert model.apply_setting(entry(model, text), value) == code(name)
    after = [entry(model, t).reply(1, NOW) for t in ("Z_ACLTST", "Z_ACLTS1", "Z@ACLTST")]
    assert after == before


def test_protection_is_there_for_the_authorization_layer(model: DeviceModel) -> None:
    assert model.device("Z:ACLTST").protection == 0x1
    assert model.device("Z:SIM0001").protection == 0x2
    assert model.device("M:OUTTMP").protection == 0


# --------------------------------------------------------------- the file


def test_load_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "devices.toml"
    path.write_text(
        '[clock.events]\n"8f" = 0.5\n'
        '[[device]]\nname = "Z:ONE"\ndi = 7\ndescription = "one"\nkind = "array"\n'
        "value = [1, 2, 3]\namplitude = 0\n"
        '[[family]]\nprefix = "Z:F"\ncount = 3\nfirst_di = 100\ndescription = "f{index}"\n'
    )
    model = DeviceModel.load(path)
    assert model.resolve("Z:ONE").reply(1, NOW).data == (1.0, 2.0, 3.0)
    assert model.device("Z:F2").description == "f2"
    assert model.device("Z:F3") is None
    assert model.clock_period(0x8F) == 0.5


def test_outtmp_wanders_slowly_within_its_amplitude(model: DeviceModel) -> None:
    outtmp = model.device("M:OUTTMP")
    assert outtmp.motion is Motion.WALK and outtmp.amplitude == 0.3 and outtmp.period == 60.0
    times = [0.5 * k for k in range(20_000)]  # almost three hours
    offsets = [outtmp.wave(t) for t in times]
    assert max(map(abs, offsets)) <= outtmp.amplitude
    # it goes somewhere: both sides of the setting, a good part of the way out
    assert max(offsets) > outtmp.amplitude / 4 and min(offsets) < -outtmp.amplitude / 4
    # slowly: half a second moves it little, a minute moves it far more
    steps = [abs(b - a) for a, b in itertools.pairwise(offsets)]
    minutes = [abs(b - a) for a, b in zip(offsets, offsets[120:], strict=False)]
    assert max(steps) < outtmp.amplitude / 5
    assert sum(minutes) / len(minutes) > 5 * sum(steps) / len(steps)
    # not a sine: no single period brings it back to where it was
    for lag in range(2, 400):  # periods from 1 s to 200 s
        assert max(abs(offsets[k + lag] - offsets[k]) for k in range(5000)) > 0.01


def test_a_walk_is_the_same_for_every_model_and_its_own_for_each_device() -> None:
    text = (
        BASE
        + 'amplitude = 1.0\nmotion = "walk"\n'
        + BASE.replace("Z:A", "Z:B").replace("di = 1", "di = 2")
        + 'amplitude = 1.0\nmotion = "walk"\n'
    )
    first, second = DeviceModel.from_toml(text), DeviceModel.from_toml(text)
    a, b = first.device("Z:A"), first.device("Z:B")
    times = [1.7 * k for k in range(200)]
    assert [a.wave(t) for t in times] == [second.device("Z:A").wave(t) for t in times]
    assert [a.wave(t) for t in times] != [b.wave(t) for t in times]
    assert DeviceModel.from_toml(BASE).device("Z:A").motion is Motion.WAVE


BASE = '[[device]]\nname = "Z:A"\ndi = 1\ndescription = "a"\n'
BAD_FILES = [
    ("[[device]\n", "not valid TOML"),
    ('[[device]]\ndi = 1\ndescription = "a"\n', "missing required key 'name'"),
    ('[[device]]\nname = "Z:A"\ndescription = "a"\n', "device Z:A: missing required key 'di'"),
    (BASE + "colour = 3\n", "unknown key(s) ['colour']"),
    (BASE.replace("di = 1", 'di = "1"'), "'di' must be int"),
    (BASE.replace("di = 1", "di = true"), "'di' must be int"),
    (BASE + 'kind = "vector"\n', "kind 'vector' is not one of"),
    (BASE + 'motion = "jitter"\n', "device Z:A: motion 'jitter' is not one of ['wave', 'walk']"),
    (BASE.replace("di = 1", "di = 2147483648"), "'di' must be in 0..2147483647"),
    (BASE + "format_hint = 40000\n", "'format_hint' must be in -32768..32767"),
    (
        '[[family]]\nprefix = "Z:F"\ncount = 10\nfirst_di = 2147483640\ndescription = "f"\n',
        "'first_di' must be in 0..2147483638",
    ),
    (BASE + 'kind = "array"\n', "an array needs 'length'"),
    (BASE + 'kind = "array"\nlength = 2\nvalue = [1, 2, 3]\n', "must have 'length' numbers"),
    (BASE + 'kind = "raw"\nvalue = "xyz"\n', "is not hex digits"),
    (BASE + 'kind = "text"\nlength = 2\nvalue = "abc"\n', "longer than 'length'"),
    (BASE + "step = 1.0\n", "'step' is only for kind"),
    (BASE + "period = 0\n", "'period' must be a positive number"),
    (BASE + 'default_event = "q,"\n', "default_event 'q,' is not a DRF event"),
    (BASE + 'default_event = "U"\n', "must be I, N, periodic or clock"),
    (BASE + "status = { on = 1 }\n", "device Z:A.status: 'on' must be bool"),
    (BASE + "analog = { low = 1.0 }\n", "device Z:A.analog: unknown key(s) ['low']"),
    (BASE + "digital = { mask = 0x1_0000_0000 }\n", "'mask' must be in -2147483648.."),
    (BASE.replace("Z:A", "z:a"), "is not a device name"),
    (BASE + BASE, "device Z:A: the name is used twice"),
    (BASE + BASE.replace("Z:A", "Z:B"), "di 1 is used twice"),
    ('[clock.events]\n"zz" = 1.0\n', "clock.events.zz: the key must be a clock event number"),
    ("[clock]\ndefault_period = -1\n", "'default_period' must be a positive number"),
    ("colour = 1\n", "top level: unknown key(s) ['colour']"),
    (
        BASE + '[[family]]\nprefix = "Z:F"\ncount = 10\nfirst_di = 0\ndescription = "f"\n',
        "its dis 0..9 include Z:A's 1",
    ),
    (
        '[[family]]\nprefix = "Z:F"\ncount = 100\ndigits = 1\nfirst_di = 0\ndescription = "f"\n',
        "100 devices need more than 1 digits",
    ),
    (
        '[[family]]\nprefix = "Z:F"\ncount = 2\nfirst_di = 0\ndescription = "f"\n'
        '[[family]]\nprefix = "Z:G"\ncount = 2\nfirst_di = 1\ndescription = "g"\n',
        "its dis overlap those of family",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD_FILES)
def test_bad_files_are_named_errors(text: str, message: str) -> None:
    with pytest.raises(DeviceModelError) as info:
        DeviceModel.from_toml(text, source="test.toml")
    assert str(info.value).startswith("test.toml: ")
    assert message in str(info.value)


def test_the_sine_is_the_documented_one() -> None:
    model = DeviceModel.from_toml(BASE + "value = 10.0\namplitude = 2.0\nperiod = 8.0\n")
    e = model.resolve("Z:A")
    assert e.reply(1, 2.0).data == pytest.approx(10.0 + 2.0 * math.sin(2 * math.pi * 2.0 / 8.0))


def test_the_model_does_no_io() -> None:
    """Importing and using the model loads no I/O module beyond what the codec already did."""
    code = (
        "import sys\n"
        "import acnet_proto.pc.dpm, acnet_proto.status, acnet_proto.drf\n"
        "acnet_proto.status.known_statuses()\n"
        "before = set(sys.modules)\n"
        "import acnet_proto.sim.model as d\n"
        "m = d.DeviceModel.default()\n"
        "m.apply_setting(m.resolve('Z_ACLTST'), 1.0); m.resolve('Z:SIM0001@p,1000').reply(1, 0.0)\n"
        "print(' '.join(sorted(set(sys.modules) - before)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {name.split(".")[0] for name in done.stdout.split()}
    banned = {
        "socket",
        "selectors",
        "asyncio",
        "trio",
        "threading",
        "ssl",
        "pika",
        "grpc",
        "gssapi",
    }
    assert "acnet_proto" in loaded
    assert not loaded & banned
