"""Recorded transcripts keep no Kerberos secrets, yet still decode and replay.

Secrets are zeroed whatever the encoding: every integer of an Authenticate or
EnableSettings request is also written in each longer width the SDD format
allows (which the decoder accepts and re-encoding shortens), and the secret
must be gone from the redacted stream all the same.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acnet_proto.engine._state import Role
from acnet_proto.engine.framing import HANDSHAKE, frame
from acnet_proto.engine.transcript import Line, RedactionError, load, messages_of, redact, replay
from acnet_proto.pc import dpm, sdd
from acnet_proto.pc._message import Message
from tests.support.vectors import SHARED

WRITE = load(SHARED / "transcripts" / "write-kerberos.jsonl")


def _secrets(lines: list[Line]) -> list[bytes]:
    found = []
    for _, items in messages_of(lines):
        for item in items:
            if isinstance(item, dpm.AuthenticateRequest) and item.token:
                found.append(bytes(item.token))
            if isinstance(item, dpm.EnableSettingsRequest):
                found.append(bytes(item.mic))
    return found


def test_tokens_and_mics_are_zeroed_and_nothing_else_changes() -> None:
    clean = redact(WRITE)
    assert [len(line.data) for line in clean] == [len(line.data) for line in WRITE]
    assert all(not any(secret) for secret in _secrets(clean))
    assert len(_secrets(clean)) == len(_secrets(WRITE)) == 2
    changed = [i for i, (a, b) in enumerate(zip(WRITE, clean, strict=True)) if a != b]
    assert all(WRITE[i].direction == "c2s" for i in changed)
    for raw, red in zip(messages_of(WRITE), messages_of(clean), strict=True):
        kinds = [type(m) for m in raw[1]]
        assert kinds == [type(m) for m in red[1]]


@pytest.mark.parametrize("role", [Role.CLIENT, Role.SERVER])
def test_a_redacted_transcript_still_replays(role: Role) -> None:
    assert len(list(replay(redact(WRITE), role))) == len(WRITE)


def test_frames_split_across_lines_are_redacted_too() -> None:
    whole = b"".join(line.data for line in WRITE if line.direction == "c2s")
    # the client's bytes cut at every 7th byte: frames straddle lines
    pieces = [Line("c2s", whole[i : i + 7]) for i in range(0, len(whole), 7)]
    clean = b"".join(line.data for line in redact(pieces))
    assert len(clean) == len(whole)
    for secret in _secrets(WRITE):
        assert secret not in clean
    assert _secrets(redact(WRITE))[0] in clean  # the zeroed token is where the token was


# ---------------------------------------------------------- every encoding

# the message header: magic, a 3-value array, the DPM protocol id (the decoder
# accepts only this spelling of it)
HEADER = sdd.MAGIC + sdd.encode_int(3, sdd.TAG_ARRAY) + sdd.encode_int(dpm.PROTOCOL_ID)
TOKEN = os.urandom(300)
MIC = os.urandom(28)
AUTH = dpm.AuthenticateRequest(list_id=48815, token=TOKEN)
ENABLE = dpm.EnableSettingsRequest(list_id=48815, mic=MIC, message=b"1234")
SECRETS = {dpm.AuthenticateRequest: "token", dpm.EnableSettingsRequest: "mic"}
# (position, value) -> how many bytes to write that integer on; the positions are
# the message id, the field count, then each field (a binary field's length)
Widths = Callable[[int, int], int]


def _minimal(value: int) -> int:
    return len(sdd.encode_int(value)) - 1


def _int(value: int, width: int, tag: int = sdd.TAG_INT) -> bytes:
    return bytes((tag | width,)) + value.to_bytes(width, "big", signed=True)


def _integers(message: Message) -> list[int]:
    """The integers of ``message``'s encoding, in the order :data:`Widths` numbers them."""
    fields = type(message).schema.fields
    message_id = type(message).schema.message_id
    assert message_id is not None
    return [message_id, 2 * len(fields)] + [
        len(value) if field.type == "binary" else value
        for field, value in zip(fields, message, strict=True)
    ]


def spelled(message: Message, width: Widths) -> bytes:
    """``message`` with each integer, count and length on ``width(position, value)`` bytes.

    Field tags stay minimal: the decoder matches them byte for byte.
    """
    message_id, count, *_ = _integers(message)
    parts = [HEADER, _int(message_id, width(0, message_id))]
    parts.append(_int(count, width(1, count), sdd.TAG_ARRAY))
    for position, (field, value) in enumerate(zip(type(message).schema.fields, message), 2):
        parts.append(sdd.encode_int(field.tag))
        if field.type == "binary":
            parts += [_int(len(value), width(position, len(value)), sdd.TAG_BINARY), value]
        else:
            parts.append(_int(value, width(position, value)))
    return b"".join(parts)


def one_wider(message: Message) -> Iterator[tuple[str, bytes]]:
    """Every spelling of ``message`` with one of its integers on each width it allows."""
    names = ["message id", "field count", *type(message).field_names]
    for which, value in enumerate(_integers(message)):
        for wide in range(_minimal(value), 9):

            def width(position: int, value: int, which: int = which, wide: int = wide) -> int:
                return wide if position == which else _minimal(value)

            yield f"{names[which]} on {wide} bytes", spelled(message, width)


def transcript(*bodies: bytes) -> list[Line]:
    return [Line("c2s", HANDSHAKE), *(Line("c2s", frame(body)) for body in bodies)]


def assert_redacted(message: Message, body: bytes) -> None:
    """The frame decodes to ``message`` as written; redacted, only its secret is gone."""
    assert dpm.decode_request(body) == message
    clean = redact(transcript(body))
    data = b"".join(line.data for line in clean)
    name = SECRETS[type(message)]
    secret = getattr(message, name)
    # a byte or two can match anywhere by chance; a real token or MIC (28+ bytes) cannot
    assert len(secret) < 8 or secret not in data
    assert len(data) == len(HANDSHAKE) + 4 + len(body)
    (_, (_, redacted)) = messages_of(clean)
    assert redacted[-1] == message.replace(**{name: bytes(len(secret))})


@pytest.mark.parametrize("message", [AUTH, ENABLE], ids=["Authenticate", "EnableSettings"])
def test_every_width_of_every_integer_is_redacted(message: Message) -> None:
    spellings = dict(one_wider(message))
    assert "list_id on 4 bytes" in spellings and "field count on 8 bytes" in spellings
    # the recorded bug: re-encoding a non-minimal spelling changes its length
    assert any(len(dpm.encode(message)) != len(body) for body in spellings.values())
    for body in spellings.values():
        assert_redacted(message, body)


@settings(max_examples=200)
@given(
    kind=st.sampled_from([dpm.AuthenticateRequest, dpm.EnableSettingsRequest]),
    list_id=st.integers(-(2**31), 2**31 - 1),
    secret=st.binary(min_size=1, max_size=600).filter(any),
    message=st.binary(max_size=40),
    copy_secret=st.booleans(),
    data=st.data(),
)
def test_any_mix_of_widths_gives_exactly_the_zeroed_frame_or_a_refusal(
    kind: type[Message],
    list_id: int,
    secret: bytes,
    message: bytes,
    copy_secret: bool,
    data: st.DataObject,
) -> None:
    name = SECRETS[kind]
    fields = {"list_id": list_id, name: secret}
    if kind is dpm.EnableSettingsRequest:
        fields["message"] = message + secret if copy_secret else message
    request = kind(**fields)
    drawn: dict[int, int] = {}

    def width(position: int, value: int) -> int:
        if position not in drawn:
            drawn[position] = data.draw(st.integers(_minimal(value), 8))
        return drawn[position]

    body = spelled(request, width)
    # the same spelling with the secret's bytes zeroed, and nothing else changed
    expected = spelled(request.replace(**{name: bytes(len(secret))}), width)
    if len(secret) >= 8 and secret in expected:
        with pytest.raises(RedactionError):
            redact(transcript(body))
        return
    (_, clean) = redact(transcript(body))
    assert clean.data == frame(expected)


def test_a_secret_copied_outside_its_field_refuses_the_transcript() -> None:
    copied = dpm.encode(ENABLE.replace(message=b"see " + MIC))
    lines = transcript(dpm.encode(AUTH), copied)
    with pytest.raises(RedactionError) as refused:
        redact(lines)
    error = refused.value
    assert (error.frame, error.line, error.message_type) == (2, 3, "EnableSettings_request")
    assert error.direction == "c2s" and "appears again" in error.reason
    assert MIC.hex() not in str(error) and repr(MIC)[2:-1] not in str(error)


# ------------------------------------------------- what cannot be shown clean


def test_garbage_is_zeroed_keeping_its_length_and_a_note() -> None:
    junk = [Line("c2s", b"\x00\x00\x00\x03abc", "from a fuzzer")]
    (clean,) = redact(junk)
    assert clean.data == b"\x00\x00\x00\x03" + bytes(3)
    assert clean.note is not None and clean.note.startswith("from a fuzzer; redacted")


def test_a_request_with_a_trailing_byte_is_zeroed_whole() -> None:
    # not a valid request, yet the token in it is a real one
    lines = transcript(dpm.encode(AUTH) + b"\x00", dpm.encode(dpm.StopListRequest(list_id=1)))
    clean = redact(lines)
    assert TOKEN not in b"".join(line.data for line in clean)
    assert clean[1].data[4:] == bytes(len(lines[1].data) - 4) and clean[1].note
    assert clean[2] == lines[2]  # the frames after it are read as before


def test_a_frame_cut_off_by_the_end_of_the_stream_keeps_only_its_length() -> None:
    whole = frame(dpm.encode(AUTH))
    cut = len(whole) - 50
    clean = redact([Line("c2s", HANDSHAKE + whole[:cut])])
    assert clean[0].data == HANDSHAKE + whole[:4] + bytes(cut - 4)


def test_another_http_head_is_zeroed_and_its_frames_still_redacted() -> None:
    head = b"GET /dpm HTTP/1.1\r\nAuthorization: Negotiate c2VjcmV0\r\n\r\n"
    body = next(body for _, body in one_wider(AUTH))
    clean = redact([Line("c2s", head + frame(body))])
    data = clean[0].data
    assert data[: len(head)] == bytes(len(head))
    assert TOKEN not in data and data[len(head) : len(head) + 4] == frame(body)[:4]
    assert dpm.decode_request(data[len(head) + 4 :]) == AUTH.replace(token=bytes(len(TOKEN)))


def test_a_handshake_cut_short_is_kept() -> None:
    lines = [Line("c2s", HANDSHAKE[:10]), Line("c2s", b"")]
    assert redact(lines) == lines
