"""The DPM/TCP async backend both event-loop adapters share, written against an :class:`IOKit`.

Pooled reads, the settings connection, subscriptions and their reconnection
are the same under asyncio and trio; only the I/O differs. Each adapter
(:mod:`acnet_proto.adapters.asyncio`, :mod:`acnet_proto.adapters.trio`)
supplies a kit of its library's own primitives and subclasses
:class:`DPMBackend` and :class:`DPMSubscription` under its public names, so
neither library is ever imported by the other's adapter.

The kit's contract: a deadline scope raises the builtin :class:`TimeoutError`
when its time passes (never a library's own timeout type), and anything else
(a cancellation from outside above all) passes through it unchanged.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

from acnet_proto import drf as _drf
from acnet_proto.auth import Auth
from acnet_proto.backend import AsyncBackend, AsyncSubscription, setting_pairs
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
from acnet_proto.lists import ListPlan, ReadBatch
from acnet_proto.reconnect import SILENT, Gap, Reconnect, Recovery, reconnect_policy
from acnet_proto.settings import WritePlan, dpm_write_batch, outcome_unknown
from acnet_proto.types import Reading, WriteResult

__all__ = ["DPMBackend", "DPMSubscription", "IOKit", "Stream"]

_READ_SIZE = 262144


class Stream(Protocol):
    """A connected byte stream as the kit hands it out."""

    async def receive_some(self, max_bytes: int) -> bytes:
        """Wait for bytes; ``b""`` once the peer closed."""
        ...

    async def send_all(self, data: bytes) -> None:
        """Send every byte of ``data`` (waiting for room as need be)."""
        ...


class IOKit(Protocol):
    """One event-loop library's I/O, as the shared backend uses it."""

    #: What a stream broken under us raises, besides OSError and ProtocolError.
    broken: tuple[type[BaseException], ...]
    #: What a stream closed by this side (stop() from another task) raises.
    closed: tuple[type[BaseException], ...]

    async def connect(self, host: str, port: int) -> Stream:
        """A TCP connection to ``host:port``."""
        ...

    def now(self) -> float:
        """The event loop's clock, in seconds."""
        ...

    async def sleep_until(self, when: float) -> None:
        """Sleep until ``now()`` reaches ``when`` (at once if it has)."""
        ...

    def fail_at(self, when: float | None) -> AbstractAsyncContextManager[None]:
        """A scope that raises :class:`TimeoutError` at ``when`` (None: never)."""
        ...

    def lock(self) -> AbstractAsyncContextManager[Any]:
        """A new lock."""
        ...

    def semaphore(self, size: int) -> AbstractAsyncContextManager[Any]:
        """A new semaphore of ``size`` slots."""
        ...

    async def abort(self, stream: Stream) -> None:
        """Drop ``stream`` now, unsent bytes and all, even inside a cancelled scope."""
        ...

    async def aclose(self, stream: Stream) -> None:
        """Close ``stream`` after what was sent has gone."""
        ...


class _Link:
    """One TCP stream and the client engine on it."""

    def __init__(self, kit: IOKit, stream: Stream) -> None:
        self.client = ClientConnection()
        self._kit = kit
        self._stream = stream

    @classmethod
    async def open(cls, kit: IOKit, host: str, port: int) -> _Link:
        """Connect and wait for the list id; the caller bounds the wait."""
        link = cls(kit, await kit.connect(host, port))
        try:
            await link.send(link.client.start())
            while not link.client.ready:
                await link.pump()
        except BaseException:
            await link.abort()
            raise
        return link

    async def pump(self) -> list[tuple[int, Reading]]:
        """Wait for bytes; return the readings they made."""
        data = await self._stream.receive_some(_READ_SIZE)
        made = self.client.receive(data, now=self._kit.now())
        if answer := self.client.data_to_send():
            await self.send(answer)
        return made

    async def send(self, data: bytes) -> None:
        await self._stream.send_all(data)

    async def run(self, plan: ReadBatch | WritePlan) -> None:
        """Run ``plan`` to the end and leave the connection free for the next."""
        await self.send(self.client.begin(plan, now=self._kit.now()))
        while not plan.done:
            await self.pump()
        await self.send(self.client.end(now=self._kit.now()))

    async def abort(self) -> None:
        """Drop the connection now (broken or mid-list)."""
        await self._kit.abort(self._stream)

    async def aclose(self) -> None:
        """Close after what was sent has gone (callers have sent all)."""
        await self._kit.aclose(self._stream)


class _Pool:
    """At most ``size`` read connections; idle ones wait here for the next read."""

    def __init__(self, kit: IOKit, host: str, port: int, size: int) -> None:
        self._kit = kit
        self.host = host
        self.port = port
        self._slots = kit.semaphore(size)
        self._idle: list[_Link] = []
        self._closed = False

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[tuple[_Link, bool]]:
        """A ready connection for one read (an idle one, else a new one), and whether it
        was idle: the server may have closed it meanwhile."""
        async with self._slots:
            reused = bool(self._idle)
            link = self._idle.pop() if reused else await _Link.open(self._kit, self.host, self.port)
            try:
                yield link, reused
            except BaseException:
                await link.abort()  # stopped mid-list: what it would say next is unknown
                raise
            if self._closed or not link.client.usable:
                await link.abort()
            else:
                self._idle.append(link)

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for link in idle:
            await link.aclose()


class DPMBackend(AsyncBackend):
    """A DPM/TCP client on the event loop of ``_kit``. ``aclose()`` or ``async with`` ends it.

    ``timeout`` is the default total deadline of each call, in seconds;
    ``pool_size`` the most connections reads use at once; ``auth`` and
    ``role`` are what settings need (``KerberosAuth()``, e.g. ``"testing"``).
    """

    _kit: ClassVar[IOKit]
    _subscription_type: ClassVar[type[DPMSubscription]]

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        pool_size: int = DEFAULT_POOL_SIZE,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        auth: Auth | None = None,
        role: str | None = None,
    ) -> None:
        self.host = check_host(host)
        self.port = check_port(port)
        self.timeout = check_timeout(timeout)
        self.auth = auth
        self.role = role
        self._pool = _Pool(self._kit, self.host, self.port, check_pool_size(pool_size))
        self._subscriptions: set[DPMSubscription] = set()
        self._write_link: _Link | None = None
        self._write_lock = self._kit.lock()
        self.closed = False

    @property
    def _broken(self) -> tuple[type[BaseException], ...]:
        return (OSError, ProtocolError, *self._kit.broken)

    async def aclose(self) -> None:
        """Stop every subscription and close every connection; the backend is then done."""
        self.closed = True
        for subscription in list(self._subscriptions):
            await subscription.stop()
        await self._pool.aclose()
        link, self._write_link = self._write_link, None
        if link is not None:
            await link.aclose()

    async def get_many(
        self, drfs: Sequence[str | _drf.DataRequest], timeout: float | None = None
    ) -> list[Reading]:
        """Read every DRF once; readings in input order, device errors as error readings.

        ``timeout`` bounds the whole call, waiting for a connection included.
        If it passes or the connection breaks, :class:`ReadError` carries what
        arrived and error readings (``ACNET_REQTMO`` / ``ACNET_DISCONNECTED``)
        for the rest. Bad DRF text raises :class:`ValueError` before any I/O.
        """
        batch = ReadBatch(drfs)
        deadline = self._deadline(timeout)
        try:
            async with self._kit.fail_at(deadline):
                await self._run(batch)
        except TimeoutError as exc:  # before OSError: it is one
            raise batch.timed_out() from exc
        except self._broken as exc:
            raise batch.disconnected(exc) from exc
        return batch.readings()

    async def _run(self, batch: ReadBatch) -> None:
        while True:
            reused = False
            try:
                async with self._pool.lease() as (link, reused):
                    await link.run(batch)
                return
            except self._broken:
                # the server may have closed an idle pooled connection; if
                # nothing came back yet, the read is safe to repeat
                if not reused or batch.arrived:
                    raise

    async def write_many(
        self, settings: Sequence[tuple[Any, Any]] | Mapping[Any, Any], timeout: float | None = None
    ) -> list[WriteResult]:
        """Apply several settings in one ``ApplySettings``; results in input order.

        Bad DRFs or values raise before any I/O, then missing credentials
        (:class:`AuthenticationError`). ``timeout`` bounds the whole call
        (:class:`TimeoutError`). If the connection breaks or the time runs
        out after the settings left, :class:`SettingOutcomeUnknown` is raised
        and nothing is sent again.
        """
        batch = dpm_write_batch(setting_pairs(settings), self.auth, self.role)
        deadline = self._deadline(timeout)
        async with self._write_lock:
            link, self._write_link = self._write_link, None
            plan = None
            try:
                async with self._kit.fail_at(deadline):
                    if link is None:
                        link = await _Link.open(self._kit, self.host, self.port)
                    plan = WritePlan(batch, self.auth.context, link.client.settings_enabled)
                    await link.run(plan)
            except BaseException as exc:
                if link is not None:
                    await link.abort()
                # a cancellation from outside is the caller's: it goes through as it is
                if isinstance(exc, Exception) and (unknown := outcome_unknown(plan, exc)):
                    raise unknown from exc
                if isinstance(exc, TimeoutError):
                    raise TimeoutError(f"settings of {batch.drfs} timed out") from exc
                if isinstance(exc, self._kit.broken):  # a library's own word for a broken socket
                    raise ConnectionLost(f"the settings connection broke: {exc}") from exc
                raise
            if self.closed:
                await link.abort()
            else:
                self._write_link = link
        return batch.write_results()

    async def subscribe(
        self,
        drfs: Sequence[str],
        *,
        timeout: float | None = None,
        reconnect: bool | Reconnect = True,
    ) -> DPMSubscription:
        """Start streaming ``drfs`` on a connection of its own.

        ``timeout`` bounds connecting (:class:`TimeoutError`); a refused
        connection raises :class:`OSError`. ``reconnect``: if the connection
        dies later, connect again with the default :class:`Reconnect` policy
        (True), a policy of your own, or not at all (False).
        """
        recovery = Recovery(ListPlan(drfs, default_event=None).drfs, reconnect_policy(reconnect))
        try:
            async with self._kit.fail_at(self._deadline(timeout)):
                link = await self._open_stream(recovery.drfs)
        except TimeoutError as exc:
            raise TimeoutError(f"no DPM list for {list(recovery.drfs)} within the timeout") from exc
        subscription = self._subscription_type(self, link, recovery)
        self._subscriptions.add(subscription)
        return subscription

    async def _open_stream(self, drfs: Sequence[str]) -> _Link:
        """A new connection with a fresh list of ``drfs`` started on it; the caller bounds it."""
        link = await _Link.open(self._kit, self.host, self.port)
        try:
            plan = ListPlan(drfs, default_event=None)
            await link.send(link.client.begin(plan, now=self._kit.now()))
        except BaseException:
            await link.abort()
            raise
        return link

    def _deadline(self, timeout: float | None) -> float:
        if self.closed:
            raise RuntimeError(f"this {type(self).__name__} is closed")
        seconds = self.timeout if timeout is None else check_timeout(timeout)
        return self._kit.now() + seconds


class DPMSubscription(AsyncSubscription):
    """A running stream: iterate :meth:`readings`, then :meth:`stop` (or use ``async with``)."""

    def __init__(self, backend: DPMBackend, link: _Link, recovery: Recovery) -> None:
        self._backend = backend
        self._kit = backend._kit
        self._link: _Link | None = link  # None between a broken connection and the next
        self._recovery = recovery
        self.drfs = list(recovery.drfs)
        self._buffer: deque[Reading | Gap] = deque()
        self.stopped = False
        self.dropped = 0  # nothing is turned away: readings wait in an unbounded buffer

    def readings(self, timeout: float | None = None) -> _Readings:
        """``(reading, self)`` pairs until :meth:`stop`, or until no reading comes for ``timeout``.

        ``timeout`` is seconds to wait for each next reading (None waits
        forever, 0 yields only what already arrived). If the server breaks
        the connection or falls silent past its heartbeats, the subscription
        connects again (a connection attempt may outlast ``timeout``) and
        yields a :class:`Gap`; with reconnection off or out of attempts it
        stops and raises :class:`ConnectionLost`. Use with ``async for``;
        leaving the loop early needs no clean-up.
        """
        return _Readings(self, timeout)

    async def _next_reading(self, timeout: float | None) -> Reading | Gap | None:
        """The next reading or gap; None once stopped, or when none came for ``timeout``."""
        deadline = None if timeout is None else self._kit.now() + timeout
        while not self.stopped:
            if self._buffer:
                return self._buffer.popleft()
            if not await self._receive(deadline):
                return None
        return None

    async def _receive(self, deadline: float | None) -> bool:
        """Buffer what arrives by ``deadline``, reconnecting if need be; False when the wait
        is over or the stream stopped."""
        link = self._link
        if link is None:
            return await self._reconnect(deadline)
        until, dead = link.client.stream_wait(deadline)
        try:
            async with self._kit.fail_at(until):
                made = await link.pump()
        except self._kit.closed:  # stop() from another task closed the connection
            return False
        except TimeoutError as exc:  # before OSError: it is one
            if self.stopped or not dead:
                return False  # the caller's wait is over; the stream goes on
            await self._broke(SILENT, exc)
            return True
        except self._backend._broken as exc:
            if self.stopped:  # stop() from another task closed the connection
                return False
            await self._broke(str(exc), exc)
            return True
        if made:
            self._recovery.heard()
        self._buffer.extend(reading for _, reading in made)
        return not self.stopped

    async def _broke(self, cause: str, exc: BaseException) -> None:
        """Drop the dead connection and note when to try again; ConnectionLost if never."""
        link, self._link = self._link, None
        if link is not None:
            await link.abort()
        if self._recovery.broke(cause, datetime.now(UTC), self._kit.now()) is None:
            self.stopped = True
            self._backend._subscriptions.discard(self)
            raise self._recovery.lost() from exc

    async def _reconnect(self, deadline: float | None) -> bool:
        """Wait for the next attempt and make it, unless ``deadline`` comes first."""
        until, attempt = self._recovery.retry_wait(deadline)
        await self._kit.sleep_until(until)
        if not attempt or self.stopped:
            return False
        try:
            async with self._kit.fail_at(self._kit.now() + self._backend.timeout):
                link = await self._backend._open_stream(self.drfs)
        except self._backend._broken as exc:  # TimeoutError included: it is an OSError
            await self._broke(str(exc) or "no DPM list within the timeout", exc)
            return True
        if self.stopped:  # stop() ran while this connected
            await link.abort()
            return False
        self._link = link
        self._buffer.append(self._recovery.resumed(datetime.now(UTC)))
        return True

    async def stop(self) -> None:
        """Stop the stream (``StopList``) and close its connection; later calls do nothing."""
        if self.stopped:
            return
        self.stopped = True
        self._backend._subscriptions.discard(self)
        link, self._link = self._link, None
        if link is None:
            return
        try:
            async with self._kit.fail_at(self._kit.now() + self._backend.timeout):
                await link.send(link.client.end(now=self._kit.now()))
        except (*self._backend._broken, *self._kit.closed):  # TimeoutError included
            await link.abort()  # it is going away either way
        except BaseException:
            await link.abort()
            raise
        else:
            await link.aclose()


class _Readings:
    """What :meth:`DPMSubscription.readings` returns.

    A class rather than an async generator, so that breaking out of an
    ``async for`` leaves nothing to finalize (no ``aclosing`` needed).
    """

    def __init__(self, subscription: DPMSubscription, timeout: float | None) -> None:
        self._subscription = subscription
        self._timeout = timeout
        self._over = False

    def __aiter__(self) -> _Readings:
        return self

    async def __anext__(self) -> tuple[Reading | Gap, DPMSubscription]:
        if not self._over:
            reading = await self._subscription._next_reading(self._timeout)
            if reading is not None:
                return reading, self._subscription
            self._over = True
        raise StopAsyncIteration
