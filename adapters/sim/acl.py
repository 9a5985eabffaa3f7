r"""A simulated ACL CGI on a real HTTP server, answering from the shared device model.

::

    with ACLSimServer() as sim:                  # or sim.start() ... sim.stop()
        backend = ACLBackend(sim.base_url)       # http://127.0.0.1:<port>/cgi-bin/acl.pl
        backend.read("M:OUTTMP")

``GET /cgi-bin/acl.pl?acl=...`` runs the script the way the real CGI does
(:func:`acnet_proto.services.acl.decode_query`): the ``acl=`` parameter ends at
``&`` or a bare ``;``, only ``+``/``%20`` and ``%27`` are decoded (``%5B``
stays ``%5B``, and names no device), and ``\;`` separates commands. The
commands run in order and the first error stops the script: its error line
is the last line of the answer. Other paths answer 404; a query without
``acl=`` answers 400. Every query received is kept, as sent, in
:attr:`ACLSimServer.queries`.

The simulated ACL knows one command, ``read DEVICE`` (case-insensitive),
with the command qualifier ``/pendwait`` and the device qualifiers ``/raw``
and ``/event='e,NN'``; anything else stops the script with a
``CLIB_SYNTAX`` error starting with ``!``. ``DEVICE`` is a DRF without an
event, looked up in a :class:`~acnet_proto.sim.model.DeviceModel` (a fresh
:meth:`~acnet_proto.sim.model.DeviceModel.default` unless one is given;
give the DPM simulator's to serve one machine over both). It prints:

- numbers (scalars, array ranges, alarm fields, STATUS bits, INDEX):
  ``NAME = VALUE`` exactly, then the units for READING and SETTING;
- text (text devices, DESCRIPTION, LONG_NAME, STATUS.TEXT): ``NAME = text``;
- with ``/raw``: the raw data in hex, one big-endian number per float32
  element of a numeric READING or SETTING, else one per byte; a raw
  device without ``/raw``: ``DIO_NOSCALE``;
- with ``/pendwait`` and ``/event='e,NN'``: waits for the next firing of
  clock event NN on the model's clock (:class:`~acnet_proto.sim.schedule.ClockEvents`)
  first; ``/event`` alone reads at once, as the real ACL gives the last value;
- an unknown device: ``Invalid device name (NAME) in read command -
  DIO_NO_SUCH``; anything else the model refuses: ``Error reading NAME -
  STATUS``, with ACL's DIO name for the model's DPM status (e.g.
  ``DIO_NOATT`` for a missing property, ``DIO_OUT_OF_BOUNDS``);
- whole basic status and alarm blocks, which have no one-line form here:
  ``DIO_NOT_SUPPORTED`` (read their fields instead).

Requests are served by a thread each (HTTP/1.1, kept alive), with one
lock around the model. What one client may take is bounded by ``limits``
(:class:`~acnet_proto.limits.ServerLimits`), so that no unauthenticated
client can take the service from the others:

- ``max_connections`` connections (so at most that many threads): beyond
  it, the connection idle longest (waiting for a request) is closed to make
  room; if every one is answering a request, the newest gets ``503 Service
  Unavailable`` naming the limit, and is closed;
- ``handshake_timeout``: the TLS handshake, request line and headers must
  all arrive within it (``408 Request Timeout``, then closed);
  ``idle_timeout``: a kept-alive connection that sends no next request is
  closed;
- ``max_request_bytes``: the request line (at most :data:`MAX_REQUEST_LINE`
  bytes: ``414``), the headers (at most :data:`MAX_HEAD_BYTES`: ``431``)
  and a body (``413``; a GET's body is read past) are refused before they
  are stored;
- a device name over :data:`~acnet_proto.drf.MAX_DRF_LENGTH` characters
  stops the script before it runs (``! ... - CLIB_SYNTAX``), and its query
  is not kept in :attr:`ACLSimServer.queries`;
- ``/pendwait``: all the waits of one request end within ``max_wait`` s
  (a clock event not due by then gives ``DIO_TIMEOUT`` at once); at most
  ``max_streams_per_peer`` requests per client address and
  ``max_streams`` in all may wait at a time (beyond: ``503``); a wait ends
  as soon as its client closes the connection.

Refusals are logged once per burst
(:class:`~acnet_proto.adapters._refusals.RefusalLog`), with the peer's text
shown bounded and escaped.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import select
import socket
import ssl
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from acnet_proto import drf
from acnet_proto._text import decimal, shown
from acnet_proto.adapters._refusals import RefusalLog, StreamSlots
from acnet_proto.api.config import host_port
from acnet_proto.limits import DEFAULT_LIMITS, ServerLimits
from acnet_proto.pc import dpm
from acnet_proto.services.acl import decode_query, format_error, format_raw, format_value
from acnet_proto.sim import DeviceModel, RequestRejected
from acnet_proto.sim.schedule import ClockEvents
from acnet_proto.status import Status

__all__ = ["CGI_PATH", "MAX_HEAD_BYTES", "MAX_REQUEST_LINE", "ACLSimServer", "serve"]

log = logging.getLogger(__name__)

#: Where the simulated CGI answers.
CGI_PATH = "/cgi-bin/acl.pl"
#: How many received queries :attr:`ACLSimServer.queries` keeps.
QUERY_LOG = 1000
#: The longest request line accepted (or ``max_request_bytes``, if smaller): twice the
#: URLs our client sends (:data:`~acnet_proto.services.acl.MAX_URL_LENGTH`).
MAX_REQUEST_LINE = 16 * 1024
#: The most header bytes accepted (or what ``max_request_bytes`` leaves, if less).
MAX_HEAD_BYTES = 64 * 1024

# the DIO status ACL reports for what the model refuses with a DPM (or DBM) status
_ACL_STATUS = {
    "DPM_NO_SUCH_DEVICE": "DIO_NO_SUCH",
    "DBM_NOPROP": "DIO_NOATT",
    "DPM_NO_SUCH_FIELD": "DIO_INVATT",
    "DPM_OUT_OF_BOUNDS": "DIO_OUT_OF_BOUNDS",
    "DPM_BAD_RANGE": "DIO_BADARG",
    "DPM_BAD_FRAMING": "DIO_INVOFF",
    "DPM_NO_SCALE": "DIO_NOSCALE",
    "DPM_BAD_REQUEST": "DIO_SYNTAX",
    "DPM_BAD_EVENT": "DIO_SYNTAX",
}
_WITH_UNITS = frozenset({drf.Property.READING, drf.Property.SETTING})
# longest a waiting /pendwait goes without checking that its client is still there
_WATCH = 1.0
# how long accepting waits for a connection closed to make room to let go of its thread
_SHED_WAIT = 0.5
# how long a connection turned away keeps its socket, so that the client reads the 503
_LINGER = 1.0


class _Stop(Exception):
    """The script stops here; ``line`` is the error ACL printed."""

    def __init__(self, line: str) -> None:
        super().__init__(line)
        self.line = line


class _Busy(Exception):
    """A /pendwait cannot wait now: too many are waiting (the message says which limit)."""


class _Gone(Exception):
    """The client closed its connection while its request waited."""


def _syntax(problem: str) -> _Stop:
    return _Stop(f"! {problem} - CLIB_SYNTAX")


def _parts(command: str) -> tuple[str, str, list[str]]:
    """``command`` as its verb (with command qualifiers), device and device qualifiers."""
    verb, _, argument = command.partition(" ")
    device, *qualifiers = argument.strip().split("/")
    return verb, device, qualifiers


def _overlong(commands: Sequence[str]) -> _Stop | None:
    """The error for the first device name over the DRF length limit, if any."""
    for command in commands:
        length = len(_parts(command)[1])
        if length > drf.MAX_DRF_LENGTH:
            return _syntax(
                f"Device name of {length} characters in read command "
                f"(the limit is {drf.MAX_DRF_LENGTH})"
            )
    return None


class _Wait:
    """How the /pendwait commands of one script wait for their clock events.

    All of them end within ``max_wait`` s of the start; with ``slots``, the
    first wait takes a slot for ``peer`` (:class:`_Busy` if there is none),
    kept until :meth:`release`; with ``sock``, a wait ends (:class:`_Gone`)
    as soon as the client closes it.
    """

    def __init__(
        self,
        max_wait: float,
        slots: StreamSlots | None = None,
        peer: str = "",
        sock: socket.socket | None = None,
    ) -> None:
        self.max_wait = max_wait
        self.deadline = time.monotonic() + max_wait
        self._slots = slots
        self._peer = peer
        self._sock = sock
        self._holding = False

    def until(self, due: float, device: str) -> None:
        """Wait until ``due`` (monotonic) for ``device``'s read, or stop the script."""
        if due > self.deadline:
            raise _Stop(
                format_error(
                    f"Error reading {device} (its event is not due within the "
                    f"{self.max_wait:g} s a request may wait)",
                    "DIO_TIMEOUT",
                )
            )
        if self._slots is not None and not self._holding:
            refused = self._slots.take(self._peer)
            if refused is not None:
                raise _Busy(refused)
            self._holding = True
        while (left := due - time.monotonic()) > 0:
            if self._sock is None:
                time.sleep(left)
            elif _hung_up(self._sock, min(left, _WATCH)):
                raise _Gone

    def release(self) -> None:
        if self._holding and self._slots is not None:
            self._slots.give_back(self._peer)
        self._holding = False


def _hung_up(sock: socket.socket, seconds: float) -> bool:
    """Whether the peer closes (or resets) ``sock`` within ``seconds``; a next request,
    already sent, does not count."""
    if hasattr(select, "POLLRDHUP"):  # Linux: the peer's FIN, whatever data precedes it
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLRDHUP)
        return bool(poller.poll(seconds * 1000))
    readable, _, _ = select.select([sock], [], [], seconds)
    if not readable:
        return False
    try:
        # the socket's own recv: TLS sockets refuse MSG_PEEK, and only the FIN matters here
        data = socket.socket.recv(sock, 1, socket.MSG_PEEK)
    except BlockingIOError:
        return False
    except OSError:
        return True
    if data:  # a pipelined request: the FIN cannot be seen past it, so only wait
        time.sleep(seconds)
    return not data


class ACLSimServer:
    """The simulated ACL CGI on ``host``:``port`` (0: a free port).

    With ``ssl_context`` (a server context holding its certificate) it
    speaks HTTPS, as the real one does. ``limits`` bound what clients may
    take (see the module docstring). :meth:`start` (or ``with``) starts
    it; ``host``, ``port`` and ``base_url`` then say where it listens.
    """

    def __init__(
        self,
        model: DeviceModel | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ssl_context: ssl.SSLContext | None = None,
        limits: ServerLimits = DEFAULT_LIMITS,
    ) -> None:
        if not isinstance(limits, ServerLimits):
            raise TypeError(f"limits must be a ServerLimits, got {limits!r}")
        self.limits = limits
        self.model = model if model is not None else DeviceModel.default()
        #: Held while the model is read (requests run in threads of their own).
        self.lock = threading.Lock()
        self.clock = ClockEvents(self.model, time.monotonic())
        #: The query string of each request received (the newest :data:`QUERY_LOG`), as sent.
        self.queries: deque[str] = deque(maxlen=QUERY_LOG)
        self._host = host
        self._port = port
        self._ssl = ssl_context
        self._slots = StreamSlots(
            limits.max_streams_per_peer, limits.max_streams, "/pendwait requests"
        )
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        """The port it listens on (the real one once started, even if 0 was asked)."""
        return self._port

    @property
    def waiting(self) -> int:
        """How many requests wait in a ``/pendwait`` now."""
        return self._slots.open()

    @property
    def connections(self) -> int:
        """How many connections are open now (each has a thread)."""
        return 0 if self._server is None else self._server.open_count()

    @property
    def base_url(self) -> str:
        """The CGI's URL, for :class:`~acnet_proto.adapters.acl.ACLBackend`."""
        scheme = "http" if self._ssl is None else "https"
        return f"{scheme}://{host_port(self._host, self._port)}{CGI_PATH}"

    def __repr__(self) -> str:
        state = "listening" if self._server is not None else "stopped"
        return f"ACLSimServer({self.base_url!r}, {state})"

    def start(self) -> ACLSimServer:
        """Start listening; returns once requests are accepted. OSError if the port is taken."""
        if self._server is not None:
            raise RuntimeError("this ACLSimServer is already started")
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        server = _HTTPServer((self._host, self._port), self, family)
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="sim-acl", daemon=True
        )
        self._thread.start()
        log.info("simulated ACL CGI at %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop listening and close every connection, waiting for requests in progress."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        server.close_turned_away()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> ACLSimServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the interpreter ------------------------------------------------------------------

    def run_script(self, commands: Sequence[str]) -> str:
        """What ACL prints for ``commands`` (decoded), stopping at the first error.

        Its ``/pendwait`` commands wait ``limits.max_wait`` s at most, in all.
        """
        return self._run(commands, _Wait(self.limits.max_wait))

    def _run(self, commands: Sequence[str], wait: _Wait) -> str:
        overlong = _overlong(commands)
        if overlong is not None:
            return f"{overlong.line}\n"
        lines = []
        for command in commands:
            try:
                lines.append(self._command(command, wait))
            except _Stop as stop:
                lines.append(stop.line)
                break
        return "".join(f"{line}\n" for line in lines)

    def _command(self, command: str, wait: _Wait) -> str:
        verb, device, qualifiers = _parts(command)
        name, *command_qualifiers = verb.lower().split("/")
        if name != "read":
            raise _syntax(f"Unknown command {name!r}")
        unknown = [q for q in command_qualifiers if q != "pendwait"]
        if unknown:
            raise _syntax(f"Invalid qualifier /{unknown[0]} for the read command")
        if not device:
            raise _syntax("Missing device name in read command")
        raw = False
        event: drf.ClockEvent | None = None
        for qualifier in qualifiers:
            key, _, value = qualifier.partition("=")
            if key.lower() == "raw" and not value:
                raw = True
            elif key.lower() == "event" and len(value) > 2 and value[0] == value[-1] == "'":
                event = self._clock_event(value[1:-1])
            else:
                raise _syntax(f"Invalid qualifier /{qualifier} for the read command")
        if event is not None and command_qualifiers:
            wait.until(self.clock.next_after(event, time.monotonic()), device)
        return self._read(device, raw)

    def _clock_event(self, text: str) -> drf.ClockEvent:
        try:
            event = drf.parse_event(text)
        except drf.DRFError:
            event = None
        if not isinstance(event, drf.ClockEvent):
            raise _syntax(f"Invalid event '{text}' (a clock event such as 'e,2' is expected)")
        return event

    def _read(self, device: str, raw: bool) -> str:
        text = device
        if raw:
            # a device that does not parse is refused below, as it would be without /raw
            with contextlib.suppress(drf.DRFError, ValueError):
                text = replace(drf.parse(device), field=drf.Field.RAW).to_drf()
        with self.lock:
            try:
                entry = self.model.resolve(text)
                reply = entry.reply(0, time.time())
            except RequestRejected as e:
                raise _Stop(_refusal(device, e.status)) from None
        d = entry.device
        if isinstance(reply, dpm.RawReply):
            if not raw:
                raise _Stop(format_error(f"Error reading {device}", "DIO_NOSCALE"))
            numeric = d.numeric and entry.request.property in _WITH_UNITS
            return format_raw(device, bytes(reply.data), 4 if numeric else 1)
        units = d.units if entry.request.property in _WITH_UNITS else None
        if isinstance(reply, dpm.ScalarReply | dpm.ScalarArrayReply):
            return format_value(device, reply.data, units)
        if isinstance(reply, dpm.TextReply):
            return format_value(device, reply.data)
        raise _Stop(format_error(f"Error reading {device}", "DIO_NOT_SUPPORTED"))


def _refusal(device: str, status: int) -> str:
    name = Status.from_int(status).name or "DIO_GENERIC_ERROR"
    name = _ACL_STATUS.get(name, name)
    if name == "DIO_NO_SUCH":
        return format_error(f"Invalid device name ({device}) in read command", name)
    return format_error(f"Error reading {device}", name)


# --- HTTP --------------------------------------------------------------------------------


@dataclass(eq=False)
class _Connection:
    """One open connection, as the accepting thread and the reaper see it."""

    sock: socket.socket  # the TLS socket once the handler has wrapped it
    peer: str
    since: float  # when it last started waiting for a request (monotonic)
    deadline: float | None  # when the reaper ends it; None while a request is answered
    expired: bool = False  # the reaper ended it
    shed: bool = False  # closed to make room for a newer one


def _halt(sock: socket.socket, how: int) -> None:
    """Shut ``sock`` down (waking a thread blocked on it) without touching its TLS state."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, how)


def _quiet(sock: socket.socket) -> bool:
    """Whether nothing waits to be read on ``sock``."""
    try:
        if hasattr(select, "poll"):  # select() cannot take descriptors past FD_SETSIZE
            poller = select.poll()
            poller.register(sock.fileno(), select.POLLIN)
            return not poller.poll(0)
        return not select.select([sock], [], [], 0)[0]
    except (OSError, ValueError):  # closed meanwhile: it frees its slot by itself
        return False


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # a burst of connections waits in the kernel, not refused, while the loop accepts them
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], sim: ACLSimServer, family: int) -> None:
        self.address_family = family
        self.sim = sim
        self.limits = sim.limits
        self.tls = sim._ssl
        self.refusals = RefusalLog("simulated ACL", log, sim.limits.quiet_period)
        self._open: dict[socket.socket, _Connection] = {}
        self._changed = threading.Condition()
        self._turned_away: deque[tuple[float, socket.socket]] = deque()
        super().__init__(address, _Handler)

    def open_count(self) -> int:
        with self._changed:
            return len(self._open)

    # -- admission ------------------------------------------------------------------------

    def process_request(self, request: Any, client_address: Any) -> None:
        peer = str(client_address[0])
        if self._admit(request, peer):
            super().process_request(request, client_address)
            return
        reason = (
            f"all {self.limits.max_connections} connections are answering requests "
            f"(max_connections={self.limits.max_connections}); retry later"
        )
        self.refusals.refused("connection refused", peer, reason)
        self._turn_away(request, reason)

    def _admit(self, request: socket.socket, peer: str) -> bool:
        """Register ``request`` if there is room, closing the longest-idle one to make it."""
        cap = self.limits.max_connections
        with self._changed:
            if len(self._open) >= cap and self._shed_one():
                self._changed.wait_for(lambda: len(self._open) < cap, timeout=_SHED_WAIT)
            if len(self._open) >= cap:
                return False
            now = time.monotonic()
            deadline = now + self.limits.handshake_timeout
            self._open[request] = _Connection(request, peer, now, deadline)
            return True

    def _shed_one(self) -> bool:
        idle = [c for c in self._open.values() if c.deadline is not None and not c.shed]
        # a request that has arrived, not yet read by its thread, is about to be answered
        victim = next((c for c in sorted(idle, key=lambda c: c.since) if _quiet(c.sock)), None)
        if victim is None:
            return False
        victim.shed = True
        _halt(victim.sock, socket.SHUT_RDWR)
        cap = self.limits.max_connections
        reason = f"{cap} connections open (max_connections): the one idle longest was closed"
        self.refusals.refused("idle connection closed", victim.peer, reason)
        return True

    def _turn_away(self, request: socket.socket, reason: str) -> None:
        """Answer 503 without a thread, and keep the socket a moment so that it is read."""
        if self.tls is not None:  # it would have to shake hands first: just close
            self.shutdown_request(request)
            return
        body = f"{reason}\n".encode()
        head = (
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        with contextlib.suppress(OSError):
            request.setblocking(False)
            request.send(head + body)
            request.shutdown(socket.SHUT_WR)
        if len(self._turned_away) >= self.limits.max_connections:
            self._close_turned_away(self._turned_away.popleft()[1])
        self._turned_away.append((time.monotonic() + _LINGER, request))

    @staticmethod
    def _close_turned_away(sock: socket.socket) -> None:
        # what the client sent is read first: closing on unread data would reset the 503
        with contextlib.suppress(OSError):
            sock.recv(65536)
        sock.close()

    def close_turned_away(self) -> None:
        while self._turned_away:
            self._close_turned_away(self._turned_away.popleft()[1])

    # -- the handlers' states, and the reaper -----------------------------------------

    def connection(self, request: socket.socket) -> _Connection:
        with self._changed:
            return self._open[request]

    def expect_request(self, conn: _Connection, seconds: float | None) -> None:
        """``conn`` waits for a request; the reaper ends it after ``seconds`` (None: keep)."""
        with self._changed:
            now = time.monotonic()
            conn.since = now
            if seconds is not None or conn.deadline is None:
                conn.deadline = now + (seconds or self.limits.handshake_timeout)

    def busy(self, conn: _Connection) -> bool:
        """``conn`` answers a request now (no deadline); False if it already expired."""
        with self._changed:
            conn.deadline = None
            return not (conn.expired or conn.shed)

    def service_actions(self) -> None:
        now = time.monotonic()
        with self._changed:
            for conn in self._open.values():
                if conn.deadline is not None and now >= conn.deadline and not conn.expired:
                    conn.expired = True
                    # reading ends, so the handler wakes; writing stays, for its 408
                    _halt(conn.sock, socket.SHUT_RD)
        while self._turned_away and self._turned_away[0][0] <= now:
            self._close_turned_away(self._turned_away.popleft()[1])
        self.refusals.sweep()

    def shutdown_request(self, request: Any) -> None:
        with self._changed:
            self._open.pop(request, None)
            self._changed.notify_all()
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End every connection, so that their threads finish (server_close waits)."""
        with self._changed:
            sockets = [conn.sock for conn in self._open.values()]
        for sock in sockets:
            _halt(sock, socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a peer that goes mid-answer is ordinary: one line, no traceback per connection
        error = sys.exc_info()[1]
        peer = str(client_address[0])
        if isinstance(error, OSError):
            log.debug("simulated ACL: connection from %s ended: %r", shown(peer), error)
            return
        self.refusals.refused("request failed", peer, repr(error))
        log.debug("simulated ACL: a request from %s failed", shown(peer), exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "acnet-proto-acl-sim"
    # headers and body go out in two writes: without this, each answer waits for a delayed ACK
    disable_nagle_algorithm = True
    server: _HTTPServer
    request: socket.socket

    def setup(self) -> None:
        self.conn = self.server.connection(self.request)
        self._served = 0
        self._used = 0  # bytes of the current request's line and headers
        self._reset()
        limits = self.server.limits
        # the reaper enforces the deadlines; this only bounds a write to a client not reading
        self._patience = limits.handshake_timeout + limits.idle_timeout
        if self.server.tls is not None:
            self.request = self.server.tls.wrap_socket(
                self.request, server_side=True, do_handshake_on_connect=False
            )
            self.conn.sock = self.request
        super().setup()

    def handle(self) -> None:
        if self.server.tls is not None:
            try:
                self.request.settimeout(self.server.limits.handshake_timeout)
                self.request.do_handshake()  # type: ignore[attr-defined]
            except (OSError, ValueError) as e:
                log.debug("simulated ACL: TLS handshake with %s failed: %r", self._peer(), e)
                return
        super().handle()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            if self.server.tls is not None:
                self.request.close()  # the server closes the socket it accepted, not this one

    def _peer(self) -> str:
        return shown(str(self.client_address[0]))

    def _reset(self) -> None:
        # what send_response and log_request read, before a request line is parsed
        self.requestline = self.request_version = self.command = ""
        self.close_connection = True

    # -- reading a request, within the limits -----------------------------------------

    def handle_one_request(self) -> None:
        self._reset()
        try:
            if not self._await_request():
                return
            self._serve()
        except TimeoutError as e:
            log.debug("simulated ACL: %s timed out: %r", self._peer(), e)
            self.close_connection = True

    def _await_request(self) -> bool:
        """Wait for a request's first byte: False (closed) if none comes in time."""
        limits = self.server.limits
        first = self._served == 0
        self.server.expect_request(self.conn, None if first else limits.idle_timeout)
        self.request.settimeout(self._patience)  # an answer shortened it
        if not cast(io.BufferedReader, self.rfile).peek(1):
            if self.conn.expired and first:
                self._late()
            return False
        if not first:  # the request line and headers are due within the handshake timeout
            self.server.expect_request(self.conn, limits.handshake_timeout)
        self._served += 1
        return True

    def _serve(self) -> None:
        limits = self.server.limits
        line_limit = min(limits.max_request_bytes, MAX_REQUEST_LINE)
        self.raw_requestline = self.rfile.readline(line_limit + 1)
        if self.conn.expired:
            self._late()
            return
        if len(self.raw_requestline) > line_limit:
            self._refuse(
                HTTPStatus.REQUEST_URI_TOO_LONG,
                f"the request line is over {line_limit} bytes (max_request_bytes="
                f"{limits.max_request_bytes}, at most {MAX_REQUEST_LINE} for the line)",
            )
            return
        if not self._parse() or not self._read_body():
            return
        if not self.server.busy(self.conn):
            self._late()
            return
        self._dispatch()

    def _parse(self) -> bool:
        """Read the headers within the budget and parse the request (False: answered)."""
        limits = self.server.limits
        allowed = min(limits.max_request_bytes - len(self.raw_requestline), MAX_HEAD_BYTES)
        budget = allowed
        lines = []
        while True:
            line = self.rfile.readline(budget + 1)
            budget -= len(line)
            if self.conn.expired:
                self._late()
                return False
            if budget < 0:
                self._refuse(
                    HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                    f"the request headers are over the {allowed} bytes left for them "
                    f"(max_request_bytes={limits.max_request_bytes})",
                )
                return False
            lines.append(line)
            if line in (b"\r\n", b"\n", b""):
                break
        head = b"".join(lines)
        self._used = len(self.raw_requestline) + len(head)
        rfile, self.rfile = self.rfile, io.BytesIO(head)
        try:
            return self.parse_request()
        finally:
            self.rfile = rfile

    def _read_body(self) -> bool:
        """Read past a body within the budget (False: refused)."""
        limits = self.server.limits
        if "Transfer-Encoding" in self.headers:
            self._refuse(HTTPStatus.NOT_IMPLEMENTED, "request bodies in chunks are not accepted")
            return False
        declared = self.headers.get("Content-Length")
        if declared is None:
            return True
        length = decimal(declared.strip())
        if length is None:
            self._refuse(HTTPStatus.BAD_REQUEST, f"Content-Length {shown(declared)} is no number")
            return False
        if self._used + length > limits.max_request_bytes:
            self._refuse(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"the request is {self._used + length} bytes with its body "
                f"(max_request_bytes={limits.max_request_bytes})",
            )
            return False
        self.rfile.read(length)
        return True

    def _dispatch(self) -> None:
        if self.command != "GET":
            self._answer(
                HTTPStatus.NOT_IMPLEMENTED,
                f"acl.pl answers GET only, not {shown(self.command)}\n",
                close=True,
            )
            return
        self.do_GET()
        self.wfile.flush()

    def _late(self) -> None:
        limits = self.server.limits
        self.close_connection = True
        if self.conn.shed:
            return
        reason = (
            f"the request line and headers did not arrive within {limits.handshake_timeout:g} s "
            "(handshake_timeout)"
        )
        self.server.refusals.refused("request too slow", self.client_address[0], reason)
        with contextlib.suppress(OSError):
            self._answer(HTTPStatus.REQUEST_TIMEOUT, f"{reason}\n", close=True)

    def _refuse(self, code: HTTPStatus, reason: str) -> None:
        self.server.refusals.refused(
            f"HTTP {code.value} {code.phrase}", self.client_address[0], reason
        )
        self._answer(code, f"{reason}\n", close=True)

    # -- the CGI --------------------------------------------------------------------------

    def do_GET(self) -> None:
        sim = self.server.sim
        path, _, query = self.path.partition("?")
        commands = decode_query(query)
        if path == CGI_PATH and commands is not None:
            stop = _overlong(commands)
            if stop is not None:  # answered before anything of it is kept
                self._answer(200, f"{stop.line}\n")
                return
        sim.queries.append(query)
        if path != CGI_PATH:
            self._answer(404, f"no such page: {path}\n")
        elif commands is None:
            self._answer(400, "acl.pl: no acl= parameter in the query\n")
        elif not commands:
            self._answer(200, "! No ACL command given - CLIB_SYNTAX\n")
        else:
            self._run(commands)

    def _run(self, commands: list[str]) -> None:
        sim = self.server.sim
        peer = str(self.client_address[0])
        wait = _Wait(sim.limits.max_wait, sim._slots, peer, self.request)
        try:
            text = sim._run(commands, wait)
        except _Busy as busy:
            self.server.refusals.refused("/pendwait refused", peer, str(busy))
            self._answer(HTTPStatus.SERVICE_UNAVAILABLE, f"{busy}\n")
            return
        except _Gone:
            log.debug("simulated ACL: %s went while its /pendwait waited", self._peer())
            self.close_connection = True
            return
        finally:
            wait.release()
        self._answer(200, text)

    def _answer(self, code: int, text: str, *, close: bool = False) -> None:
        body = text.encode("utf-8")
        self.request.settimeout(self.server.limits.handshake_timeout)
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # args hold the peer's request line: bounded and escaped
        log.debug("%s %s", self._peer(), shown(format % args))


async def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    model: DeviceModel | None = None,
    *,
    ready: Callable[[ACLSimServer], None] | None = None,
    limits: ServerLimits = DEFAULT_LIMITS,
) -> None:
    """Serve the simulated ACL CGI until cancelled (``acnet-proto sim --acl-port PORT``).

    A coroutine, to run beside the DPM simulator's
    :func:`acnet_proto.adapters.sim.dpm.serve` on one loop (the server itself
    runs in its own threads). ``ready`` is called with the server once it
    listens (e.g. to print :attr:`ACLSimServer.base_url`). Give the DPM
    simulator's ``model`` to serve one simulated machine over both;
    ``limits`` bound what its clients may take.
    """
    server = ACLSimServer(model, host, port, limits=limits).start()
    try:
        if ready is not None:
            ready(server)
        await asyncio.Event().wait()
    finally:
        await asyncio.to_thread(server.stop)
