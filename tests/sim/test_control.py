"""Control tables and status layouts: what a command does, what STATUS says, the model file's keys.

Z:ACLTST has the lab's table and layout (lab-devices.md): 12 commands whose
ordinals 7..11 are TEST..TEST5, and the bits on 0x1, ready 0x2, positive
0x8, ramp 0x200 with no remote bit. Z:PSTEST has the standard ones.
"""

from __future__ import annotations

import pytest

from acnet_proto.pc import daqdata, dpm
from acnet_proto.sim import DeviceModel, DeviceModelError, RequestRejected
from acnet_proto.sim.codes import DIO_SCALEFAIL
from acnet_proto.sim.control import COMMAND_MEANINGS, STANDARD_COMMANDS, STATUS_BITS
from acnet_proto.sim.devdb import info_entry
from acnet_proto.sim.devices import BasicStatus
from acnet_proto.status import Status
from acnet_proto.types import BasicControl

NOW = 1763769600.015
LAB_VALUES = [3, 1, 2, 4, 16, 5, 6, 8, 256, 257, 258, 259]  # Z:ACLTST's, by ordinal


def code(name: str) -> int:
    return Status.from_name(name).status


@pytest.fixture
def model() -> DeviceModel:
    return DeviceModel.default()


def status_of(model: DeviceModel, name: str) -> BasicStatus:
    status = model.device(name).status
    assert status is not None
    return status


def control(model: DeviceModel, name: str, value: object) -> int:
    return model.apply_setting(model.resolve(f"{name}.CONTROL@N"), value)


def reply(model: DeviceModel, text: str) -> object:
    return model.resolve(text).reply(1, NOW)


# ------------------------------------------------------------ what a command does


def test_the_lab_table_of_z_acltst(model: DeviceModel) -> None:
    commands = status_of(model, "Z:ACLTST").commands
    assert [c.value for c in commands] == LAB_VALUES
    assert [c.name for c in commands][6:] == ["DC", "TEST", "TEST2", "TEST3", "TEST4", "TEST5"]


@pytest.mark.parametrize(
    ("on", "off", "attribute"),
    [
        (BasicControl.ON, BasicControl.OFF, "on"),
        (BasicControl.POSITIVE, BasicControl.NEGATIVE, "positive"),
        (BasicControl.RAMP, BasicControl.DC, "ramp"),
    ],
)
def test_pairs_toggle_their_bit_on_z_acltst(
    model: DeviceModel, on: BasicControl, off: BasicControl, attribute: str
) -> None:
    status = status_of(model, "Z:ACLTST")
    assert control(model, "Z:ACLTST", float(off)) == 0
    assert getattr(reply(model, "Z|ACLTST"), attribute) is False
    assert control(model, "Z:ACLTST", float(on)) == 0
    assert getattr(status, attribute) is True


@pytest.mark.parametrize("ordinal", [7, 8, 9, 10, 11])
def test_the_test_commands_are_accepted_and_change_nothing(
    model: DeviceModel, ordinal: int
) -> None:
    status = status_of(model, "Z:ACLTST")
    status.on, status.ramp = False, True  # so that no command could leave it as it is by chance
    before = (status.word, status.on, status.ready, status.positive, status.ramp)
    assert control(model, "Z:ACLTST", ordinal) == 0
    assert (status.word, status.on, status.ready, status.positive, status.ramp) == before
    assert status.remote is None


@pytest.mark.parametrize("number", [12, 25, -1, 65535])
def test_an_ordinal_beyond_the_table_is_scalefail(model: DeviceModel, number: int) -> None:
    assert code("DIO_SCALEFAIL") == DIO_SCALEFAIL
    assert control(model, "Z:ACLTST", number) == DIO_SCALEFAIL


@pytest.mark.parametrize("value", [1.5, "ON", [1.0, 2.0], b"\x01"])
def test_a_value_that_is_no_ordinal_is_invdata(model: DeviceModel, value: object) -> None:
    assert control(model, "Z:ACLTST", value) == code("DIO_INVDATA")


def test_the_standard_table_drives_every_bit(model: DeviceModel) -> None:
    status = status_of(model, "Z:PSTEST")
    assert status.commands == STANDARD_COMMANDS and len(status.commands) == 10
    steps = [
        (BasicControl.LOCAL, "remote", False),
        (BasicControl.REMOTE, "remote", True),
        (BasicControl.TRIP, "ready", False),
        (BasicControl.RESET, "ready", True),
        (BasicControl.OFF, "on", False),
    ]
    for command, attribute, state in steps:
        assert control(model, "Z:PSTEST", int(command)) == 0
        assert getattr(status, attribute) is state, command.name
    assert control(model, "Z:PSTEST", 10) == DIO_SCALEFAIL


def test_a_daqdata_wire_value_selects_the_ordinal_of_its_name(model: DeviceModel) -> None:
    status = status_of(model, "Z:ACLTST")
    assert control(model, "Z:ACLTST", daqdata.BasicControl.NEGATIVE) == 0
    assert status.positive is False  # ordinal 4, the lab's NEGATIVE (16)
    status.ready = False
    assert control(model, "Z:ACLTST", daqdata.BasicControl.RESET) == 0
    assert status.ready is True


def test_a_command_on_a_bit_the_device_lacks_changes_nothing() -> None:
    layout = tuple(bit for bit in STATUS_BITS if bit.attribute != "ready")
    status = BasicStatus(ready=False, bits=layout)
    model = DeviceModel.from_toml(
        '[[device]]\nname = "Z:NORDY"\ndi = 7\ndescription = "x"\n'
        "status = { on = true }\nstatus_bits = { on = 0x1, remote = 0x4 }\n"
    )
    assert status.ready is None and status.word == 0x1 | 0x4 | 0x8  # on, remote, positive
    assert control(model, "Z:NORDY", int(BasicControl.TRIP)) == 0
    assert model.device("Z:NORDY").status.states == {"on": True, "remote": True}


def test_every_meaning_is_a_command_of_the_standard_table() -> None:
    assert sorted(COMMAND_MEANINGS.values()) == sorted(BasicControl)
    assert [COMMAND_MEANINGS[c.value] for c in STANDARD_COMMANDS] == list(BasicControl)


# ------------------------------------------------------------ what STATUS says


def test_an_absent_bit_is_absent_from_the_basic_status(model: DeviceModel) -> None:
    got = reply(model, "Z|ACLTST")
    assert isinstance(got, dpm.BasicStatusReply)
    bits = (got.on, got.ready, got.remote, got.positive, got.ramp)
    assert bits == (True, True, None, True, False)
    # and so on the wire: the optional field is not sent
    assert dpm.decode_reply(dpm.encode(got)).remote is None


def test_a_field_for_an_absent_bit_is_no_such_field(model: DeviceModel) -> None:
    with pytest.raises(RequestRejected) as refused:
        model.resolve("Z:ACLTST.STATUS.REMOTE")
    assert refused.value.status == code("DPM_NO_SUCH_FIELD")
    assert "no remote status bit" in str(refused.value)
    assert reply(model, "Z:PSTEST.STATUS.REMOTE").data == 1.0


def test_the_status_fields_follow_the_layout(model: DeviceModel) -> None:
    status = status_of(model, "Z:ACLTST")
    status.ramp = True
    word = 0x1 | 0x2 | 0x8 | 0x200
    assert reply(model, "Z|ACLTST.RAW").data == word.to_bytes(2, "little")
    assert reply(model, "Z|ACLTST.BIT_VALUE").data == float(word)
    # indexed by bit number, as the lab's DPM sends them: "" where the device has no bit
    gap = [""] * 5
    names, texts = ["On", "Ready", "", "Polarity", *gap, "Ramp"], ["Yes", "Yes", "", "Plus"]
    assert list(reply(model, "Z|ACLTST.BIT_NAMES").data) == names
    assert list(reply(model, "Z|ACLTST.BIT_VALUES").data) == [*texts, *gap, "Ramp"]
    assert reply(model, "Z|ACLTST.TEXT").data == "Yes Yes Plus Ramp"
    assert reply(model, "Z|ACLTST.RAMP").data == 1.0


def test_the_lab_texts_of_a_status_word_of_2(model: DeviceModel) -> None:
    status = status_of(model, "Z:ACLTST")
    status.on, status.positive = False, False
    # what the lab's DPM answered for Z:ACLTST with the word 0x2 (bit 9, ramp, is clear)
    assert list(reply(model, "Z|ACLTST.BIT_NAMES").data)[:4] == ["On", "Ready", "", "Polarity"]
    assert list(reply(model, "Z|ACLTST.BIT_VALUES").data)[:4] == ["No", "Yes", "", "Minus"]


def test_without_a_layout_a_device_has_the_five_standard_bits(model: DeviceModel) -> None:
    names = ["On", "Ready", "Remote", "Polarity", "Ramp"]
    assert list(reply(model, "Z|PSTEST.BIT_NAMES").data) == names
    assert reply(model, "Z|PSTEST.BIT_VALUE").data == float(0b01111)


# ------------------------------------------------------------ the DevDB view


def test_devdb_describes_the_table_and_the_layout_the_dpm_serves(model: DeviceModel) -> None:
    info = info_entry(model, "z:acltst").device
    status = status_of(model, "Z:ACLTST")
    assert [(c.value, c.short_name, c.long_name) for c in info.control.cmds] == [
        (c.value, c.name, c.long_name) for c in status.commands
    ]
    # the DevDB's short name for bit 0 is not DPM's BIT_NAMES name ("On")
    assert [(b.mask_val, b.short_name) for b in info.status.bits] == [
        (0x1, "OnOff"), (0x2, "Ready"), (0x8, "Polarity"), (0x200, "Ramp"),
    ]  # fmt: skip
    assert [b.bit_no for b in info.status.ext_bits] == [0, 1, 3, 9]
    standard = info_entry(model, "Z:PSTEST").device
    assert [c.short_name for c in standard.control.cmds] == [c.name for c in BasicControl]


# ------------------------------------------------------------ the model file

BASE = '[[device]]\nname = "Z:A"\ndi = 1\ndescription = "a"\n'


def test_a_table_and_a_layout_from_the_model_file() -> None:
    model = DeviceModel.from_toml(
        BASE + "status = { on = false, ramp = true }\n"
        'status_bits = { ramp = { mask = 0x100, name = "RampDC", true_text = "Ramping" }, '
        "on = 0x1 }\n"
        'control = [{ value = 5, name = "GO", long_name = "Start the ramp" },'
        ' { ordinal = 1, value = 2, name = "OFF" }]\n'
    )
    status = status_of(model, "Z:A")
    assert [(b.attribute, b.mask, b.name) for b in status.bits] == [
        ("on", 0x1, "On"), ("ramp", 0x100, "RampDC"),
    ]  # fmt: skip
    assert (status.on, status.ramp, status.word, status.text) == (False, True, 0x100, "Off Ramping")
    assert [(c.value, c.name, c.long_name) for c in status.commands] == [
        (5, "GO", "Start the ramp"), (2, "OFF", "Turn off"),
    ]  # fmt: skip
    assert control(model, "Z:A", 1) == 0 and control(model, "Z:A", 2) == DIO_SCALEFAIL


def test_a_bit_has_a_dpm_name_and_a_devdb_name() -> None:
    model = DeviceModel.from_toml(
        BASE + "status = {}\n"
        'status_bits = { on = { mask = 0x4, devdb_name = "PwrOnOff" }, ready = { mask = 0x1, '
        'name = "Rdy" } }\n'
    )
    assert list(reply(model, "Z|A.BIT_NAMES").data) == ["Rdy", "", "On"]
    devdb = info_entry(model, "Z:A").device.status
    # the DevDB name defaults to the DPM name
    assert [(b.mask_val, b.short_name) for b in devdb.bits] == [(0x1, "Rdy"), (0x4, "PwrOnOff")]


BAD_KEYS = [
    ("status_bits = { on = 1 }\n", "device Z:A: 'status_bits' needs 'status'"),
    ('control = [{ value = 1, name = "ON" }]\n', "device Z:A: 'control' needs 'status'"),
    (
        "status = { remote = true }\nstatus_bits = { on = 0x1 }\n",
        "device Z:A.status: unknown key(s) ['remote']; allowed: ['on']",
    ),
    (
        "status = {}\nstatus_bits = { on = 0x3 }\n",
        "device Z:A.status_bits.on: 'mask' must be one bit of a 16-bit word",
    ),
    (
        "status = {}\nstatus_bits = { on = 0x10000 }\n",
        "device Z:A.status_bits.on: 'mask' must be one bit of a 16-bit word",
    ),
    (
        "status = {}\nstatus_bits = { on = 0x4, remote = 0x4 }\n",
        "device Z:A.status_bits: on and remote share mask 0x4",
    ),
    ("status = {}\nstatus_bits = { beam = 0x4 }\n", "device Z:A.status_bits: unknown key(s)"),
    ("status = {}\nstatus_bits = {}\n", "device Z:A.status_bits: must be a non-empty table"),
    (
        'status = {}\nstatus_bits = { on = { mask = 1, colour = "red" } }\n',
        "device Z:A.status_bits.on: unknown key(s) ['colour']",
    ),
    (
        "status = {}\nstatus_bits = { on = { mask = 1, devdb_name = 7 } }\n",
        "device Z:A.status_bits.on: 'devdb_name' must be a non-empty str, got 7",
    ),
    ("status = {}\ncontrol = []\n", "device Z:A.control: must be a non-empty array"),
    (
        "status = {}\ncontrol = [{ value = 1 }]\n",
        "device Z:A.control[0]: missing required key 'name'",
    ),
    (
        'status = {}\ncontrol = [{ value = 1, name = "A" }, { value = 70000, name = "B" }]\n',
        "device Z:A.control[1]: 'value' must be in 0..65535",
    ),
    (
        'status = {}\ncontrol = [{ ordinal = 1, value = 1, name = "A" }]\n',
        "device Z:A.control[0]: 'ordinal' is 1 but the entry is number 0",
    ),
    ('status = {}\ncontrol = [{ value = "1", name = "A" }]\n', "'value' must be int, got '1'"),
    ('status = {}\ncontrol = [{ value = 1, name = "" }]\n', "'name' must be a non-empty str"),
]


@pytest.mark.parametrize(("keys", "message"), BAD_KEYS)
def test_a_bad_table_or_layout_names_the_file_device_and_key(keys: str, message: str) -> None:
    with pytest.raises(DeviceModelError) as bad:
        DeviceModel.from_toml(BASE + keys, "lab.toml")
    assert str(bad.value).startswith("lab.toml: ")
    assert message in str(bad.value)
