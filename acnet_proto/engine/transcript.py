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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
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

__all__ = ["Line", "ReplayError", "Step", "dump", "load", "messages_of", "replay"]

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


_SECRET_FIELDS = {"Authenticate_request": "token", "EnableSettings_request": "mic"}


def redact(lines: Iterable[Line]) -> list[Line]:
    """``lines`` with Kerberos tokens and MICs replaced by zero bytes of the same length.

    Frame lengths, line boundaries and message order stay exactly as
    recorded, so a redacted transcript still decodes and replays through the
    state machine; only the secrets are gone (``Authenticate`` tokens and
    ``EnableSettings`` MICs; the server's mutual-auth tokens are kept).
    """
    lines = list(lines)
    stream = bytearray(b"".join(line.data for line in lines if line.direction == "c2s"))
    offset = len(HANDSHAKE) if stream.startswith(HANDSHAKE) else 0
    for body in FrameSplitter(max_frame_size=len(stream) + 1).feed(bytes(stream[offset:])):
        offset += 4
        stream[offset : offset + len(body)] = _redacted(body)
        offset += len(body)
    out, position = [], 0
    for line in lines:
        if line.direction == "c2s":
            end = position + len(line.data)
            line = Line(line.direction, bytes(stream[position:end]), line.note)
            position = end
        out.append(line)
    return out


def _redacted(body: bytes) -> bytes:
    try:
        message = dpm.decode_request(body)
    except ProtocolError:
        return body  # not a valid request, so not a usable credential either
    name = _SECRET_FIELDS.get(type(message).schema.wire_name)
    if name is None or not getattr(message, name):
        return body
    cleaned = dpm.encode(message.replace(**{name: bytes(len(getattr(message, name)))}))
    # same-length secrets encode to the same length: the framing is untouched
    return cleaned if len(cleaned) == len(body) else body
