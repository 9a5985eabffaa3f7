"""An asyncio DPM/TCP client: pooled reads, one connection per subscription.

::

    from acnet_proto.adapters.asyncio import AsyncioDPMBackend

    async with AsyncioDPMBackend("localhost", 6802) as backend:
        print(await backend.read("M:OUTTMP"))                    # 41.7
        for reading in await backend.get_many(["M:OUTTMP", "Z:ACLTS1[0:4]"]):
            print(reading.name, reading.value, reading.units)
        async with await backend.subscribe(["M:OUTTMP@p,1000"]) as sub:
            async for reading, handle in sub.readings(timeout=5):
                print(reading.value)
                break

Reads borrow a ready connection from a pool of at most ``pool_size``
(a read beyond that waits for one, within its timeout); a connection that
failed or was left mid-list is closed, never pooled, and a read that failed
on an idle one before any reply (the server had closed it) is repeated once
on another. Each subscription has a connection of its own, as a DPM list
streams until stopped. The protocol is in :mod:`acnet_proto.client` and
:mod:`acnet_proto.lists`; this module only moves bytes, on asyncio streams.
Use a backend from one event loop. The trio adapter
(:mod:`acnet_proto.adapters.trio`) has the same surface.
"""

from __future__ import annotations

# Absolute imports make this the standard library's asyncio, not this module.
import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from acnet_proto.client import ClientConnection
from acnet_proto.config import (
    DEFAULT_POOL_SIZE,
    DEFAULT_PORT,
    DEFAULT_TIMEOUT,
    check_host,
    check_pool_size,
    check_port,
    check_timeout,
)
from acnet_proto.errors import ConnectionLost, ProtocolError
from acnet_proto.lists import ListPlan, ReadBatch, value_of, values_of
from acnet_proto.types import Reading

__all__ = ["AsyncioDPMBackend", "AsyncioSubscription"]

_READ_SIZE = 262144


def _now() -> float:
    return asyncio.get_running_loop().time()


class _Link:
    """One TCP stream and the client engine on it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.client = ClientConnection()
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> _Link:
        """Connect and wait for the list id; the caller bounds the wait."""
        reader, writer = await asyncio.open_connection(host, port)
        link = cls(reader, writer)
        try:
            await link.send(link.client.start())
            while not link.client.ready:
                await link.pump()
        except BaseException:
            link.abort()
            raise
        return link

    async def pump(self) -> list[tuple[int, Reading]]:
        """Wait for bytes; return the readings they made."""
        data = await self._reader.read(_READ_SIZE)
        made = self.client.receive(data, now=_now())
        if answer := self.client.data_to_send():
            await self.send(answer)
        return made

    async def send(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def run(self, batch: ReadBatch) -> None:
        """Read ``batch`` to the end and leave the connection empty, ready for the next."""
        await self.send(self.client.begin(batch, now=_now()))
        while not batch.done:
            await self.pump()
        await self.send(self.client.end(now=_now()))

    def abort(self) -> None:
        """Drop the connection now, unsent bytes and all (broken or mid-list)."""
        self._writer.transport.abort()

    async def aclose(self) -> None:
        """Close after what was sent has gone (callers have drained)."""
        self._writer.close()
        with contextlib.suppress(OSError):  # the peer may have reset it first
            await self._writer.wait_closed()


class _Pool:
    """At most ``size`` read connections; idle ones wait here for the next read."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host = host
        self.port = port
        self._slots = asyncio.Semaphore(size)
        self._idle: list[_Link] = []
        self._closed = False

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[tuple[_Link, bool]]:
        """A ready connection for one read (an idle one, else a new one), and whether it
        was idle: the server may have closed it meanwhile."""
        async with self._slots:
            reused = bool(self._idle)
            link = self._idle.pop() if reused else await _Link.open(self.host, self.port)
            try:
                yield link, reused
            except BaseException:
                link.abort()  # stopped mid-list: what it would say next is unknown
                raise
            if self._closed or not link.client.usable:
                link.abort()
            else:
                self._idle.append(link)

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for link in idle:
            await link.aclose()


class AsyncioDPMBackend:
    """A DPM/TCP client for asyncio. ``aclose()`` or ``async with`` ends it.

    ``timeout`` is the default total deadline of each call, in seconds;
    ``pool_size`` the most connections reads use at once.
    """

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        pool_size: int = DEFAULT_POOL_SIZE,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.host = check_host(host)
        self.port = check_port(port)
        self.timeout = check_timeout(timeout)
        self._pool = _Pool(self.host, self.port, check_pool_size(pool_size))
        self._subscriptions: set[AsyncioSubscription] = set()
        self.closed = False

    async def __aenter__(self) -> AsyncioDPMBackend:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop every subscription and close every connection; the backend is then done."""
        self.closed = True
        for subscription in list(self._subscriptions):
            await subscription.stop()
        await self._pool.aclose()

    async def get_many(self, drfs: Sequence[str], timeout: float | None = None) -> list[Reading]:
        """Read every DRF once; readings in input order, device errors as error readings.

        ``timeout`` bounds the whole call, waiting for a connection included.
        If it passes or the connection breaks, :class:`ReadError` carries what
        arrived and error readings (``ACNET_REQTMO`` / ``ACNET_DISCONNECTED``)
        for the rest. Bad DRF text raises :class:`ValueError` before any I/O.
        """
        batch = ReadBatch(drfs)
        deadline = self._deadline(timeout)
        try:
            async with asyncio.timeout_at(deadline):
                await self._run(batch)
        except TimeoutError as exc:  # before OSError: it is one
            raise batch.timed_out() from exc
        except (OSError, ProtocolError) as exc:
            raise batch.disconnected(exc) from exc
        return batch.readings()

    async def _run(self, batch: ReadBatch) -> None:
        while True:
            reused = False
            try:
                async with self._pool.lease() as (link, reused):
                    await link.run(batch)
                return
            except (OSError, ProtocolError):
                # the server may have closed an idle pooled connection; if
                # nothing came back yet, the read is safe to repeat
                if not reused or batch.arrived:
                    raise

    async def get(self, drf: str, timeout: float | None = None) -> Reading:
        """Read one DRF; the :class:`Reading`, error or not."""
        return (await self.get_many([drf], timeout))[0]

    async def read(self, drf: str, timeout: float | None = None) -> Any:
        """Read one DRF's value; :class:`DeviceError` if the device answered an error."""
        return value_of(await self.get(drf, timeout))

    async def read_many(self, drfs: Sequence[str], timeout: float | None = None) -> list[Any]:
        """Read every DRF's value; :class:`ReadError` (with every reading) if any failed."""
        return values_of(await self.get_many(drfs, timeout))

    async def subscribe(
        self, drfs: Sequence[str], *, timeout: float | None = None
    ) -> AsyncioSubscription:
        """Start streaming ``drfs`` on a connection of its own.

        ``timeout`` bounds connecting (:class:`TimeoutError`); a refused
        connection raises :class:`OSError`.
        """
        plan = ListPlan(drfs, default_event=None)
        async with asyncio.timeout_at(self._deadline(timeout)):
            link = await _Link.open(self.host, self.port)
            try:
                await link.send(link.client.begin(plan, now=_now()))
            except BaseException:
                link.abort()
                raise
        subscription = AsyncioSubscription(link, plan, self.timeout, self._subscriptions.discard)
        self._subscriptions.add(subscription)
        return subscription

    def _deadline(self, timeout: float | None) -> float:
        if self.closed:
            raise RuntimeError(f"this {type(self).__name__} is closed")
        seconds = self.timeout if timeout is None else check_timeout(timeout)
        return _now() + seconds


class AsyncioSubscription:
    """A running stream: iterate :meth:`readings`, then :meth:`stop` (or use ``async with``)."""

    def __init__(
        self,
        link: _Link,
        plan: ListPlan,
        goodbye_timeout: float,
        forget: Callable[[AsyncioSubscription], None],
    ) -> None:
        self._link = link
        self.drfs = plan.drfs
        self._buffer: deque[Reading] = deque()
        self._goodbye_timeout = goodbye_timeout
        self._forget = forget
        self.stopped = False

    async def __aenter__(self) -> AsyncioSubscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def readings(self, timeout: float | None = None) -> _Readings:
        """``(reading, self)`` pairs until :meth:`stop`, or until no reading comes for ``timeout``.

        ``timeout`` is seconds to wait for each next reading (None waits
        forever, 0 yields only what already arrived). A server that breaks
        the connection or falls silent past its heartbeats stops the
        subscription and raises :class:`ConnectionLost`. Use with ``async
        for``; leaving the loop early needs no clean-up.
        """
        return _Readings(self, timeout)

    async def _next_reading(self, timeout: float | None) -> Reading | None:
        """The next reading; None once stopped, or when none came for ``timeout``."""
        deadline = None if timeout is None else _now() + timeout
        while not self.stopped:
            if self._buffer:
                return self._buffer.popleft()
            if not await self._receive(deadline):
                return None
        return None

    async def _receive(self, deadline: float | None) -> bool:
        """Buffer what arrives by ``deadline``; False when the wait is over or stopped."""
        until, dead = self._link.client.stream_wait(deadline)
        waiting = asyncio.timeout_at(until)
        try:
            async with waiting:
                made = await self._link.pump()
        except (OSError, ProtocolError) as exc:  # asyncio's TimeoutError is an OSError
            if self.stopped:  # stop() from another task closed the connection
                return False
            if not waiting.expired():
                cause = str(exc)
            elif dead:
                cause = "the server sent nothing for several heartbeats"
            else:
                return False  # the caller's wait is over; the stream goes on
            await self.stop()
            raise ConnectionLost(f"stream of {self.drfs} lost: {cause}") from exc
        self._buffer.extend(reading for _, reading in made)
        return not self.stopped

    async def stop(self) -> None:
        """Stop the stream (``StopList``) and close its connection; later calls do nothing."""
        if self.stopped:
            return
        self.stopped = True
        self._forget(self)
        link = self._link
        try:
            async with asyncio.timeout(self._goodbye_timeout):
                await link.send(link.client.end(now=_now()))
        except (OSError, ProtocolError):  # TimeoutError included: it is going away either way
            link.abort()
        except BaseException:
            link.abort()
            raise
        else:
            await link.aclose()


class _Readings:
    """What :meth:`AsyncioSubscription.readings` returns.

    A class rather than an async generator, so that breaking out of an
    ``async for`` leaves nothing to finalize (no ``aclosing`` needed).
    """

    def __init__(self, subscription: AsyncioSubscription, timeout: float | None) -> None:
        self._subscription = subscription
        self._timeout = timeout
        self._over = False

    def __aiter__(self) -> _Readings:
        return self

    async def __anext__(self) -> tuple[Reading, AsyncioSubscription]:
        if not self._over:
            reading = await self._subscription._next_reading(self._timeout)
            if reading is not None:
                return reading, self._subscription
            self._over = True
        raise StopAsyncIteration
