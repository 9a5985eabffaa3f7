"""An HTTP/1.1 server in threads that no unauthenticated client can take from the others.

:class:`BoundedHTTPServer` answers each connection in a thread of its own
(kept alive between requests; TLS if given a server context) and bounds
what one client may take with ``limits``
(:class:`~acnet_proto.limits.ServerLimits`):

- ``max_connections`` connections (so at most that many threads): beyond
  it, the connection idle longest (waiting for a request, nothing unread)
  is closed to make room; if every one is answering a request, the newest
  gets ``503 Service Unavailable`` naming the limit, without a thread, and
  is closed;
- ``handshake_timeout``: the TLS handshake, request line and headers must
  all arrive within it (``408 Request Timeout``, then closed);
  ``idle_timeout``: a kept-alive connection that sends no next request is
  closed. The accepting loop enforces both (:meth:`~BoundedHTTPServer.service_actions`,
  each ``poll_interval`` of ``serve_forever``): at a deadline it shuts the
  connection's reading side, which wakes its thread (to answer ``408``, or
  close an idle one);
- ``max_request_bytes``: the request line (at most :data:`MAX_REQUEST_LINE`
  bytes: ``414``), the headers (at most :data:`MAX_HEAD_BYTES`: ``431``)
  and a body (``413``; a body within it is read past, and chunked bodies
  get ``501``) are refused before they are stored.

A request within the limits goes to :attr:`Service.respond` as a
:class:`Request`, in its connection's thread and with no deadline (the
service bounds its own time); the :class:`Answer` is sent as UTF-8 text,
its headers only for a ``HEAD`` request (``Content-Length`` the body's, as
HTTP asks). This module decides nothing about paths or methods: every
request that passes the limits reaches the service.

Refusals are logged once per burst to :attr:`Service.refusals`; everything
else about a connection goes to :attr:`Service.log` at DEBUG, the peer's
text shown bounded and escaped.
"""

from __future__ import annotations

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
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from acnet_proto._text import decimal, shown
from acnet_proto.adapters._refusals import RefusalLog
from acnet_proto.limits import ServerLimits, unavailable

__all__ = [
    "MAX_HEAD_BYTES",
    "MAX_REQUEST_LINE",
    "Answer",
    "BoundedHTTPServer",
    "Request",
    "Service",
    "hung_up",
]

#: The longest request line accepted (or ``max_request_bytes``, if smaller): twice the
#: URLs our client sends (:data:`~acnet_proto.services.acl.MAX_URL_LENGTH`).
MAX_REQUEST_LINE = 16 * 1024
#: The most header bytes accepted (or what ``max_request_bytes`` leaves, if less).
MAX_HEAD_BYTES = 64 * 1024

# how long accepting waits for a connection closed to make room to let go of its thread
_SHED_WAIT = 0.5
# how long a connection turned away keeps its socket, so that the client reads the 503
_LINGER = 1.0


@dataclass(frozen=True)
class Request:
    """A request within the limits, as the service sees it."""

    method: str
    target: str  # the path and query, as sent
    peer: str  # the client's address (no port)
    sock: socket.socket  # its connection, to watch for the client leaving (:func:`hung_up`)


@dataclass(frozen=True)
class Answer:
    """Status ``code`` with ``text`` (``text/plain; charset=utf-8``); ``close``: then close."""

    code: int
    text: str
    close: bool = False


@dataclass(frozen=True)
class Service:
    """What a :class:`BoundedHTTPServer` serves, and where it logs.

    ``respond`` answers a request, or returns None to close the connection
    without an answer (its client left); ``name`` starts the log lines
    (``"simulated ACL"``); ``software`` is the ``Server`` header.
    """

    respond: Callable[[Request], Answer | None]
    name: str
    software: str
    log: logging.Logger
    refusals: RefusalLog


def hung_up(sock: socket.socket, seconds: float) -> bool:
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


class BoundedHTTPServer(ThreadingHTTPServer):
    """``service`` on ``address`` (of socket ``family``), within ``limits`` (see the module
    docstring); with ``tls``, a server context holding its certificate, over HTTPS.

    Run :meth:`serve_forever` in a thread; to stop, :meth:`shutdown`, then
    :meth:`close_connections`, :meth:`server_close` and :meth:`close_turned_away`.
    """

    daemon_threads = True
    # a burst of connections waits in the kernel, not refused, while the loop accepts them
    request_queue_size = 1024

    def __init__(
        self,
        address: tuple[str, int],
        family: int,
        service: Service,
        limits: ServerLimits,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.address_family = family
        self.service = service
        self.limits = limits
        self.tls = tls
        self._open: dict[socket.socket, _Connection] = {}
        self._changed = threading.Condition()
        self._turned_away: deque[tuple[float, socket.socket]] = deque()
        super().__init__(address, _Handler)

    def open_count(self) -> int:
        """How many connections are open now (each has a thread)."""
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
        self.service.refusals.refused("connection refused", peer, reason)
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
        self.service.refusals.refused("idle connection closed", victim.peer, reason)
        return True

    def _turn_away(self, request: socket.socket, reason: str) -> None:
        """Answer 503 without a thread, and keep the socket a moment so that it is read."""
        if self.tls is not None:  # it would have to shake hands first: just close
            self.shutdown_request(request)
            return
        with contextlib.suppress(OSError):
            request.setblocking(False)
            request.send(unavailable(reason))
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
        """Close the connections turned away that still linger (when the server stops)."""
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
        self.service.refusals.sweep()

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
        name, log = self.service.name, self.service.log
        if isinstance(error, OSError):
            log.debug("%s: connection from %s ended: %r", name, shown(peer), error)
            return
        self.service.refusals.refused("request failed", peer, repr(error))
        log.debug("%s: a request from %s failed", name, shown(peer), exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out in two writes: without this, each answer waits for a delayed ACK
    disable_nagle_algorithm = True
    server: BoundedHTTPServer
    request: socket.socket

    def setup(self) -> None:
        self.service = self.server.service
        self.server_version = self.service.software
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
                name, peer = self.service.name, self._peer()
                self.service.log.debug("%s: TLS handshake with %s failed: %r", name, peer, e)
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
            name, peer = self.service.name, self._peer()
            self.service.log.debug("%s: %s timed out: %r", name, peer, e)
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
        request = Request(self.command, self.path, str(self.client_address[0]), self.request)
        answer = self.service.respond(request)
        if answer is None:
            self.close_connection = True
            return
        self._answer(answer.code, answer.text, close=answer.close)
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
        self.service.refusals.refused("request too slow", self.client_address[0], reason)
        with contextlib.suppress(OSError):
            self._answer(HTTPStatus.REQUEST_TIMEOUT, f"{reason}\n", close=True)

    def _refuse(self, code: HTTPStatus, reason: str) -> None:
        self.service.refusals.refused(
            f"HTTP {code.value} {code.phrase}", self.client_address[0], reason
        )
        self._answer(code, f"{reason}\n", close=True)

    def _answer(self, code: int, text: str, *, close: bool = False) -> None:
        body = text.encode("utf-8")
        self.request.settimeout(self.server.limits.handshake_timeout)
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":  # HEAD: the headers a GET would get, and no body
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # args hold the peer's request line: bounded and escaped
        self.service.log.debug("%s %s", self._peer(), shown(format % args))
