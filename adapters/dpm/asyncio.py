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
this module only supplies its I/O, on asyncio streams.

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
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from acnet_proto.adapters.dpm._async import AsyncDPMBackend, AsyncDPMSubscription

__all__ = ["AsyncioDPMBackend", "AsyncioSubscription"]


class _Stream:
    """An asyncio reader/writer pair, seen as one stream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def receive_some(self, max_bytes: int) -> bytes:
        return await self.reader.read(max_bytes)

    async def send_all(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()


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
    """asyncio's streams, clock, timeouts and locks for the shared backend."""

    broken: tuple[type[BaseException], ...] = ()
    closed: tuple[type[BaseException], ...] = ()

    async def connect(self, host: str, port: int) -> _Stream:
        return _Stream(*await asyncio.open_connection(host, port))

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
        stream.writer.transport.abort()

    async def aclose(self, stream: _Stream) -> None:
        stream.writer.close()
        with contextlib.suppress(OSError):  # the peer may have reset it first
            await stream.writer.wait_closed()


class AsyncioSubscription(AsyncDPMSubscription):
    """A running stream on its own asyncio connection (see :class:`AsyncDPMSubscription`)."""


class AsyncioDPMBackend(AsyncDPMBackend):
    """A DPM/TCP client for asyncio, to use from one event loop; the parameters and methods
    are :class:`AsyncDPMBackend`'s, deadlines are ``asyncio.timeout_at``."""

    _kit = _AsyncioKit()
    _subscription_type = AsyncioSubscription
