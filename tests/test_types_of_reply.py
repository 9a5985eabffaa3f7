"""Reading.of_reply: the fast way a plan makes a reading is the constructor's reading, exactly."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from acnet_proto.errors import RemoteProtocolError
from acnet_proto.types import DeviceMeta, Reading, ValueType, utc_of_millis

META = DeviceMeta(27235, "M:OUTTMP", "Outdoor temperature", "DegF", 2)
YEAR_2200_MS = 7_258_118_400_000

_VALUES: st.SearchStrategy[tuple[ValueType | None, Any]] = st.one_of(
    st.just((None, None)),
    st.tuples(st.just(ValueType.SCALAR), st.floats(allow_nan=True)),
    st.tuples(st.just(ValueType.TEXT), st.text(max_size=20)),
    st.tuples(st.just(ValueType.RAW), st.binary(max_size=20)),
    st.tuples(st.just(ValueType.TEXT_ARRAY), st.lists(st.text(max_size=5), max_size=4)),
    st.tuples(
        st.just(ValueType.SCALAR_ARRAY),
        st.lists(st.floats(), max_size=8).map(lambda xs: np.array(xs, dtype=np.float64)),
    ),
    st.tuples(
        st.just(ValueType.BASIC_STATUS), st.dictionaries(st.sampled_from("abc"), st.booleans())
    ),
)


def built(drf: str, kind: ValueType | None, value: Any, millis: int, **fields: Any) -> Reading:
    return Reading(drf, kind, value=value, timestamp=utc_of_millis(millis), **fields)


@given(
    drf=st.sampled_from(["M:OUTTMP", "Z:ACLTS1[0:3]", "G:AMANDA@p,1000"]),
    kind_value=_VALUES,
    facility=st.integers(0, 255),
    error=st.integers(-128, 127),
    message=st.one_of(st.none(), st.text(max_size=10)),
    millis=st.one_of(st.just(0), st.integers(1, YEAR_2200_MS)),
    cycle=st.one_of(st.none(), st.integers(0, 2**63 - 1)),
    meta=st.one_of(st.none(), st.just(META)),
)
def test_of_reply_is_the_reading_the_constructor_makes(
    drf: str,
    kind_value: tuple[ValueType | None, Any],
    facility: int,
    error: int,
    message: str | None,
    millis: int,
    cycle: int | None,
    meta: DeviceMeta | None,
) -> None:
    kind, value = kind_value
    fast = Reading.of_reply(drf, kind, facility, error, value, message, millis, cycle, meta)
    slow = built(
        drf,
        kind,
        value,
        millis,
        facility_code=facility,
        error_code=error,
        message=message,
        cycle=cycle,
        meta=meta,
    )
    assert fast == slow
    assert hash(fast) == hash(slow)
    assert repr(fast) == repr(slow)
    assert type(fast) is Reading
    assert fast.timestamp == slow.timestamp
    assert type(fast.value) is type(slow.value)


def test_of_reply_freezes_values_as_the_constructor_does() -> None:
    given_array = np.array([1.0, 2.0])
    reading = Reading.of_reply(
        "Z:ACLTS1", ValueType.SCALAR_ARRAY, 0, 0, given_array, None, 0, 0, None
    )
    assert not reading.value.flags.writeable
    given_array[0] = 99.0
    assert reading.value[0] == 1.0
    listed = Reading.of_reply("Z:ACLTST", ValueType.TEXT_ARRAY, 0, 0, ["a"], None, 0, 0, None)
    assert listed.value == ("a",)


def test_a_reading_of_a_reply_is_immutable_and_pickles() -> None:
    reading = Reading.of_reply("M:OUTTMP", ValueType.SCALAR, 0, 0, 1.5, None, 1, 7, META)
    with pytest.raises(dataclasses.FrozenInstanceError):
        reading.value = 2.0  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(reading)) == reading
    assert dataclasses.replace(reading, cycle=7) == reading


@pytest.mark.parametrize("millis", [2**62, -(2**62)])
def test_a_stamp_that_is_no_date_makes_no_reading(millis: int) -> None:
    with pytest.raises(RemoteProtocolError, match=f"stamped {millis} ms"):
        Reading.of_reply("M:OUTTMP", ValueType.SCALAR, 0, 0, 1.0, None, millis, 0, None)


def test_of_reply_needs_a_value_type_for_a_value_as_the_constructor_does() -> None:
    with pytest.raises(ValueError, match="M:OUTTMP") as caught:
        Reading.of_reply("M:OUTTMP", None, 0, 0, 1.0, None, 0, 0, None)
    assert "value_type" in str(caught.value)
