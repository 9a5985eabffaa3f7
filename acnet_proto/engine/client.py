"""The client side of one DPM connection: the engine plus the list running on it.

Adapters own a socket (or a stream) and a :class:`ClientConnection`, and do
nothing but move bytes between them::

    client = ClientConnection()
    sock.sendall(client.start())
    while not client.ready:
        client.receive(sock.recv(65536), now=time.monotonic())
    batch = ReadBatch(["M:OUTTMP"])              # from acnet_proto.plans.lists
    sock.sendall(client.begin(batch))
    while not batch.done:
        client.receive(sock.recv(65536), now=time.monotonic())
    sock.sendall(client.end())

No clocks are read here: ``now`` comes from the adapter, and
:attr:`ClientConnection.overdue_at` says when silence means a dead server.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, cast

from acnet_proto.engine._state import ConnectionState, ListState, Role, SettingsState
from acnet_proto.engine.connection import HEARTBEAT_PERIOD, DPMConnection
from acnet_proto.engine.events import NEED_DATA, ConnectionClosed, ConnectionEvent
from acnet_proto.engine.framing import DEFAULT_MAX_FRAME_SIZE
from acnet_proto.errors import LocalProtocolError, RemoteProtocolError
from acnet_proto.pc._message import Message

__all__ = ["ClientConnection", "Plan", "events"]


def events(conn: DPMConnection) -> Iterator[ConnectionEvent]:
    """Every event ``conn`` can produce from the bytes it has, until ``NEED_DATA``.

    A clean close by the peer raises :class:`RemoteProtocolError`: a client
    in the middle of a list never expects one.
    """
    while True:
        event = conn.next_event()
        if event is NEED_DATA:
            return
        if isinstance(event, ConnectionClosed):
            raise RemoteProtocolError("the server closed the connection")
        # not NEED_DATA, the one NeedData, which mypy cannot narrow away by identity
        yield cast(ConnectionEvent, event)


class Plan(Protocol):
    """What runs on a connection: a read batch, a subscription, auth, or settings."""

    def commands(self, list_id: int) -> list[Message]: ...

    def feed(self, event: ConnectionEvent) -> list[Any]:
        """Fold in one event of :func:`events`; return what it completed, in the plan's terms
        (a :class:`~acnet_proto.plans.lists.ListPlan`: ``(index, reading)`` pairs)."""
        ...

    def take_commands(self) -> list[Message]: ...

    def teardown(self, list_id: int) -> list[Message]: ...


class ClientConnection:
    """A DPM/TCP client connection, reusable for one list at a time."""

    def __init__(
        self,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        heartbeat_period: float = HEARTBEAT_PERIOD,
    ) -> None:
        self.conn = DPMConnection(
            Role.CLIENT, max_frame_size=max_frame_size, heartbeat_period=heartbeat_period
        )
        self.plan: Plan | None = None
        self._outgoing = bytearray()

    @property
    def ready(self) -> bool:
        """True once the server has given the list id: a list may begin."""
        return self.conn.list_id is not None

    @property
    def usable(self) -> bool:
        """True when the connection is open with an empty, idle list (for pools).

        A subscription ends with ``StopList`` alone, leaving its entries on
        the list: such a connection is closed, not pooled.
        """
        return (
            self.plan is None
            and self.conn.state is ConnectionState.OPEN
            and self.conn.list_state is ListState.IDLE
        )

    @property
    def settings_enabled(self) -> bool:
        """True once the server accepted ``EnableSettings`` on this connection."""
        return self.conn.settings_state is SettingsState.ENABLED

    @property
    def overdue_at(self) -> float | None:
        """The ``now`` after which the server has been silent too long."""
        return self.conn.overdue_at()

    def start(self) -> bytes:
        """The handshake bytes: write them first."""
        return self.conn.initiate()

    def begin(self, plan: Plan, now: float | None = None) -> bytes:
        """The bytes that add ``plan``'s entries and start the list."""
        if not self.ready:
            raise LocalProtocolError("the list id has not arrived yet; receive() until ready")
        if self.plan is not None:
            raise LocalProtocolError("a list is already running on this connection; end() it")
        list_id = self.conn.list_id
        assert list_id is not None  # ready
        data = self.conn.send(*plan.commands(list_id), now=now)
        self.plan = plan
        return data

    def receive(self, data: bytes, now: float | None = None) -> list[Any]:
        """Take bytes from the server; return what the running plan made of them.

        For a :class:`ListPlan` that is ``(index, reading)`` pairs. Commands
        the plan wants sent in answer wait in :meth:`data_to_send`. ``b""``
        means the server closed: that raises
        :class:`~acnet_proto.errors.RemoteProtocolError`, as does anything the
        server may not send.
        """
        conn = self.conn
        conn.receive_data(data, now=now)
        made: list[Any] = []
        # One loop over every frame that arrived: each is decoded, checked and folded
        # into the plan before the next, exactly as next_event() would hand them over.
        while frames := conn._client_frames():
            while frames:
                made += self._fold(conn._client_event(frames.popleft()), now)
        if conn._peer_closed:
            # the end of the stream (or of a frame cut short): next_event() says which
            for event in events(conn):
                made += self._fold(event, now)
        return made

    def _fold(self, event: ConnectionEvent, now: float | None) -> list[Any]:
        """Feed ``event`` to the running plan; queue what it answers."""
        plan = self.plan
        if plan is None:
            return []
        made = plan.feed(event)
        if commands := plan.take_commands():
            self._outgoing += self.conn.send(*commands, now=now)
        return made

    def data_to_send(self) -> bytes:
        """Bytes the running plan asked to send in answer to what arrived (often none)."""
        if not self._outgoing:
            return b""
        out = bytes(self._outgoing)
        self._outgoing.clear()
        return out

    def end(self, now: float | None = None) -> bytes:
        """The bytes that end the running plan (its ``teardown``); the connection is free again."""
        plan, self.plan = self.plan, None
        if plan is None:
            return b""
        list_id = self.conn.list_id
        assert list_id is not None  # a plan began, so the list id had arrived
        commands = plan.teardown(list_id)
        return self.conn.send(*commands, now=now) if commands else b""
