"""Clients of the simulated DPM made of a client-role engine, for tests that speak the protocol
message by message: in memory to a pure session (:class:`SessionPeer`), or over a real
socket to a running server (:class:`SocketPeer`, :func:`apply_by_hand`).
"""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING, Any

from acnet_proto.engine import NEED_DATA, DPMConnection, Role
from acnet_proto.engine.client import ClientConnection
from acnet_proto.pc import dpm
from acnet_proto.sim.dpm import DPMSession

if TYPE_CHECKING:  # the in-memory tests need no server
    from acnet_proto.adapters.sim.dpm import SimServer
    from acnet_proto.plans.settings import WriteBatch, WritePlan

#: Unix seconds the in-memory tests pretend it is.
WALL = 1_763_769_600.0
#: How long a socket peer waits for the server: generous, the machine may be loaded.
DEADLINE = 10.0


class SessionPeer:
    """A client engine speaking to ``session`` in memory; the handshake is done.

    No socket and no clock: :attr:`now` (monotonic) is whatever the test
    says, and the wall clock is :data:`WALL` + :attr:`now`.
    """

    def __init__(self, session: DPMSession) -> None:
        self.session = session
        self.client = DPMConnection(Role.CLIENT)
        self.now = 0.0
        self.take(session.receive(self.client.initiate(), self.now, WALL))

    @property
    def list_id(self) -> int:
        assert self.client.list_id is not None, "the session opened no list"
        return self.client.list_id

    def send(self, *commands: Any) -> list[Any]:
        """Send ``commands``; the events the session's answer makes."""
        return self.take(self.session.receive(self.client.send(*commands), self.now, WALL))

    def tick(self, now: float) -> list[Any]:
        """Move the time to ``now``; the events of what the session sends by then."""
        self.now = now
        return self.take(self.session.tick(now, WALL + now))

    def take(self, data: bytes) -> list[Any]:
        """Hand the session's ``data`` to the client engine; the events it makes, in order."""
        if data:
            self.client.receive_data(data)
        events = []
        while (event := self.client.next_event()) is not NEED_DATA:
            events.append(event)
        return events


class SocketPeer:
    """A blocking socket to ``sim`` whose every byte goes through a client-role engine; the
    handshake is done and :attr:`list_id` is the list the server opened."""

    def __init__(self, sim: SimServer) -> None:
        self.sock = socket.create_connection((sim.host, sim.port), timeout=DEADLINE)
        self.conn = DPMConnection(Role.CLIENT)
        self.sock.sendall(self.conn.initiate())
        opened = self.next()
        assert isinstance(opened, dpm.OpenListReply)
        self.list_id = opened.list_id

    def send(self, *messages: Any) -> None:
        self.sock.sendall(self.conn.send(*messages))

    def add(self, *drfs: str, start: bool = True) -> None:
        """AddToList each DRF as refs 1, 2, ... (and StartList), in one write."""
        adds = [
            dpm.AddToListRequest(list_id=self.list_id, ref_id=ref, drf_request=text)
            for ref, text in enumerate(drfs, 1)
        ]
        starts = [dpm.StartListRequest(list_id=self.list_id)] if start else []
        self.send(*adds, *starts)

    def next(self, deadline: float | None = None) -> Any:
        """The next event; TimeoutError if none comes by ``deadline`` (monotonic)."""
        deadline = time.monotonic() + DEADLINE if deadline is None else deadline
        while (event := self.conn.next_event()) is NEED_DATA:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the simulator sent nothing more before the deadline")
            self.sock.settimeout(remaining)
            self.conn.receive_data(self.sock.recv(1 << 20))
        return event

    def first(self, cls: type) -> Any:
        """The next event of ``cls``, skipping others."""
        while not isinstance(event := self.next(), cls):
            pass
        return event

    def until(self, cls: type, n: int = 1, ref_id: int | None = None, **more: int) -> list[Any]:
        """Events, in order, until ``n`` of ``cls`` (for ``ref_id``, if given) have come.

        ``more`` adds conditions by class name: ``ListStatusReply=1``.
        """
        wanted = {(cls, ref_id): n} | {(getattr(dpm, k), None): v for k, v in more.items()}
        seen = dict.fromkeys(wanted, 0)
        deadline = time.monotonic() + DEADLINE
        events: list[Any] = []
        while any(seen[k] < v for k, v in wanted.items()):
            event = self.next(deadline)
            events.append(event)
            for kind, ref in seen:
                if isinstance(event, kind) and (ref is None or event.ref_id == ref):
                    seen[kind, ref] += 1
        return events

    def close(self) -> None:
        self.sock.close()


def apply_by_hand(sim: SimServer, plan: WritePlan, batch: WriteBatch) -> None:
    """Run a settings ``plan`` for ``batch`` over a fresh socket to ``sim`` until the batch is
    done: for tests that put on the wire what our client would not (the server hanging up
    raises)."""
    conn = ClientConnection()
    with socket.create_connection((sim.host, sim.port), timeout=DEADLINE) as sock:
        sock.sendall(conn.start())
        while not conn.ready:
            conn.receive(sock.recv(65536))
        sock.sendall(conn.begin(plan))
        while not batch.done:
            conn.receive(sock.recv(65536))
            sock.sendall(conn.data_to_send())
