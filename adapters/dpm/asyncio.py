"""An asyncio DPM/TCP client: pooled reads, one connection per subscription.

::

    from acnet_proto.adapters.dpm.asyncio import AsyncioDPMBackend

    async with AsyncioDPMBackend("localhost", 6802) as backend:
        print(await backend.read("M:OUTTMP"))                    # 41.7
        for reading in await backend.get_many(["M:OUTTMP", "Z:ACLTS1[0:4]"]):
            print(reading.name, reading.value, reading.units)
        async with await backend.subscribe(["M:OUTTMP@p,1000"]) as sub:
            async for reading, handle in sub.readings(timeout=5):
                print(reading.value)
                break

        async def on_reading(reading, handle):            # or a plain def
            print(reading.value)

        sub = await backend.subscribe(["M:OUTTMP@p,1000"], on_reading)
        await asyncio.sleep(5)
        await sub.stop()                                  # or leave async with

    async with AsyncioDPMBackend("localhost", auth=KerberosAuth(), role="testing") as backend:
        result = await backend.write("Z:ACLTST", 45.0)
        results = await backend.write_many([("Z:ACLTST", 45.0), ("Z:ACLTS1[0:1]", [1, 2])])

Reads borrow a ready connection from a pool of at most ``pool_size``
(a read beyond that waits for one, within its timeout); a connection that
failed or was left mid-list is closed, never pooled, and a read that failed
on an idle one before any reply (the server had closed it) is repeated once
on another. Each subscription has a connection of its own, as a DPM list
streams until stopped; if it dies, the subscription connects again while it
is being iterated (pausing as its :class:`~acnet_proto.streams.reconnect.Reconnect`
policy says), yielding an open :class:`~acnet_proto.streams.reconnect.Gap` as soon
as it is found dead and a closed one when the list runs again, or with
``reconnect=False`` ends with
:class:`~acnet_proto.errors.ConnectionLost`. The protocol is in :mod:`acnet_proto.engine.client` and
:mod:`acnet_proto.plans.lists`, the backend in :mod:`acnet_proto.adapters.dpm._async`;
this module only supplies its I/O, on an asyncio protocol of its own.

``async with`` opens an :class:`asyncio.TaskGroup` for the backend: a
subscription with a ``callback`` (plain or ``async def``) is delivered by a
task of it, which calls ``callback(reading, handle)`` for each reading, and
each :class:`~acnet_proto.streams.reconnect.Gap`, in order, until ``stop()``; a
callback's exception is logged and delivery goes on, and the
:class:`~acnet_proto.errors.ConnectionLost` of a dead stream goes to
``on_error(exc, handle)`` (logged without it). That task is the only one
this module starts; leaving ``async with`` stops every subscription,
cancels a callback still under way and waits for those tasks. A callback
subscription needs that ``async with``: without it, :class:`RuntimeError`.

Settings (``write``, ``write_many``) need ``auth=KerberosAuth()`` and
``role=``; they go one batch at a time over one connection of their own,
authenticated once and then reused; the semantics are the threaded
backend's (:meth:`acnet_proto.adapters.dpm.threaded.DPMBackend.write_many`),
down to :class:`~acnet_proto.errors.SettingOutcomeUnknown`. A
cancellation from outside (not the call's own ``timeout``) is re-raised as
it is, even after the settings left. Kerberos steps run inline: the first
setting may wait on the KDC for a service ticket.

Use a backend from one event loop. The trio adapter
(:mod:`acnet_proto.adapters.dpm.trio`) has the same surface.
"""

from __future__ import annotations

# Absolute imports make this the standard library's asyncio, not this module.
import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, cast

from acnet_proto.adapters.dpm._async import AsyncDPMBackend, AsyncDPMSubscription

__all__ = ["AsyncioDPMBackend", "AsyncioSubscription"]


#: Received bytes held for the reader beyond which the socket is not read (a
#: StreamReader's default), and below which it is read again.
_PAUSE_ABOVE = 2 * 65536
_RESUME_BELOW = 65536


class _Stream(asyncio.Protocol):
    """A TCP connection as one stream: an asyncio protocol that is its own reader and writer.

    In place of a StreamReader/StreamWriter pair, which copy every chunk into
    a buffer and out again and await ``drain()`` after every write: a chunk
    goes to the reader as it came (joined only to those waiting behind it),
    and a send waits only while the transport asked to pause. It raises what
    the pair would: the connection's error, or ConnectionResetError for a
    send once it was lost; and reads ``b""`` after the peer's end.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport
        self._chunks: deque[bytes] = deque()
        self._held = 0  # bytes in _chunks
        self._reading_paused = False
        self._writing_paused = False
        self._eof = False  # the peer's end came, or the connection is gone
        self._lost = False
        self._error: BaseException | None = None  # what the connection was lost to
        self._received: asyncio.Future[None] | None = None  # a receive waiting for bytes
        self._drained: asyncio.Future[None] | None = None  # a send waiting for room
        self.closed: asyncio.Future[None] = loop.create_future()  # done once it is lost

    # -- the protocol's side ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._held += len(data)
        if self._held > _PAUSE_ABOVE and not self._reading_paused:
            self._reading_paused = True
            self.transport.pause_reading()
        if self._received is not None and not self._received.done():
            self._received.set_result(None)

    def eof_received(self) -> bool:
        self._eof = True
        if self._received is not None and not self._received.done():
            self._received.set_result(None)
        return True  # half-closed: a send still goes, as with a StreamReader

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = self._eof = True
        self._error = exc
        for waiter in (self._received, self._drained):
            if waiter is not None and not waiter.done():
                if exc is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(exc)
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    # -- the stream's side -----------------------------------------------------------

    async def receive_some(self, max_bytes: int) -> bytes:
        if self._error is not None:
            raise self._error
        if not self._chunks:
            if self._eof:
                return b""
            self._received = self._loop.create_future()
            try:
                await self._received
            finally:
                self._received = None
            if not self._chunks:
                return b""
        data = self._chunks.popleft()
        if self._chunks and len(data) < max_bytes:
            # more waits: as much as fits, as a StreamReader would (a full read says "behind")
            parts, size = [data], len(data)
            while self._chunks and size < max_bytes:
                parts.append(part := self._chunks.popleft())
                size += len(part)
            data = b"".join(parts)
        if len(data) > max_bytes:
            self._chunks.appendleft(data[max_bytes:])
            data = data[:max_bytes]
        self._held -= len(data)
        if self._reading_paused and self._held <= _RESUME_BELOW:
            self._reading_paused = False
            self.transport.resume_reading()
        return data

    async def send_all(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        self.transport.write(data)
        if self.transport.is_closing():
            await asyncio.sleep(0)  # let the connection be lost first, as drain() does
        if self._lost:
            raise ConnectionResetError("Connection lost")
        if self._writing_paused:
            self._drained = self._loop.create_future()
            try:
                await self._drained
            finally:
                self._drained = None


class _Tasks:
    """An :class:`asyncio.TaskGroup` under the name trio gives a nursery's method."""

    def __init__(self, group: asyncio.TaskGroup) -> None:
        self._group = group
        self._running: set[asyncio.Task[object]] = set()

    def start_soon(self, async_fn: Callable[..., Coroutine[Any, Any, object]], *args: Any) -> None:
        task = self._group.create_task(async_fn(*args))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    def cancel(self) -> None:
        for task in list(self._running):
            task.cancel()


@contextlib.asynccontextmanager
async def _task_group() -> AsyncIterator[_Tasks]:
    async with asyncio.TaskGroup() as group:
        yield _Tasks(group)


class _AsyncioKit:
    """asyncio's transports, clock, timeouts and locks for the shared backend."""

    broken: tuple[type[BaseException], ...] = ()
    closed: tuple[type[BaseException], ...] = ()

    async def connect(self, host: str, port: int) -> _Stream:
        loop = asyncio.get_running_loop()
        _, stream = await loop.create_connection(lambda: _Stream(loop), host, port)
        return stream

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def fail_at(self, when: float | None) -> asyncio.Timeout:
        return asyncio.timeout_at(when)  # raises the builtin TimeoutError

    def expire(self, scope: asyncio.Timeout) -> None:
        with contextlib.suppress(RuntimeError):  # already expiring, or left
            scope.reschedule(asyncio.get_running_loop().time())

    def lock(self) -> asyncio.Lock:
        return asyncio.Lock()

    def semaphore(self, size: int) -> asyncio.Semaphore:
        return asyncio.Semaphore(size)

    def event(self) -> asyncio.Event:
        return asyncio.Event()

    def task_group(self) -> contextlib.AbstractAsyncContextManager[_Tasks]:
        return _task_group()

    def cancel_tasks(self, group: _Tasks) -> None:
        group.cancel()

    async def abort(self, stream: _Stream) -> None:
        stream.transport.abort()

    async def aclose(self, stream: _Stream) -> None:
        stream.transport.close()
        await stream.closed  # the peer may have reset it first: that is closed too


class AsyncioSubscription(AsyncDPMSubscription):
    """A running stream on its own asyncio connection (see :class:`AsyncDPMSubscription`)."""


class AsyncioDPMBackend(AsyncDPMBackend):
    """A DPM/TCP client for asyncio, to use from one event loop; the parameters and methods
    are :class:`AsyncDPMBackend`'s, deadlines are ``asyncio.timeout_at``."""

    _kit = _AsyncioKit()
    _subscription_type = AsyncioSubscription
