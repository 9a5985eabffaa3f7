"""DPM over gRPC for asyncio, on grpc.aio.

::

    from acnet_proto.adapters.grpc.asyncio import AsyncioGRPCBackend

    async with AsyncioGRPCBackend("localhost", 50051, auth=JWTAuth(token)) as backend:
        print(await backend.read("M:OUTTMP"))
        await backend.write("Z:ACLTST", 45.0)
        async with await backend.subscribe(["M:OUTTMP@p,1000"]) as sub:
            async for reading, handle in sub.readings(timeout=5):
                print(reading.value)
                break

The surface of :class:`~acnet_proto.adapters.grpc.threaded.GRPCBackend`, awaited,
and the same semantics (see that module): a read is one ``Read`` call
cancelled once complete, a write one ``Set`` call with the bearer token, a
subscription one ``Read`` stream. The channel is made on first use, on the
loop that uses it: use a backend from one event loop.

A subscription's stream is read by a task of its own into a bounded queue,
so ``readings(timeout)`` waits on the queue, never on the call: cancelling a
pending grpc.aio ``read()`` would cancel the whole call. When the stream
breaks because the server went away, ``readings()`` yields an open
:class:`~acnet_proto.streams.reconnect.Gap` at once; that task sleeps as the
subscription's :class:`~acnet_proto.streams.reconnect.Reconnect` policy says
(``stop()`` cancels the sleep) and calls again, and ``readings()`` yields the
closed gap before the first reading of the new call; with
``reconnect=False``, out of attempts, or on a failure that is the
server's answer, ``readings()`` raises
:class:`~acnet_proto.errors.ConnectionLost` (see
:class:`~acnet_proto.services.daq.GRPCStream` for which is which), or
:class:`~acnet_proto.errors.PolicyDenied` if a supervised proxy's policy
refused it.
"""

from __future__ import annotations

# Absolute imports make this the standard library's asyncio, not a module of ours.
import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import grpc
from grpc import aio

from acnet_proto import drf as _drf
from acnet_proto.adapters._streams import warn_dropping
from acnet_proto.adapters.grpc._common import (
    CHANNEL_OPTIONS,
    DEFAULT_PORT,
    ENDED_EARLY,
    AsyncGRPCConfig,
    StreamEnd,
    code_name,
    describe,
    policy_denied,
    read_failed,
    retry_within,
    stream_failure,
    write_failed,
)
from acnet_proto.adapters.grpc.stubs.DAQ_pb2_grpc import DAQStub
from acnet_proto.api.auth import JWTAuth
from acnet_proto.api.backend import (
    AsyncBackend,
    AsyncSubscription,
    ReadingQueue,
)
from acnet_proto.api.config import DEFAULT_TIMEOUT
from acnet_proto.errors import ConnectionLost, PolicyDenied, ProtocolError
from acnet_proto.protos.controls.service.DAQ.v1 import DAQ_pb2
from acnet_proto.services.daq import GRPCReadBatch, GRPCStream, SettingBatch
from acnet_proto.streams.driver import GiveUp
from acnet_proto.streams.reconnect import Gap, summary
from acnet_proto.types import Reading, WriteResult

__all__ = ["AsyncioGRPCBackend", "AsyncioGRPCSubscription"]

log = logging.getLogger(__name__)


def _cancelled_by_caller() -> bool:
    """True if the running task is being cancelled (rather than a call it awaited)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class AsyncioGRPCSubscription(AsyncSubscription):
    """A running stream: iterate :meth:`readings`, then :meth:`stop` (or use ``async with``).

    A task of its own reads the stream into a bounded queue (``queue_size``
    readings; beyond that new ones are dropped and counted in
    :attr:`dropped`), as the blocking and trio subscriptions' threads do.
    """

    def __init__(
        self,
        stub: DAQStub,
        stream: GRPCStream,
        queue_size: int,
        owners: set[AsyncioGRPCSubscription],
    ) -> None:
        self.drfs = stream.drfs
        self.stopped = False
        self._stub = stub
        self._stream = stream
        self._call: aio.UnaryStreamCall[DAQ_pb2.ReadingList, DAQ_pb2.ReadingReply] | None = None
        self._owners = owners
        self._queue = ReadingQueue(queue_size)
        self._arrived = asyncio.Event()
        self._ended = False
        self._exc: StreamEnd | None = None
        self._reader = asyncio.create_task(self._read(), name=f"acnet-grpc-stream {self.drfs[0]}")

    @property
    def dropped(self) -> int:
        """Readings discarded because the consumer fell a whole queue behind."""
        return self._queue.dropped

    async def readings(
        self, timeout: float | None = None
    ) -> AsyncIterator[tuple[Reading | Gap, AsyncioGRPCSubscription]]:
        while not self.stopped:
            if len(self._queue):
                yield self._queue.pop(), self
                continue
            if self._ended:
                await self.stop()
                if self._exc is not None:
                    raise self._exc
                return
            self._arrived.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self._arrived.wait()
            except TimeoutError:
                return

    async def _read(self) -> None:
        try:
            await self._calls()
        except (ConnectionLost, PolicyDenied) as e:
            self._exc = e
        except Exception as e:  # a call that could not start, or a bug: the stream is over
            self._exc = stream_failure(self._stream, e)
        finally:
            self._ended = True
            self._arrived.set()

    async def _calls(self) -> None:
        """Make one call after another until the server ends one, stop() (which cancels this
        task), or the stream is lost (raised)."""
        stream = self._stream
        while True:
            self._call = call = self._stub.Read(stream.request())
            try:
                async for reply in call:
                    self._push(stream.feed(reply, datetime.now(UTC)))
                return
            except asyncio.CancelledError as e:
                if _cancelled_by_caller():
                    raise  # stop()
                failure: BaseException = e
                code: str | None = "CANCELLED"
                cause = "CANCELLED: the call was cancelled"
            except (grpc.RpcError, ProtocolError) as e:
                denied = policy_denied(e, stream.drfs, "stream")
                if denied is not None:  # the proxy would refuse every new call too
                    raise denied from e
                failure, code, cause = e, code_name(e), describe(e)
            finally:
                call.cancel()
            loop = asyncio.get_running_loop()
            step = stream.broke(code, cause, datetime.now(UTC), loop.time(), failure)
            if isinstance(step, GiveUp):
                raise step.error
            if step.gap is not None:  # the outage, told as it begins
                self._push([step.gap])
            pause = max(0.0, step.until - loop.time())
            log.info(
                "the stream of %s broke (%s); again in %.3f s", summary(self.drfs), cause, pause
            )
            await asyncio.sleep(pause)  # stop() cancels it

    def _push(self, items: Sequence[Reading | Gap]) -> None:
        for item in items:
            if not self._queue.push(item) and self._queue.dropped == 1:
                warn_dropping(self.drfs, self._queue)
        self._arrived.set()

    async def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        self._owners.discard(self)
        if self._call is not None:
            self._call.cancel()
        self._reader.cancel()
        await asyncio.wait({self._reader})  # its outcome is of no interest now


class AsyncioGRPCBackend(AsyncGRPCConfig[AsyncioGRPCSubscription], AsyncBackend):
    """DPM over gRPC for asyncio. ``aclose()`` or ``async with`` ends it."""

    _subscription_type = AsyncioGRPCSubscription

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        auth: JWTAuth | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(host, port, auth, timeout)
        self._channel: aio.Channel | None = None
        self._stub_: DAQStub | None = None
        self._subscriptions: set[AsyncioGRPCSubscription] = set()

    @property
    def _stub(self) -> DAQStub:
        if self._stub_ is None:
            self._channel = aio.insecure_channel(self.target, options=CHANNEL_OPTIONS)
            self._stub_ = DAQStub(self._channel)
        return self._stub_

    async def aclose(self) -> None:
        """Stop every subscription and close the channel; idempotent."""
        self.closed = True
        for subscription in list(self._subscriptions):
            await subscription.stop()
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()

    async def get_many(
        self, drfs: Sequence[str | _drf.DataRequest], timeout: float | None = None
    ) -> list[Reading]:
        """Read every DRF once; readings in input order, device errors as error readings.

        If ``timeout`` passes or the call fails, :class:`ReadError` carries
        what arrived. Bad DRF text raises :class:`ValueError` before any I/O.
        """
        batch = GRPCReadBatch(drfs)
        seconds = self.seconds(timeout)
        deadline = time.monotonic() + seconds
        try:
            try:
                await self._read_into(batch, seconds, wait=False)
            except grpc.RpcError as e:
                if (left := retry_within(batch, e, deadline)) is None:
                    raise
                await self._read_into(batch, left, wait=True)
        except asyncio.CancelledError as e:
            if _cancelled_by_caller():
                raise
            raise batch.disconnected("the server cancelled the call") from e
        except grpc.RpcError as e:
            raise read_failed(batch, e, seconds) from e
        except ProtocolError as e:
            raise batch.disconnected(e) from e
        if not batch.done:
            raise batch.disconnected(ENDED_EARLY)
        return batch.readings()

    async def _read_into(self, batch: GRPCReadBatch, seconds: float, *, wait: bool) -> None:
        call = self._stub.Read(batch.request(), timeout=seconds, wait_for_ready=wait)
        try:
            async for reply in call:
                batch.feed(reply)
                if batch.done:
                    break
        finally:
            call.cancel()

    async def write_many(
        self, settings: Sequence[tuple[Any, Any]] | Mapping[Any, Any], timeout: float | None = None
    ) -> list[WriteResult]:
        """Apply settings in one ``Set`` call; results in input order (see ``GRPCBackend``)."""
        batch = SettingBatch(settings)
        seconds = self.seconds(timeout)
        metadata = self.write_metadata()
        try:
            reply = await self._stub.Set(batch.request(), timeout=seconds, metadata=metadata)
        except asyncio.CancelledError as e:
            if _cancelled_by_caller():
                raise
            raise write_failed(batch, e) from e
        except grpc.RpcError as e:
            raise write_failed(batch, e) from e
        return batch.results(reply)
