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

import copy
import enum
from collections import Counter, deque
from collections.abc import Mapping
from typing import TypeVar, cast

from acnet_proto._text import shown
from acnet_proto.drf import MAX_DRF_LENGTH
from acnet_proto.engine._state import (
    CONNECTION_TRANSITIONS,
    LIST_TRANSITIONS,
    SETTINGS_TRANSITIONS,
    ConnectionState,
    ListState,
    Role,
    SettingsState,
)
from acnet_proto.engine.events import (
    NEED_DATA,
    ConnectionClosed,
    ConnectionEvent,
    Handshake,
    NeedData,
    SettingsNotEnabled,
    StaleReply,
)
from acnet_proto.engine.framing import (
    DEFAULT_MAX_FRAME_SIZE,
    HANDSHAKE,
    FrameSplitter,
    HandshakeReader,
    frame,
)
from acnet_proto.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from acnet_proto.pc import dpm
from acnet_proto.pc._message import Message

__all__ = ["DATA_REPLIES", "HEARTBEAT_PERIOD", "MISSED_HEARTBEATS", "DPMConnection"]

_State = TypeVar("_State", bound=enum.Enum)

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
_LIST_REQUESTS = frozenset(
    name + "_request"
    for name in ("AddToList", "RemoveFromList", "StartList", "StopList", "ClearList")
)


class _Conversation:
    """Everything both roles must agree on; copied whole so a refused send changes nothing."""

    def __init__(self) -> None:
        self.state = ConnectionState.AWAITING_HANDSHAKE
        self.list_state = ListState.IDLE
        self.settings_state = SettingsState.NONE
        self.list_id: int | None = None
        self.entries: dict[int, str] = {}
        # ref_id -> StartLists sent when it stopped streaming; its old data may arrive
        # until the reply to the next StartList.
        self.retired: dict[int, int] = {}
        # Counted, not sets: a ref_id reused after ClearList is owed one reply per request.
        self.awaiting_add_reply: Counter[int] = Counter()
        self.awaiting_remove_reply: Counter[int] = Counter()
        self.starts_sent = 0
        self.starts_unanswered = 0
        self.awaiting_auth_reply = False
        self.awaiting_enable_reply = False
        self.settings_in_flight: list[tuple[int, ...]] = []

    def snapshot(self) -> _Conversation:
        """An exact, independent copy: the containers are copied, their items are immutable."""
        twin = copy.copy(self)
        twin.entries = dict(self.entries)
        twin.retired = dict(self.retired)
        twin.awaiting_add_reply = Counter(self.awaiting_add_reply)
        twin.awaiting_remove_reply = Counter(self.awaiting_remove_reply)
        twin.settings_in_flight = list(self.settings_in_flight)
        return twin


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
        self._c = _Conversation()
        self._client = our_role is Role.CLIENT
        self._decode = dpm.decode_reply if self._client else dpm.decode_request
        self._splitter = FrameSplitter(max_frame_size, detect_http_refusal=self._client)
        self._handshake = None if self._client else HandshakeReader()
        self._frames: deque[bytes] = deque()
        self._raw: list[bytes] = []
        self._peer_closed = False
        self.last_heard: float | None = None
        self.last_heartbeat_sent: float | None = None

    # -- state, read-only -----------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        return self._c.state

    @property
    def list_state(self) -> ListState:
        return self._c.list_state

    @property
    def settings_state(self) -> SettingsState:
        return self._c.settings_state

    @property
    def list_id(self) -> int | None:
        """The list id from the server's ``OpenListReply``; ``None`` until then."""
        return self._c.list_id

    @property
    def entries(self) -> dict[int, str]:
        """The current list: ref_id to DRF, as added (a copy). In the server role a DRF
        longer than :data:`~acnet_proto.drf.MAX_DRF_LENGTH` keeps only its first
        ``MAX_DRF_LENGTH + 1`` characters (enough to tell it is too long)."""
        return dict(self._c.entries)

    @property
    def settings_in_flight(self) -> tuple[int, ...]:
        """Ref ids of settings sent in ``ApplySettings`` whose reply has not arrived.

        If the connection breaks while this is not empty, the outcome of those
        settings is unknown: never replay them automatically.
        """
        return tuple(ref for refs in self._c.settings_in_flight for ref in refs)

    # -- the handshake --------------------------------------------------------

    def initiate(self) -> bytes:
        """(Client) the handshake bytes to write first; then wait for ``OpenListReply``."""
        if not self._client:
            raise LocalProtocolError("only the client sends the handshake; servers receive it")
        self._c.state = self._move(CONNECTION_TRANSITIONS, self._c.state, "handshake", local=True)
        return HANDSHAKE

    # -- sending ----------------------------------------------------------------

    def send(self, *commands: Message, now: float | None = None) -> bytes:
        """Check ``commands`` in order and return their frames, concatenated.

        All or nothing: if any command is illegal, or cannot be encoded,
        :class:`LocalProtocolError` is raised and the connection is exactly as
        it was before the call.
        """
        if len(commands) == 1:
            # Every rule checks before it changes anything, so one command
            # needs no snapshot (this is the streaming server's hot path).
            out = self._send_one(commands[0])
        else:
            saved = self._c.snapshot()
            try:
                out = b"".join([self._send_one(command) for command in commands])
            except ProtocolError:
                self._c = saved
                raise
        if now is not None and any(isinstance(c, dpm.ListStatusReply) for c in commands):
            self.last_heartbeat_sent = now
        return out

    def _send_one(self, command: Message) -> bytes:
        kind = getattr(type(command), "schema", None)
        want = "request" if self._client else "reply"
        if kind is None or command.protocol != "dpm" or kind.kind != want:
            plural = "requests" if self._client else "replies"
            raise LocalProtocolError(
                f"a {self.our_role.value} sends DPM {plural}; {_name(command)} is not one"
            )
        if self._c.state in (ConnectionState.CLOSED, ConnectionState.ERROR):
            raise LocalProtocolError(
                f"cannot send {_name(command)}: the connection is {self.state.value}"
            )
        data = frame(dpm.encode(command))
        self._apply(command, local=True)
        return data

    def close(self) -> None:
        """This side is done; sending is illegal from now on."""
        if self._c.state in (ConnectionState.CLOSED, ConnectionState.ERROR):
            return
        self._c.state = ConnectionState.CLOSED

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
        if self._c.state is ConnectionState.ERROR:
            raise RemoteProtocolError("the connection is in the error state; open a new one")
        try:
            return self._next_event()
        except RemoteProtocolError as e:
            self._c.state = ConnectionState.ERROR
            raise e from None

    def _next_event(self) -> ConnectionEvent | NeedData:
        if not self._frames:
            event = self._parse_pending()
            if event is not None:
                return event
        if self._frames:
            message = self._decode(self._frames.popleft())
            return self._apply(message, local=False)
        if self._peer_closed:
            self._splitter.close()
            if self._handshake is not None and self._c.state is ConnectionState.AWAITING_HANDSHAKE:
                raise RemoteProtocolError("the client closed the connection before its handshake")
            if self._c.state is not ConnectionState.ERROR:
                self._c.state = ConnectionState.CLOSED
            return ConnectionClosed()
        return NEED_DATA

    def _parse_pending(self) -> Handshake | None:
        raw = b"".join(self._raw)
        self._raw.clear()
        if self._handshake is not None and self._c.state is ConnectionState.AWAITING_HANDSHAKE:
            rest = self._handshake.feed(raw)
            if rest is None:
                return None
            self._c.state = self._move(
                CONNECTION_TRANSITIONS, self._c.state, "handshake", local=False
            )
            self._raw.append(rest)
            return Handshake()
        # fed even when empty: an oversized frame found behind good ones raises now
        self._frames.extend(self._splitter.feed(raw))
        return None

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
        if self.last_heard is None or self._c.state is not ConnectionState.OPEN:
            return None
        return self.last_heard + self.heartbeat_period * self.missed_heartbeats

    def heartbeat_due(self, now: float) -> bool:
        """(Server) True when a ``ListStatusReply`` heartbeat should be sent."""
        due = self.heartbeat_due_at()
        return due is not None and now >= due

    def heartbeat_due_at(self) -> float | None:
        """(Server) when the next heartbeat is due; ``None`` before the list is open."""
        if self._client or self._c.state is not ConnectionState.OPEN:
            return None
        if self.last_heartbeat_sent is None:
            return float("-inf")
        return self.last_heartbeat_sent + self.heartbeat_period

    def heartbeat(self, now: float, status: int = 0) -> bytes:
        """(Server) the heartbeat frame for this list, recording when it was sent."""
        return self.send(dpm.ListStatusReply(list_id=self.list_id, status=status), now=now)

    # -- the rules ------------------------------------------------------------

    def _fail(self, error: RemoteProtocolError) -> None:
        self._c.state = ConnectionState.ERROR
        raise error

    def _move(
        self,
        table: Mapping[tuple[_State, str], _State],
        state: _State,
        move: str,
        *,
        local: bool,
        what: str = "",
    ) -> _State:
        try:
            return table[(state, move)]
        except KeyError:
            raise self._violation(
                local, f"{what or move} is not allowed while {_describe(table, state)}"
            ) from None

    def _violation(self, local: bool, text: str) -> ProtocolError:
        if local:
            return LocalProtocolError(f"cannot send: {text}")
        return RemoteProtocolError(f"the {self.their_role.value} broke the protocol: {text}")

    def _apply(self, message: Message, *, local: bool) -> Message | StaleReply | SettingsNotEnabled:
        """Check ``message`` against the state and move; return the event to deliver."""
        name = message.schema.wire_name
        if message.schema.kind == "request":
            return self._on_request(message, name, local=local)
        return self._on_reply(message, name, local=local)

    def _check_list_id(self, message: Message, name: str, local: bool) -> None:
        list_id = getattr(message, "list_id", None)
        if list_id is not None and list_id != self._c.list_id:
            raise self._violation(
                local, f"{name} names list {list_id}, but this list is {self._c.list_id}"
            )

    def _require_open(self, name: str, local: bool) -> None:
        if self._c.state is ConnectionState.CLOSED:
            raise self._violation(local, f"{name} after the connection was closed")
        if self._c.state is not ConnectionState.OPEN:
            raise self._violation(local, f"{name} before the list was opened ({self.state.value})")

    # requests: sent by a client, received by a server ---------------------------

    def _on_request(
        self, message: Message, name: str, *, local: bool
    ) -> Message | SettingsNotEnabled:
        c = self._c
        self._require_open(name, local)
        self._check_list_id(message, name, local)
        if name in _LIST_REQUESTS:
            self._on_list_request(message, name, local)
        elif name == "Authenticate_request":
            if c.awaiting_auth_reply:
                raise self._violation(local, "Authenticate while the previous one awaits its reply")
            if c.awaiting_enable_reply:
                # Its ref-0 Status_reply would then find settings restarted, with no move.
                raise self._violation(
                    local, "Authenticate while the EnableSettings reply is pending"
                )
            token = cast(dpm.AuthenticateRequest, message).token
            move = "Authenticate_request:" + ("token" if token else "empty")
            c.settings_state = self._move(
                SETTINGS_TRANSITIONS,
                c.settings_state,
                move,
                local=local,
                what="Authenticate" + (" with a token" if token else ""),
            )
            c.awaiting_auth_reply = True
        elif name == "EnableSettings_request":
            if c.awaiting_auth_reply or c.awaiting_enable_reply:
                raise self._violation(
                    local, "EnableSettings while an authentication reply is pending"
                )
            c.settings_state = self._move(
                SETTINGS_TRANSITIONS, c.settings_state, name, local=local, what="EnableSettings"
            )
            c.awaiting_enable_reply = True
        elif name == "ApplySettings_request":
            return self._on_apply_settings(cast(dpm.ApplySettingsRequest, message), local)
        else:
            raise self._violation(local, f"{name} is not part of DPM over TCP")
        return message

    def _on_list_request(self, message: Message, name: str, local: bool) -> None:
        c = self._c
        new_state = self._move(
            LIST_TRANSITIONS, c.list_state, name, local=local, what=name.replace("_request", "")
        )
        if name == "AddToList_request":
            add = cast(dpm.AddToListRequest, message)
            ref, drf = add.ref_id, add.drf_request
            if ref in c.entries:
                raise self._violation(
                    local, f"ref_id {ref} is already on the list ({shown(c.entries[ref])})"
                )
            if ref < 0 or (ref == 0 and not drf.startswith("#")):
                raise self._violation(
                    local, f"ref_id must be >= 1 (0 is only for '#' list properties), got {ref}"
                )
            # A peer's DRF longer than any valid one is refused by whoever serves the list;
            # keeping only its head means a peer cannot make the engine hold megabytes.
            c.entries[ref] = drf if local else drf[: MAX_DRF_LENGTH + 1]
            c.awaiting_add_reply[ref] += 1
        elif name == "RemoveFromList_request":
            ref = cast(dpm.RemoveFromListRequest, message).ref_id
            if ref not in c.entries:
                raise self._violation(local, f"RemoveFromList for ref_id {ref}, not on the list")
            c.retired[ref] = c.starts_sent
            del c.entries[ref]
            c.awaiting_remove_reply[ref] += 1
        elif name == "StartList_request":
            if not any(r > 0 for r in c.entries):
                raise self._violation(local, "StartList needs at least one entry on the list")
            c.starts_sent += 1
            c.starts_unanswered += 1
        elif name == "StopList_request" and c.list_state is ListState.STARTED:
            c.retired.update(dict.fromkeys(c.entries, c.starts_sent))
        elif name == "ClearList_request":
            c.retired.update(dict.fromkeys(c.entries, c.starts_sent))
            c.entries.clear()
        c.list_state = new_state

    def _on_apply_settings(
        self, message: dpm.ApplySettingsRequest, local: bool
    ) -> dpm.ApplySettingsRequest | SettingsNotEnabled:
        c = self._c
        refs = tuple(
            s.ref_id
            for array in (message.raw_array, message.scaled_array, message.text_array)
            for s in array or ()
        )
        if c.settings_state is not SettingsState.ENABLED:
            if local:
                raise self._violation(
                    local, "ApplySettings before settings were enabled (authenticate first)"
                )
            c.settings_in_flight.append(refs)
            return SettingsNotEnabled(message)
        if local:
            missing = [ref for ref in refs if ref not in c.entries]
            if missing:
                raise self._violation(
                    local, f"ApplySettings for ref_id(s) {missing} not on the list"
                )
            if c.list_state is not ListState.STARTED:
                raise self._violation(
                    local, f"ApplySettings while the list is {c.list_state.value}"
                )
        c.settings_in_flight.append(refs)
        return message

    # replies: sent by a server, received by a client ----------------------------

    def _on_reply(self, message: Message, name: str, *, local: bool) -> Message | StaleReply:
        c = self._c
        if name == "OpenList_reply":
            c.state = self._move(
                CONNECTION_TRANSITIONS, c.state, name, local=local, what="OpenList reply"
            )
            c.list_id = cast(dpm.OpenListReply, message).list_id
            return message
        self._require_open(name, local)
        self._check_list_id(message, name, local)
        # None only for replies that name no entry, and none of those uses it
        ref: int | None = getattr(message, "ref_id", None)
        if name == "ListStatus_reply":
            return message
        if name == "Status_reply" and ref == 0:
            return self._on_list_status(cast(dpm.StatusReply, message), local)
        if name in DATA_REPLIES:
            return self._on_data(message, name, ref, local)
        if name == "AddToList_reply":
            return self._settle(
                message, cast(int, ref), c.awaiting_add_reply, local, "AddToList reply"
            )
        if name == "RemoveFromList_reply":
            return self._settle(
                message, cast(int, ref), c.awaiting_remove_reply, local, "RemoveFromList reply"
            )
        if name == "DeviceInfo_reply":
            if ref in c.entries:
                return message
            return self._stale_or_violation(message, ref, local, "DeviceInfo")
        if name == "StartList_reply":
            if not c.starts_unanswered:
                raise self._violation(local, "StartList reply without a StartList")
            c.starts_unanswered -= 1
            # The server answers in order: data of entries retired before this StartList
            # was sent came before its reply.
            answered = c.starts_sent - c.starts_unanswered
            c.retired = {r: n for r, n in c.retired.items() if n >= answered}
            return message
        if name == "Authenticate_reply":
            if not c.awaiting_auth_reply:
                raise self._violation(local, "Authenticate reply without an Authenticate")
            c.awaiting_auth_reply = False
            c.settings_state = self._move(
                SETTINGS_TRANSITIONS, c.settings_state, name, local=local, what="Authenticate reply"
            )
            return message
        if name == "ApplySettings_reply":
            if not c.settings_in_flight:
                raise self._violation(local, "ApplySettings reply without an ApplySettings")
            c.settings_in_flight.pop(0)
            return message
        raise self._violation(local, f"{name} is not part of DPM over TCP")

    def _on_list_status(self, message: dpm.StatusReply, local: bool) -> dpm.StatusReply:
        """A ref-0 ``Status_reply``: the answer to EnableSettings, a refused Authenticate,
        or a job-start failure."""
        c = self._c
        if c.awaiting_enable_reply:
            c.awaiting_enable_reply = False
            move = "enable_accepted" if message.status == 0 else "enable_refused"
            c.settings_state = self._move(SETTINGS_TRANSITIONS, c.settings_state, move, local=local)
        elif c.awaiting_auth_reply and message.status != 0:
            # DPM refuses a GSS token this way instead of with an Authenticate reply
            c.awaiting_auth_reply = False
            c.settings_state = self._move(
                SETTINGS_TRANSITIONS, c.settings_state, "auth_refused", local=local
            )
        return message

    def _on_data(
        self, message: Message, name: str, ref: int | None, local: bool
    ) -> Message | StaleReply:
        c = self._c
        live = c.list_state is ListState.STARTED or name == "Status_reply"
        # A reused ref_id's old data can still arrive until the new StartList is answered.
        if ref in c.entries and live and (local or ref not in c.retired):
            return message
        if local:
            raise self._violation(
                local,
                f"{name} for ref_id {ref} while the list is {c.list_state.value}"
                + ("" if ref in c.entries else " and the ref is not on it"),
            )
        return self._stale_or_violation(message, ref, local, name)

    def _settle(
        self, message: Message, ref: int, waiting: Counter[int], local: bool, what: str
    ) -> Message | StaleReply:
        if waiting[ref] > 0:
            waiting[ref] -= 1
            return message
        return self._stale_or_violation(message, ref, local, what)

    def _stale_or_violation(
        self, message: Message, ref: int | None, local: bool, what: str
    ) -> StaleReply:
        c = self._c
        if not local and ref in c.retired:
            return StaleReply(message)
        if ref in c.entries:
            raise self._violation(
                local, f"{what} for ref_id {ref} while the list is {c.list_state.value}"
            )
        raise self._violation(local, f"{what} for ref_id {ref}, which was never on the list")


def _name(command: object) -> str:
    schema = getattr(type(command), "schema", None)
    return schema.wire_name if schema is not None else f"{type(command).__name__} {command!r}"


_SUBJECTS = {
    id(CONNECTION_TRANSITIONS): "the connection",
    id(LIST_TRANSITIONS): "the list",
    id(SETTINGS_TRANSITIONS): "settings",
}


def _describe(table: Mapping[tuple[_State, str], _State], state: _State) -> str:
    return f"{_SUBJECTS[id(table)]} is {state.value}"
