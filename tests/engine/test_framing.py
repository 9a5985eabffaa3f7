"""DPM/TCP framing: frame(), FrameSplitter under every chunking, refusals, the handshake."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acnet_proto import RemoteProtocolError
from acnet_proto.engine.framing import (
    DEFAULT_MAX_FRAME_SIZE,
    HANDSHAKE,
    FrameSplitter,
    HandshakeReader,
    frame,
)
from acnet_proto.errors import ConnectionRefusedByProxy
from acnet_proto.pc import dpm
from acnet_proto.pc._message import Message
from tests.support.vectors import SHARED

PAYLOADS = [b"first", b"", b"third frame\x00\xff"]
STREAM = b"".join(frame(p) for p in PAYLOADS)
REFUSAL = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
TRANSCRIPTS = sorted((SHARED / "transcripts").glob("*.jsonl"))


def feed_all(splitter: FrameSplitter, chunks: Iterable[bytes]) -> list[bytes]:
    """Every frame the splitter returns over ``chunks``, in order."""
    return [f for chunk in chunks for f in splitter.feed(chunk)]


def bytewise(data: bytes) -> Iterator[bytes]:
    return (data[i : i + 1] for i in range(len(data)))


def cut(data: bytes, points: Iterable[int]) -> list[bytes]:
    """``data`` split at the sorted offsets ``points`` (empty pieces allowed)."""
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


# ------------------------------------------------------------------ frame()


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"", b"\x00\x00\x00\x00"),
        (b"abc", b"\x00\x00\x00\x03abc"),
        (b"x" * 0x1234, b"\x00\x00\x12\x34" + b"x" * 0x1234),
    ],
)
def test_frame_prefixes_the_big_endian_length(payload: bytes, expected: bytes) -> None:
    assert frame(payload) == expected


@given(st.binary(max_size=300))
def test_frame_then_split_round_trips(payload: bytes) -> None:
    splitter = FrameSplitter()
    assert splitter.feed(frame(payload)) == [payload]
    assert splitter.buffered == 0


# --------------------------------------------------------- FrameSplitter.feed


def test_one_byte_at_a_time() -> None:
    splitter = FrameSplitter()
    got = []
    for i, piece in enumerate(bytewise(STREAM)):
        got += splitter.feed(piece)
        # Whatever is not yet a whole frame stays buffered, nothing more.
        assert splitter.buffered == i + 1 - sum(4 + len(p) for p in got)
    assert got == PAYLOADS
    splitter.close()


def test_every_single_split_point_of_a_three_frame_stream() -> None:
    for point in range(len(STREAM) + 1):
        assert feed_all(FrameSplitter(), cut(STREAM, [point])) == PAYLOADS, point


def test_every_pair_of_split_points_of_a_three_frame_stream() -> None:
    for points in itertools.combinations_with_replacement(range(len(STREAM) + 1), 2):
        assert feed_all(FrameSplitter(), cut(STREAM, points)) == PAYLOADS, points


@st.composite
def chunked_streams(draw: st.DrawFn) -> tuple[list[bytes], list[bytes]]:
    """Payloads, and their framed stream cut at random offsets."""
    payloads = draw(st.lists(st.binary(max_size=40), max_size=8))
    stream = b"".join(frame(p) for p in payloads)
    points = draw(st.lists(st.integers(0, len(stream)), max_size=12))
    return payloads, cut(stream, sorted(points))


@settings(max_examples=300)
@given(chunked_streams())
def test_random_chunkings_give_the_same_frames(case: tuple[list[bytes], list[bytes]]) -> None:
    payloads, chunks = case
    splitter = FrameSplitter()
    assert feed_all(splitter, chunks) == payloads
    assert splitter.buffered == 0
    splitter.close()


def test_several_frames_in_one_feed() -> None:
    splitter = FrameSplitter()
    assert splitter.feed(STREAM + STREAM) == PAYLOADS + PAYLOADS
    assert splitter.buffered == 0


def test_a_complete_frame_and_a_partial_one_in_one_feed() -> None:
    splitter = FrameSplitter()
    assert splitter.feed(frame(b"ab") + frame(b"cde")[:5]) == [b"ab"]
    assert splitter.buffered == 5
    assert splitter.feed(b"de") == [b"cde"]


def test_zero_length_frames() -> None:
    splitter = FrameSplitter()
    assert splitter.feed(frame(b"") * 3) == [b"", b"", b""]
    assert feed_all(FrameSplitter(), bytewise(frame(b"") * 3)) == [b"", b"", b""]


def test_feed_accepts_bytearray_and_memoryview_and_returns_bytes() -> None:
    splitter = FrameSplitter()
    got = splitter.feed(bytearray(frame(b"ab"))) + splitter.feed(memoryview(frame(b"cd")))
    assert got == [b"ab", b"cd"]
    assert all(type(f) is bytes for f in got)


def test_empty_feed_returns_nothing() -> None:
    splitter = FrameSplitter()
    assert splitter.feed(b"") == []
    assert splitter.buffered == 0


# ------------------------------------------------------------ max_frame_size


def test_a_frame_of_exactly_max_frame_size_is_accepted() -> None:
    assert FrameSplitter(max_frame_size=10).feed(frame(b"x" * 10)) == [b"x" * 10]


def test_an_oversize_prefix_raises_before_the_body_arrives() -> None:
    splitter = FrameSplitter(max_frame_size=10)
    # Only the prefix is fed: raising now proves the splitter did not wait for
    # (or reserve room for) the 11 bytes it announces.
    with pytest.raises(RemoteProtocolError, match="max_frame_size=10"):
        splitter.feed(b"\x00\x00\x00\x0b")


def test_a_huge_prefix_raises_at_its_fourth_byte() -> None:
    splitter = FrameSplitter()
    for piece in bytewise(b"\xff\xff\xff"):
        assert splitter.feed(piece) == []
    with pytest.raises(RemoteProtocolError, match=str(0xFFFFFFFF)):
        splitter.feed(b"\xff")
    assert splitter.buffered == 4


def test_frames_before_an_oversize_prefix_arrive_under_every_chunking() -> None:
    bad = frame(b"ok") + b"\x01\x00\x00\x00"
    for point in range(len(bad) + 1):
        splitter = FrameSplitter(max_frame_size=1000)
        got: list[bytes] = []
        # The good frame is handed over; the bad prefix raises from the call
        # that completes it or, if that call also returned a frame, from the next.
        with pytest.raises(RemoteProtocolError, match="claims"):
            for piece in cut(bad, [point]):
                got += splitter.feed(piece)
            splitter.close()
        assert got == [b"ok"], point


def test_a_framing_error_is_sticky() -> None:
    splitter = FrameSplitter(max_frame_size=10)
    with pytest.raises(RemoteProtocolError):
        splitter.feed(b"\x00\x00\x01\x00")
    with pytest.raises(RemoteProtocolError):
        splitter.feed(frame(b"fine"))
    with pytest.raises(RemoteProtocolError):
        splitter.close()


def test_default_max_frame_size() -> None:
    assert FrameSplitter().max_frame_size == DEFAULT_MAX_FRAME_SIZE
    with pytest.raises(RemoteProtocolError):
        FrameSplitter().feed((DEFAULT_MAX_FRAME_SIZE + 1).to_bytes(4, "big"))


@pytest.mark.parametrize("size", [0, -1])
def test_max_frame_size_must_be_positive(size: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        FrameSplitter(max_frame_size=size)


# ------------------------------------------------------------------- close()


@pytest.mark.parametrize("prefix_len", range(len(STREAM) + 1))
def test_close_raises_only_inside_a_frame(prefix_len: int) -> None:
    boundaries = set(itertools.accumulate((4 + len(p) for p in PAYLOADS), initial=0))
    splitter = FrameSplitter()
    splitter.feed(STREAM[:prefix_len])
    if prefix_len in boundaries:
        splitter.close()
    else:
        with pytest.raises(RemoteProtocolError, match="inside a frame"):
            splitter.close()


def test_close_reports_how_much_of_the_frame_arrived() -> None:
    splitter = FrameSplitter()
    splitter.feed(frame(b"abcdef")[:6])
    with pytest.raises(RemoteProtocolError, match=r"6 of 10 bytes"):
        splitter.close()


# ------------------------------------------------------------ HTTP refusals


def refuse(chunks: Iterable[bytes]) -> ConnectionRefusedByProxy:
    """Feed ``chunks`` to a client-side splitter and return the refusal it raised."""
    splitter = FrameSplitter(detect_http_refusal=True)
    with pytest.raises(ConnectionRefusedByProxy) as info:
        feed_all(splitter, chunks)
    return info.value


def assert_503(error: ConnectionRefusedByProxy) -> None:
    assert error.status_line == "HTTP/1.1 503 Service Unavailable"
    assert error.status_code == 503
    assert isinstance(error, RemoteProtocolError)


def test_refusal_fed_whole() -> None:
    assert_503(refuse([REFUSAL]))


def test_refusal_fed_byte_by_byte_raises_when_the_status_line_ends() -> None:
    splitter = FrameSplitter(detect_http_refusal=True)
    line_end = REFUSAL.index(b"\r\n") + 2
    for piece in bytewise(REFUSAL[: line_end - 1]):
        assert splitter.feed(piece) == []
    with pytest.raises(ConnectionRefusedByProxy) as info:
        splitter.feed(REFUSAL[line_end - 1 : line_end])
    assert_503(info.value)


def test_refusal_at_every_split_point() -> None:
    for point in range(len(REFUSAL) + 1):
        assert_503(refuse(cut(REFUSAL, [point])))


def test_refusal_cut_short_is_reported_by_close() -> None:
    splitter = FrameSplitter(detect_http_refusal=True)
    assert feed_all(splitter, bytewise(b"HTTP/1.1 503 Serv")) == []
    with pytest.raises(ConnectionRefusedByProxy) as info:
        splitter.close()
    assert info.value.status_line == "HTTP/1.1 503 Serv"
    assert info.value.status_code == 503


def test_a_status_line_without_an_end_is_cut_off() -> None:
    error = refuse([b"HTTP/1.1 502 " + b"x" * 10_000])
    assert error.status_code == 502
    assert len(error.status_line) < 10_000


@settings(max_examples=100)
@given(chunked_streams())
def test_an_ordinary_frame_stream_is_not_a_refusal(case: tuple[list[bytes], list[bytes]]) -> None:
    payloads, chunks = case
    splitter = FrameSplitter(detect_http_refusal=True)
    assert feed_all(splitter, chunks) == payloads
    splitter.close()


def test_http_inside_a_later_frame_is_just_data() -> None:
    stream = frame(b"x") + frame(REFUSAL)
    assert feed_all(FrameSplitter(detect_http_refusal=True), bytewise(stream)) == [b"x", REFUSAL]


def test_a_stream_starting_with_h_but_not_http_is_a_framing_error() -> None:
    splitter = FrameSplitter(detect_http_refusal=True)
    with pytest.raises(RemoteProtocolError) as info:
        splitter.feed(b"HTXP")
    assert not isinstance(info.value, ConnectionRefusedByProxy)


def test_without_detection_a_refusal_is_an_oversize_frame() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        FrameSplitter().feed(REFUSAL)
    assert not isinstance(info.value, ConnectionRefusedByProxy)


# ---------------------------------------------------------- HandshakeReader


def test_handshake_whole_returns_what_follows() -> None:
    assert HandshakeReader().feed(HANDSHAKE) == b""
    assert HandshakeReader().feed(HANDSHAKE + STREAM) == STREAM


def test_handshake_byte_by_byte() -> None:
    reader = HandshakeReader()
    for piece in bytewise(HANDSHAKE[:-1]):
        assert reader.feed(piece) is None
    assert reader.feed(HANDSHAKE[-1:]) == b""


def test_handshake_at_every_split_point_keeps_the_following_bytes() -> None:
    data = HANDSHAKE + STREAM
    for point in range(len(data) + 1):
        reader = HandshakeReader()
        first = reader.feed(data[:point])
        # Once the blank line is in, the reader is done: later bytes are frames.
        rest = first + data[point:] if first is not None else reader.feed(data[point:])
        assert rest == STREAM, point


@pytest.mark.parametrize(
    "garbage",
    [b"POST /dpm HTTP/1.1\r\n", b"\x00\x00\x00\x17SDD", b"GET /api", b"GET  /dpm"],
)
def test_garbage_instead_of_a_handshake_raises_at_once(garbage: bytes) -> None:
    with pytest.raises(RemoteProtocolError, match="handshake"):
        HandshakeReader().feed(garbage)


@pytest.mark.parametrize(
    "request_head",
    [b"GET /dpmx HTTP/1.1\r\n\r\n", b"GET /dpm\r\n\r\n", b"GET /dpm SDD/2\r\n\r\n"],
)
def test_a_wrong_request_line_raises(request_head: bytes) -> None:
    with pytest.raises(RemoteProtocolError, match="GET /dpm"):
        HandshakeReader().feed(request_head)


def test_a_handshake_that_never_ends_is_refused() -> None:
    reader = HandshakeReader()
    reader.feed(b"GET /dpm HTTP/1.1\r\n")
    with pytest.raises(RemoteProtocolError):
        reader.feed(b"X-Padding: " + b"y" * 10_000)


def test_http_1_0_is_accepted() -> None:
    assert HandshakeReader().feed(b"GET /dpm HTTP/1.0\r\n\r\nrest") == b"rest"


# ------------------------------------------------------ recorded transcripts


def load_transcript(path: Path) -> tuple[bytes, bytes]:
    """The (client→server, server→client) byte streams of a transcript."""
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    c2s = b"".join(bytes.fromhex(x["hex"]) for x in lines if x["dir"] == "c2s")
    s2c = b"".join(bytes.fromhex(x["hex"]) for x in lines if x["dir"] == "s2c")
    return c2s, s2c


def decode_all(
    splitter: FrameSplitter, stream: bytes, decode: Callable[[bytes], Message]
) -> list[Message]:
    frames = feed_all(splitter, bytewise(stream))
    splitter.close()
    # The frames must tile the stream exactly: nothing dropped or duplicated.
    assert b"".join(frame(f) for f in frames) == stream
    return [decode(f) for f in frames]


def test_transcripts_exist() -> None:
    assert TRANSCRIPTS, f"no transcripts under {SHARED / 'transcripts'}"


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.stem)
def test_transcript_server_side_decodes_as_replies(path: Path) -> None:
    _, s2c = load_transcript(path)
    replies = decode_all(FrameSplitter(detect_http_refusal=True), s2c, dpm.decode_reply)
    assert isinstance(replies[0], dpm.OpenListReply)


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.stem)
def test_transcript_client_side_decodes_as_requests(path: Path) -> None:
    c2s, _ = load_transcript(path)
    reader = HandshakeReader()
    end = next(i + 1 for i, piece in enumerate(bytewise(c2s)) if reader.feed(piece) is not None)
    assert c2s[:end] == HANDSHAKE
    requests = decode_all(FrameSplitter(), c2s[end:], dpm.decode_request)
    assert requests


def test_a_status_line_with_digits_int_refuses_has_no_code() -> None:
    # "²".isdigit() is true, int("²") raises: the refusal must still be the typed error
    error = refuse([b"HTTP/1.1 \xb2\xb9\xb9 Unavailable\r\n\r\n"])
    assert error.status_line == "HTTP/1.1 ²¹¹ Unavailable"
    assert error.status_code is None
