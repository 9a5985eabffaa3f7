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
lock around the model.
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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from acnet_proto import drf
from acnet_proto.api.config import host_port
from acnet_proto.pc import dpm
from acnet_proto.services.acl import decode_query, format_error, format_raw, format_value
from acnet_proto.sim import DeviceModel, RequestRejected
from acnet_proto.sim.schedule import ClockEvents
from acnet_proto.status import Status

__all__ = ["CGI_PATH", "ACLSimServer", "serve"]

log = logging.getLogger(__name__)

#: Where the simulated CGI answers.
CGI_PATH = "/cgi-bin/acl.pl"
#: How many received queries :attr:`ACLSimServer.queries` keeps.
QUERY_LOG = 1000
#: Seconds a kept-alive connection may sit idle before the server closes it.
IDLE_TIMEOUT = 60.0

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


class _Stop(Exception):
    """The script stops here; ``line`` is the error ACL printed."""

    def __init__(self, line: str) -> None:
        super().__init__(line)
        self.line = line


def _syntax(problem: str) -> _Stop:
    return _Stop(f"! {problem} - CLIB_SYNTAX")


class ACLSimServer:
    """The simulated ACL CGI on ``host``:``port`` (0: a free port).

    With ``ssl_context`` (a server context holding its certificate) it
    speaks HTTPS, as the real one does. :meth:`start` (or ``with``) starts
    it; ``host``, ``port`` and ``base_url`` then say where it listens.
    """

    def __init__(
        self,
        model: DeviceModel | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.model = model if model is not None else DeviceModel.default()
        #: Held while the model is read (requests run in threads of their own).
        self.lock = threading.Lock()
        self.clock = ClockEvents(self.model, time.monotonic())
        #: The query string of each request received (the newest :data:`QUERY_LOG`), as sent.
        self.queries: deque[str] = deque(maxlen=QUERY_LOG)
        self._host = host
        self._port = port
        self._ssl = ssl_context
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
        if self._ssl is not None:
            # the handshake happens as each connection is accepted
            server.socket = self._ssl.wrap_socket(server.socket, server_side=True)
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
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> ACLSimServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the interpreter ------------------------------------------------------------------

    def run_script(self, commands: Sequence[str]) -> str:
        """What ACL prints for ``commands`` (decoded), stopping at the first error."""
        lines = []
        for command in commands:
            try:
                lines.append(self._command(command))
            except _Stop as stop:
                lines.append(stop.line)
                break
        return "".join(f"{line}\n" for line in lines)

    def _command(self, command: str) -> str:
        verb, _, argument = command.partition(" ")
        name, *command_qualifiers = verb.lower().split("/")
        if name != "read":
            raise _syntax(f"Unknown command {name!r}")
        unknown = [q for q in command_qualifiers if q != "pendwait"]
        if unknown:
            raise _syntax(f"Invalid qualifier /{unknown[0]} for the read command")
        device, *qualifiers = argument.strip().split("/")
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
            due = self.clock.next_after(event, time.monotonic())
            time.sleep(max(0.0, due - time.monotonic()))
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


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], sim: ACLSimServer, family: int) -> None:
        self.address_family = family
        self.sim = sim
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End kept-alive connections, so that their threads finish (server_close waits)."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "acnet-proto-acl-sim"
    timeout = IDLE_TIMEOUT
    # headers and body go out in two writes: without this, each answer waits for a delayed ACK
    disable_nagle_algorithm = True
    server: _HTTPServer

    def do_GET(self) -> None:
        sim = self.server.sim
        path, _, query = self.path.partition("?")
        sim.queries.append(query)
        if path != CGI_PATH:
            self._answer(404, f"no such page: {path}\n")
            return
        commands = decode_query(query)
        if commands is None:
            self._answer(400, "acl.pl: no acl= parameter in the query\n")
        elif not commands:
            self._answer(200, "! No ACL command given - CLIB_SYNTAX\n")
        else:
            self._answer(200, sim.run_script(commands))

    def _answer(self, code: int, text: str) -> None:
        body = text.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


async def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    model: DeviceModel | None = None,
    *,
    ready: Callable[[ACLSimServer], None] | None = None,
) -> None:
    """Serve the simulated ACL CGI until cancelled (``acnet-proto sim --acl-port PORT``).

    A coroutine, to run beside the DPM simulator's
    :func:`acnet_proto.adapters.sim.dpm.serve` on one loop (the server itself
    runs in its own threads). ``ready`` is called with the server once it
    listens (e.g. to print :attr:`ACLSimServer.base_url`). Give the DPM
    simulator's ``model`` to serve one simulated machine over both.
    """
    server = ACLSimServer(model, host, port).start()
    try:
        if ready is not None:
            ready(server)
        await asyncio.Event().wait()
    finally:
        await asyncio.to_thread(server.stop)
