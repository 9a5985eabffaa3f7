"""A recorded DPM/TCP session read as a script for a server to play back.

A transcript (:mod:`acnet_proto.engine.transcript`) holds one or more
connections: each starts with the client's handshake, so a client line that
begins with :data:`~acnet_proto.engine.framing.HANDSHAKE` after the first
starts the next connection. :meth:`Recording.load` reads transcripts (the
recorder's ``session.jsonl``, ``session-2.jsonl``, ... in the order given)
into :class:`RecordedConnection` scripts, each a sequence of steps in the
order they were recorded:

* :class:`Expect`: a request the client must send (decoded);
* :class:`Answer`: a reply the server sends (decoded, re-encoded when sent);
* :class:`Hangup`: the server closed the connection.

Every step keeps the transcript file and line it came from, so a departure
can name them. A file that is not a valid transcript raises
:class:`RecordingError` naming the file and the line.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from acnet_proto.engine.framing import HANDSHAKE
from acnet_proto.engine.transcript import Line, load, messages_of
from acnet_proto.errors import AcnetProtoError, ProtocolError
from acnet_proto.pc import dpm
from acnet_proto.pc._message import Message

__all__ = [
    "Answer",
    "Expect",
    "Hangup",
    "RecordedConnection",
    "Recording",
    "RecordingError",
    "Step",
    "connections_of",
]


class RecordingError(AcnetProtoError, ValueError):
    """A transcript that cannot be played: ``source`` (the file), ``line`` (from 1, or
    None when it is about the whole file) and ``reason``."""

    def __init__(self, source: str, line: int | None, reason: str) -> None:
        self.source, self.line, self.reason = source, line, reason
        where = f"{source} line {line}" if line is not None else source
        super().__init__(
            f"{where}: {reason}; give a transcript written by `acnet-proto record` "
            "(JSON lines, see docs/transcripts.md)"
        )


@dataclass(frozen=True, slots=True)
class Expect:
    """The client sends ``request`` here (transcript line ``line``)."""

    line: int
    request: Message


@dataclass(frozen=True, slots=True)
class Answer:
    """The server sends ``reply`` here (transcript line ``line``)."""

    line: int
    reply: Message


@dataclass(frozen=True, slots=True)
class Hangup:
    """The server closed the connection here (an empty server line)."""

    line: int


Step: TypeAlias = Expect | Answer | Hangup


@dataclass(frozen=True, slots=True)
class RecordedConnection:
    """One recorded connection: ``steps`` after the handshake, in recorded order.

    ``source`` is the transcript file, ``index`` the connection's place in
    the recording (from 1), ``handshake_line`` the line of the client's
    handshake and ``list_id`` the one the server's ``OpenListReply`` gave.
    """

    source: str
    index: int
    handshake_line: int
    list_id: int
    steps: tuple[Step, ...]

    @property
    def name(self) -> str:
        """``session.jsonl, connection 2``: how errors name it."""
        return f"{self.source}, connection {self.index}"


@dataclass(frozen=True, slots=True)
class Recording:
    """Recorded connections, to be served to clients in this order."""

    connections: tuple[RecordedConnection, ...]

    @classmethod
    def load(cls, *paths: str | Path) -> Recording:
        """Every connection of the transcripts at ``paths``, file by file.

        Raises :class:`RecordingError` for a file that is no transcript or
        holds no connection, :class:`OSError` for one that cannot be read.
        """
        if not paths:
            raise ValueError("Recording.load() needs at least one transcript path")
        found: list[RecordedConnection] = []
        for path in paths:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except UnicodeDecodeError as e:
                raise RecordingError(str(path), None, f"not UTF-8 text ({e.reason})") from None
            found += connections_of(text, str(path), first_index=len(found) + 1)
        return cls(tuple(found))

    def __len__(self) -> int:
        return len(self.connections)


def connections_of(text: str, source: str, first_index: int = 1) -> list[RecordedConnection]:
    """The connections a transcript's ``text`` holds (``source`` names it in errors)."""
    numbered = [
        (number, _line(raw, source, number))
        for number, raw in enumerate(io.StringIO(text), 1)
        if raw.strip()
    ]
    parts = _split(numbered, source)
    if not parts:
        raise RecordingError(source, None, "it holds no connection (no client handshake)")
    return [_connection(part, source, index) for index, part in enumerate(parts, first_index)]


def _line(raw: str, source: str, number: int) -> Line:
    try:
        [line] = load(io.StringIO(raw))
    except ValueError as e:
        # load() words it for a file of its own: keep its reason, name our line
        reason = str(e).partition(": ")[2] or str(e)
        raise RecordingError(source, number, f"not a valid record: {reason}") from None
    return line


_Numbered: TypeAlias = list[tuple[int, Line]]


def _split(numbered: _Numbered, source: str) -> list[_Numbered]:
    """``numbered`` cut before each client line that starts with a handshake."""
    parts: list[_Numbered] = []
    for number, line in numbered:
        if line.direction == "c2s" and line.data.startswith(HANDSHAKE):
            parts.append([])
        elif not parts:
            raise RecordingError(source, number, "the recording must start with a handshake")
        parts[-1].append((number, line))
    return parts


def _connection(part: _Numbered, source: str, index: int) -> RecordedConnection:
    numbers = [number for number, _ in part]
    steps: list[Step] = []
    decoded = messages_of(line for _, line in part)
    for number in numbers:
        try:
            line, items = next(decoded)
        except ProtocolError as e:
            raise RecordingError(source, number, f"its bytes do not decode: {e}") from None
        steps += _steps(number, line, items)
    opened = next((s for s in steps if isinstance(s, Answer)), None)
    if opened is None or not isinstance(opened.reply, dpm.OpenListReply):
        where = opened.line if opened is not None else numbers[-1]
        raise RecordingError(source, where, "the server's first reply is not an OpenListReply")
    return RecordedConnection(source, index, numbers[0], opened.reply.list_id, tuple(steps))


def _steps(number: int, line: Line, items: list[object]) -> list[Step]:
    if not line.data:
        return [Hangup(number)] if line.direction == "s2c" else []
    messages = [item for item in items if isinstance(item, Message)]
    if line.direction == "c2s":
        return [Expect(number, message) for message in messages]
    return [Answer(number, message) for message in messages]
