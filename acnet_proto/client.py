"""The client side of one DPM connection: the engine plus the list running on it.

Adapters own a socket (or a stream) and a :class:`ClientConnection`, and do
nothing but move bytes between them::

    client = ClientConnection()
    sock.sendall(client.start())
    while not client.ready:
        client.receive(sock.recv(65536), now=time.monotonic())
    batch = ReadBatch(["M:OUTTMP"])              # from acnet_proto.lists
    sock.sendall(client.begin(batch))
    while not batch.done:
        client.receive(sock.recv(65536), now=time.monotonic())
    sock.sendall(client.end())

No clocks are read here: ``now`` comes from the adapter, and
:attr:`ClientConnection.overdue_at` says when silence means a dead server.
"""

from __future__ import annotations

from acnet_proto._state import ConnectionState, Role
from acnet_proto.connection import DPMConnection
from acnet_proto.errors import LocalProtocolError
from acnet_proto.lists import ListPlan, events
from acnet_proto.types import Reading

__all__ = ["ClientConnection"]


class ClientConnection:
    """A DPM/TCP client connection, reusable for one list at a time."""

    def __init__(self, max_frame_size: int | None = None) -> None:
        kwargs = {} if max_frame_size is None else {"max_frame_size": max_frame_size}
        self.conn = DPMConnection(Role.CLIENT, **kwargs)
        self.plan: ListPlan | None = None

    @property
    def ready(self) -> bool:
        """True once the server has given the list id: a list may begin."""
        return self.conn.list_id is not None

    @property
    def usable(self) -> bool:
        """True while the connection can carry another list (for pools)."""
        return self.conn.state is ConnectionState.OPEN

    @property
    def overdue_at(self) -> float | None:
        """The ``now`` after which the server has been silent too long."""
        return self.conn.overdue_at()

    def start(self) -> bytes:
        """The handshake bytes: write them first."""
        return self.conn.initiate()

    def begin(self, plan: ListPlan, now: float | None = None) -> bytes:
        """The bytes that add ``plan``'s entries and start the list."""
        if not self.ready:
            raise LocalProtocolError("the list id has not arrived yet; receive() until ready")
        if self.plan is not None:
            raise LocalProtocolError("a list is already running on this connection; end() it")
        data = self.conn.send(*plan.commands(self.conn.list_id), now=now)
        self.plan = plan
        return data

    def receive(self, data: bytes, now: float | None = None) -> list[tuple[int, Reading]]:
        """Take bytes from the server; return the ``(index, reading)`` pairs they completed.

        ``b""`` means the server closed: that raises
        :class:`~acnet_proto.errors.RemoteProtocolError`, as does anything the
        server may not send.
        """
        self.conn.receive_data(data, now=now)
        made: list[tuple[int, Reading]] = []
        for event in events(self.conn):
            if self.plan is not None:
                made += self.plan.feed(event)
        return made

    def end(self, now: float | None = None) -> bytes:
        """The bytes that stop the running list (see :meth:`ListPlan.teardown`)."""
        plan, self.plan = self.plan, None
        if plan is None:
            return b""
        return self.conn.send(*plan.teardown(self.conn.list_id), now=now)
