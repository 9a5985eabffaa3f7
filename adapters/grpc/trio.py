"""DPM over gRPC for trio: grpc's blocking stub in worker threads, cancellable.

::

    from acnet_proto.adapters.grpc.trio import TrioGRPCBackend

    async with TrioGRPCBackend("localhost", 50051, auth=JWTAuth(token)) as backend:
        print(await backend.read("M:OUTTMP"))
        async with await backend.subscribe(["M:OUTTMP@p,1000"]) as sub:
            async for reading, handle in sub.readings(timeout=5):
                print(reading.value)
                break

The surface and semantics of :class:`~acnet_proto.adapters.grpc.asyncio.
AsyncioGRPCBackend`. grpc has no trio integration (grpc.aio is bound to
asyncio), so reads and writes run the blocking calls of
:mod:`acnet_proto.adapters.grpc._common` in ``trio.to_thread`` with
``abandon_on_cancel``: a cancelled call returns at once and its gRPC call is
cancelled, which ends the thread. A subscription's stream is read by a thread
of its own (:class:`~acnet_proto.adapters.grpc._common.StreamThread`) that hands
each reading to trio with ``TrioToken.run_sync_soon``, into a bounded
memory channel; waiting for the next reading is then pure trio, so a timeout
or cancellation there loses nothing. Readings beyond ``queue_size`` waiting
are dropped and counted in ``dropped``. That thread also calls again when
the stream breaks because the server went away, pausing as the
subscription's :class:`~acnet_proto.streams.reconnect.Reconnect` policy says
(``stop()`` cuts the pause short), and ``readings()`` yields an open
:class:`~acnet_proto.streams.reconnect.Gap` as the call fails and the closed
one before the first reading of the new call; with
``reconnect=False``, out of attempts, or on a failure that is the
server's answer, ``readings()`` raises
:class:`~acnet_proto.errors.ConnectionLost`. Use a backend from one
``trio.run``.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, TypeVar, TypeVarTuple

import grpc

# Absolute imports make this the trio package, not a module of ours.
import trio

from acnet_proto import drf as _drf
from acnet_proto.adapters.grpc._common import (
    CHANNEL_OPTIONS,
    DEFAULT_PORT,
    AsyncGRPCConfig,
    StreamEnd,
    StreamThread,
    read_blocking,
    write_blocking,
)
from acnet_proto.adapters.grpc.stubs.DAQ_pb2_grpc import DAQStub
from acnet_proto.api.auth import JWTAuth
from acnet_proto.api.backend import AsyncBackend, AsyncSubscription, make_room
from acnet_proto.api.config import DEFAULT_TIMEOUT
from acnet_proto.services.daq import GRPCReadBatch, GRPCStream, SettingBatch
from acnet_proto.streams.reconnect import Gap
from acnet_proto.types import Reading, WriteResult

__all__ = ["TrioGRPCBackend", "TrioGRPCSubscription"]


class _Cancel:
    """Cancels a gRPC call from trio, whether or not its thread has started it yet."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._call: Any = None
        self._cancelled = False

    def started(self, call: Any) -> None:
        """Called by the worker thread with the call it made."""
        with self._lock:
            self._call = call
            cancelled = self._cancelled
        if cancelled:
            call.cancel()

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            call = self._call
        if call is not None:
            call.cancel()


_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")


async def _in_thread(function: Callable[[*_Ts, Callable[[Any], None]], _T], *args: *_Ts) -> _T:
    """``function(*args, started)`` in a worker thread; trio cancellation cancels its call."""
    cancel = _Cancel()
    try:
        run = trio.to_thread.run_sync
        return await run(function, *args, cancel.started, abandon_on_cancel=True)
    except trio.Cancelled:
        cancel.cancel()
        raise


class TrioGRPCSubscription(AsyncSubscription):
    """A running stream: iterate :meth:`readings`, then :meth:`stop` (or use ``async with``)."""

    dropped: int  # an attribute here, counted by _push

    def __init__(
        self,
        stub: DAQStub,
        stream: GRPCStream,
        queue_size: int,
        owners: set[TrioGRPCSubscription],
    ) -> None:
        self.drfs = stream.drfs
        self.dropped = 0
        self.stopped = False
        self._closed = False
        self._owners = owners
        self._exc: StreamEnd | None = None
        self._token = trio.lowlevel.current_trio_token()
        self._send, self._receive = trio.open_memory_channel[Reading | Gap](queue_size)
        self._stream = StreamThread(stub, stream, self._deliver, self._finish)
        self._stream.start()

    async def readings(
        self, timeout: float | None = None
    ) -> AsyncIterator[tuple[Reading | Gap, TrioGRPCSubscription]]:
        wait = math.inf if timeout is None else timeout
        while not self.stopped:
            try:
                reading = await self._next(wait)
            except (trio.EndOfChannel, trio.ClosedResourceError):
                self.stopped = True
                self._owners.discard(self)
                if self._exc is not None:
                    raise self._exc from self._exc.__cause__
                return
            if reading is None:
                return  # nothing came for ``timeout``
            yield reading, self

    async def _next(self, wait: float) -> Reading | Gap | None:
        # what has arrived first: a deadline already past would cancel even a ready receive()
        with contextlib.suppress(trio.WouldBlock):
            return self._receive.receive_nowait()
        # the cancel scope ends here, never around the consumer's code at a yield
        with trio.move_on_after(wait):
            return await self._receive.receive()
        return None

    async def stop(self) -> None:
        if self._closed:
            return
        self._closed = self.stopped = True
        self._owners.discard(self)
        self._stream.cancel()
        await self._receive.aclose()

    # -- on the stream's thread ----------------------------------------------------------

    def _deliver(self, reading: Reading | Gap) -> None:
        self._soon(self._push, reading)

    def _finish(self, error: StreamEnd | None) -> None:
        self._soon(self._end, error)

    def _soon(self, function: Callable[..., None], argument: Any) -> None:
        try:
            self._token.run_sync_soon(function, argument)
        except trio.RunFinishedError:
            self._stream.cancel()  # nobody is left to read it

    # -- back in trio ----------------------------------------------------------------------

    def _push(self, reading: Reading | Gap) -> None:
        try:
            self._send.send_nowait(reading)
        except trio.WouldBlock:
            if isinstance(reading, Gap):  # never lost: the newest reading makes room
                self._requeue_with(reading)
            else:
                self.dropped += 1
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # stopped: nobody reads it any more

    def _requeue_with(self, gap: Gap) -> None:
        held: deque[Reading | Gap] = deque()
        with contextlib.suppress(trio.WouldBlock):
            while True:
                held.append(self._receive.receive_nowait())
        if not make_room(held):
            # nothing but gaps queued (queue_size outages unread): a channel cannot
            # grow, so the oldest gap gives way
            held.popleft()
        self.dropped += 1
        for item in (*held, gap):
            self._send.send_nowait(item)

    def _end(self, error: StreamEnd | None) -> None:
        self._exc = error
        self._send.close()


class TrioGRPCBackend(AsyncGRPCConfig[TrioGRPCSubscription], AsyncBackend):
    """DPM over gRPC for trio. ``aclose()`` or ``async with`` ends it."""

    _subscription_type = TrioGRPCSubscription
    _stub: DAQStub  # made once, in __init__ (the base only reads it)

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        auth: JWTAuth | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(host, port, auth, timeout)
        self._channel = grpc.insecure_channel(self.target, options=CHANNEL_OPTIONS)
        self._stub = DAQStub(self._channel)
        self._subscriptions: set[TrioGRPCSubscription] = set()

    async def aclose(self) -> None:
        """Stop every subscription and close the channel; idempotent."""
        self.closed = True
        for subscription in list(self._subscriptions):
            await subscription.stop()
        self._channel.close()

    async def get_many(
        self, drfs: Sequence[str | _drf.DataRequest], timeout: float | None = None
    ) -> list[Reading]:
        """Read every DRF once; readings in input order, device errors as error readings.

        If ``timeout`` passes or the call fails, :class:`ReadError` carries
        what arrived. Bad DRF text raises :class:`ValueError` before any I/O.
        """
        batch = GRPCReadBatch(drfs)
        return await _in_thread(read_blocking, self._stub, batch, self.seconds(timeout))

    async def write_many(
        self, settings: Sequence[tuple[Any, Any]] | Mapping[Any, Any], timeout: float | None = None
    ) -> list[WriteResult]:
        """Apply settings in one ``Set`` call; results in input order (see ``GRPCBackend``)."""
        batch = SettingBatch(settings)
        seconds = self.seconds(timeout)
        metadata = self.write_metadata()
        return await _in_thread(write_blocking, self._stub, batch, seconds, metadata)
