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
``acl=`` answers 400. ``HEAD`` answers as ``GET`` would (status and headers,
the script run), without the body, as any CGI server does: clients probe
with it. Other methods answer 501. Every query received is kept, as sent,
in :attr:`ACLSimServer.queries`. With ``ssl_context`` (:func:`tls_context`
makes one from PEM files) it speaks HTTPS.

The simulated ACL knows one command, ``read DEVICE`` (case-insensitive),
with the command qualifier ``/pendwait`` and the device qualifiers ``/raw``
and ``/event='e,NN'``; anything else stops the script with a
``CLIB_SYNTAX`` error starting with ``!``. ``DEVICE`` is a DRF, or ACL's
``DEVICE.FIELD`` form (``Z:ACLTST.MAX``, ``Z:ACLTST.ON``:
:func:`~acnet_proto.services.acl.parse_device`), looked up in a
:class:`~acnet_proto.sim.model.DeviceModel` (a fresh
:meth:`~acnet_proto.sim.model.DeviceModel.default` unless one is given;
give the DPM simulator's to serve one machine over both). Each line names
the device (its canonical ``X:NAME``) as the lab's ACL does:

- numbers (scalars, array ranges, INDEX): ``NAME = VALUE`` exactly, then
  the units for READING and SETTING;
- fields of the alarms and the basic status, in words
  (:func:`~acnet_proto.services.acl.value_label`): ``Z:ACLTST alarm maximum
  = 100 mm`` (the units for the analog limits), ``Z:ACLTST is on = True``;
- text (text devices, DESCRIPTION, LONG_NAME, STATUS.TEXT): ``NAME = text``;
- with ``/raw`` or the ``.RAW`` field: the raw data in hex, big-endian, a
  number per structure field: per element of a numeric READING or SETTING
  (of the element's raw size), the whole status word, the fields of a
  20-byte alarm block (:data:`ALARM_BLOCK_WIDTHS`), else per byte; a raw
  device read without either: ``DIO_NOSCALE``;
- with ``/pendwait`` and ``/event='e,NN'``: waits for the next firing of
  clock event NN on the model's clock (:class:`~acnet_proto.sim.schedule.ClockEvents`)
  first; ``/event`` alone reads at once, as the real ACL gives the last value.

Errors name the command and its line in the script, as the lab's do:

- a device that does not exist: ``Invalid device name (Z:NOTFND) in read
  device command at line 1 - DBM_NOREC``;
- a status attribute the device lacks (a bit, or the whole basic status):
  ``Error determining status text in read device command at line 1 -
  Z:ACLTST DIO_NOATT``;
- a device argument that is neither a DRF nor ACL's field form: ``Invalid
  device specification (TEXT) in read device command at line 1: PROBLEM -
  DIO_SYNTAX``;
- anything else the model refuses: ``Error reading NAME in read device
  command at line 1 - STATUS``, with ACL's DIO name for the model's DPM
  status (e.g. ``DIO_NOATT`` for a missing property, ``DIO_OUT_OF_BOUNDS``);
- whole basic status and alarm blocks, printed on several lines by the real
  ACL: ``DIO_NOT_SUPPORTED`` (read their fields instead).

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
from acnet_proto.adapters._tls import tls_context
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
from acnet_proto.services.acl import (
    decode_query,
    format_error,
    format_raw,
    format_value,
    parse_device,
    value_label,
)
from acnet_proto.sim import DeviceModel, RequestRejected
from acnet_proto.sim.binding import Entry
from acnet_proto.sim.schedule import ClockEvents
from acnet_proto.status import Status

# MAX_HEAD_BYTES and MAX_REQUEST_LINE are the HTTP server's, exported here with the limits
__all__ = [
    "ALARM_BLOCK_WIDTHS",
    "CGI_PATH",
    "MAX_HEAD_BYTES",
    "MAX_REQUEST_LINE",
    "ACLSimServer",
    "serve",
    "tls_context",
]

log = logging.getLogger(__name__)

#: Where the simulated CGI answers.
CGI_PATH = "/cgi-bin/acl.pl"
# how the server names itself in log lines
_NAME = "simulated ACL"
#: How many received queries :attr:`ACLSimServer.queries` keeps.
QUERY_LOG = 1000
# what the lab's ACL says for a device that does not exist
_NO_RECORD = "DBM_NOREC"

# the status ACL reports for what the model refuses with a DPM (or DBM) status
_ACL_STATUS = {
    "DPM_PEND": _NO_RECORD,  # how the lab's DPM answers a device that does not exist
    "DPM_NO_SUCH_DEVICE": _NO_RECORD,
    "DBM_NOPROP": "DIO_NOATT",
    "DPM_NO_SUCH_FIELD": "DIO_INVATT",
    "DPM_OUT_OF_BOUNDS": "DIO_OUT_OF_BOUNDS",
    "DPM_BAD_RANGE": "DIO_BADARG",
    "DPM_BAD_FRAMING": "DIO_INVOFF",
    "DPM_NO_SCALE": "DIO_NOSCALE",
    "DPM_BAD_REQUEST": "DIO_SYNTAX",
    "DPM_BAD_EVENT": "DIO_SYNTAX",
}
# what ACL makes of the model's refusals of a property or field the device lacks
_MISSING_FIELD = frozenset({"DIO_NOATT", "DIO_INVATT"})
_P = drf.Property
_F = drf.Field
# the fields printed with the device's units
_WITH_UNITS = frozenset(
    [(p, f) for p in (_P.READING, _P.SETTING) for f in (None, _F.SCALED)]
    + [(_P.ANALOG, f) for f in (_F.MIN, _F.MAX, _F.NOM, _F.TOL)]
)
#: The sizes of the fields of a 20-byte alarm block, as ``/raw`` prints them.
ALARM_BLOCK_WIDTHS = (2, 4, 4, 1, 1, 1, 1, 2, 2, 2)
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
        if request.method not in ("GET", "HEAD"):  # the HTTP server sends no body for HEAD
            text = f"acl.pl answers GET and HEAD only, not {shown(request.method)}\n"
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
        for line, command in enumerate(commands, 1):
            try:
                lines.append(self._command(command, line, wait))
            except _Stop as stop:
                lines.append(stop.line)
                break
        return "".join(f"{line}\n" for line in lines)

    def _command(self, command: str, line: int, wait: _Wait) -> str:
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
        return self._read(device, raw, line)

    def _clock_event(self, text: str) -> drf.ClockEvent:
        try:
            event = drf.parse_event(text)
        except drf.DRFError:
            event = None
        if not isinstance(event, drf.ClockEvent):
            raise _syntax(f"Invalid event '{text}' (a clock event such as 'e,2' is expected)")
        return event

    def _read(self, device: str, raw: bool, line: int) -> str:
        """The line ``read DEVICE`` (``/raw``) prints, as command ``line`` of its script."""
        where = f"in read device command at line {line}"
        try:
            request = parse_device(device)
        except drf.DRFError as e:
            problem = f"Invalid device specification ({device}) {where}: {e.problem}"
            raise _Stop(format_error(problem, "DIO_SYNTAX")) from None
        if raw:
            request = replace(request, field=_F.RAW)
        with self.lock:
            try:
                entry = self.model.resolve(request.to_drf(), live_only=True)
                reply = entry.reply(0, time.time())
            except RequestRejected as e:
                if request.source is not None:  # recorded data: not a device ACL can read
                    problem = f"Invalid device specification ({device}) {where}: {e.reason}"
                    raise _Stop(format_error(problem, "DIO_SYNTAX")) from None
                raise _Stop(_refusal(device, request, e.status, where)) from None
        return _printed(entry, reply, where)


def _printed(entry: Entry, reply: object, where: str) -> str:
    """The line ACL prints for ``reply``, the model's answer to ``entry``."""
    request, name = entry.request, entry.device.name
    if isinstance(reply, dpm.RawReply):
        if request.field is not _F.RAW:  # a raw device has no scaled value to print
            raise _Stop(format_error(f"Error reading {name} {where}", "DIO_NOSCALE"))
        return format_raw(name, bytes(reply.data), _raw_widths(entry, len(reply.data)))
    label = value_label(request)
    if isinstance(reply, dpm.ScalarReply) and request.property is _P.STATUS and label:
        return format_value(name, str(bool(reply.data)), label=label)
    if isinstance(reply, dpm.ScalarReply | dpm.ScalarArrayReply):
        with_units = (request.property, request.field) in _WITH_UNITS
        return format_value(name, reply.data, entry.device.units if with_units else None, label)
    if isinstance(reply, dpm.TextReply):
        return format_value(name, reply.data, label=label)
    # whole basic status and alarm blocks: ACL prints them on several lines, not served here
    raise _Stop(format_error(f"Error reading {name} {where}", "DIO_NOT_SUPPORTED"))


def _raw_widths(entry: Entry, length: int) -> int | Sequence[int]:
    """How ``/raw`` splits ``length`` bytes of ``entry``'s data into numbers: by its structure."""
    prop = entry.request.property
    if prop is _P.STATUS:
        return length  # the status word
    if prop in (_P.ANALOG, _P.DIGITAL) and length == sum(ALARM_BLOCK_WIDTHS):
        return ALARM_BLOCK_WIDTHS
    if entry.device.numeric and entry.span is not None and prop in (_P.READING, _P.SETTING):
        elements = entry.span[1] - entry.span[0]
        if elements > 0 and length % elements == 0:
            return length // elements
    return 1


def _refusal(device: str, request: drf.DataRequest, status: int, where: str) -> str:
    """The error line for a read of ``request`` (written ``device``) the model refused."""
    name = Status.from_int(status).name or "DIO_GENERIC_ERROR"
    name = _ACL_STATUS.get(name, name)
    if name == _NO_RECORD:
        return format_error(f"Invalid device name ({request.device}) {where}", name)
    if request.property is _P.STATUS and value_label(request) and name in _MISSING_FIELD:
        # the lab's ACL: a status attribute the device lacks, naming the device before it
        return format_error(f"Error determining status text {where}", "DIO_NOATT", request.device)
    return format_error(f"Error reading {device} {where}", name)


async def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    model: DeviceModel | None = None,
    *,
    ready: Callable[[ACLSimServer], None] | None = None,
    limits: ServerLimits = DEFAULT_LIMITS,
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """Serve the simulated ACL CGI until cancelled (``acnet-proto sim --acl-port PORT``).

    A coroutine, to run beside the DPM simulator's
    :func:`acnet_proto.adapters.sim.dpm.serve` on one loop (the server itself
    runs in its own threads). ``ready`` is called with the server once it
    listens (e.g. to print :attr:`ACLSimServer.base_url`). Give the DPM
    simulator's ``model`` to serve one simulated machine over both;
    ``limits`` bound what its clients may take; with ``ssl_context``
    (:func:`tls_context`) it speaks HTTPS.
    """
    server = ACLSimServer(model, host, port, ssl_context=ssl_context, limits=limits).start()
    try:
        if ready is not None:
            ready(server)
        await asyncio.Event().wait()
    finally:
        await asyncio.to_thread(server.stop)
