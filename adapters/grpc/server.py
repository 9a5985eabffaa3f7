"""What our gRPC servers share: listening on ``host``:``port``, the limits every client is held
to (:class:`~acnet_proto.limits.ServerLimits`), starting, stopping, serving.

The simulated DAQ (:mod:`acnet_proto.adapters.sim.daq`) and DevDB
(:mod:`acnet_proto.adapters.sim.devdb`) services and the supervised server
(:mod:`acnet_proto.adapters.proxy.supervised`) are each a :class:`GRPCServer` that
adds its own services to a thread-pooled ``grpc.server``. Given ``credentials``
(:func:`tls_credentials` makes them from PEM files) one serves TLS only.

How each limit is enforced, and what a client sees:

- ``handshake_timeout``: a connection that has not sent the HTTP/2 preface
  within it is closed (grpc's ``grpc.server_handshake_timeout_ms``).
- ``idle_timeout``: a connection with no call in flight for that long gets
  a ``GOAWAY`` and is closed (``grpc.max_connection_idle_ms``); an open
  stream keeps its connection.
- ``max_connections``: grpc's connection quota
  (``grpc.max_allowed_incoming_connections``) closes each new connection
  at once while that many are open, half-open ones included; they are freed
  by the two timeouts above. grpc cannot shed an older idle connection for
  a new one: a call refused so fails ``UNAVAILABLE`` ("Socket closed"),
  unless it waits for its channel (``wait_for_ready``), which reconnects
  until the call's deadline.
- ``max_request_bytes``: a larger message is refused ``RESOURCE_EXHAUSTED``
  by grpc before it is parsed (``grpc.max_receive_message_length``).
- ``max_streams_per_peer`` / ``max_streams``: streaming calls open per
  client address (any port) and per server, counted by :class:`StreamSlots`
  (:func:`~acnet_proto.limits.peer_address` says which address a peer is);
  the newest beyond either ends ``RESOURCE_EXHAUSTED`` at once, its details
  naming the limit. There is no cap per HTTP/2 connection
  (``grpc.max_concurrent_streams``): in grpcio 1.85 a connection at that cap
  stalls the new calls of every other connection until its own end.
- The thread pool has a thread for each of ``max_streams`` streams plus
  :data:`UNARY_WORKERS` more, so streams never hold the threads unary calls
  (a ``Set``, a one-shot ``Read``, a DevDB call) need; a call beyond the
  pool is refused ``RESOURCE_EXHAUSTED`` at once (grpc's
  ``maximum_concurrent_rpcs``; details "Concurrent RPC limit exceeded!"),
  never left waiting for its deadline.
- ``max_list_entries`` and :data:`~acnet_proto.drf.MAX_DRF_LENGTH`: a
  request with more entries, or an entry longer, is refused
  ``INVALID_ARGUMENT`` before anything of it is kept
  (:func:`~acnet_proto.limits.request_problem`).

Refusals are logged once per burst of each kind
(:class:`~acnet_proto.adapters._refusals.RefusalLog`), with the peer's text
bounded and escaped (:func:`~acnet_proto._text.shown`).
"""

from __future__ import annotations

import abc

# Absolute imports make this the standard library's asyncio, not a module of ours.
import asyncio
import contextlib
import dataclasses
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NoReturn, Self, TypeVar

import grpc

from acnet_proto.adapters._refusals import RefusalLog, StreamSlots
from acnet_proto.adapters._tls import tls_context
from acnet_proto.api.config import host_port
from acnet_proto.limits import DEFAULT_LIMITS, ServerLimits, peer_address, request_problem

__all__ = [
    "UNARY_WORKERS",
    "GRPCServer",
    "StreamSlots",
    "abort",
    "peer_address",
    "request_problem",
    "serve_until_cancelled",
    "tls_credentials",
    "with_max_streams",
]
# StreamSlots, peer_address and request_problem are re-exported: this module's callers and
# tests knew them here first.

log = logging.getLogger(__name__)

#: Threads kept for unary calls beside the ``max_streams`` that streams may hold: what a
#: ``Set`` or a one-shot ``Read`` finds free however many streams run.
UNARY_WORKERS = 16


def abort(context: grpc.ServicerContext, code: grpc.StatusCode, details: str) -> NoReturn:
    """End the call with ``code`` and ``details`` (grpc's ``abort``, typed as never returning)."""
    context.abort(code, details)
    raise AssertionError("grpc's abort() returned")  # it raises; this tells type checkers so


def tls_credentials(cert: str | Path, key: str | Path | None = None) -> grpc.ServerCredentials:
    """Server credentials for a :class:`GRPCServer` from PEM files: the certificate (or
    chain) ``cert`` and its private key ``key`` (None: ``cert`` holds the key too).

    The files are checked by :func:`~acnet_proto.adapters._tls.tls_context`, as
    the ACL simulator's are, so a file that cannot serve is a
    :class:`~acnet_proto.errors.ConfigurationError` naming it here, not a
    failed handshake later.
    """
    # grpc would take any bytes now and fail every handshake later: check them as ssl does
    tls_context(cert, key)
    chain = Path(cert).read_bytes()
    private = chain if key is None else Path(key).read_bytes()  # grpc skips the other blocks
    return grpc.ssl_server_credentials([(private, chain)])


def with_max_streams(limits: ServerLimits, max_streams: int | None) -> ServerLimits:
    """``limits`` with ``max_streams`` in place of its own (None: ``limits`` as they are): what
    a server's older ``max_streams=`` argument means."""
    if max_streams is None:
        return limits
    return dataclasses.replace(limits, max_streams=max_streams)


#: How a gRPC server words its refusals in the log.
_FIRST = "{what} refused {kind}{source}: {why} (once per burst: more may follow)"
_TOTAL = "{what} refused {count} {kind} in the burst that just ended"


class GRPCServer(abc.ABC):
    """A gRPC server on ``host``:``port`` (0: a free port); :meth:`start` (or ``with``) starts it.

    It holds its clients to ``limits`` as the module says. A subclass
    says what it is in :attr:`_what` (for errors), names its threads with
    :attr:`_thread_prefix`, sets :attr:`_streams` False if it serves no
    streaming calls, and adds its services in :meth:`_add_services`. With ``credentials``
    it serves TLS only (:func:`tls_credentials`).
    """

    #: How errors name the server, e.g. ``"the simulated DAQ"``.
    _what: str
    _thread_prefix: str
    #: Whether it serves streaming calls (each holds a thread while it runs).
    _streams: bool = True

    def __init__(
        self,
        host: str,
        port: int,
        limits: ServerLimits = DEFAULT_LIMITS,
        *,
        credentials: grpc.ServerCredentials | None = None,
    ) -> None:
        if not isinstance(limits, ServerLimits):
            raise TypeError(f"limits must be a ServerLimits, not {type(limits).__name__}")
        self._credentials = credentials
        self._host = host
        self._port = port
        self.limits = limits
        #: The streams open now, per client address.
        self.streams = StreamSlots(limits.max_streams_per_peer, limits.max_streams)
        self._refusals = RefusalLog(
            self._what, log, limits.quiet_period, first=_FIRST, total=_TOTAL
        )
        self._server: grpc.Server | None = None
        self._pool: ThreadPoolExecutor | None = None

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        """The port it listens on (the real one once started, even if 0 was asked)."""
        return self._port

    @property
    def tls(self) -> bool:
        """Whether it serves TLS (it was given ``credentials``)."""
        return self._credentials is not None

    @property
    def workers(self) -> int:
        """Its threads, the calls it serves at once: ``max_streams`` + :data:`UNARY_WORKERS`."""
        return (self.limits.max_streams if self._streams else 0) + UNARY_WORKERS

    def __repr__(self) -> str:
        state = "listening" if self._server is not None else "stopped"
        return f"{type(self).__name__}({self._host!r}, {self._port}, {state})"

    def _options(self) -> list[tuple[str, int]]:
        limits = self.limits
        return [
            ("grpc.server_handshake_timeout_ms", _ms(limits.handshake_timeout)),
            ("grpc.max_connection_idle_ms", _ms(limits.idle_timeout)),
            ("grpc.max_allowed_incoming_connections", limits.max_connections),
            ("grpc.max_receive_message_length", limits.max_request_bytes),
        ]

    @abc.abstractmethod
    def _add_services(self, server: grpc.Server) -> None:
        """Add the servicers to ``server``, which then starts listening."""

    def start(self) -> None:
        """Start listening; returns once calls are accepted. OSError if the port is taken."""
        if self._server is not None:
            raise RuntimeError(f"this {type(self).__name__} is already started")
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix=self._thread_prefix)
        server = grpc.server(pool, options=self._options(), maximum_concurrent_rpcs=self.workers)
        self._add_services(server)
        where = f"{self._host}:{self._port}"
        address = host_port(self._host, self._port)
        try:
            if self._credentials is None:
                port = server.add_insecure_port(address)
            else:
                port = server.add_secure_port(address, self._credentials)
        except RuntimeError as e:
            raise OSError(f"{self._what} cannot listen on {where}: {e}") from None
        if port == 0:
            raise OSError(f"{self._what} cannot listen on {where}")
        server.start()
        self._server, self._port, self._pool = server, port, pool

    def stop(self) -> None:
        """Stop listening and end every call (open streams end ``CANCELLED``); idempotent.

        Its threads end as their calls do: none is left to hold the process at exit.
        """
        server, self._server = self._server, None
        pool, self._pool = self._pool, None
        if server is not None:
            server.stop(None).wait()
            self._refusals.flush()
        if pool is not None:
            pool.shutdown(wait=False)  # grpc leaves its idle threads waiting for work

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- refusals ---------------------------------------------------------------------------

    def refuse(
        self, context: grpc.ServicerContext, code: grpc.StatusCode, kind: str, why: str
    ) -> NoReturn:
        """End the call ``code`` with ``why`` as details, logged once per burst of ``kind``."""
        self.note_refusal(context, kind, why)
        abort(context, code, why)

    def note_refusal(self, context: grpc.ServicerContext, kind: str, why: str) -> None:
        """Log a refusal of ``kind`` (``"Read INVALID_ARGUMENT"``), once per burst."""
        self._refusals.refused(kind, context.peer() or "unknown", why)

    def check_request(
        self,
        names: Sequence[str | int],
        what: str,
        context: grpc.ServicerContext,
        refuse: Callable[[grpc.StatusCode, str], NoReturn] | None = None,
    ) -> None:
        """Refuse the call ``INVALID_ARGUMENT`` if :func:`request_problem` finds one in
        ``names``, before anything of them is kept (by ``refuse(code, why)`` if given, say
        to audit it too)."""
        why = request_problem(names, what, self.limits)
        if why is None:
            return
        if refuse is not None:
            refuse(grpc.StatusCode.INVALID_ARGUMENT, why)
        self.refuse(context, grpc.StatusCode.INVALID_ARGUMENT, f"{what} too large", why)

    @contextlib.contextmanager
    def stream_slot(
        self,
        context: grpc.ServicerContext,
        refuse: Callable[[grpc.StatusCode, str], NoReturn] | None = None,
    ) -> Iterator[None]:
        """Hold one of :attr:`streams`' slots while a streaming call runs; if the client's
        address or the server has no slot left, end the call ``RESOURCE_EXHAUSTED`` (by
        ``refuse(code, why)`` if given, say to audit it too)."""
        peer = context.peer() or "unknown"
        why = self.streams.take(peer)
        if why is not None:
            if refuse is not None:
                refuse(grpc.StatusCode.RESOURCE_EXHAUSTED, why)
            self.refuse(context, grpc.StatusCode.RESOURCE_EXHAUSTED, "a stream", why)
        try:
            yield
        finally:
            self.streams.give_back(peer)


def _ms(seconds: float) -> int:
    # grpc's channel arguments are C ints
    return min(max(1, math.ceil(seconds * 1000)), 2**31 - 1)


_Server = TypeVar("_Server", bound=GRPCServer)


async def serve_until_cancelled(
    server: _Server, ready: Callable[[_Server], None] | None = None
) -> None:
    """Start ``server``, call ``ready(server)``, and serve until cancelled; then stop it.

    The server runs in its own threads; this only keeps a loop's task alive
    beside the other simulators, and stops the server off the loop.
    """
    server.start()
    try:
        if ready is not None:
            ready(server)
        await asyncio.Event().wait()
    finally:
        await asyncio.to_thread(server.stop)
