"""DPM conversations recorded byte for byte, and replayed through the engine.

The format is JSON lines, in the order things happened::

    {"dir": "c2s", "hex": "474554...", "note": "handshake"}
    {"dir": "s2c", "hex": "00000017534444...", "note": "OpenList reply"}

A line is what one side wrote to the TCP stream at one step: the client's
first write is the handshake, every later write is one or more frames. A line
with no bytes is that side closing the connection.

:func:`replay` plays a transcript through a :class:`DPMConnection` in either
role: the peer's lines go through ``receive_data``/``next_event``, our own
lines are decoded and re-sent through ``send``, and the bytes must come out
identical. Any violation surfaces as the engine's own error, wrapped in
:class:`ReplayError` naming the line and who broke the rules.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import IO, Any

from acnet_proto.engine._state import Role
from acnet_proto.engine.connection import DPMConnection
from acnet_proto.engine.events import NEED_DATA, ConnectionClosed
from acnet_proto.engine.framing import HANDSHAKE, FrameSplitter
from acnet_proto.errors import (
    AcnetProtoError,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)
from acnet_proto.pc import dpm
from acnet_proto.pc.sdd import TAG_BINARY

__all__ = [
    "Line",
    "RedactionError",
    "ReplayError",
    "Step",
    "dump",
    "load",
    "messages_of",
    "redact",
    "replay",
]

_DIRECTIONS = ("c2s", "s2c")


@dataclass(frozen=True, slots=True)
class Line:
    """One write to the stream: ``direction`` is ``"c2s"`` or ``"s2c"``."""

    direction: str
    data: bytes
    note: str | None = None

    def __post_init__(self) -> None:
        if self.direction not in _DIRECTIONS:
            raise ValueError(f"direction must be 'c2s' or 's2c', got {self.direction!r}")

    @property
    def sender(self) -> Role:
        return Role.CLIENT if self.direction == "c2s" else Role.SERVER


@dataclass(frozen=True, slots=True)
class Step:
    """What replaying one line produced: the events our side received from it."""

    number: int
    line: Line
    events: tuple[Any, ...] = field(default=())


class ReplayError(AcnetProtoError):
    """A transcript line broke the protocol (``.cause``), or did not re-encode identically."""

    def __init__(self, number: int, line: Line, culprit: Role, cause: Exception) -> None:
        self.number, self.line, self.culprit, self.cause = number, line, culprit, cause
        note = f" ({line.note})" if line.note else ""
        super().__init__(f"line {number}{note}, sent by the {culprit.value}: {cause}")


def load(source: str | Path | IO[str]) -> list[Line]:
    """Read a JSONL transcript from a path or an open text file."""
    if isinstance(source, str | Path):
        with open(source, encoding="utf-8") as f:
            return load(f)
    lines = []
    for number, text in enumerate(source, 1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
            lines.append(Line(record["dir"], bytes.fromhex(record["hex"]), record.get("note")))
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"transcript line {number} is not a valid record: {e}") from None
    return lines


def dump(lines: Iterable[Line], target: str | Path | IO[str]) -> None:
    """Write ``lines`` as JSONL to a path or an open text file."""
    if isinstance(target, str | Path):
        with open(target, "w", encoding="utf-8") as f:
            dump(lines, f)
            return
    for line in lines:
        record = {"dir": line.direction, "hex": line.data.hex()}
        if line.note:
            record["note"] = line.note
        target.write(json.dumps(record) + "\n")


def messages_of(lines: Iterable[Line]) -> Iterator[tuple[Line, list[Any]]]:
    """Each line with what it carries: ``HANDSHAKE`` bytes or decoded messages.

    Decoding is stream-aware (a frame may span lines); a line that ends inside
    a frame yields the frames it completed.
    """
    splitters = {"c2s": FrameSplitter(), "s2c": FrameSplitter(detect_http_refusal=True)}
    handshake_seen = False
    for line in lines:
        data = line.data
        items: list[Any] = []
        if line.direction == "c2s" and not handshake_seen:
            handshake_seen = True
            if data.startswith(HANDSHAKE):
                items.append(HANDSHAKE)
                data = data[len(HANDSHAKE) :]
        decode = dpm.decode_request if line.direction == "c2s" else dpm.decode_reply
        items += [decode(f) for f in splitters[line.direction].feed(data)]
        yield line, items


def replay(lines: Iterable[Line], role: Role) -> Iterator[Step]:
    """Play ``lines`` through a fresh engine in ``role``; yield a :class:`Step` per line."""
    conn = DPMConnection(role)
    lines = list(lines)
    decoded = messages_of(lines)
    for number, line in enumerate(lines, 1):
        try:
            _, items = next(decoded)
        except ProtocolError as e:
            raise ReplayError(number, line, line.sender, e) from e
        if line.sender is role:
            _send(conn, number, line, items)
            yield Step(number, line)
        else:
            yield Step(number, line, _receive(conn, number, line))


def _send(conn: DPMConnection, number: int, line: Line, items: list[Any]) -> None:
    if not line.data:
        conn.close()  # what the peer's engine sees as receive_data(b"")
        return
    try:
        out = [conn.initiate() if item is HANDSHAKE else conn.send(item) for item in items]
    except LocalProtocolError as e:
        raise ReplayError(number, line, line.sender, e) from e
    if b"".join(out) != line.data:
        mismatch = LocalProtocolError("re-encoding the line's messages gave different bytes")
        raise ReplayError(number, line, line.sender, mismatch)


def _receive(conn: DPMConnection, number: int, line: Line) -> tuple[Any, ...]:
    events = []
    try:
        # receive_data itself raises for bytes after the peer closed.
        conn.receive_data(line.data)
        while (event := conn.next_event()) is not NEED_DATA:
            events.append(event)
            if isinstance(event, ConnectionClosed):
                break
    except RemoteProtocolError as e:
        raise ReplayError(number, line, line.sender, e) from e
    return tuple(events)


# Request fields that carry Kerberos material: the client's AP-REQ and its MIC.
# EnableSettings' ``message`` is what the MIC signs, a fixed nonce, and the
# server's mutual-auth tokens (s2c) cannot be used to act as the client: kept.
_SECRET_FIELDS = {"Authenticate_request": ("token",), "EnableSettings_request": ("mic",)}
# A secret this long found again outside its field is a copy, not a coincidence.
_COPY_LENGTH = 8
_MAX_HEAD = 8192
_WIPED_NOTE = "redacted: bytes that are not a whole DPM request were zeroed"


class RedactionError(AcnetProtoError):
    """A client frame whose secrets could not be zeroed; :func:`redact` returned nothing.

    ``frame`` counts the client's frames from 1, ``line`` is the transcript
    line (from 1) where that frame starts, ``message_type`` its wire name and
    ``reason`` what failed. ``direction`` is always ``"c2s"``.
    """

    direction = "c2s"

    def __init__(self, frame: int, line: int, message_type: str, reason: str) -> None:
        self.frame, self.line, self.message_type, self.reason = frame, line, message_type, reason
        super().__init__(
            f"cannot redact client frame {frame} ({message_type}, starting on line {line}): "
            f"{reason}; the transcript is refused so that no secret is written in clear; "
            "if the client's encoding is valid, report this message type as an acnet-proto bug"
        )


class _Unredactable(Exception):
    """A request whose secret could not be located and zeroed (becomes RedactionError)."""

    def __init__(self, message_type: str, reason: str) -> None:
        self.message_type, self.reason = message_type, reason


def redact(lines: Iterable[Line]) -> list[Line]:
    """``lines`` with every Kerberos secret the client sent replaced by zero bytes.

    Redaction works on the recorded bytes themselves, never on a re-encoding,
    so it holds for every valid encoding of a message (an integer or a length
    written in more bytes than it needs included). Line boundaries, frame
    lengths and the order of everything stay as recorded. Client bytes are:

    * kept, when they are the standard handshake (or a cut-off start of it),
      a frame's 4-byte length, or a frame that decodes as a DPM request
      carrying no secret;
    * kept with the secret zeroed, for an ``Authenticate`` request's token
      and an ``EnableSettings`` request's MIC, once the zeroed frame is
      checked to decode as the same message with only that field changed (to
      zeros) and the secret (if 8 bytes or more) appears nowhere else in it;
    * zeroed whole otherwise (a frame that does not decode as a request, the
      body of a frame cut off by the end of the stream, an HTTP head other
      than the standard handshake), since nothing shows they hold no secret;
      the line where such a span starts gets a note saying so.

    Server lines are returned unchanged. Raises :class:`RedactionError`,
    naming the frame, if an ``Authenticate`` or ``EnableSettings`` request's
    secret cannot be zeroed that way; the bytes are then never returned.
    """
    lines = list(lines)
    client = [number for number, line in enumerate(lines, 1) if line.direction == "c2s"]
    stream = bytearray(b"".join(lines[number - 1].data for number in client))
    ends = list(accumulate(len(lines[number - 1].data) for number in client))
    wiped: set[int] = set()

    def wipe(start: int, end: int) -> None:
        if start < end:
            stream[start:end] = bytes(end - start)
            wiped.add(bisect_right(ends, start))

    position = _head_end(stream, wipe)
    frame_number = 0
    while len(stream) - position >= 4:
        start = position + 4
        end = start + int.from_bytes(stream[position:start], "big")
        if end > len(stream):
            break
        frame_number += 1
        try:
            cleaned = _redacted(bytes(stream[start:end]))
        except _Unredactable as e:
            line = client[bisect_right(ends, start)]
            raise RedactionError(frame_number, line, e.message_type, e.reason) from None
        if cleaned is None:
            wipe(start, end)
        else:
            stream[start:end] = cleaned
        position = end
    wipe(min(position + 4, len(stream)), len(stream))  # a frame cut off: keep its length only
    return _rebuilt(lines, stream, {client[i] for i in wiped})


def _head_end(stream: bytearray, wipe: Callable[[int, int], None]) -> int:
    """Where the client's frames start; any head but the standard handshake is wiped."""
    if stream.startswith(HANDSHAKE):
        return len(HANDSHAKE)
    if HANDSHAKE.startswith(stream):
        return len(stream)
    if not stream.startswith(b"GET "):
        return 0  # no handshake: frames from the start, as messages_of reads it
    # another HTTP head may carry anything, an Authorization header say
    blank = stream.find(b"\r\n\r\n", 0, _MAX_HEAD)
    end = blank + 4 if blank >= 0 else len(stream)
    wipe(0, end)
    return end


def _redacted(body: bytes) -> bytes | None:
    """``body`` with its secret fields zeroed; None if it is not a DPM request."""
    try:
        message = dpm.decode_request(body)
    except ProtocolError:
        return None
    wire = type(message).schema.wire_name
    out, target = bytearray(body), message
    secrets = [(name, bytes(getattr(message, name))) for name in _SECRET_FIELDS.get(wire, ())]
    for name, secret in secrets:
        if any(secret):
            target = target.replace(**{name: bytes(len(secret))})
            _zero_field(out, secret, target, wire, name)
    for name, secret in secrets:
        if len(secret) >= _COPY_LENGTH and secret in out:
            raise _Unredactable(wire, f"its {name} appears again outside its field")
    return bytes(out)


def _zero_field(out: bytearray, secret: bytes, target: Any, wire: str, name: str) -> None:
    """Zero the one length-prefixed copy of ``secret`` whose zeroing decodes to ``target``."""
    for at in _length_prefixed(out, secret):
        trial = bytearray(out)
        trial[at : at + len(secret)] = bytes(len(secret))
        try:
            if dpm.decode_request(bytes(trial)) == target:
                out[:] = trial
                return
        except ProtocolError:
            continue
    raise _Unredactable(
        wire, f"no copy of its {len(secret)}-byte {name} could be zeroed leaving the rest intact"
    )


def _length_prefixed(data: bytearray, secret: bytes) -> Iterator[int]:
    """Every offset of ``secret`` in ``data`` preceded by a binary length (any width) of it."""
    at = data.find(secret)
    while at >= 0:
        for width in range(1, 9):
            length = at - width
            if (
                length >= 1
                and data[length - 1] == TAG_BINARY | width
                and int.from_bytes(data[length:at], "big", signed=True) == len(secret)
            ):
                yield at
                break
        at = data.find(secret, at + 1)


def _rebuilt(lines: list[Line], stream: bytearray, noted: set[int]) -> list[Line]:
    """``lines`` with the client's bytes taken from ``stream``, and a note where it was wiped."""
    out, position = [], 0
    for number, line in enumerate(lines, 1):
        if line.direction == "c2s":
            end = position + len(line.data)
            note = line.note
            if number in noted:
                note = f"{note}; {_WIPED_NOTE}" if note else _WIPED_NOTE
            line = Line(line.direction, bytes(stream[position:end]), note)
            position = end
        out.append(line)
    return out
