"""The SDD codec: round trips, the fast path against the reference, and errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acnet_proto import DecodeError, LocalProtocolError
from acnet_proto.pc import daqdata, dpm
from acnet_proto.pc.sdd import encode_int
from tests.support.strategies import any_message
from tests.support.vectors import load_vectors

MODULES = {"dpm": dpm, "daqdata": daqdata}
REFERENCE = {name: module.codec.reference() for name, module in MODULES.items()}
ALL_VECTOR_BYTES = [
    pytest.param(name, v["kind"], bytes.fromhex(v["hex"]), id=f"{name}-{i}-{v['message']}")
    for name in MODULES
    for i, v in enumerate(load_vectors(name))
]
# Exhaustive per-byte checks are quadratic in message size: long vectors get a
# fixed sample of positions, which still covers every field they contain.
_POSITIONS = 160


def _positions(data: bytes) -> range:
    return range(0, len(data), max(1, len(data) // _POSITIONS))


def _decode(codec, kind, data):
    return codec.decode_request(data) if kind == "request" else codec.decode_reply(data)


def _outcome(codec, kind, data):
    try:
        return _decode(codec, kind, data)
    except DecodeError as e:
        return ("error", str(e), e.offset)


@pytest.mark.parametrize("name", MODULES)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_message_round_trips(name, data):
    module = MODULES[name]
    message = data.draw(any_message(module.codec))
    encoded = module.encode(message)
    assert _decode(module, message.schema.kind, encoded) == message
    assert REFERENCE[name].encode(message) == encoded


@pytest.mark.parametrize(("name", "kind", "data"), ALL_VECTOR_BYTES[::7])
def test_every_truncation_is_a_decode_error(name, kind, data):
    for cut in _positions(data):
        with pytest.raises(DecodeError):
            _decode(MODULES[name], kind, data[:cut])


@pytest.mark.parametrize(("name", "kind", "data"), ALL_VECTOR_BYTES[::3])
def test_fast_path_agrees_with_reference_on_every_byte_flip(name, kind, data):
    fast, reference = MODULES[name].codec, REFERENCE[name]
    for i in _positions(data):
        for flip in (0x01, 0x10, 0x80, 0xFF):
            mutated = data[:i] + bytes([data[i] ^ flip]) + data[i + 1 :]
            assert _outcome(fast, kind, mutated) == _outcome(reference, kind, mutated)


@settings(max_examples=500)
@given(st.binary(max_size=200), st.sampled_from(["request", "reply"]))
def test_arbitrary_bytes_raise_only_decode_error(data, kind):
    for name in MODULES:
        fast = _outcome(MODULES[name].codec, kind, data)
        assert fast == _outcome(REFERENCE[name], kind, data)


@settings(max_examples=300)
@given(st.binary(max_size=60))
def test_arbitrary_bodies_behind_a_valid_header(body):
    header = dpm.encode(dpm.ScalarReply(ref_id=1, timestamp=0, cycle=0, status=0, data=0.0))[:11]
    data = header + body
    assert _outcome(dpm.codec, "reply", data) == _outcome(REFERENCE["dpm"], "reply", data)


def test_spec_example_bytes():
    message = dpm.ScalarReply(ref_id=7, timestamp=1732230000123, cycle=123456, status=0, data=72.5)
    assert dpm.encode(message).hex() == (
        "53444402510314b13a703a12d6ab510a121eab110712d55b16019350f42dfb"
        "1207401301e2401244541100127f38284052200000000000"
    )


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, "1100"),
        (127, "117f"),
        (128, "120080"),
        (-1, "11ff"),
        (-129, "12ff7f"),
        (2**63 - 1, "187fffffffffffffff"),
        (-(2**63), "188000000000000000"),
    ],
)
def test_integers_use_the_fewest_bytes(value, encoded):
    assert encode_int(value).hex() == encoded


def test_lying_array_count_is_rejected_without_allocating():
    good = dpm.encode(dpm.TextArrayReply(ref_id=1, timestamp=0, cycle=0, status=0, data=["a"]))
    lying = good.replace(bytes.fromhex("510141"), bytes.fromhex("5804ffffffffffff41"), 1)
    assert lying != good
    with pytest.raises(DecodeError, match="claims"):
        dpm.decode_reply(lying)


def test_lying_string_length_is_a_decode_error():
    good = dpm.encode(dpm.AddToListRequest(list_id=1, ref_id=1, drf_request="M:OUTTMP"))
    lying = good.replace(bytes.fromhex("41084d3a"), bytes.fromhex("447fffffff4d3a"), 1)
    with pytest.raises(DecodeError, match="needs the data to reach"):
        dpm.decode_request(lying)


def test_decode_error_names_field_and_offset():
    message = dpm.ScalarReply(ref_id=1, timestamp=0, cycle=0, status=0, data=1.0)
    data = bytearray(dpm.encode(message))
    data[-9] = 0x29
    with pytest.raises(DecodeError) as info:
        dpm.decode_reply(bytes(data))
    assert "Scalar_reply.data" in str(info.value)
    assert info.value.offset == len(data) - 9


def test_request_id_decoded_as_reply_gives_a_hint():
    data = dpm.encode(dpm.StopListRequest(list_id=5))
    with pytest.raises(DecodeError, match="decode_request"):
        dpm.decode_reply(data)


def test_trailing_bytes_are_rejected():
    data = dpm.encode(dpm.StopListRequest(list_id=5)) + b"\x00"
    with pytest.raises(DecodeError, match="trailing"):
        dpm.decode_request(data)


def test_decoders_take_bytearray_and_memoryview():
    data = dpm.encode(dpm.StopListRequest(list_id=5))
    expected = dpm.StopListRequest(list_id=5)
    assert dpm.decode_request(bytearray(data)) == expected
    assert dpm.decode_request(memoryview(data)) == expected


def test_decoders_refuse_text_with_a_type_error():
    with pytest.raises(TypeError, match="str"):
        dpm.decode_request("SDD")


def test_double_arrays_decode_to_read_only_float64():
    message = dpm.ScalarArrayReply(ref_id=1, timestamp=0, cycle=0, status=0, data=[1.5, -2.0])
    data = dpm.decode_reply(dpm.encode(message)).data
    assert isinstance(data, np.ndarray)
    assert data.dtype == np.float64
    assert not data.flags.writeable
    assert data.tolist() == [1.5, -2.0]


def test_integer_arrays_decode_to_int64():
    message = daqdata.ShortArraySampleReply(value=[1, -2, 300], time=0)
    value = daqdata.decode_reply(daqdata.encode(message)).value
    assert value.dtype == np.int64
    assert value.tolist() == [1, -2, 300]


def test_latin1_strings_from_java_peers_are_accepted():
    data = dpm.encode(dpm.TextReply(ref_id=1, timestamp=0, cycle=0, status=0, data="x"))
    latin = data.replace(b"\x41\x01x", b"\x41\x01\xb0")
    assert dpm.decode_reply(latin).data == "\N{DEGREE SIGN}"


@pytest.mark.parametrize(
    ("message", "match"),
    [
        (dpm.AddToListReply(list_id=1, ref_id=1, status=40000), r"AddToList_reply\.status.*int16"),
        (
            dpm.AddToListRequest(list_id=1, ref_id="x", drf_request="M:OUTTMP"),
            r"AddToList_request\.ref_id.*int",
        ),
        (dpm.AddToListRequest(list_id=1, ref_id=1), r"AddToList_request\.drf_request.*missing"),
        (
            dpm.ScalarReply(ref_id=1, timestamp=0, cycle=0, status=0, data="72"),
            r"Scalar_reply\.data.*float",
        ),
        (
            dpm.ApplySettingsRequest(
                user_name="u", list_id=1, scaled_array=[dpm.ScaledSetting(ref_id=1, data=["a"])]
            ),
            r"ApplySettings_request\.scaled_array\[0\]\.data.*numbers",
        ),
        (
            dpm.ApplySettingsRequest(user_name="u", list_id=1, raw_array=[{"ref_id": 1}]),
            r"ApplySettings_request\.raw_array\[0\].*RawSetting",
        ),
        (daqdata.BasicControlSampleReply(value=3, time=0), r"BasicControlSample_reply\.value"),
        (dpm.TextReply(ref_id=1, timestamp=0, cycle=0, status=0, data="\ud800"), "UTF-8"),
    ],
)
def test_bad_values_raise_local_protocol_error_naming_the_field(message, match):
    with pytest.raises(LocalProtocolError, match=match):
        MODULES[message.protocol].encode(message)


def test_encoding_a_foreign_object_names_it():
    with pytest.raises(LocalProtocolError, match="not a dpm message"):
        dpm.encode(daqdata.OpenListRequest())


def test_messages_are_immutable_and_compare_by_value():
    a = dpm.StopListRequest(list_id=5)
    with pytest.raises(AttributeError):
        a.list_id = 6
    assert a == dpm.StopListRequest(list_id=5)
    assert a != dpm.ClearListRequest(list_id=5)
    assert hash(a) == hash(dpm.StopListRequest(list_id=5))
    assert a.replace(list_id=6) == dpm.StopListRequest(list_id=6)


def test_unknown_keyword_is_a_type_error_listing_the_fields():
    with pytest.raises(TypeError, match="list_id"):
        dpm.StopListRequest(listid=5)


def test_repr_abbreviates_long_arrays():
    message = dpm.ScalarArrayReply(ref_id=1, timestamp=0, cycle=0, status=0, data=list(range(100)))
    text = repr(message)
    assert "(len=100)" in text and "50" not in text


def test_wire_names_map_to_snake_case_attributes():
    assert dpm.AuthenticateReply(service_name="x").service_name == "x"
    assert dpm.EnableSettingsRequest(list_id=1, mic=b"", message=b"").mic == b""
    assert daqdata.ReadingRequestRequest(data_request=["M:OUTTMP"]).data_request == ("M:OUTTMP",)
    assert daqdata.ErrorSampleReply(facility_code=1, error_number=2, time=0).error_number == 2
    assert list(daqdata.BasicControl.__members__) == [
        "RESET",
        "ON",
        "OFF",
        "POSITIVE",
        "NEGATIVE",
        "RAMP",
        "DC",
    ]
