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
client can take the service from the others. The HTTP server
(:mod:`acnet_proto.adapters.sim._http`) enforces the first three, and this
module, the ACL service, the rest:

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
import logging
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from http import HTTPStatus

from acnet_proto import drf
from acnet_proto._text import shown
from acnet_proto.adapters._refusals import RefusalLog, StreamSlots
from acnet_proto.adapters.sim._http import (
    MAX_HEAD_BYTES,
    MAX_REQUEST_LINE,
    Answer,
    BoundedHTTPServer,
    Request,
    Service,
    hung_up,
)
from acnet_proto.api.config import host_port
from acnet_proto.limits import DEFAULT_LIMITS, ServerLimits
from acnet_proto.pc import dpm
from acnet_proto.services.acl import decode_query, format_error, format_raw, format_value
from acnet_proto.sim import DeviceModel, RequestRejected
from acnet_proto.sim.schedule import ClockEvents
from acnet_proto.status import Status

# MAX_HEAD_BYTES and MAX_REQUEST_LINE are the HTTP server's, exported here with the limits
__all__ = ["CGI_PATH", "MAX_HEAD_BYTES", "MAX_REQUEST_LINE", "ACLSimServer", "serve"]

log = logging.getLogger(__name__)

#: Where the simulated CGI answers.
CGI_PATH = "/cgi-bin/acl.pl"
# how the server names itself in log lines
_NAME = "simulated ACL"
#: How many received queries :attr:`ACLSimServer.queries` keeps.
QUERY_LOG = 1000

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
            elif hung_up(self._sock, min(left, _WATCH)):
                raise _Gone

    def release(self) -> None:
        if self._holding and self._slots is not None:
            self._slots.give_back(self._peer)
        self._holding = False


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
        refusals = RefusalLog(_NAME, log, limits.quiet_period)
        self._service = Service(self._respond, _NAME, "acnet-proto-acl-sim", log, refusals)
        self._server: BoundedHTTPServer | None = None
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
        address = (self._host, self._port)
        server = BoundedHTTPServer(address, family, self._service, self.limits, self._ssl)
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

    # -- the CGI: what the HTTP server hands over ------------------------------------------

    def _respond(self, request: Request) -> Answer | None:
        """The answer to an HTTP request (None: its client left while it waited)."""
        if request.method != "GET":
            text = f"acl.pl answers GET only, not {shown(request.method)}\n"
            return Answer(HTTPStatus.NOT_IMPLEMENTED, text, close=True)
        path, _, query = request.target.partition("?")
        commands = decode_query(query)
        if path == CGI_PATH and commands is not None:
            stop = _overlong(commands)
            if stop is not None:  # answered before anything of it is kept
                return Answer(200, f"{stop.line}\n")
        self.queries.append(query)
        if path != CGI_PATH:
            return Answer(404, f"no such page: {path}\n")
        if commands is None:
            return Answer(400, "acl.pl: no acl= parameter in the query\n")
        if not commands:
            return Answer(200, "! No ACL command given - CLIB_SYNTAX\n")
        return self._script(commands, request)

    def _script(self, commands: list[str], request: Request) -> Answer | None:
        wait = _Wait(self.limits.max_wait, self._slots, request.peer, request.sock)
        try:
            return Answer(200, self._run(commands, wait))
        except _Busy as busy:
            self._service.refusals.refused("/pendwait refused", request.peer, str(busy))
            return Answer(HTTPStatus.SERVICE_UNAVAILABLE, f"{busy}\n")
        except _Gone:
            log.debug("%s: %s went while its /pendwait waited", _NAME, shown(request.peer))
            return None
        finally:
            wait.release()

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
