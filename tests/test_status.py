"""ACNET status packing and the status-code table."""

from __future__ import annotations

import dataclasses
import importlib.resources
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acnet_proto import status
from acnet_proto.status import Status, UnknownStatusName, pack, unpack
from tests.support import ROOT

CODES = json.loads((ROOT / "protos" / "acnet-status-codes.json").read_text())["codes"]


@given(st.integers(-0x8000, 0x7FFF))
def test_unpack_then_pack_is_identity(value: int) -> None:
    """Every int16 splits into a facility and error that pack back to it."""
    facility, error = unpack(value)
    assert 0 <= facility <= 255
    assert -128 <= error <= 127
    assert pack(facility, error) == value
    assert Status.from_int(value).status == value


@given(st.integers(0, 255), st.integers(-128, 127))
def test_pack_then_unpack_is_identity(facility: int, error: int) -> None:
    """Packing gives a signed int16 that unpacks to the same pair."""
    value = pack(facility, error)
    assert -0x8000 <= value <= 0x7FFF
    assert unpack(value) == (facility, error)
    # the layout the spec gives: facility in the low byte, error above it
    assert value & 0xFF == facility
    assert value >> 8 == error


@pytest.mark.parametrize(
    ("facility", "error", "value"),
    [
        (0, 0, 0),
        (1, 0, 1),  # ACNET success
        (17, -17, -4335),  # DPM_PRIV: 0xEF11
        (72, 1, 328),  # DMQ_PENDING: 0x0148
        (1, -6, -1535),  # ACNET_REQTMO: 0xFA01
        (255, 127, 0x7FFF),
        (0, -128, -0x8000),
        (255, -1, -1),
    ],
)
def test_spec_examples(facility: int, error: int, value: int) -> None:
    """status = facility | (error << 8), as a signed 16-bit value."""
    assert pack(facility, error) == value
    assert unpack(value) == (facility, error)


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: pack(256, 0), "facility"),
        (lambda: pack(-1, 0), "facility"),
        (lambda: pack(1, 128), "error"),
        (lambda: pack(1, -129), "error"),
        (lambda: unpack(0x8000), "status"),
        (lambda: unpack(-0x8001), "status"),
        (lambda: unpack(65535), "status"),
        (lambda: Status(300, 0), "facility"),
        (lambda: Status(1, 200), "error"),
        (lambda: Status.from_int(40000), "status"),
    ],
)
def test_out_of_range_arguments(call: object, argument: str) -> None:
    """Out-of-range numbers are a ValueError that names the argument."""
    with pytest.raises(ValueError, match=argument):
        call()  # type: ignore[operator]


@pytest.mark.parametrize(
    "call",
    [lambda: pack(1.0, 0), lambda: pack(True, 0), lambda: unpack("1"), lambda: Status(1, None)],
)
def test_non_int_arguments(call: object) -> None:
    """Non-ints (bools included) are a TypeError, not a silent conversion."""
    with pytest.raises(TypeError, match="must be an int"):
        call()  # type: ignore[operator]


@pytest.mark.parametrize("entry", CODES, ids=[c["name"] for c in CODES])
def test_every_table_entry_resolves(entry: dict[str, object]) -> None:
    """Each JSON entry is found by name and by (facility, error), both ways."""
    by_name = Status.from_name(entry["name"])  # type: ignore[arg-type]
    assert (by_name.facility, by_name.error) == (entry["facility"], entry["error"])
    by_code = Status(entry["facility"], entry["error"])  # type: ignore[arg-type]
    assert by_code.name == entry["name"]
    assert by_code.text == entry["text"]
    assert Status.from_int(by_code.status) == by_name


def test_table_is_loaded_whole() -> None:
    """known_statuses() is the whole file, in file order."""
    assert [s.name for s in status.known_statuses()] == [c["name"] for c in CODES]


def test_named_status() -> None:
    """A known status has a name, a meaning and a readable str()."""
    priv = Status.from_name("DPM_PRIV")
    assert (priv.facility, priv.error, priv.status) == (17, -17, -4335)
    assert str(priv) == "DPM_PRIV [17 -17]: Insufficient privileges for setting"
    assert priv.is_error and not priv.is_warning and not priv.is_success


def test_from_name_ignores_case() -> None:
    """Names are matched without regard to case."""
    assert Status.from_name("dmq_pending") == Status(72, 1)
    assert Status.from_name("dmq_pending").is_warning


@pytest.mark.parametrize("name", ["DPM_NOPE", "", "PRIV"])
def test_from_name_unknown(name: str) -> None:
    """An unknown name is a LookupError (a KeyError) that names it."""
    with pytest.raises(UnknownStatusName) as info:
        Status.from_name(name)
    assert isinstance(info.value, KeyError)
    assert isinstance(info.value, LookupError)
    assert repr(name) in str(info.value)


def test_from_name_rejects_non_str() -> None:
    """from_name(17) is a TypeError, not a miss."""
    with pytest.raises(TypeError, match="int"):
        Status.from_name(17)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "text", "shown"),
    [
        (Status(1, 0), "success", "ACNET [1 0]: success"),
        (Status(17, -99), "unknown error", "DPM [17 -99]: unknown error"),
        (Status(16, 100), "unknown warning", "DBM [16 100]: unknown warning"),
        (Status(200, -1), "unknown error", "STATUS [200 -1]: unknown error"),
    ],
)
def test_unknown_status(value: Status, text: str, shown: str) -> None:
    """A status missing from the table has no name but still reads sensibly."""
    assert value.name is None
    assert value.text == text
    assert str(value) == shown


@given(st.integers(0, 255), st.integers(-128, 127))
def test_severity_follows_sign(facility: int, error: int) -> None:
    """Exactly one of success/warning/error holds, chosen by the error's sign."""
    value = Status(facility, error)
    flags = (value.is_success, value.is_warning, value.is_error)
    assert flags == (error == 0, error > 0, error < 0)


def test_status_is_immutable_and_hashable() -> None:
    """Status is a frozen, slotted value usable as a dict key."""
    value = Status(17, -17)
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.error = 0  # type: ignore[misc]
    assert not hasattr(value, "__dict__")
    assert {value: 1}[Status.from_name("DPM_PRIV")] == 1


def test_facility_names() -> None:
    """Facilities are named after their statuses' prefixes."""
    assert status.facility_name(1) == "ACNET"
    assert status.facility_name(16) == "DBM"
    assert status.facility_name(17) == "DPM"
    assert status.facility_name(250) is None


def test_loads_from_source_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an install (no acnet_proto.protos), the table is read from protos/."""

    def not_installed(package: str) -> object:
        raise ModuleNotFoundError(f"No module named {package!r}")

    monkeypatch.setattr(importlib.resources, "files", not_installed)
    status._table.cache_clear()
    try:
        assert Status(17, -17).name == "DPM_PRIV"
        assert len(status.known_statuses()) == len(CODES)
    finally:
        status._table.cache_clear()


def test_from_name_shows_a_long_or_hostile_name_bounded_and_escaped() -> None:
    # ACL prints status names: one that is no status may be megabytes of anything
    name = "DIO_\x1b[2J" + "X" * 100_000
    with pytest.raises(UnknownStatusName) as info:
        Status.from_name(name)
    message = str(info.value)
    assert "DIO_\\x1b[2J" in message and "\x1b" not in message and len(message) < 300
