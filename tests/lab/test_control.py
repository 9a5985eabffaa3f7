"""Z:ACLTST's control table and status bits, as the lab's database describes them.

Its 12 commands (ordinal -> command value): 0 RESET 3, 1 ON 1, 2 OFF 2,
3 POSITIVE 4, 4 NEGATIVE 16, 5 RAMP 5, 6 DC 6, 7 TEST 8, 8 TEST2 256,
9 TEST3 257, 10 TEST4 258, 11 TEST5 259. Its status bits: on 0x1, ready 0x2,
positive 0x8, ramp 0x200, and no remote bit. So BasicControl LOCAL, REMOTE and
TRIP (ordinals 7, 8, 9) land on TEST, TEST2 and TEST3, and toggle nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from acnet_proto.adapters.acl import ACLBackend
from acnet_proto.adapters.dmq.backend import DMQBackend
from acnet_proto.api.backend import Backend
from acnet_proto.api.device import Device
from acnet_proto.types import BasicControl
from tests.lab.conftest import T, set_value, settable

pytestmark = pytest.mark.integration

TABLE = [
    ("RESET", 3),
    ("ON", 1),
    ("OFF", 2),
    ("POSITIVE", 4),
    ("NEGATIVE", 16),
    ("RAMP", 5),
    ("DC", 6),
    ("TEST", 8),
    ("TEST2", 256),
    ("TEST3", 257),
    ("TEST4", 258),
    ("TEST5", 259),
]
BITS = {"on": 0x1, "ready": 0x2, "positive": 0x8, "ramp": 0x200}
#: (command that sets the bit, command that clears it, the bit)
PAIRS = [
    (BasicControl.ON, BasicControl.OFF, "on"),
    (BasicControl.POSITIVE, BasicControl.NEGATIVE, "positive"),
    (BasicControl.RAMP, BasicControl.DC, "ramp"),
]
#: ordinals whose commands are the device's own TESTn: accepted, and no bit moves
UNPAIRED = [BasicControl.LOCAL, BasicControl.REMOTE, BasicControl.TRIP, 10, 11]


def acltst(backend: Backend) -> Device:
    return Device(settable("Z:ACLTST"), backend)


@pytest.fixture
def restored(writer: Backend) -> Iterator[Backend]:
    """``writer``, with Z:ACLTST's status put back as it was after the test."""
    before = acltst(writer).status(timeout=T)
    yield writer
    for on, off, bit in PAIRS:
        if bit in before:
            acltst(writer).control(on if before[bit] else off, timeout=T)


def test_the_status_has_on_ready_positive_ramp_and_no_remote(reader: Backend) -> None:
    if isinstance(reader, ACLBackend):
        pytest.skip("the ACL CGI prints a status as text: there is no dict to compare")
    status = reader.read("Z|ACLTST", T)
    if isinstance(reader, DMQBackend):
        # DAQData's BasicStatus has all five fields, so over DMQ a bit the device
        # lacks cannot be left out: it travels as False
        assert status.pop("remote") is False
    assert set(status) == set(BITS)


@pytest.mark.parametrize(("on", "off", "bit"), PAIRS, ids=[bit for *_, bit in PAIRS])
def test_each_pair_of_commands_toggles_its_bit(
    restored: Backend, on: BasicControl, off: BasicControl, bit: str
) -> None:
    device = acltst(restored)
    for command, expected in ((on, True), (off, False), (on, True)):
        result = device.control(command, verify=True, timeout=T)
        assert result.ok and result.verified, result
        assert device.status(field=bit, timeout=T) is expected


def test_reset_is_accepted_and_leaves_the_device_ready(restored: Backend) -> None:
    result = acltst(restored).control(BasicControl.RESET, verify=True, timeout=T)
    assert result.ok and result.verified, result
    assert acltst(restored).status(field="ready", timeout=T) is True


@pytest.mark.parametrize("ordinal", UNPAIRED, ids=lambda o: f"ordinal{int(o)}")
def test_the_test_commands_are_accepted_and_toggle_nothing(restored: Backend, ordinal: Any) -> None:
    before = acltst(restored).status(timeout=T)
    assert set_value(restored, "Z&ACLTST", ordinal).ok
    assert acltst(restored).status(timeout=T) == before


def test_devdb_lists_the_twelve_commands(devdb: Any) -> None:
    info = devdb.get_device_info(["Z:ACLTST"])["Z:ACLTST"]
    table = [(command.short_name.upper(), command.value) for command in info.control]
    assert table == TABLE


def test_devdb_lists_four_status_bits_and_no_remote(devdb: Any) -> None:
    info = devdb.get_device_info(["Z:ACLTST"])["Z:ACLTST"]
    assert sorted(bit.mask for bit in info.status_bits) == sorted(BITS.values())
    names = " ".join(f"{bit.short_name} {bit.long_name}" for bit in info.status_bits).lower()
    assert "remote" not in names
