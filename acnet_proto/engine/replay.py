"""The server side of a recorded DPM session, played to a live client, matched by meaning.

:class:`Replay` hands out the connections of a
:class:`~acnet_proto.engine.recording.Recording` in order; a
:class:`ReplaySession` is one client connection (sans-I/O: bytes in, bytes
out, no clock). Once the client's handshake arrives the session takes the
next recorded connection and sends every recorded reply up to the next
recorded request; each request the client sends is decoded and compared
with the recorded one, and when they agree the replies that follow it are
sent, and so on. How the client splits or pipelines its writes does not
matter, only the order of its requests.

Requests agree when they mean the same (:func:`difference`):

* the same message type and the same fields, with DRFs compared in
  canonical form (``M:OUTTMP.READING@I`` is ``M:OUTTMP@I``);
* ref ids through the mapping the ``AddToList`` requests made: the client's
  n-th ``AddToList`` is the recorded n-th, whatever ref id each side chose,
  and every reply is re-tagged with the client's ref id;
* list ids as recorded: the client's list is the one the recorded
  ``OpenListReply`` named, so they must be the same;
* Kerberos material is not compared, since a redacted transcript holds
  zeros: an ``Authenticate`` request's token only as empty or not (which
  phase it is), an ``EnableSettings`` request's MIC and signed message not
  at all, and an ``ApplySettings`` request's ``user_name`` not at all.

Kerberos can be played live (:class:`LiveAuth`, one per connection; the
simulator's :class:`~acnet_proto.sim.settings.ServerSettings` is one): a
recorded mutual-authentication token belongs to another session's context,
and a real GSS client refuses it. The client's ``Authenticate`` and
``EnableSettings`` are still matched with the recorded ones as phases; then
the live answer to ``Authenticate`` (the service name, the acceptor's
token) replaces the recorded ``AuthenticateReply``, and ``EnableSettings``
gets the recorded reply once its MIC verifies with the live context. A
live refusal is sent to the client and ends the session as a departure.
Without live Kerberos the recorded replies are sent, and a departure while
the client is authenticating says to replay with a keytab.

Timestamps and values are sent as recorded. While the session waits for
the client, the server may send :meth:`ReplaySession.heartbeat` (a
``ListStatusReply`` for the recorded list) so the client does not give it up.

The first request that departs from the recording ends the session with
:attr:`ReplaySession.mismatch`, a :class:`ReplayMismatch` naming the
transcript line and what was expected and what came; so does a request
after the recording's last one, and a client that hangs up while recorded
requests remain. ``StopList`` and ``ClearList`` are the exception: clients
tidy up when they finish, so when nothing but those is left they may be
sent or not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

import numpy as np

from acnet_proto._text import shown
from acnet_proto.drf import DRFError, canonical
from acnet_proto.engine.framing import DEFAULT_MAX_FRAME_SIZE, FrameSplitter, HandshakeReader, frame
from acnet_proto.engine.recording import Answer, Expect, Hangup, RecordedConnection, Recording
from acnet_proto.errors import AcnetProtoError, ProtocolError
from acnet_proto.pc import dpm
from acnet_proto.pc._message import Message

__all__ = ["LiveAuth", "Replay", "ReplayMismatch", "ReplaySession", "difference"]

# Not compared: a redacted transcript zeroes the secrets, and a replay checks no identity.
_IGNORED = {
    "EnableSettings_request": frozenset({"mic", "message"}),
    "ApplySettings_request": frozenset({"user_name"}),
}
_SETTINGS = frozenset({"raw_array", "scaled_array", "text_array"})
# A client's tidying up when it is done: optional once no other request is left.
_TEARDOWN = (dpm.StopListRequest, dpm.ClearListRequest)
_KERBEROS = (dpm.AuthenticateRequest, dpm.EnableSettingsRequest)
_FIX = "fix the client, or record the session again"
_NEEDS_KEYTAB = (
    "a real Kerberos client refuses the recorded Authenticate reply, whose token belongs to "
    "another session: replay with a keytab (acnet-proto replay --keytab KEYTAB, or keytab= "
    "on ReplayServer) to authenticate live"
)


class LiveAuth(Protocol):
    """The server's half of Kerberos for one connection.

    Each method answers the request with the messages to send; a refusal is a
    ``StatusReply`` with a nonzero status, and :attr:`refusal` then says why.
    """

    refusal: str | None

    def on_authenticate(self, request: dpm.AuthenticateRequest) -> list[Message]: ...

    def on_enable(self, request: dpm.EnableSettingsRequest) -> list[Message]: ...


class ReplayMismatch(AcnetProtoError):
    """The client departed from the recording.

    ``connection`` names the recorded connection (file and index), ``line``
    is the transcript line of the recorded request (or of the last step when
    the recording had ended; None before any was taken), ``expected`` and
    ``got`` describe both sides, ``reason`` says what differs, ``advice``
    what to do about it.
    """

    def __init__(
        self,
        connection: str,
        line: int | None,
        expected: str,
        got: str,
        reason: str,
        advice: str = _FIX,
    ) -> None:
        self.connection, self.line = connection, line
        self.expected, self.got, self.reason, self.advice = expected, got, reason, advice
        where = f"{connection}, line {line}" if line is not None else connection
        super().__init__(
            f"{where}: expected {expected}, got {got} ({reason}); "
            f"the client departed from the recording: {advice}"
        )


class Replay:
    """Serves ``recording``'s connections, one to each new client connection, in order.

    ``live_auth`` makes the Kerberos state of a new connection; None: the
    recorded Kerberos replies are sent (see the module docstring).
    """

    def __init__(
        self,
        recording: Recording,
        *,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        live_auth: Callable[[], LiveAuth] | None = None,
    ) -> None:
        self.recording = recording
        self.max_frame_size = max_frame_size
        self.live_auth = live_auth
        #: How many recorded connections were handed to clients so far.
        self.taken = 0

    @property
    def exhausted(self) -> bool:
        """Every recorded connection has been handed out."""
        return self.taken >= len(self.recording)

    def session(self) -> ReplaySession:
        """A new client connection; it takes its recorded one when the handshake arrives."""
        auth = None if self.live_auth is None else self.live_auth()
        return ReplaySession(self._take, self.max_frame_size, auth)

    def unserved(self) -> list[ReplayMismatch]:
        """A departure for each recorded connection no client has taken yet."""
        return [
            ReplayMismatch(
                c.name,
                c.handshake_line,
                "a client connection",
                "none",
                "the client made fewer connections than the recording",
            )
            for c in self.recording.connections[self.taken :]
        ]

    def _take(self) -> RecordedConnection | None:
        if self.exhausted:
            return None
        self.taken += 1
        return self.recording.connections[self.taken - 1]


class ReplaySession:
    """One client connection playing one recorded connection (see the module docstring).

    Feed what arrives to :meth:`receive` and write what it returns; once
    :attr:`finished`, close the connection (after writing). ``take`` gives the
    recorded connection to play, or None when none is left; ``auth`` plays
    Kerberos live (None: as recorded).
    """

    def __init__(
        self,
        take: Callable[[], RecordedConnection | None],
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        auth: LiveAuth | None = None,
    ) -> None:
        self._take = take
        self._auth = auth
        self._authenticating = False  # between a matched Authenticate and its EnableSettings
        self._handshake: HandshakeReader | None = HandshakeReader()
        self._splitter = FrameSplitter(max_frame_size)
        self.connection: RecordedConnection | None = None
        self._position = 0
        self._to_client: dict[int, int] = {}  # recorded ref id -> the client's
        self._to_recorded: dict[int, int] = {}  # the client's ref id -> recorded
        #: Why the session ended early: the client's first departure, or None.
        self.mismatch: ReplayMismatch | None = None
        #: Nothing more will be sent: close the connection.
        self.finished = False

    @property
    def complete(self) -> bool:
        """Every recorded request has been matched (tidying up aside)."""
        return self.connection is not None and self._left() == []

    def receive(self, data: bytes) -> bytes:
        """What arrived from the client (``b""``: it closed); returns what to send it."""
        if self.finished:
            return b""
        if not data:
            self._client_closed()
            return b""
        try:
            return self._receive(data)
        except ProtocolError as e:
            self._depart("bytes that are not a DPM request", shown(str(e)))
            return b""

    def heartbeat(self) -> bytes:
        """A ``ListStatusReply`` for the recorded list ("still here"), or b"" before the
        handshake and once finished."""
        if self.finished or self.connection is None:
            return b""
        return frame(dpm.encode(dpm.ListStatusReply(list_id=self.connection.list_id, status=0)))

    def _receive(self, data: bytes) -> bytes:
        out = b""
        if self._handshake is not None:
            rest = self._handshake.feed(data)
            if rest is None:
                return b""
            self._handshake = None
            out, data = _framed(self._start()), rest
        for payload in self._splitter.feed(data):
            if self.finished:
                break
            out += self._request(dpm.decode_request(payload))
        return out

    def _start(self) -> list[Message]:
        self.connection = self._take()
        if self.connection is None:
            self.finished = True
            self.mismatch = ReplayMismatch(
                "the recording",
                None,
                "no further connection",
                "a new connection",
                "every recorded connection has been served",
            )
            return []
        return self._replies()

    def _request(self, got: Message) -> bytes:
        step = self._step()
        if not isinstance(step, Expect):
            if not isinstance(got, _TEARDOWN):
                self._depart(describe(got), "the recording has no more requests")
            return b""
        reason = difference(step.request, got, self._to_recorded)
        if reason is not None:
            if isinstance(got, _TEARDOWN) and self._left() == []:
                return b""  # tidying up the recorded client did not do
            self._depart(describe(got), reason)
            return b""
        if isinstance(got, dpm.AddToListRequest) and isinstance(step.request, dpm.AddToListRequest):
            self._map(step.request.ref_id, got.ref_id)
        if isinstance(got, _KERBEROS):
            self._authenticating = isinstance(got, dpm.AuthenticateRequest)
            if self._auth is not None:
                return self._live(got)
        self._position += 1
        return _framed(self._replies())

    def _live(self, got: dpm.AuthenticateRequest | dpm.EnableSettingsRequest) -> bytes:
        """The live answer to a matched Kerberos request, in place of the recorded one."""
        assert self._auth is not None  # only called when playing Kerberos live
        if isinstance(got, dpm.AuthenticateRequest):
            answer = self._auth.on_authenticate(got)
        else:
            answer = self._auth.on_enable(got)
        if any(isinstance(m, dpm.StatusReply) and m.status != 0 for m in answer):
            self._depart(describe(got), f"Kerberos refused it: {self._auth.refusal}")
            return _framed(answer)
        self._position += 1
        replies = self._replies()
        if isinstance(got, dpm.EnableSettingsRequest):
            return _framed(replies)  # verified: the recording says whether it enabled
        return _framed(_in_place_of_the_recorded(replies, answer))

    def _replies(self) -> list[Message]:
        """The recorded replies up to the next request, re-tagged (a recorded hangup
        finishes)."""
        out = []
        while isinstance(step := self._step(), Answer | Hangup):
            self._position += 1
            if isinstance(step, Hangup):
                self.finished = True
                break
            out.append(self._retagged(step.reply))
        return out

    def _client_closed(self) -> None:
        self.finished = True
        left = self._left()
        if self.connection is not None and left:
            self._depart("the end of the connection", "recorded requests remain")

    def _step(self) -> Expect | Answer | Hangup | None:
        steps = self.connection.steps if self.connection is not None else ()
        return steps[self._position] if self._position < len(steps) else None

    def _left(self) -> list[Expect]:
        """The recorded requests not yet matched, tidying up aside."""
        steps = self.connection.steps[self._position :] if self.connection is not None else ()
        return [s for s in steps if isinstance(s, Expect) and not isinstance(s.request, _TEARDOWN)]

    def _depart(self, got: str, reason: str) -> None:
        self.finished = True
        connection, step = self.connection, self._step()
        if connection is None:
            name, line, expected = "the recording", None, "the DPM handshake"
        elif isinstance(step, Expect):
            name, line, expected = connection.name, step.line, describe(step.request)
        else:
            name, line, expected = connection.name, _last_line(connection), "the end of it"
        advice = _NEEDS_KEYTAB if self._authenticating and self._auth is None else _FIX
        self.mismatch = ReplayMismatch(name, line, expected, got, reason, advice)

    def _map(self, recorded: int, client: int) -> None:
        self._to_client[recorded] = client
        self._to_recorded[client] = recorded

    def _retagged(self, reply: Message) -> Message:
        """``reply`` with the client's ref ids where the recorded ones were."""
        to_client = self._to_client
        if isinstance(reply, dpm.ApplySettingsReply):
            return reply.replace(
                status=tuple(
                    s.replace(ref_id=to_client.get(s.ref_id, s.ref_id)) for s in reply.status
                )
            )
        ref = getattr(reply, "ref_id", None)
        if ref is None or to_client.get(ref, ref) == ref:
            return reply
        return reply.replace(ref_id=to_client[ref])


def _in_place_of_the_recorded(replies: list[Message], answer: list[Message]) -> list[Message]:
    """``replies`` with ``answer`` where the recorded ``AuthenticateReply`` was (first if none)."""
    for at, reply in enumerate(replies):
        if isinstance(reply, dpm.AuthenticateReply):
            return [*replies[:at], *answer, *replies[at + 1 :]]
    return [*answer, *replies]


def _framed(messages: list[Message]) -> bytes:
    return b"".join(frame(dpm.encode(m)) for m in messages)


def _last_line(connection: RecordedConnection) -> int:
    return connection.steps[-1].line if connection.steps else connection.handshake_line


def describe(message: Message) -> str:
    """A message for an error line: its type and fields, bounded and escaped."""
    return shown(repr(message))


def difference(expected: Message, got: Message, to_recorded: dict[int, int]) -> str | None:
    """Why ``got`` does not mean ``expected`` (see the module docstring), or None.

    ``to_recorded`` maps the client's ref ids to the recorded ones.
    """
    if type(got) is not type(expected):
        return f"a {type(got).__name__} where the recording has a {type(expected).__name__}"
    wire = type(expected).schema.wire_name
    ignored = _IGNORED.get(wire, frozenset())
    for name, recorded, value in _fields(expected, got):
        if name in ignored or (name == "ref_id" and wire == "AddToList_request"):
            continue
        if not _same_field(name, recorded, value, to_recorded):
            return f"its {name} differs"
    return None


def _fields(expected: Message, got: Message) -> Iterator[tuple[str, Any, Any]]:
    return zip(expected.field_names, expected, got, strict=True)


def _same_field(name: str, recorded: Any, value: Any, to_recorded: dict[int, int]) -> bool:
    if name == "ref_id":
        return bool(to_recorded.get(value, value) == recorded)
    if name == "drf_request":
        return _canonical(value) == _canonical(recorded)
    if name == "token":
        return bool(value) == bool(recorded)
    if name in _SETTINGS:
        return _same_settings(recorded, value, to_recorded)
    if isinstance(recorded, np.ndarray) or isinstance(value, np.ndarray):
        return bool(np.array_equal(recorded, value))
    return bool(recorded == value)


def _same_settings(recorded: Any, value: Any, to_recorded: dict[int, int]) -> bool:
    if recorded is None or value is None or len(recorded) != len(value):
        return recorded is None and value is None
    return all(
        r == v.replace(ref_id=to_recorded.get(v.ref_id, v.ref_id))
        for r, v in zip(recorded, value, strict=True)
    )


def _canonical(text: str) -> str:
    """A DRF in canonical form; text that is not a DRF (``#ROLE:testing``) as it is."""
    try:
        return canonical(text)
    except DRFError:
        return text
