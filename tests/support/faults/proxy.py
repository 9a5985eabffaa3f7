"""A DPM-aware TCP proxy on loopback that injects faults, connection by connection.

Put it between any client and a server::

    faults = [[Fault("close", at=3)], [Fault("drop", match="ListStatusReply", times=None)]]
    with Proxy((sim.host, sim.port), faults) as proxy:
        client = DPMBackend(proxy.host, proxy.port)
        ...
    proxy.actions        # what it did: [Action(connection=0, direction="s2c", frame=3, ...)]

It parses the stream in both directions: the client's handshake, then the
4-byte big-endian length framing (each frame named by the DPM message in
it). A :class:`Fault` acts on frames of one direction, counted from 0 after
the handshake (of one message, if ``match`` names it): from frame ``at``,
for ``times`` frames (None: every one after). Connection ``n`` (0 the first
accepted) gets ``faults[n]`` (a sequence, shorter ones leave the rest
alone) or ``faults(n)`` (a function); :attr:`Proxy.faults` may be replaced
between connections.

The kinds, what each does to the frame it acts on:

==============  ============================================================
``close``       hang up both sides before the frame (a frame boundary)
``close-mid``   forward the length and half the frame, then hang up
``delay``       wait ``seconds``, then forward it
``drop``        swallow it (``match="ListStatusReply"``: stall heartbeats)
``stall``       swallow it and everything after in that direction; the
                connection stays open
``duplicate``   forward it twice
``flip``        flip (xor 0xFF) byte ``position`` of the frame's body
``unknown``     forward a frame with an unknown message id before it
``lie``         forward it behind a length prefix of ``length`` instead
``garbage``     forward ``data`` (no framing) before it
``drip``        forward it one byte per write, ``seconds`` between bytes
==============  ============================================================

Each pair of sockets is served by two threads (one per direction); both end
when the connection does. :attr:`Proxy.connections` keeps, per connection,
every frame each side sent, before any fault: what actually went over the
wire from the client, Kerberos tokens included.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from acnet_proto.engine.framing import FrameSplitter, frame
from acnet_proto.errors import ProtocolError
from acnet_proto.pc import dpm

__all__ = ["DIRECTIONS", "KINDS", "Action", "Connection", "Fault", "Proxy"]

KINDS = (
    "close",
    "close-mid",
    "delay",
    "drop",
    "stall",
    "duplicate",
    "flip",
    "unknown",
    "lie",
    "garbage",
    "drip",
)
DIRECTIONS = ("c2s", "s2c")
_END_OF_HANDSHAKE = b"\r\n\r\n"
_MAX_HANDSHAKE = 8192
_CHUNK = 65536
# any frame size the proxy passes on: it never refuses what the peers may judge
_NO_LIMIT = 2**32


def _unknown_body(direction: str) -> bytes:
    """A well-formed SDD message whose message id no DPM peer knows."""
    if direction == "s2c":
        body = bytearray(dpm.encode(dpm.ListStatusReply(list_id=1, status=0)))
    else:
        body = bytearray(dpm.encode(dpm.StopListRequest(list_id=1)))
    body[12:14] = b"\x7f\x3e"  # the message id, after its tag at offset 11
    return bytes(body)


@dataclass(frozen=True)
class Fault:
    """One fault: ``kind`` (see the module docstring) on frames of ``direction``."""

    kind: str
    at: int = 0
    direction: str = "s2c"
    match: str | None = None
    times: int | None = 1
    seconds: float = 0.0
    position: int = 0
    length: int = 0xFFFFFFF0
    data: bytes = b"\x00\x00\x00\x04GARBAGE\xff\xfe"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {KINDS}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {self.direction!r}")
        if self.at < 0 or (self.times is not None and self.times < 1):
            raise ValueError(f"at must be >= 0 and times >= 1 (or None): {self}")


@dataclass(frozen=True)
class Action:
    """What the proxy did: ``kind`` to frame ``frame`` (a ``name``) of ``direction``."""

    connection: int
    direction: str
    frame: int
    name: str
    kind: str


@dataclass
class Connection:
    """One proxied connection: its faults and every frame each side sent (before faults)."""

    number: int
    faults: tuple[Fault, ...]
    frames: dict[str, list[tuple[str, bytes]]] = field(
        default_factory=lambda: {d: [] for d in DIRECTIONS}
    )
    ended: threading.Event = field(default_factory=threading.Event)

    def names(self, direction: str) -> list[str]:
        """The names of the messages ``direction``'s sender sent, in order."""
        return [name for name, _ in self.frames[direction]]


class _Parser:
    """Splits one direction's bytes into units: the handshake (c2s), then frames."""

    def __init__(self, direction: str) -> None:
        self._handshake: bytearray | None = bytearray() if direction == "c2s" else None
        self._frames = FrameSplitter(_NO_LIMIT)

    def feed(self, data: bytes) -> tuple[bytes | None, list[bytes]]:
        """(the handshake if it completed now, the frames' payloads)."""
        handshake = None
        if self._handshake is not None:
            self._handshake += data
            end = self._handshake.find(_END_OF_HANDSHAKE)
            if end < 0:
                if len(self._handshake) > _MAX_HANDSHAKE:
                    raise ProtocolError("no end to the client's handshake")
                return None, []
            end += len(_END_OF_HANDSHAKE)
            handshake, data = bytes(self._handshake[:end]), bytes(self._handshake[end:])
            self._handshake = None
        return handshake, self._frames.feed(data)


def _name(direction: str, payload: bytes) -> str:
    decode = dpm.decode_request if direction == "c2s" else dpm.decode_reply
    try:
        return type(decode(payload)).__name__
    except ProtocolError:
        return "?"


def _hang_up(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


class _Hangup(Exception):
    """A fault ended the connection."""


class _Direction:
    """One direction of one connection: its faults' counters and the stall."""

    def __init__(self, faults: Sequence[Fault]) -> None:
        self.faults = list(faults)
        self.seen = [0] * len(faults)  # matching frames so far, per fault
        self.used = [0] * len(faults)  # frames acted on, per fault
        self.frames = 0
        self.stalled = False

    def due(self, name: str) -> list[Fault]:
        """The faults acting on the next frame, a ``name``, in the order given."""
        acting = []
        for i, fault in enumerate(self.faults):
            if fault.match is not None and fault.match != name:
                continue
            index = self.seen[i]
            self.seen[i] += 1
            if index >= fault.at and (fault.times is None or self.used[i] < fault.times):
                self.used[i] += 1
                acting.append(fault)
        return acting


class Proxy:
    """A fault-injecting proxy to ``upstream`` on ``host`` (a free port); see the module doc."""

    def __init__(
        self,
        upstream: tuple[str, int],
        faults: Sequence[Sequence[Fault]] | Callable[[int], Sequence[Fault]] = (),
        host: str = "127.0.0.1",
    ) -> None:
        self.upstream = upstream
        self.faults = faults
        self.actions: list[Action] = []
        self.connections: list[Connection] = []
        self._listener = socket.create_server((host, 0))
        self.host, self.port = self._listener.getsockname()[:2]
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, name="fault-proxy", daemon=True)
        self._started = False

    # -- life ------------------------------------------------------------------------

    def start(self) -> Proxy:
        if not self._started:
            self._started = True
            self._acceptor.start()
        return self

    def close(self) -> None:
        """Stop accepting, hang up every connection, and join every thread."""
        _hang_up(self._listener)  # shutdown() is what wakes a thread blocked in accept()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _hang_up(sock)
        if self._started:
            self._acceptor.join(5)
        for thread in self._live_threads():
            thread.join(5)

    def __enter__(self) -> Proxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def settle(self, timeout: float = 5.0) -> bool:
        """Wait until every connection so far has ended (both its threads); False on timeout."""
        deadline = time.monotonic() + timeout
        for thread in self._live_threads():
            thread.join(max(0.0, deadline - time.monotonic()))
        return not self._live_threads()

    def _live_threads(self) -> list[threading.Thread]:
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            return list(self._threads)

    # -- what happened ---------------------------------------------------------------

    @property
    def injected(self) -> int:
        """How many times a fault acted."""
        return len(self.actions)

    def count(self, name: str, direction: str = "c2s") -> int:
        """How many ``name`` messages were sent in ``direction``, over every connection."""
        return sum(c.names(direction).count(name) for c in self.connections)

    def open_connections(self) -> int:
        """Connections whose threads still run."""
        return sum(1 for c in self.connections if not c.ended.is_set())

    # -- the work --------------------------------------------------------------------

    def _faults_for(self, number: int) -> tuple[Fault, ...]:
        faults = self.faults
        if callable(faults):
            return tuple(faults(number))
        return tuple(faults[number]) if number < len(faults) else ()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed: the proxy is done
                return
            number = len(self.connections)
            connection = Connection(number, self._faults_for(number))
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _hang_up(client)
                connection.ended.set()
                self.connections.append(connection)
                continue
            server.settimeout(None)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = (client, server)
            done = threading.Barrier(2, action=connection.ended.set)
            with self._lock:
                self._sockets.update(pair)
                self.connections.append(connection)
            for direction, src, dst in (("c2s", client, server), ("s2c", server, client)):
                thread = threading.Thread(
                    target=self._pump,
                    args=(connection, direction, src, dst, pair, done),
                    name=f"fault-proxy {number} {direction}",
                    daemon=True,
                )
                with self._lock:
                    self._threads.append(thread)
                thread.start()

    def _pump(
        self,
        connection: Connection,
        direction: str,
        src: socket.socket,
        dst: socket.socket,
        pair: tuple[socket.socket, socket.socket],
        done: threading.Barrier,
    ) -> None:
        parser = _Parser(direction)
        state = _Direction([f for f in connection.faults if f.direction == direction])
        try:
            while data := src.recv(_CHUNK):
                handshake, payloads = parser.feed(data)
                if handshake is not None:
                    dst.sendall(handshake)
                for payload in payloads:
                    self._forward(connection, direction, state, payload, dst)
        except (OSError, ProtocolError, _Hangup):
            pass  # a side went away, the stream was not DPM, or a fault hung up
        finally:
            for sock in pair:
                _hang_up(sock)
            with self._lock:
                self._sockets.difference_update(pair)
            with contextlib.suppress(threading.BrokenBarrierError):
                done.wait(10)

    def _forward(
        self,
        connection: Connection,
        direction: str,
        state: _Direction,
        payload: bytes,
        dst: socket.socket,
    ) -> None:
        name = _name(direction, payload)
        index = state.frames
        state.frames += 1
        connection.frames[direction].append((name, payload))
        if state.stalled:
            return
        chunks = [frame(payload)]
        drip: Fault | None = None
        for fault in state.due(name):
            with self._lock:
                self.actions.append(Action(connection.number, direction, index, name, fault.kind))
            kind = fault.kind
            if kind == "close":
                raise _Hangup
            if kind == "close-mid":
                whole = frame(payload)
                dst.sendall(whole[: max(1, len(whole) // 2)])
                raise _Hangup
            if kind == "delay":
                time.sleep(fault.seconds)
            elif kind == "drop":
                chunks = []
            elif kind == "stall":
                state.stalled = True
                return
            elif kind == "duplicate":
                chunks = chunks * 2
            elif kind == "flip":
                body = bytearray(payload)
                if body:
                    body[fault.position % len(body)] ^= 0xFF
                chunks = [frame(bytes(body)) for _ in chunks]
            elif kind == "unknown":
                chunks.insert(0, frame(_unknown_body(direction)))
            elif kind == "lie":
                chunks = [fault.length.to_bytes(4, "big") + payload for _ in chunks]
            elif kind == "garbage":
                chunks.insert(0, fault.data)
            elif kind == "drip":
                drip = fault
        data = b"".join(chunks)
        if drip is None:
            dst.sendall(data)
            return
        for i in range(len(data)):
            dst.sendall(data[i : i + 1])
            if drip.seconds:
                time.sleep(drip.seconds)
