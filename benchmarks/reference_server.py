"""A DPM/TCP server that spends as little CPU per reading as it can: the benchmarks' reference.

Run from the repository root::

    .venv/bin/python benchmarks/reference_server.py [--host 127.0.0.1] [--port 0]

It prints ``reference DPM on HOST:PORT ...`` once it listens and serves
until Ctrl-C. The simulator (``acnet-proto sim``) models devices, and its
CPU per read is of the same order as a client's, so against it a faster
client shows up mostly as a less busy machine. This server does no
modelling, so that what a benchmark measures against it is the client.

- A thread per connection, blocking sockets; a second thread per connection
  sends the streams and the ``ListStatus_reply`` heartbeat (every 2 s).
- Every request frame is decoded once per connection: its answer is kept in
  the connection's bounded table, keyed by the frame's bytes, and a pooled
  connection that repeats a read is answered from that table without
  decoding anything (the first read on a connection is the one that costs).
- Every DRF is answered with a ``Scalar_reply`` of 72.5 (whatever its
  property or range), stamped with the current time: the reply frame is
  encoded once and the timestamp, six bytes wide for any time between 1987
  and 6429, is joined into it (``bytes.join``): data replies change with the
  time, as on a real DPM, so a client cannot skip decoding them.
- Events: none, ``@U`` or ``@I`` answer once after ``StartList_reply``;
  ``@p``/``@q`` stream at their period (the first reading at once unless
  ``,F``; entries with the same period go out in one write, periods missed
  while the client was not reading are skipped, not queued); other events
  (``@N``, clock, state) never send data. ``#KEY:value`` list properties
  are accepted; a DRF that does not parse is refused with
  ``DPM_BAD_REQUEST``.
- Settings are not served: a connection that asks for them (or sends
  anything but the list requests) is dropped, with a line on stderr.
- Bounded: a connection keeps at most :data:`CACHE_FRAMES` answers and
  :data:`MAX_ENTRIES` entries, and drops a client whose request frame is
  longer than :data:`MAX_FRAME`.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass

from acnet_proto import drf
from acnet_proto.errors import ProtocolError
from acnet_proto.pc import dpm
from acnet_proto.pc._message import Message
from acnet_proto.sim.codes import DPM_BAD_REQUEST

HANDSHAKE = b"GET /dpm HTTP/1.1\r\nContent-Type: application/pc\r\n\r\n"
HEARTBEAT_PERIOD = 2.0
VALUE = 72.5
FIRST_LIST_ID = 4096
#: Request frames whose answers a connection keeps; a full table is emptied and filled again.
CACHE_FRAMES = 1 << 14
#: A longer request frame drops the connection (it would be held whole in memory).
MAX_FRAME = 1 << 20
#: A list with more entries drops the connection (the benchmarks ask for 10,000 at most).
MAX_ENTRIES = 100_000

# A timestamp the encoder writes in six bytes, as it does every millisecond time
# from 1987 to 6429: found once in each prepared frame, then replaced by the time
_WIDTH = 6
_MARK = 0x015A5A5A5A5A
_MARK_BYTES = b"\x16" + _MARK.to_bytes(_WIDTH, "big")


def frame(message: Message) -> bytes:
    """``message`` encoded, behind its 4-byte length."""
    body = dpm.encode(message)
    return len(body).to_bytes(4, "big") + body


def stamp() -> bytes:
    """The current time in milliseconds, as the six bytes a prepared frame leaves out."""
    return (time.time_ns() // 1_000_000).to_bytes(_WIDTH, "big")


def data_pieces(ref_id: int) -> tuple[bytes, bytes]:
    """``ref_id``'s ``Scalar_reply`` frame, cut where its timestamp goes:
    ``stamp().join(pieces)`` is the frame stamped now."""
    whole = frame(dpm.ScalarReply(ref_id=ref_id, timestamp=_MARK, cycle=0, status=0, data=VALUE))
    if whole.count(_MARK_BYTES) != 1:
        raise AssertionError("the timestamp's place in a Scalar_reply is not unique")
    before, after = whole.split(_MARK_BYTES)
    return before + b"\x16", after


@dataclass(frozen=True, slots=True)
class Entry:
    """The answers to one ``AddToList``: its reply, and what its list sends once started.

    ``info`` is None for an entry that sends nothing more (a list property,
    a refusal); ``data`` is the data frame's two pieces, None if its event
    never sends; ``period`` is in seconds for a stream, None for one reading;
    ``at_once``: a stream's first reading goes out with the list's start (no ``,F``).
    """

    ref_id: int
    reply: bytes
    info: bytes | None = None
    data: tuple[bytes, bytes] | None = None
    period: float | None = None
    at_once: bool = True


@dataclass(frozen=True, slots=True)
class Start:
    """``StartList``: ``reply`` is its ``StartList_reply``."""

    reply: bytes


@dataclass(frozen=True, slots=True)
class Remove:
    """``RemoveFromList`` of ``ref_id``: ``reply`` is its ``RemoveFromList_reply``."""

    ref_id: int
    reply: bytes


@dataclass(frozen=True, slots=True)
class Stop:
    """``StopList``; ``clear`` for ``ClearList``, which also empties the list."""

    clear: bool


Answer = Entry | Start | Remove | Stop
_STOP, _CLEAR = Stop(clear=False), Stop(clear=True)


class Unserved(Exception):
    """A request this server does not answer."""


def prepare(request: Message) -> Answer:
    """What to do for ``request`` (an :class:`Entry`, :class:`Start`, :class:`Remove` or
    :class:`Stop`); :class:`Unserved` if this server does not answer it."""
    if isinstance(request, dpm.AddToListRequest):
        return _entry(request)
    if isinstance(request, dpm.StartListRequest):
        return Start(frame(dpm.StartListReply(list_id=request.list_id, status=0)))
    if isinstance(request, dpm.StopListRequest):
        return _STOP
    if isinstance(request, dpm.ClearListRequest):
        return _CLEAR
    if isinstance(request, dpm.RemoveFromListRequest):
        reply = dpm.RemoveFromListReply(list_id=request.list_id, ref_id=request.ref_id, status=0)
        return Remove(request.ref_id, frame(reply))
    raise Unserved(f"the reference server does not serve {type(request).__name__}")


def _entry(request: dpm.AddToListRequest) -> Entry:
    list_id, ref, text = request.list_id, request.ref_id, request.drf_request

    def added(status: int) -> bytes:
        return frame(dpm.AddToListReply(list_id=list_id, ref_id=ref, status=status))

    if text.startswith("#"):
        return Entry(ref, added(0))
    try:
        parsed = drf.parse(text)
    except drf.DRFError:
        return Entry(ref, added(DPM_BAD_REQUEST))
    info = frame(
        dpm.DeviceInfoReply(
            ref_id=ref, di=1, name=parsed.device, description="reference reading", units="V"
        )
    )
    event = parsed.event
    if isinstance(event, drf.PeriodicEvent):
        period = event.period_us / 1e6
        return Entry(ref, added(0), info, data_pieces(ref), period, event.immediate)
    if event is None or isinstance(event, drf.DefaultEvent | drf.ImmediateEvent):
        return Entry(ref, added(0), info, data_pieces(ref))
    return Entry(ref, added(0), info)


class _Group:
    """The streams of one list with one period: all their frames go out in one write."""

    __slots__ = ("due", "period", "pieces")

    def __init__(self, entries: list[Entry], period: float, now: float) -> None:
        # frames a0 T b0, a1 T b1, ... joined by the stamp T: pieces a0, b0+a1, ..., bn
        pieces = [b""]
        for e in entries:
            assert e.data is not None
            pieces[-1] += e.data[0]
            pieces.append(e.data[1])
        self.pieces = pieces
        self.period = period
        self.due = now if entries[0].at_once else now + period


class Connection:
    """One client: its reader (:meth:`serve`, on the connection's thread) and its ticker."""

    def __init__(self, sock: socket.socket, list_id: int) -> None:
        self.sock = sock
        self.list_id = list_id
        self.entries: dict[int, Entry] = {}
        self._answers: dict[bytes, Answer] = {}
        self._groups: list[_Group] = []
        self._closed = False
        self._wake = threading.Condition()
        self._send_lock = threading.Lock()
        self._heartbeat = frame(dpm.ListStatusReply(list_id=list_id, status=0))

    def serve(self) -> None:
        """Answer the handshake, then every request, until the client leaves."""
        ticker = threading.Thread(target=self._tick, daemon=True)
        try:
            if not self._handshake():
                return
            self._send(frame(dpm.OpenListReply(list_id=self.list_id)))
            ticker.start()
            self._read()
        except ConnectionError:
            pass  # the client left without a goodbye, as clients may
        except (OSError, Unserved, ProtocolError) as exc:
            print(f"reference server: dropping a client: {exc}", file=sys.stderr)
        finally:
            with self._wake:
                self._closed = True
                self._wake.notify()
            _shut(self.sock)
            if ticker.is_alive():
                ticker.join()
            self.sock.close()

    def _handshake(self) -> bool:
        got = b""
        while len(got) < len(HANDSHAKE):
            chunk = self.sock.recv(len(HANDSHAKE) - len(got))
            if not chunk:
                return False
            got += chunk
        if got != HANDSHAKE:
            self.sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            return False
        return True

    def _read(self) -> None:
        sock = self.sock
        pending = b""
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                return
            pending = pending + chunk if pending else chunk
            pos, end = 0, len(pending)
            out: list[bytes] = []
            while end - pos >= 4:
                size = int.from_bytes(pending[pos : pos + 4], "big")
                if size > MAX_FRAME:
                    raise Unserved(f"a request frame of {size} bytes")
                if end - pos - 4 < size:
                    break
                self._apply(self._answer(pending[pos + 4 : pos + 4 + size]), out)
                pos += 4 + size
            pending = pending[pos:]
            if out:
                self._send(b"".join(out))

    def _answer(self, body: bytes) -> Answer:
        """What to do for the request frame ``body`` (kept for the next identical frame)."""
        found = self._answers.get(body)
        if found is None:
            found = prepare(dpm.decode_request(body))
            if len(self._answers) >= CACHE_FRAMES:
                self._answers.clear()
            self._answers[body] = found
        return found

    def _apply(self, what: Answer, out: list[bytes]) -> None:
        if type(what) is Entry:
            if len(self.entries) >= MAX_ENTRIES and what.ref_id not in self.entries:
                raise Unserved(f"a list of more than {MAX_ENTRIES} entries")
            self.entries[what.ref_id] = what
            out.append(what.reply)
        elif type(what) is Start:
            self._start(what.reply, out)
        elif type(what) is Remove:
            self.entries.pop(what.ref_id, None)
            out.append(what.reply)
        else:
            assert type(what) is Stop
            if self._groups:  # only the reader sets them: no lock needed to look
                with self._wake:
                    self._groups = []
            if what.clear:
                self.entries.clear()

    def _start(self, reply: bytes, out: list[bytes]) -> None:
        entries = self.entries.values()
        out.extend(e.info for e in entries if e.info is not None)
        out.append(reply)
        now = stamp()
        out.extend(now.join(e.data) for e in entries if e.data is not None and e.period is None)
        streams: dict[tuple[float, bool], list[Entry]] = {}
        for e in entries:
            if e.data is not None and e.period is not None:
                streams.setdefault((e.period, e.at_once), []).append(e)
        if not streams and not self._groups:
            return  # a one-shot list: the ticker need not wake (the reader sends ``out``)
        # the list's replies go out before its first streamed reading
        self._send(b"".join(out))
        out.clear()
        start = time.monotonic()
        with self._wake:
            self._groups = [_Group(group, key[0], start) for key, group in streams.items()]
            self._wake.notify()

    def _send(self, data: bytes) -> None:
        with self._send_lock:
            self.sock.sendall(data)

    def _tick(self) -> None:
        """Send each group when it is due, and the heartbeat; skip periods missed."""
        heartbeat_due = time.monotonic() + HEARTBEAT_PERIOD
        wake = self._wake
        try:
            while True:
                with wake:
                    while not self._closed:
                        now = time.monotonic()
                        due = min([heartbeat_due, *(g.due for g in self._groups)])
                        if due <= now:
                            break
                        wake.wait(due - now)
                    if self._closed:
                        return
                with self._send_lock:
                    with wake:
                        now, ts = time.monotonic(), stamp()
                        parts = []
                        for g in self._groups:
                            if g.due <= now:
                                parts.append(ts.join(g.pieces))
                                g.due += g.period * (1 + (now - g.due) // g.period)
                        if heartbeat_due <= now:
                            parts.append(self._heartbeat)
                            heartbeat_due = now + HEARTBEAT_PERIOD
                    if parts:
                        self.sock.sendall(b"".join(parts))
        except OSError:
            _shut(self.sock)  # the reader's recv returns, and it ends the connection


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already gone
        sock.shutdown(socket.SHUT_RDWR)


def serve(host: str, port: int) -> None:
    """Listen on ``host``:``port`` (0: any free port), print the banner, serve until Ctrl-C."""
    if not 1 << 39 <= time.time_ns() // 1_000_000 < 1 << 47:
        raise SystemExit("the clock is outside the years 1987..6429")
    list_ids = itertools.count(FIRST_LIST_ID)
    with socket.create_server((host, port), backlog=128) as listener:
        bound_host, bound_port = listener.getsockname()[:2]
        print(
            f"reference DPM on {bound_host}:{bound_port} (prepared frames, a thread per "
            "connection); Ctrl-C stops it",
            flush=True,
        )
        while True:
            sock, _ = listener.accept()
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Connection(sock, next(list_ids))
            threading.Thread(target=conn.serve, daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6802, help="0 picks a free port")
    args = parser.parse_args(argv)
    # a background job starts with SIGINT ignored; Ctrl-C and SIGTERM must stop it anyway
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with contextlib.suppress(KeyboardInterrupt):
        serve(args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
