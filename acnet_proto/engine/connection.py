"""The DPM/TCP conversation as a sans-I/O state machine, in either role.

:class:`DPMConnection` never touches a socket, a thread or a clock. Feed it
what arrived with :meth:`~DPMConnection.receive_data`, take events out with
:meth:`~DPMConnection.next_event`, and turn commands into bytes with
:meth:`~DPMConnection.send`::

    conn = DPMConnection(Role.CLIENT)
    sock.sendall(conn.initiate())              # the HTTP-style handshake
    conn.receive_data(sock.recv(65536))
    reply = conn.next_event()                  # OpenListReply(list_id=...)
    sock.sendall(conn.send(
        dpm.AddToListRequest(list_id=conn.list_id, ref_id=1, drf_request="M:OUTTMP@I"),
        dpm.StartListRequest(list_id=conn.list_id),
    ))

Whose fault: a command this side may not send raises
:class:`~acnet_proto.errors.LocalProtocolError` and changes nothing; bytes the
peer may not send raise :class:`~acnet_proto.errors.RemoteProtocolError` from
``next_event`` and leave the connection in :attr:`ConnectionState.ERROR`.
The legal moves are the tables of :mod:`acnet_proto.engine._state`.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Mapping
from operator import attrgetter
from typing import Any, TypeVar

from acnet_proto._text import shown
from acnet_proto.drf import MAX_DRF_LENGTH
from acnet_proto.engine._state import (
    CONNECTION_MOVES,
    LIST_MOVES,
    SETTINGS_MOVES,
    ConnectionState,
    ListState,
    Role,
    SettingsState,
)
from acnet_proto.engine.events import (
    NEED_DATA,
    ConnectionClosed,
    ConnectionEvent,
    DataReply,
    Handshake,
    NeedData,
    SettingsNotEnabled,
    StaleReply,
)
from acnet_proto.engine.framing import (
    DEFAULT_MAX_FRAME_SIZE,
    HANDSHAKE,
    FrameMemo,
    FrameSplitter,
    HandshakeReader,
    frame,
)
from acnet_proto.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from acnet_proto.pc import dpm
from acnet_proto.pc._message import Message

__all__ = ["DATA_REPLIES", "HEARTBEAT_PERIOD", "MISSED_HEARTBEATS", "DPMConnection"]

_State = TypeVar("_State", bound=enum.Enum)
_Move = Callable[["DPMConnection", Any, bool], ConnectionEvent]

#: Seconds between the ``ListStatus_reply`` heartbeats of an open list (the lab's DPM: 2).
HEARTBEAT_PERIOD = 2.0
#: Heartbeats missed in a row after which a silent peer counts as gone.
MISSED_HEARTBEATS = 3

DATA_REPLIES = frozenset(
    name + "_reply"
    for name in (
        "Scalar",
        "ScalarArray",
        "Raw",
        "Text",
        "TextArray",
        "AnalogAlarm",
        "DigitalAlarm",
        "BasicStatus",
        "TimedScalarArray",
        "Status",
    )
)

# A pooled connection sends these byte for byte again on every read: each is encoded
# once and its frame remembered (keyed by its fields, so per list id, ref id and DRF).
_REPEATED_COMMANDS = frozenset(
    {dpm.AddToListRequest, dpm.StartListRequest, dpm.StopListRequest, dpm.ClearListRequest}
)
# ... and these arrive byte for byte again: decoded once. Never data: it carries a
# timestamp, so it does not repeat, and remembering it would only cost.
_REPEATED_ARRIVALS = _REPEATED_COMMANDS | {
    dpm.RemoveFromListRequest,
    dpm.AddToListReply,
    dpm.RemoveFromListReply,
    dpm.StartListReply,
    dpm.ListStatusReply,
    dpm.DeviceInfoReply,
}
# Bounds on what one connection remembers. A longer frame is decoded every time: it is
# not one of the above, or hashing it would cost more than decoding it again.
_FRAMES_SENT_KEPT = 2048
_FRAMES_DECODED_KEPT = 2048
_LONGEST_KEPT = 256
# A frame is remembered by its fields only when they are exactly these types: 1.0 and
# Fraction(1) equal 1 but do not encode (the codec refuses them).
_PLAIN = frozenset({int, str, type(None)})
# How many expired entries ``_retired`` may hold beyond the list's size before they go.
_RETIRED_SLACK = 64
_MISSING = object()

# Everything a send may move, by reference: containers a send replaces are put back
# whole; those it changes in place are put back from the journal.
_MOVING_PARTS = (
    "_state",
    "_list_state",
    "_settings_state",
    "_list_id",
    "_entries",
    "_retired",
    "_awaiting_add",
    "_awaiting_remove",
    "_starts_sent",
    "_starts_answered",
    "_awaiting_auth_reply",
    "_awaiting_enable_reply",
    "_settings_in_flight",
)
_moving_parts = attrgetter(*_MOVING_PARTS)


class DPMConnection:
    """One DPM/TCP connection and the one list it owns.

    ``our_role`` is :attr:`Role.CLIENT` or :attr:`Role.SERVER`. Time comes
    from the caller: pass ``now`` (monotonic seconds) to ``receive_data`` and
    ``send`` and ask :meth:`peer_overdue` / :meth:`heartbeat_due`.
    """

    def __init__(
        self,
        our_role: Role,
        *,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        heartbeat_period: float = HEARTBEAT_PERIOD,
        missed_heartbeats: int = MISSED_HEARTBEATS,
    ) -> None:
        if not isinstance(our_role, Role):
            raise TypeError(f"our_role must be Role.CLIENT or Role.SERVER, got {our_role!r}")
        self.our_role = our_role
        self.their_role = Role.SERVER if our_role is Role.CLIENT else Role.CLIENT
        self.heartbeat_period = heartbeat_period
        self.missed_heartbeats = missed_heartbeats
        self._client = our_role is Role.CLIENT
        self._decode = dpm.decode_reply if self._client else dpm.decode_request
        self._sends = _REQUEST_MOVES if self._client else _REPLY_MOVES
        self._arrivals = _REPLY_MOVES if self._client else _REQUEST_MOVES
        self._splitter = FrameSplitter(max_frame_size, detect_http_refusal=self._client)
        self._handshake = None if self._client else HandshakeReader()
        self._frames: deque[bytes] = deque()
        self._raw: list[bytes] = []
        self._peer_closed = False
        self._frames_sent: FrameMemo[tuple[Any, ...], bytes] = FrameMemo(_FRAMES_SENT_KEPT)
        self._frames_decoded: FrameMemo[bytes, Message] = FrameMemo(_FRAMES_DECODED_KEPT)
        self.last_heard: float | None = None
        self.last_heartbeat_sent: float | None = None
        # The conversation: everything both roles must agree on (_MOVING_PARTS).
        self._state = ConnectionState.AWAITING_HANDSHAKE
        self._list_state = ListState.IDLE
        self._settings_state = SettingsState.NONE
        self._list_id: int | None = None
        self._entries: dict[int, str] = {}
        # ref_id -> StartLists sent when it stopped streaming: its old data may arrive
        # until the reply to the next StartList, i.e. while that count >= _starts_answered.
        self._retired: dict[int, int] = {}
        # ref_id -> replies owed: a ref_id reused after ClearList is owed one per request.
        self._awaiting_add: dict[int, int] = {}
        self._awaiting_remove: dict[int, int] = {}
        self._starts_sent = 0
        self._starts_answered = 0
        self._awaiting_auth_reply = False
        self._awaiting_enable_reply = False
        self._settings_in_flight: list[tuple[int, ...]] = []
        # While a send of several commands runs: (dict, key, old value) per change made
        # in place, to undo them if a later command is refused.
        self._journal: list[tuple[dict[Any, Any], Any, Any]] | None = None

    # -- state, read-only -----------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def list_state(self) -> ListState:
        return self._list_state

    @property
    def settings_state(self) -> SettingsState:
        return self._settings_state

    @property
    def list_id(self) -> int | None:
        """The list id from the server's ``OpenListReply``; ``None`` until then."""
        return self._list_id

    @property
    def entries(self) -> dict[int, str]:
        """The current list: ref_id to DRF, as added (a copy). In the server role a DRF
        longer than :data:`~acnet_proto.drf.MAX_DRF_LENGTH` keeps only its first
        ``MAX_DRF_LENGTH + 1`` characters (enough to tell it is too long)."""
        return dict(self._entries)

    @property
    def settings_in_flight(self) -> tuple[int, ...]:
        """Ref ids of settings sent in ``ApplySettings`` whose reply has not arrived.

        If the connection breaks while this is not empty, the outcome of those
        settings is unknown: never replay them automatically.
        """
        return tuple(ref for refs in self._settings_in_flight for ref in refs)

    # -- the handshake --------------------------------------------------------

    def initiate(self) -> bytes:
        """(Client) the handshake bytes to write first; then wait for ``OpenListReply``."""
        if not self._client:
            raise LocalProtocolError("only the client sends the handshake; servers receive it")
        self._state = self._move(CONNECTION_MOVES, self._state, "handshake", True)
        return HANDSHAKE

    # -- sending ----------------------------------------------------------------

    def send(self, *commands: Message, now: float | None = None) -> bytes:
        """Check ``commands`` in order and return their frames, concatenated.

        All or nothing: if any command is illegal, or cannot be encoded,
        :class:`LocalProtocolError` is raised and the connection is exactly as
        it was before the call.
        """
        # Each command is checked before it changes anything, so one needs no undoing.
        out = self._send_one(commands[0]) if len(commands) == 1 else self._send_all(commands)
        if (
            now is not None
            and not self._client
            and any(isinstance(c, dpm.ListStatusReply) for c in commands)
        ):
            self.last_heartbeat_sent = now
        return out

    def _send_all(self, commands: tuple[Message, ...]) -> bytes:
        """Check and apply each command in turn; if one is refused, undo the ones before it."""
        saved = _moving_parts(self)
        journal: list[tuple[dict[Any, Any], Any, Any]] = []
        self._journal = journal
        try:
            return b"".join([self._send_one(command) for command in commands])
        except BaseException:
            for container, key, old in reversed(journal):
                if old is _MISSING:
                    del container[key]
                else:
                    container[key] = old
            for name, value in zip(_MOVING_PARTS, saved, strict=True):
                setattr(self, name, value)
            raise
        finally:
            self._journal = None

    def _send_one(self, command: Message) -> bytes:
        cls = type(command)
        move = self._sends.get(cls)
        if move is None:
            kind = getattr(cls, "schema", None)
            if kind is None or command.protocol != "dpm" or kind.kind != _SENT_KIND[self._client]:
                plural = "requests" if self._client else "replies"
                raise LocalProtocolError(
                    f"a {self.our_role.value} sends DPM {plural}; {_name(command)} is not one"
                )
            # A subclass of a DPM message: the codec refuses it below, naming it.
            move = self._sends[dpm.codec.classes[kind.wire_name]]
        if self._state is ConnectionState.CLOSED or self._state is ConnectionState.ERROR:
            raise LocalProtocolError(
                f"cannot send {_name(command)}: the connection is {self._state.value}"
            )
        if cls in _REPEATED_COMMANDS and _PLAIN.issuperset(map(type, command)):
            key = (cls, *command)
            data = self._frames_sent.get(key)
            if data is None:
                data = frame(dpm.encode(command))
                self._frames_sent.remember(key, data)
        else:
            data = frame(dpm.encode(command))
        move(self, command, True)
        return data

    def close(self) -> None:
        """This side is done; sending is illegal from now on."""
        if self._state in (ConnectionState.CLOSED, ConnectionState.ERROR):
            return
        self._state = ConnectionState.CLOSED

    # -- receiving --------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview, now: float | None = None) -> None:
        """Hand over bytes that arrived; ``b""`` means the peer closed its side.

        Parsing happens in :meth:`next_event`, which raises any error.
        """
        if self._peer_closed and data:
            self._fail(RemoteProtocolError("data arrived after the peer closed the connection"))
        if now is not None:
            self.last_heard = now
        if not data:
            self._peer_closed = True
            return
        self._raw.append(bytes(data))

    def next_event(self) -> ConnectionEvent | NeedData:
        """The next event: a DPM message, an :mod:`~acnet_proto.engine.events` event, or
        ``NEED_DATA``.

        Raises :class:`RemoteProtocolError` (and moves to ``ERROR``) when the
        peer broke the protocol; after that every call raises again.
        """
        if self._state is ConnectionState.ERROR:
            raise RemoteProtocolError("the connection is in the error state; open a new one")
        try:
            return self._next_event()
        except RemoteProtocolError as e:
            self._state = ConnectionState.ERROR
            raise e from None

    def _next_event(self) -> ConnectionEvent | NeedData:
        if not self._frames:
            event = self._parse_pending()
            if event is not None:
                return event
        if self._frames:
            return self._arrive(self._frames.popleft())
        if self._peer_closed:
            self._splitter.close()
            if self._handshake is not None and self._state is ConnectionState.AWAITING_HANDSHAKE:
                raise RemoteProtocolError("the client closed the connection before its handshake")
            if self._state is not ConnectionState.ERROR:
                self._state = ConnectionState.CLOSED
            return ConnectionClosed()
        return NEED_DATA

    def _parse_pending(self) -> Handshake | None:
        raw = b"".join(self._raw)
        self._raw.clear()
        if self._handshake is not None and self._state is ConnectionState.AWAITING_HANDSHAKE:
            rest = self._handshake.feed(raw)
            if rest is None:
                return None
            self._state = self._move(CONNECTION_MOVES, self._state, "handshake", False)
            self._raw.append(rest)
            return Handshake()
        # fed even when empty: an oversized frame found behind good ones raises now
        self._frames.extend(self._splitter.feed(raw))
        return None

    def _arrive(self, payload: bytes) -> ConnectionEvent:
        """The event of one frame from the peer: decoded (or remembered), then checked."""
        short = len(payload) <= _LONGEST_KEPT
        message = self._frames_decoded.get(payload) if short else None
        if message is None:
            message = self._decode(payload)
            if short and type(message) in _REPEATED_ARRIVALS:
                self._frames_decoded.remember(payload, message)
        return self._arrivals[type(message)](self, message, False)

    # -- receiving a whole chunk at once (ClientConnection.receive) ------------

    def _client_frames(self) -> deque[bytes]:
        """(Client role) the frames whose events :meth:`next_event` would return next, in
        order: take them from the left, each through :meth:`_client_event`.

        Empty when ``next_event`` would say ``NEED_DATA`` or, if the peer
        closed, :class:`ConnectionClosed`. Raises as ``next_event`` does.
        """
        if self._state is ConnectionState.ERROR:
            raise RemoteProtocolError("the connection is in the error state; open a new one")
        if not self._frames and (self._raw or self._splitter.failed):
            try:
                self._parse_pending()
            except RemoteProtocolError as e:
                self._state = ConnectionState.ERROR
                raise e from None
        return self._frames

    def _client_event(self, payload: bytes) -> ConnectionEvent:
        """The event of a frame from :meth:`_client_frames`, as ``next_event`` makes it."""
        try:
            return self._arrive(payload)
        except RemoteProtocolError as e:
            self._state = ConnectionState.ERROR
            raise e from None

    # -- time -----------------------------------------------------------------

    def peer_overdue(self, now: float) -> bool:
        """True when nothing has arrived for ``missed_heartbeats`` heartbeat periods.

        Meaningful once the list is open (servers send ``ListStatusReply``
        about every :attr:`heartbeat_period` seconds on an open list).
        """
        due = self.overdue_at()
        return due is not None and now >= due

    def overdue_at(self) -> float | None:
        """When the peer becomes overdue, or ``None`` if no clock reading was given yet."""
        if self.last_heard is None or self._state is not ConnectionState.OPEN:
            return None
        return self.last_heard + self.heartbeat_period * self.missed_heartbeats

    def heartbeat_due(self, now: float) -> bool:
        """(Server) True when a ``ListStatusReply`` heartbeat should be sent."""
        due = self.heartbeat_due_at()
        return due is not None and now >= due

    def heartbeat_due_at(self) -> float | None:
        """(Server) when the next heartbeat is due; ``None`` before the list is open."""
        if self._client or self._state is not ConnectionState.OPEN:
            return None
        if self.last_heartbeat_sent is None:
            return float("-inf")
        return self.last_heartbeat_sent + self.heartbeat_period

    def heartbeat(self, now: float, status: int = 0) -> bytes:
        """(Server) the heartbeat frame for this list, recording when it was sent."""
        return self.send(dpm.ListStatusReply(list_id=self.list_id, status=status), now=now)

    # -- the rules ------------------------------------------------------------

    def _fail(self, error: RemoteProtocolError) -> None:
        self._state = ConnectionState.ERROR
        raise error

    def _move(
        self,
        table: Mapping[tuple[_State, Any], _State],
        state: _State,
        move: str | type,
        local: bool,
        what: str = "",
    ) -> _State:
        new = table.get((state, move))
        if new is None:
            what = what or (_what(move) if isinstance(move, type) else move)
            raise self._violation(local, f"{what} is not allowed while {_describe(table, state)}")
        return new

    def _violation(self, local: bool, text: str) -> ProtocolError:
        if local:
            return LocalProtocolError(f"cannot send: {text}")
        return RemoteProtocolError(f"the {self.their_role.value} broke the protocol: {text}")

    def _check(self, message: Message, list_id: int | None, local: bool) -> None:
        """What every message but ``OpenList_reply`` needs: an open list, and if it
        names a list, this one."""
        if self._state is not ConnectionState.OPEN:
            name = message.schema.wire_name
            if self._state is ConnectionState.CLOSED:
                raise self._violation(local, f"{name} after the connection was closed")
            raise self._violation(local, f"{name} before the list was opened ({self._state.value})")
        if list_id is not None and list_id != self._list_id:
            name = message.schema.wire_name
            raise self._violation(
                local, f"{name} names list {list_id}, but this list is {self._list_id}"
            )

    # Changes made in place, journaled while a send of several commands runs.

    def _put(self, container: dict[Any, Any], key: Any, value: Any) -> None:
        if self._journal is not None:
            self._journal.append((container, key, container.get(key, _MISSING)))
        container[key] = value

    def _drop(self, container: dict[Any, Any], key: Any) -> None:
        if self._journal is not None:
            self._journal.append((container, key, container[key]))
        del container[key]

    def _retire(self, refs: dict[int, str]) -> None:
        """``refs`` stop streaming: their data may still arrive until the next StartList
        is answered."""
        self._retired = {**self._retired, **dict.fromkeys(refs, self._starts_sent)}

    def _retired_now(self, ref: int | None) -> bool:
        return self._retired.get(ref, -1) >= self._starts_answered  # type: ignore[arg-type]

    # requests: sent by a client, received by a server ---------------------------

    def _on_add(self, message: dpm.AddToListRequest, local: bool) -> Message:
        self._check(message, message.list_id, local)
        new_state = self._move(LIST_MOVES, self._list_state, type(message), local)
        entries = self._entries
        ref, drf = message.ref_id, message.drf_request
        if ref in entries:
            raise self._violation(
                local, f"ref_id {ref} is already on the list ({shown(entries[ref])})"
            )
        if ref < 0 or (ref == 0 and not drf.startswith("#")):
            raise self._violation(
                local, f"ref_id must be >= 1 (0 is only for '#' list properties), got {ref}"
            )
        # A peer's DRF longer than any valid one is refused by whoever serves the list;
        # keeping only its head means a peer cannot make the engine hold megabytes.
        self._put(entries, ref, drf if local else drf[: MAX_DRF_LENGTH + 1])
        self._put(self._awaiting_add, ref, self._awaiting_add.get(ref, 0) + 1)
        self._list_state = new_state
        return message

    def _on_remove(self, message: dpm.RemoveFromListRequest, local: bool) -> Message:
        self._check(message, message.list_id, local)
        new_state = self._move(LIST_MOVES, self._list_state, type(message), local)
        ref = message.ref_id
        if ref not in self._entries:
            raise self._violation(local, f"RemoveFromList for ref_id {ref}, not on the list")
        self._put(self._retired, ref, self._starts_sent)
        self._drop(self._entries, ref)
        self._put(self._awaiting_remove, ref, self._awaiting_remove.get(ref, 0) + 1)
        self._list_state = new_state
        return message

    def _on_start(self, message: dpm.StartListRequest, local: bool) -> Message:
        self._check(message, message.list_id, local)
        new_state = self._move(LIST_MOVES, self._list_state, type(message), local)
        entries = self._entries
        # Ref ids are >= 0 (AddToList refuses the rest): any but ref 0 is an entry.
        if len(entries) <= (0 in entries):
            raise self._violation(local, "StartList needs at least one entry on the list")
        self._starts_sent += 1
        self._list_state = new_state
        return message

    def _on_stop(self, message: dpm.StopListRequest, local: bool) -> Message:
        self._check(message, message.list_id, local)
        new_state = self._move(LIST_MOVES, self._list_state, type(message), local)
        if self._list_state is ListState.STARTED:
            self._retire(self._entries)
        self._list_state = new_state
        return message

    def _on_clear(self, message: dpm.ClearListRequest, local: bool) -> Message:
        self._check(message, message.list_id, local)
        new_state = self._move(LIST_MOVES, self._list_state, type(message), local)
        self._retire(self._entries)
        self._entries = {}
        self._list_state = new_state
        return message

    def _on_authenticate(self, message: dpm.AuthenticateRequest, local: bool) -> Message:
        self._check(message, message.list_id, local)
        if self._awaiting_auth_reply:
            raise self._violation(local, "Authenticate while the previous one awaits its reply")
        if self._awaiting_enable_reply:
            # Its ref-0 Status_reply would then find settings restarted, with no move.
            raise self._violation(local, "Authenticate while the EnableSettings reply is pending")
        token = message.token
        self._settings_state = self._move(
            SETTINGS_MOVES,
            self._settings_state,
            "Authenticate_request:" + ("token" if token else "empty"),
            local,
            "Authenticate" + (" with a token" if token else ""),
        )
        self._awaiting_auth_reply = True
        return message

    def _on_enable(self, message: dpm.EnableSettingsRequest, local: bool) -> Message:
        self._check(message, message.list_id, local)
        if self._awaiting_auth_reply or self._awaiting_enable_reply:
            raise self._violation(local, "EnableSettings while an authentication reply is pending")
        self._settings_state = self._move(
            SETTINGS_MOVES, self._settings_state, type(message), local
        )
        self._awaiting_enable_reply = True
        return message

    def _on_apply_settings(
        self, message: dpm.ApplySettingsRequest, local: bool
    ) -> dpm.ApplySettingsRequest | SettingsNotEnabled:
        self._check(message, message.list_id, local)
        refs = tuple(
            s.ref_id
            for array in (message.raw_array, message.scaled_array, message.text_array)
            for s in array or ()
        )
        if self._settings_state is not SettingsState.ENABLED:
            if local:
                raise self._violation(
                    local, "ApplySettings before settings were enabled (authenticate first)"
                )
            self._settings_in_flight = [*self._settings_in_flight, refs]
            return SettingsNotEnabled(message)
        if local:
            missing = [ref for ref in refs if ref not in self._entries]
            if missing:
                raise self._violation(
                    local, f"ApplySettings for ref_id(s) {missing} not on the list"
                )
            if self._list_state is not ListState.STARTED:
                raise self._violation(
                    local, f"ApplySettings while the list is {self._list_state.value}"
                )
        self._settings_in_flight = [*self._settings_in_flight, refs]
        return message

    def _not_over_tcp(self, message: Message, local: bool) -> ConnectionEvent:
        self._check(message, getattr(message, "list_id", None), local)
        raise self._violation(local, f"{message.schema.wire_name} is not part of DPM over TCP")

    # replies: sent by a server, received by a client ----------------------------

    def _on_open_list(self, message: dpm.OpenListReply, local: bool) -> Message:
        self._state = self._move(CONNECTION_MOVES, self._state, type(message), local)
        self._list_id = message.list_id
        return message

    def _on_list_status(self, message: dpm.ListStatusReply, local: bool) -> Message:
        self._check(message, message.list_id, local)
        return message

    def _on_data(self, message: DataReply, local: bool) -> Message | StaleReply:
        # the streaming hot path: _check and _retired_now, inlined
        if self._state is not ConnectionState.OPEN:
            self._check(message, None, local)
        ref = message.ref_id
        # A reused ref_id's old data can still arrive until the new StartList is answered.
        if (
            ref in self._entries
            and self._list_state is ListState.STARTED
            and (local or self._retired.get(ref, -1) < self._starts_answered)
        ):
            return message
        return self._refuse_data(message, ref, local)

    def _on_status(self, message: dpm.StatusReply, local: bool) -> Message | StaleReply:
        """A ``Status_reply``: an entry's error, which needs no started list, or with
        ref 0 the answer to EnableSettings, a refused Authenticate, or a job-start failure."""
        self._check(message, None, local)
        ref = message.ref_id
        if ref == 0:
            return self._on_list_job_status(message, local)
        if ref in self._entries and (local or not self._retired_now(ref)):
            return message
        return self._refuse_data(message, ref, local)

    def _refuse_data(self, message: Message, ref: int | None, local: bool) -> StaleReply:
        name = message.schema.wire_name
        if local:
            raise self._violation(
                local,
                f"{name} for ref_id {ref} while the list is {self._list_state.value}"
                + ("" if ref in self._entries else " and the ref is not on it"),
            )
        return self._stale_or_violation(message, ref, local, name)

    def _on_list_job_status(self, message: dpm.StatusReply, local: bool) -> dpm.StatusReply:
        if self._awaiting_enable_reply:
            move = "enable_accepted" if message.status == 0 else "enable_refused"
            self._settings_state = self._move(SETTINGS_MOVES, self._settings_state, move, local)
            self._awaiting_enable_reply = False
        elif self._awaiting_auth_reply and message.status != 0:
            # DPM refuses a GSS token this way instead of with an Authenticate reply
            self._settings_state = self._move(
                SETTINGS_MOVES, self._settings_state, "auth_refused", local
            )
            self._awaiting_auth_reply = False
        return message

    def _on_add_reply(self, message: dpm.AddToListReply, local: bool) -> Message | StaleReply:
        self._check(message, message.list_id, local)
        return self._settle(message, message.ref_id, self._awaiting_add, local, "AddToList reply")

    def _on_remove_reply(
        self, message: dpm.RemoveFromListReply, local: bool
    ) -> Message | StaleReply:
        self._check(message, message.list_id, local)
        return self._settle(
            message, message.ref_id, self._awaiting_remove, local, "RemoveFromList reply"
        )

    def _on_device_info(self, message: dpm.DeviceInfoReply, local: bool) -> Message | StaleReply:
        self._check(message, None, local)
        ref = message.ref_id
        if ref in self._entries:
            return message
        return self._stale_or_violation(message, ref, local, "DeviceInfo")

    def _on_start_reply(self, message: dpm.StartListReply, local: bool) -> Message:
        self._check(message, message.list_id, local)
        if self._starts_answered == self._starts_sent:
            raise self._violation(local, "StartList reply without a StartList")
        # The server answers in order: data of entries retired before this StartList
        # was sent came before its reply, so they are no longer stale.
        self._starts_answered += 1
        if len(self._retired) > len(self._entries) + _RETIRED_SLACK:
            answered = self._starts_answered
            self._retired = {r: n for r, n in self._retired.items() if n >= answered}
        return message

    def _on_authenticate_reply(self, message: dpm.AuthenticateReply, local: bool) -> Message:
        self._check(message, None, local)
        if not self._awaiting_auth_reply:
            raise self._violation(local, "Authenticate reply without an Authenticate")
        self._settings_state = self._move(
            SETTINGS_MOVES, self._settings_state, type(message), local
        )
        self._awaiting_auth_reply = False
        return message

    def _on_apply_reply(self, message: dpm.ApplySettingsReply, local: bool) -> Message:
        self._check(message, None, local)
        if not self._settings_in_flight:
            raise self._violation(local, "ApplySettings reply without an ApplySettings")
        self._settings_in_flight = self._settings_in_flight[1:]
        return message

    def _settle(
        self, message: Message, ref: int, waiting: dict[int, int], local: bool, what: str
    ) -> Message | StaleReply:
        owed = waiting.get(ref, 0)
        if owed > 0:
            if owed == 1:
                self._drop(waiting, ref)
            else:
                self._put(waiting, ref, owed - 1)
            return message
        return self._stale_or_violation(message, ref, local, what)

    def _stale_or_violation(
        self, message: Message, ref: int | None, local: bool, what: str
    ) -> StaleReply:
        if not local and self._retired_now(ref):
            return StaleReply(message)
        if ref in self._entries:
            raise self._violation(
                local, f"{what} for ref_id {ref} while the list is {self._list_state.value}"
            )
        raise self._violation(local, f"{what} for ref_id {ref}, which was never on the list")


def _by_kind(kind: str, moves: dict[type, _Move]) -> dict[type, _Move]:
    """Every DPM message of ``kind`` to its move: ``moves``, and for the rest a refusal."""
    table: dict[type, _Move] = {
        cls: DPMConnection._not_over_tcp
        for cls in dpm.codec.classes.values()
        if cls.schema.kind == kind
    }
    table.update(moves)
    return table


_D = DPMConnection
# What a client sends and a server receives ...
_REQUEST_MOVES = _by_kind(
    "request",
    {
        dpm.AddToListRequest: _D._on_add,
        dpm.RemoveFromListRequest: _D._on_remove,
        dpm.StartListRequest: _D._on_start,
        dpm.StopListRequest: _D._on_stop,
        dpm.ClearListRequest: _D._on_clear,
        dpm.AuthenticateRequest: _D._on_authenticate,
        dpm.EnableSettingsRequest: _D._on_enable,
        dpm.ApplySettingsRequest: _D._on_apply_settings,
    },
)
# ... and what a server sends and a client receives.
_REPLY_MOVES = _by_kind(
    "reply",
    {
        **{dpm.codec.classes[name]: _D._on_data for name in DATA_REPLIES},
        dpm.StatusReply: _D._on_status,
        dpm.OpenListReply: _D._on_open_list,
        dpm.ListStatusReply: _D._on_list_status,
        dpm.AddToListReply: _D._on_add_reply,
        dpm.RemoveFromListReply: _D._on_remove_reply,
        dpm.DeviceInfoReply: _D._on_device_info,
        dpm.StartListReply: _D._on_start_reply,
        dpm.AuthenticateReply: _D._on_authenticate_reply,
        dpm.ApplySettingsReply: _D._on_apply_reply,
    },
)
_SENT_KIND = {True: "request", False: "reply"}


def _name(command: object) -> str:
    schema = getattr(type(command), "schema", None)
    return schema.wire_name if schema is not None else f"{type(command).__name__} {command!r}"


def _what(cls: type) -> str:
    """How an error names a move that is one message: ``AddToList``, ``OpenList reply``."""
    name: str = cls.schema.wire_name  # type: ignore[attr-defined]
    return name.removesuffix("_request").replace("_reply", " reply")


_SUBJECTS = {
    id(CONNECTION_MOVES): "the connection",
    id(LIST_MOVES): "the list",
    id(SETTINGS_MOVES): "settings",
}


def _describe(table: Mapping[tuple[_State, Any], _State], state: _State) -> str:
    return f"{_SUBJECTS[id(table)]} is {state.value}"
