"""Reading, WriteResult, DeviceMeta and ValueType: pacsys's semantics, made immutable.

pacsys (a dev dependency) is the oracle for names, value-type strings and
status predicates; the tests compare against it rather than restating it.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import numpy as np
import pacsys.types as pacsys_types
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pacsys.drf_utils import get_device_name

from acnet_proto.status import Status
from acnet_proto.types import DeviceMeta, Reading, ValueType, WriteResult

AT = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
META = DeviceMeta(27235, "M:OUTTMP", "Outdoor temperature", "DegF", 2)


def array(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)


# ------------------------------------------------------------------ ValueType


def test_value_types_are_pacsys_value_types() -> None:
    """Same members, same strings: code that switches on ``value_type.value`` keeps working."""
    ours = {m.name: m.value for m in ValueType}
    theirs = {m.name: m.value for m in pacsys_types.ValueType}
    assert ours == theirs


# ---------------------------------------------------------------- DeviceMeta


def test_device_meta_is_frozen_and_compares_by_value() -> None:
    same = DeviceMeta(27235, "M:OUTTMP", "Outdoor temperature", "DegF", 2)
    assert same == META
    assert hash(same) == hash(META)
    with pytest.raises(dataclasses.FrozenInstanceError):
        META.units = "C"  # type: ignore[misc]


def test_device_meta_units_and_format_are_optional() -> None:
    meta = DeviceMeta(1, "Z:ACLTST", "test device")
    assert meta.units is None
    assert meta.format_hint is None


# ------------------------------------------------------ Reading construction


def test_value_without_value_type_is_refused_naming_the_drf() -> None:
    with pytest.raises(ValueError, match="M:OUTTMP") as caught:
        Reading("M:OUTTMP", value=1.0)
    assert "value_type" in str(caught.value)


def test_an_error_reading_needs_no_value_type() -> None:
    reading = Reading("M:OUTTMP", facility_code=17, error_code=-26)
    assert reading.value is None
    assert reading.value_type is None


# ------------------------------------------------------------ immutability


def test_reading_fields_cannot_be_assigned() -> None:
    reading = Reading("M:OUTTMP", ValueType.SCALAR, value=1.5)
    for field in ("drf", "value", "error_code", "timestamp", "meta"):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(reading, field, None)


def test_reading_copies_a_writable_array_and_makes_it_read_only() -> None:
    given_array = array(1.0, 2.0, 3.0)
    reading = Reading("Z:ACLTS1", ValueType.SCALAR_ARRAY, value=given_array)
    assert not reading.value.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        reading.value[0] = 99.0
    # the caller's array is still the caller's: changing it leaves the reading alone
    given_array[0] = 99.0
    assert reading.value[0] == 1.0
    assert given_array.flags.writeable


def test_reading_turns_lists_into_tuples() -> None:
    reading = Reading("Z:ACLTST.DESCRIPTION", ValueType.TEXT_ARRAY, value=["a", "b"])
    assert reading.value == ("a", "b")
    assert isinstance(reading.value, tuple)


def test_arrays_inside_a_timed_array_value_are_read_only() -> None:
    data, micros = array(1.0, 2.0), np.array([10, 20], dtype=np.int64)
    reading = Reading(
        "Z:ACLTS1", ValueType.TIMED_SCALAR_ARRAY, value={"data": data, "micros": micros}
    )
    for key in ("data", "micros"):
        assert not reading.value[key].flags.writeable
    data[0] = 99.0
    assert reading.value["data"][0] == 1.0


def test_write_result_readback_is_frozen_like_a_value() -> None:
    readback = array(1.0, 2.0)
    result = WriteResult("Z:ACLTS1", readback=readback)
    assert not result.readback.flags.writeable
    readback[0] = 5.0
    assert result.readback[0] == 1.0
    assert WriteResult("Z:ACLTST", readback=[1, 2]).readback == (1, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.verified = True  # type: ignore[misc]


# ----------------------------------------------------------------- equality


def test_readings_with_equal_arrays_are_equal_and_hash_equal() -> None:
    a = Reading("Z:ACLTS1", ValueType.SCALAR_ARRAY, value=array(1.0, 2.0), timestamp=AT)
    b = Reading("Z:ACLTS1", ValueType.SCALAR_ARRAY, value=array(1.0, 2.0), timestamp=AT)
    assert a.value is not b.value
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1


@pytest.mark.parametrize(
    "other",
    [
        array(1.0, 3.0),
        array(1.0, 2.0, 3.0),
        np.array([[1.0, 2.0]]),
        (1.0, 2.0),
    ],
    ids=["other values", "longer", "other shape", "not an array"],
)
def test_readings_with_different_arrays_differ(other: object) -> None:
    a = Reading("Z:ACLTS1", ValueType.SCALAR_ARRAY, value=array(1.0, 2.0))
    b = Reading("Z:ACLTS1", ValueType.SCALAR_ARRAY, value=other)
    assert a != b
    assert b != a


def test_nan_readings_are_equal() -> None:
    """A reading of NaN is the same reading as another of NaN (unlike ``nan == nan``)."""
    nan = float("nan")
    assert Reading("M:OUTTMP", ValueType.SCALAR, value=nan) == Reading(
        "M:OUTTMP", ValueType.SCALAR, value=nan
    )
    assert Reading("Z:ACLTS1", ValueType.SCALAR_ARRAY, value=array(1.0, nan)) == Reading(
        "Z:ACLTS1", ValueType.SCALAR_ARRAY, value=array(1.0, nan)
    )
    assert Reading("M:OUTTMP", ValueType.SCALAR, value=nan) != Reading(
        "M:OUTTMP", ValueType.SCALAR, value=1.0
    )


def test_dict_values_compare_by_content_including_arrays() -> None:
    def timed(first: float) -> Reading:
        value = {"data": array(first, 2.0), "micros": np.array([1, 2])}
        return Reading("Z:ACLTS1", ValueType.TIMED_SCALAR_ARRAY, value=value)

    assert timed(1.0) == timed(1.0)
    assert timed(1.0) != timed(5.0)


@pytest.mark.parametrize(
    "change",
    [
        {"drf": "M:OUTTMP@I"},
        {"error_code": 1},
        {"facility_code": 17},
        {"message": "x"},
        {"timestamp": None},
        {"cycle": 2},
        {"meta": META},
        {"value_type": ValueType.RAW},
    ],
    ids=lambda change: next(iter(change)),
)
def test_every_field_takes_part_in_equality(change: dict[str, object]) -> None:
    base = Reading("M:OUTTMP", ValueType.SCALAR, value=1.0, timestamp=AT, cycle=1)
    assert dataclasses.replace(base, **change) != base


def test_a_reading_is_not_equal_to_other_types() -> None:
    reading = Reading("M:OUTTMP", ValueType.SCALAR, value=1.0)
    assert reading != 1.0
    assert reading != "M:OUTTMP"
    assert reading.__eq__(1.0) is NotImplemented


def test_write_results_compare_by_value() -> None:
    a = WriteResult("Z:ACLTS1", verified=True, readback=array(1.0, float("nan")), attempts=2)
    b = WriteResult("Z:ACLTS1", verified=True, readback=array(1.0, float("nan")), attempts=2)
    assert a == b
    assert hash(a) == hash(b)
    assert a != dataclasses.replace(b, attempts=3)
    assert a != dataclasses.replace(b, readback=array(1.0, 2.0))
    assert a.__eq__("Z:ACLTS1") is NotImplemented


# -------------------------------------------------------------------- repr


def test_repr_abbreviates_a_long_array() -> None:
    values = np.arange(1000, dtype=np.float64)
    text = repr(Reading("Z:ACLTS1", ValueType.SCALAR_ARRAY, value=values, timestamp=AT))
    assert "len=1000" in text
    assert str(values[:4].tolist()) in text
    assert "999.0" not in text
    assert "Z:ACLTS1" in text
    assert len(text) < 200


def test_repr_shows_a_short_array_and_scalars_in_full() -> None:
    text = repr(Reading("Z:ACLTS1", ValueType.SCALAR_ARRAY, value=array(1.5, 2.5)))
    assert "1.5" in text and "2.5" in text
    text = repr(Reading("M:OUTTMP", ValueType.SCALAR, value=72.25, meta=META, timestamp=AT))
    assert "72.25" in text
    assert "'DegF'" in text
    assert str(AT) in text


def test_repr_of_an_error_reading_shows_the_status() -> None:
    status = Status.from_name("DPM_NO_SUCH_DEVICE")
    text = repr(Reading("M:NOSUCH", facility_code=status.facility, error_code=status.error))
    assert "M:NOSUCH" in text
    assert "DPM_NO_SUCH_DEVICE" in text


# ----------------------------------------------------------- name and units


@pytest.mark.parametrize(
    "drf",
    [
        "M:OUTTMP",
        "m:outtmp",
        "M_OUTTMP",
        "Z|ACLTST",
        "Z@ACLTST.MAX",
        "Z:ACLTS1[0:4]",
        "M:OUTTMP{0:2}",
        "M:OUTTMP.SETTING[0:10]@p,1000",
        "M:OUTTMP@I",
        "M:OUTTMP<-FTP",
    ],
)
def test_name_without_metadata_is_pacsys_device_name(drf: str) -> None:
    assert Reading(drf).name == get_device_name(drf)


def test_name_of_a_drf_the_parser_would_reject_still_prints() -> None:
    """Error readings can carry the bad text the caller gave; naming it must not raise."""
    for drf in ("", "X", "??", "M:"):
        assert isinstance(Reading(drf).name, str)


def test_name_and_units_come_from_the_metadata_when_there_is_some() -> None:
    reading = Reading("m_outtmp@p,1000", ValueType.SCALAR, value=1.0, meta=META)
    assert reading.name == META.name
    assert reading.units == META.units
    assert Reading("M:OUTTMP", ValueType.SCALAR, value=1.0).units is None


# -------------------------------------------------------- status predicates


@given(
    error=st.integers(-128, 127),
    facility=st.integers(0, 255),
    has_value=st.booleans(),
)
def test_reading_predicates_match_pacsys(error: int, facility: int, has_value: bool) -> None:
    kwargs = {
        "drf": "M:OUTTMP",
        "facility_code": facility,
        "error_code": error,
        "value_type": ValueType.SCALAR if has_value else None,
        "value": 1.0 if has_value else None,
    }
    ours = Reading(**kwargs)
    kwargs["value_type"] = pacsys_types.ValueType.SCALAR if has_value else None
    theirs = pacsys_types.Reading(**kwargs)
    for predicate in ("ok", "is_success", "is_warning", "is_error"):
        assert getattr(ours, predicate) == getattr(theirs, predicate), predicate
    assert ours.status == Status(facility, error)


@pytest.mark.parametrize(
    ("error", "value", "ok", "is_warning", "is_error"),
    [
        (0, 1.0, True, False, False),
        (1, 1.0, True, True, False),
        (-1, None, False, False, True),
        (0, None, False, False, False),
    ],
    ids=["success", "warning", "error", "success without a value"],
)
def test_reading_predicates(
    error: int, value: float | None, ok: bool, is_warning: bool, is_error: bool
) -> None:
    value_type = ValueType.SCALAR if value is not None else None
    reading = Reading("M:OUTTMP", value_type, 17, error, value)
    assert (reading.ok, reading.is_warning, reading.is_error) == (ok, is_warning, is_error)
    assert reading.is_success == (error == 0)


@given(
    error=st.integers(-128, 127),
    verified=st.sampled_from([None, True, False]),
)
def test_write_result_predicates_match_pacsys(error: int, verified: bool | None) -> None:
    ours = WriteResult("Z:ACLTST", 17, error, verified=verified)
    theirs = pacsys_types.WriteResult("Z:ACLTST", 17, error, verified=verified)
    for predicate in ("ok", "success", "confirmed"):
        assert getattr(ours, predicate) == getattr(theirs, predicate), predicate


@pytest.mark.parametrize(
    ("error", "verified", "ok", "confirmed"),
    [
        (0, None, True, True),
        (0, True, True, True),
        (0, False, True, False),
        (-17, None, False, False),
        (-17, True, False, False),
        (1, None, False, False),
    ],
)
def test_write_result_ok_success_confirmed(
    error: int, verified: bool | None, ok: bool, confirmed: bool
) -> None:
    result = WriteResult("Z:ACLTST", 17, error, verified=verified)
    assert result.ok is ok
    assert result.success is ok
    assert result.confirmed is confirmed
    assert result.status == Status(17, error)
