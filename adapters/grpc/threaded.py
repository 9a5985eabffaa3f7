"""DPM over gRPC (the DAQ service, port 50051) for blocking and threaded programs.

::

    from acnet_proto.adapters.grpc.threaded import GRPCBackend
    from acnet_proto.api.auth import JWTAuth

    with GRPCBackend("localhost", 50051, auth=JWTAuth(token)) as backend:
        backend.read("M:OUTTMP")                              # 41.7
        backend.get_many(["M:OUTTMP", "Z:ACLTS1[0:4]"])       # readings, in input order
        backend.write("Z:ACLTST", 45.0)                       # WriteResult
        with backend.subscribe(["M:OUTTMP@p,1000"]) as stream:
            for reading, handle in stream.readings(timeout=5):
                print(reading.value)

One gRPC channel (HTTP/2, reconnecting on its own) carries every call, and
the backend is safe to share between threads. A read is one ``Read`` call
(DRFs without an event get ``@I``) cancelled once every DRF has its
reading; its timeout is the call's deadline. A setting is one ``Set`` call
carrying ``authorization: Bearer <token>`` from the backend's
:class:`~acnet_proto.api.auth.JWTAuth`; without one, writes raise
:class:`~acnet_proto.errors.AuthenticationError` before any I/O, as does a
server that refuses the token (``UNAUTHENTICATED``/``PERMISSION_DENIED``).
A supervised proxy's policy refusing a read or a setting raises
:class:`~acnet_proto.errors.PolicyDenied`, naming the policy; a stream it
refuses ends with one.
Any other failure of a ``Set`` raises
:class:`~acnet_proto.errors.SettingOutcomeUnknown`: the settings may have
been applied. The token is never logged, shown in a repr or sent with reads.

Each :meth:`GRPCBackend.subscribe` is one ``Read`` stream read by a thread
of its own. Readings go to a bounded queue (10,000 by default; new ones are
dropped and counted in ``dropped`` when it is full) for
:meth:`GRPCSubscription.readings`, or to ``callback(reading, handle)``
called on that thread, in order (a slow callback slows the stream through
HTTP/2 flow control; nothing is dropped). A stream the server ends after
sending everything (``@I`` DRFs only) stops the subscription. One that
breaks because the server went away (``UNAVAILABLE``, or ``CANCELLED`` /
``ABORTED`` by the other side: see
:data:`~acnet_proto.services.daq.TRANSIENT_CODES`) makes the ``Read`` call
again, its thread pausing between attempts as
:class:`~acnet_proto.streams.reconnect.Reconnect` says (exponential backoff with
jitter; ``stop()`` cuts a pause short). The consumer gets an open
:class:`~acnet_proto.streams.reconnect.Gap` as soon as the call fails, and the
closed one before the first reading of the new call. With
``reconnect=False``, once the attempts run out, or on any other
failure (a refusal such as ``INVALID_ARGUMENT`` or ``PERMISSION_DENIED``, a
reply that breaks the protocol) it ends with
:class:`~acnet_proto.errors.ConnectionLost`, passed to ``on_error``, raised
by ``readings()``, and logged if neither is there.

The messages are made and read by :mod:`acnet_proto.services.daq`, shared
with the asyncio (:mod:`acnet_proto.adapters.grpc.asyncio`) and trio
(:mod:`acnet_proto.adapters.grpc.trio`) backends, which have the same
surface. Values are those of DPM over TCP; gRPC replies carry no device
metadata, so ``units`` is None.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import grpc

from acnet_proto import drf as _drf
from acnet_proto.adapters._streams import (
    StreamRegistry,
    ThreadedSubscription,
)
from acnet_proto.adapters.grpc._common import (
    CHANNEL_OPTIONS,
    DEFAULT_PORT,
    GRPCConfig,
    StreamEnd,
    StreamThread,
    read_blocking,
    write_blocking,
)
from acnet_proto.adapters.grpc.stubs.DAQ_pb2_grpc import DAQStub
from acnet_proto.api.auth import JWTAuth
from acnet_proto.api.backend import (
    DEFAULT_QUEUE_SIZE,
    Backend,
    ErrorCallback,
    ReadingCallback,
    ReadingQueue,
    check_callbacks,
)
from acnet_proto.api.config import (
    DEFAULT_TIMEOUT,
    resolve_endpoint,
)
from acnet_proto.services.daq import GRPCReadBatch, GRPCStream, SettingBatch
from acnet_proto.streams.reconnect import Gap, Reconnect, reconnect_policy
from acnet_proto.types import Reading, WriteResult

__all__ = ["DEFAULT_PORT", "GRPCBackend", "GRPCSubscription", "grpc_backend"]

log = logging.getLogger(__name__)


class GRPCSubscription(ThreadedSubscription):
    """One ``Read`` stream on its own thread; see the module docstring."""

    def __init__(
        self,
        backend: GRPCBackend,
        stream: GRPCStream,
        callback: ReadingCallback | None,
        on_error: ErrorCallback | None,
        queue: ReadingQueue,
    ) -> None:
        super().__init__(stream.drfs, callback, on_error, queue)
        self._backend = backend
        self._stream = StreamThread(backend._stub, stream, self._deliver, self._finish)

    def stop(self) -> None:
        """Cancel the stream and wait for its thread; idempotent."""
        with self._cond:
            self._stop_requested = True
            self._queue.clear()
            self._cond.notify_all()
        self._stream.cancel()
        self._stream.join()
        self._backend._forget(self)

    def _deliver(self, reading: Reading | Gap) -> None:
        if self._callback is not None:
            if not self._stop_requested:
                self._call(self._callback, reading)
            return
        self._queue_all((reading,))

    def _finish(self, error: StreamEnd | None) -> None:
        with self._cond:
            self._ended = True
            if not self._stop_requested:
                self._exc = error
            self._cond.notify_all()
        if self._exc is not None:
            self._report(self._exc)


class GRPCBackend(GRPCConfig, StreamRegistry, Backend):
    """DPM over gRPC (the seeds' ``GRPCBackend``), safe to share between threads.

    ``auth``: a :class:`~acnet_proto.api.auth.JWTAuth` for writes (reads need
    none); ``timeout``: the default deadline of a call, in seconds. The
    channel connects on the first call.
    """

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        auth: JWTAuth | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        GRPCConfig.__init__(self, host, port, auth, timeout)
        StreamRegistry.__init__(self)
        self._channel = grpc.insecure_channel(self.target, options=CHANNEL_OPTIONS)
        self._stub = DAQStub(self._channel)

    def get_many(
        self, drfs: Sequence[str | _drf.DataRequest], timeout: float | None = None
    ) -> list[Reading]:
        """Read every DRF once; see :meth:`Backend.get_many`."""
        batch = GRPCReadBatch(drfs)
        return read_blocking(self._stub, batch, self.seconds(timeout))

    def write_many(
        self, settings: Sequence[tuple[Any, Any]] | Mapping[Any, Any], timeout: float | None = None
    ) -> list[WriteResult]:
        """Apply settings in one ``Set`` call; results in input order.

        Bad DRFs or values raise before any I/O, then a missing token
        (:class:`AuthenticationError`).
        """
        batch = SettingBatch(settings)
        seconds = self.seconds(timeout)
        return write_blocking(self._stub, batch, seconds, self.write_metadata())

    def subscribe(
        self,
        drfs: Sequence[str | _drf.DataRequest],
        callback: ReadingCallback | None = None,
        on_error: ErrorCallback | None = None,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        reconnect: bool | Reconnect = True,
    ) -> GRPCSubscription:
        """Stream ``drfs`` (give each an event, e.g. ``@p,1000``); see :meth:`Backend.subscribe`.

        Returns at once: a server that cannot be reached is an outage like
        any other (below): an open :class:`Gap`, then reconnection.
        ``queue_size`` bounds the readings held for a
        slow ``readings()`` consumer. ``reconnect``: if the stream breaks
        because the server went away, call again with the default
        :class:`Reconnect` policy (True), a policy of your own, or not at
        all (False: the stream ends with :class:`ConnectionLost`).
        """
        check_callbacks(callback, on_error)
        queue = ReadingQueue(queue_size)
        stream = GRPCStream(drfs, reconnect_policy(reconnect), self.target)
        self.seconds(None)  # closed?
        subscription = GRPCSubscription(self, stream, callback, on_error, queue)
        self._register(subscription, subscription._stream.cancel)
        subscription._stream.start()
        return subscription

    def close(self) -> None:
        """Stop every stream (joining its thread) and close the channel; idempotent."""
        self._stop_streams()
        self._channel.close()


def grpc_backend(
    host: str | None = None,
    port: int | None = None,
    auth: JWTAuth | None = None,
    timeout: float | None = None,
) -> GRPCBackend:
    """A DPM/gRPC backend: ``acnet_proto.grpc()``, as the seeds' ``pacsys.grpc()``.

    ``host``/``port`` default to ``ACNET_GRPC_HOST``/``ACNET_GRPC_PORT`` (then
    ``PACSYS_GRPC_*``; port 50051); ``auth`` to a ``JWTAuth`` from
    ``ACNET_JWT_TOKEN``/``PACSYS_JWT_TOKEN`` when one is set (writes need it).
    """
    host, port = resolve_endpoint("GRPC", host, port, DEFAULT_PORT, "--grpc-port 50051")
    auth = auth if auth is not None else JWTAuth.from_env()
    seconds = DEFAULT_TIMEOUT if timeout is None else timeout
    return GRPCBackend(host, port, auth=auth, timeout=seconds)
