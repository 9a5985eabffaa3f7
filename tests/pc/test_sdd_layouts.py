"""Learned layouts: a layout decodes exactly what the general decoder does, or declines."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acnet_proto import DecodeError
from acnet_proto.pc import daqdata, dpm
from acnet_proto.pc._message import Message
from acnet_proto.pc._sdd_layouts import (
    MAX_ARRAY,
    MAX_LAYOUTS,
    MAX_LENGTHS,
    Layouts,
    has_fixed_layout,
)
from acnet_proto.pc.sdd import MAGIC, TAG_ARRAY, encode_int
from tests.support.strategies import message_strategy

MODULES = {"dpm": dpm, "daqdata": daqdata}
REFERENCE = {name: module.codec.reference() for name, module in MODULES.items()}
FIXED = [
    pytest.param(name, cls, id=f"{name}-{cls.schema.wire_name}")
    for name, module in MODULES.items()
    for cls in module.codec.classes.values()
    if cls.schema.message_id is not None and has_fixed_layout(cls.schema)
]


def _layouts(module, cls: type[Message]) -> tuple[Layouts, dict]:
    """A fresh :class:`Layouts` for ``cls``, and its table of lengths."""
    prefix = MAGIC + encode_int(3, TAG_ARRAY) + encode_int(module.PROTOCOL_ID)
    prefix += encode_int(cls.schema.message_id)
    by_length: dict = {}
    tags = [encode_int(f.tag) for f in cls.schema.fields]
    return Layouts(cls, prefix, tags, by_length), by_length


def _decode(codec, kind, data):
    try:
        return codec.decode_request(data) if kind == "request" else codec.decode_reply(data)
    except DecodeError as e:
        return ("error", str(e), e.offset)


def test_the_data_replies_have_fixed_layouts():
    names = {p.values[1].schema.wire_name for p in FIXED if p.values[0] == "dpm"}
    assert {"Scalar_reply", "ScalarArray_reply", "Status_reply", "AddToList_reply"} <= names
    assert not has_fixed_layout(dpm.AddToListRequest.schema)  # a string
    assert not has_fixed_layout(dpm.DeviceInfoReply.schema)  # strings


@pytest.mark.parametrize(("name", "cls"), FIXED)
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_learned_layout_decodes_its_frame_and_declines_every_byte_flip(name, cls, data):
    module = MODULES[name]
    message = data.draw(message_strategy(module.codec, cls))
    frame = module.encode(message)
    layouts, by_length = _layouts(module, cls)
    layouts.learn(frame)
    if cls.schema.fields[-1].type.startswith("array") and len(message[-1]) == 0:
        assert by_length == {}  # an empty array is left to the general decoder
        return
    layout = by_length[len(frame)]
    assert layout(frame) == message
    i = data.draw(st.integers(0, len(frame) - 1))
    flip = data.draw(st.sampled_from([0x01, 0x10, 0x80, 0xFF]))
    mutated = frame[:i] + bytes([frame[i] ^ flip]) + frame[i + 1 :]
    decoded = layout(mutated)
    if decoded is not None:
        assert decoded == _decode(REFERENCE[name], cls.schema.kind, mutated)


@pytest.mark.parametrize(("name", "cls"), FIXED)
@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_codec_agrees_with_the_reference_once_layouts_are_learned(name, cls, data):
    module = MODULES[name]
    frame = module.encode(data.draw(message_strategy(module.codec, cls)))
    kind = cls.schema.kind
    _decode(module.codec, kind, frame)  # learns the layout
    i = data.draw(st.integers(0, len(frame) - 1))
    flip = data.draw(st.integers(1, 255))
    for candidate in (frame, frame[:i] + bytes([frame[i] ^ flip]) + frame[i + 1 :], frame[:i]):
        assert _decode(module.codec, kind, candidate) == _decode(REFERENCE[name], kind, candidate)


def _scalar(**changes) -> dpm.ScalarReply:
    fields = {"ref_id": 1, "timestamp": 0, "cycle": 0, "status": 0, "data": 0.5}
    return dpm.ScalarReply(**{**fields, **changes})


@pytest.mark.parametrize("width", range(1, 9))
def test_every_integer_width_decodes_at_both_ends_of_its_range(width):
    top = 2 ** (8 * width - 1)
    for value in (top - 1, -top, top // 256, -(top // 256) - 1):
        message = _scalar(ref_id=value, timestamp=value, cycle=value)
        frame = dpm.encode(message)
        layouts, by_length = _layouts(dpm, dpm.ScalarReply)
        layouts.learn(frame)
        assert by_length[len(frame)](frame) == message


def test_an_integer_wider_than_its_type_gets_no_layout():
    frame = dpm.encode(_scalar(status=-5))
    status_at = frame.index(encode_int(17492)) + 3
    assert frame[status_at : status_at + 2] == b"\x11\xfb"
    wide = frame[:status_at] + b"\x13\xff\xff\xfb" + frame[status_at + 2 :]  # legal, non-minimal
    assert dpm.decode_reply(wide) == _scalar(status=-5)
    layouts, by_length = _layouts(dpm, dpm.ScalarReply)
    layouts.learn(wide)
    assert by_length == {}


def test_a_frame_of_another_layout_at_the_same_length_is_declined():
    a = dpm.encode(_scalar(ref_id=1000, cycle=1))  # widths 2 and 1
    b = dpm.encode(_scalar(ref_id=1, cycle=1000))  # widths 1 and 2: same length
    assert len(a) == len(b)
    layouts, by_length = _layouts(dpm, dpm.ScalarReply)
    layouts.learn(a)
    assert by_length[len(b)](b) is None
    layouts.learn(b)
    assert by_length[len(b)](b) == _scalar(ref_id=1, cycle=1000)


def test_a_layout_checks_the_header_and_message_id():
    status = dpm.StatusReply(ref_id=1, timestamp=0, cycle=0, status=0)
    frame = dpm.encode(status)
    layouts, by_length = _layouts(dpm, dpm.StatusReply)
    layouts.learn(frame)
    for other in (b"X" + frame[1:], frame[:12] + b"\x00" + frame[13:]):
        assert by_length[len(other)](other) is None
    # Another class's frame of the same length, through the codec's shared table.
    added = dpm.AddToListReply(list_id=2**30, ref_id=1000, status=-300)
    assert len(dpm.encode(added)) == len(frame)
    for _ in range(2):
        assert dpm.decode_reply(frame) == status
        assert dpm.decode_reply(dpm.encode(added)) == added


def test_arrays_from_a_layout_are_read_only_float64_and_empty_or_long_ones_are_not_learned():
    values = [1.5, -2.0, float("inf")]
    message = dpm.ScalarArrayReply(ref_id=1, timestamp=0, cycle=0, status=0, data=values)
    frame = dpm.encode(message)
    layouts, by_length = _layouts(dpm, dpm.ScalarArrayReply)
    layouts.learn(frame)
    data = by_length[len(frame)](frame).data
    assert data.dtype == np.float64
    assert not data.flags.writeable
    assert data.tolist() == values
    for values in ([], [0.5] * (MAX_ARRAY + 1)):
        other = dpm.encode(message.replace(data=values))
        layouts.learn(other)
        assert len(other) not in by_length
        for _ in range(2):
            assert dpm.decode_reply(other).data.tolist() == values


def test_a_layout_declines_a_frame_cut_short_or_of_another_array_length():
    message = dpm.ScalarArrayReply(ref_id=1, timestamp=0, cycle=0, status=0, data=[1.0, 2.0])
    frame = dpm.encode(message)
    layouts, by_length = _layouts(dpm, dpm.ScalarArrayReply)
    layouts.learn(frame)
    layout = by_length[len(frame)]
    longer = dpm.encode(message.replace(data=[1.0, 2.0, 3.0]))
    for other in (frame[:-1], frame[:-8], frame + b"\x28", longer):
        assert layout(other) is None


def test_a_bad_element_tag_is_declined():
    message = dpm.ScalarArrayReply(ref_id=1, timestamp=0, cycle=0, status=0, data=[1.0, 2.0])
    frame = dpm.encode(message)
    layouts, by_length = _layouts(dpm, dpm.ScalarArrayReply)
    layouts.learn(frame)
    bad = frame[:-9] + b"\x29" + frame[-8:]
    assert by_length[len(bad)](bad) is None
    with pytest.raises(DecodeError, match="element 1"):
        dpm.decode_reply(bad)


def test_the_tables_are_bounded():
    layouts, by_length = _layouts(dpm, dpm.ScalarArrayReply)
    for n in range(1, MAX_LENGTHS + 50):
        message = dpm.ScalarArrayReply(ref_id=1, timestamp=0, cycle=0, status=0, data=[0.0] * n)
        layouts.learn(dpm.encode(message))
        assert len(by_length) <= MAX_LENGTHS
    layouts, by_length = _layouts(dpm, dpm.ScalarReply)
    seen = set()
    for a in range(1, 9):
        for b in range(1, 9):
            frame = dpm.encode(_scalar(ref_id=2 ** (8 * a - 2), cycle=2 ** (8 * b - 2)))
            layouts.learn(frame)
            if by_length.get(len(frame)) is not None:
                seen.add(by_length[len(frame)])
    assert len(seen) == MAX_LAYOUTS
