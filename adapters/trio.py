"""A trio DPM/TCP client: pooled reads, one connection per subscription.

::

    from acnet_proto.adapters.trio import TrioDPMBackend

    async with TrioDPMBackend("localhost", 6802) as backend:
        print(await backend.read("M:OUTTMP"))                    # 41.7
        for reading in await backend.get_many(["M:OUTTMP", "Z:ACLTS1[0:4]"]):
            print(reading.name, reading.value, reading.units)
        async with await backend.subscribe(["M:OUTTMP@p,1000"]) as sub:
            async for reading, handle in sub.readings(timeout=5):
                print(reading.value)
                break

    async with TrioDPMBackend("localhost", auth=KerberosAuth(), role="testing") as backend:
        result = await backend.write("Z:ACLTST", 45.0)

The same surface as :mod:`acnet_proto.adapters.asyncio`, on trio's own
streams and cancel scopes: reads borrow a ready connection from a pool of at
most ``pool_size`` (repeated once on another if an idle one turns out closed
before any reply), each subscription has a connection of its own (connected
again, as its :class:`~acnet_proto.reconnect.Reconnect` policy says, if it
dies while being iterated, with a :class:`~acnet_proto.reconnect.Gap` where
readings are missing), and every
deadline is a cancel scope, so a caller's own ``trio.move_on_after`` around
any call also works (a connection cancelled mid-list is closed, not pooled).
Settings (``write``, ``write_many``, with ``auth=`` and ``role=``) use one
connection of their own, authenticated once and reused, with the threaded
backend's semantics down to :class:`~acnet_proto.errors.SettingOutcomeUnknown`;
a cancellation from an outer scope is re-raised as it is, even after the
settings left. Kerberos steps run inline: the first setting may wait on the
KDC for a service ticket. Nothing here starts a task. Use a backend from one
``trio.run``.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

# Absolute imports make this the trio package, not this module.
import trio

from acnet_proto import drf as _drf
from acnet_proto.auth import Auth
from acnet_proto.backend import setting_pairs
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
from acnet_proto.reconnect import SILENT, Gap, Reconnect, Recovery, reconnect_policy
from acnet_proto.settings import WritePlan, WriteSequence, dpm_write_batch, outcome_unknown
from acnet_proto.types import Reading, WriteResult

__all__ = ["TrioDPMBackend", "TrioSubscription"]

_READ_SIZE = 262144
# What a stream broken under us raises: the OS, trio, or the engine on bad bytes.
_BROKEN = (OSError, trio.BrokenResourceError, ProtocolError)


class _Link:
    """One TCP stream and the client engine on it."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.client = ClientConnection()
        self._stream = stream

    @classmethod
    async def open(cls, host: str, port: int) -> _Link:
        """Connect and wait for the list id; the caller bounds the wait."""
        link = cls(await trio.open_tcp_stream(host, port))
        try:
            await link.send(link.client.start())
            while not link.client.ready:
                await link.pump()
        except BaseException:
            await link.aclose()
            raise
        return link

    async def pump(self) -> list[tuple[int, Reading]]:
        """Wait for bytes; return the readings they made."""
        data = await self._stream.receive_some(_READ_SIZE)
        made = self.client.receive(data, now=trio.current_time())
        if answer := self.client.data_to_send():
            await self.send(answer)
        return made

    async def send(self, data: bytes) -> None:
        await self._stream.send_all(data)

    async def run(self, plan: ReadBatch | WritePlan) -> None:
        """Run ``plan`` to the end and leave the connection free for the next."""
        await self.send(self.client.begin(plan, now=trio.current_time()))
        while not plan.done:
            await self.pump()
        await self.send(self.client.end(now=trio.current_time()))

    async def aclose(self) -> None:
        """Close now, even inside a cancelled scope."""
        await trio.aclose_forcefully(self._stream)


class _Pool:
    """At most ``size`` read connections; idle ones wait here for the next read."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host = host
        self.port = port
        self._slots = trio.Semaphore(size)
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
                await link.aclose()  # stopped mid-list: what it would say next is unknown
                raise
            if self._closed or not link.client.usable:
                await link.aclose()
            else:
                self._idle.append(link)

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for link in idle:
            await link.aclose()


class TrioDPMBackend:
    """A DPM/TCP client for trio. ``aclose()`` or ``async with`` ends it.

    ``timeout`` is the default total deadline of each call, in seconds;
    ``pool_size`` the most connections reads use at once; ``auth`` and
    ``role`` are what settings need (``KerberosAuth()``, e.g. ``"testing"``).
    """

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
        self._pool = _Pool(self.host, self.port, check_pool_size(pool_size))
        self._subscriptions: set[TrioSubscription] = set()
        self._write_link: _Link | None = None
        self._write_lock = trio.Lock()
        self.closed = False

    async def __aenter__(self) -> TrioDPMBackend:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop every subscription and close every connection; the backend is then done."""
        self.closed = True
        for subscription in list(self._subscriptions):
            await subscription.stop()
        await self._pool.aclose()
        link, self._write_link = self._write_link, None
        if link is not None:
            await link.aclose()

    async def get_many(self, drfs: Sequence[str], timeout: float | None = None) -> list[Reading]:
        """Read every DRF once; readings in input order, device errors as error readings.

        ``timeout`` bounds the whole call, waiting for a connection included.
        If it passes or the connection breaks, :class:`ReadError` carries what
        arrived and error readings (``ACNET_REQTMO`` / ``ACNET_DISCONNECTED``)
        for the rest. Bad DRF text raises :class:`ValueError` before any I/O.
        """
        batch = ReadBatch(drfs)
        try:
            with trio.fail_at(self._deadline(timeout)):
                await self._run(batch)
        except trio.TooSlowError as exc:
            raise batch.timed_out() from exc
        except _BROKEN as exc:
            raise batch.disconnected(exc) from exc
        return batch.readings()

    async def _run(self, batch: ReadBatch) -> None:
        while True:
            reused = False
            try:
                async with self._pool.lease() as (link, reused):
                    await link.run(batch)
                return
            except _BROKEN:
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

    async def write(
        self, drf: str | _drf.DataRequest, value: Any, timeout: float | None = None
    ) -> WriteResult:
        """Apply one setting; a dict is an alarm write, its fields set one after another.

        See :meth:`acnet_proto.backend.Backend.write`; ``timeout`` bounds each field's setting.
        """
        sequence = WriteSequence(drf, value)
        for step in sequence:
            sequence.record((await self.write_many([step], timeout))[0])
        return sequence.result

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
                with trio.fail_at(deadline):
                    if link is None:
                        link = await _Link.open(self.host, self.port)
                    plan = WritePlan(batch, self.auth.context, link.client.settings_enabled)
                    await link.run(plan)
            except BaseException as exc:
                if link is not None:
                    await link.aclose()
                # a cancellation from an outer scope is the caller's: it goes through as it is
                if isinstance(exc, Exception) and (unknown := outcome_unknown(plan, exc)):
                    raise unknown from exc
                if isinstance(exc, trio.TooSlowError):
                    raise TimeoutError(f"settings of {batch.drfs} timed out") from exc
                if isinstance(exc, trio.BrokenResourceError):  # trio's word for a broken socket
                    raise ConnectionLost(f"the settings connection broke: {exc}") from exc
                raise
            if self.closed:
                await link.aclose()
            else:
                self._write_link = link
        return batch.write_results()

    async def subscribe(
        self,
        drfs: Sequence[str],
        *,
        timeout: float | None = None,
        reconnect: bool | Reconnect = True,
    ) -> TrioSubscription:
        """Start streaming ``drfs`` on a connection of its own.

        ``timeout`` bounds connecting (:class:`TimeoutError`, as in the
        other adapters); a refused connection raises :class:`OSError`.
        ``reconnect``: if the connection dies later, connect again with the
        default :class:`Reconnect` policy (True), a policy of your own, or
        not at all (False).
        """
        recovery = Recovery(ListPlan(drfs, default_event=None).drfs, reconnect_policy(reconnect))
        try:
            with trio.fail_at(self._deadline(timeout)):
                link = await self._open_stream(recovery.drfs)
        except trio.TooSlowError as exc:
            raise TimeoutError(f"no DPM list for {list(recovery.drfs)} within the timeout") from exc
        subscription = TrioSubscription(self, link, recovery)
        self._subscriptions.add(subscription)
        return subscription

    async def _open_stream(self, drfs: Sequence[str]) -> _Link:
        """A new connection with a fresh list of ``drfs`` started on it; the caller bounds it."""
        link = await _Link.open(self.host, self.port)
        try:
            plan = ListPlan(drfs, default_event=None)
            await link.send(link.client.begin(plan, now=trio.current_time()))
        except BaseException:
            await link.aclose()
            raise
        return link

    def _deadline(self, timeout: float | None) -> float:
        if self.closed:
            raise RuntimeError(f"this {type(self).__name__} is closed")
        seconds = self.timeout if timeout is None else check_timeout(timeout)
        return trio.current_time() + seconds


class TrioSubscription:
    """A running stream: iterate :meth:`readings`, then :meth:`stop` (or use ``async with``)."""

    def __init__(self, backend: TrioDPMBackend, link: _Link, recovery: Recovery) -> None:
        self._backend = backend
        self._link: _Link | None = link  # None between a broken connection and the next
        self._recovery = recovery
        self.drfs = list(recovery.drfs)
        self._buffer: deque[Reading | Gap] = deque()
        self.stopped = False

    async def __aenter__(self) -> TrioSubscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

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
        deadline = None if timeout is None else trio.current_time() + timeout
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
        made: list[tuple[int, Reading]] = []
        try:
            with trio.move_on_at(until) as waiting:
                made = await link.pump()
        except trio.ClosedResourceError:  # stop() from another task closed the connection
            return False
        except _BROKEN as exc:
            if self.stopped:
                return False
            await self._broke(str(exc), exc)
            return True
        if waiting.cancelled_caught:
            if not dead:
                return False  # the caller's wait is over; the stream goes on
            await self._broke(SILENT, None)
            return True
        if made:
            self._recovery.heard()
        self._buffer.extend(reading for _, reading in made)
        return not self.stopped

    async def _broke(self, cause: str, exc: BaseException | None) -> None:
        """Drop the dead connection and note when to try again; ConnectionLost if never."""
        link, self._link = self._link, None
        if link is not None:
            await link.aclose()
        if self._recovery.broke(cause, datetime.now(UTC), trio.current_time()) is None:
            self.stopped = True
            self._backend._subscriptions.discard(self)
            raise self._recovery.lost() from exc

    async def _reconnect(self, deadline: float | None) -> bool:
        """Wait for the next attempt and make it, unless ``deadline`` comes first."""
        until, attempt = self._recovery.retry_wait(deadline)
        await trio.sleep_until(until)
        if not attempt or self.stopped:
            return False
        try:
            with trio.fail_after(self._backend.timeout):
                link = await self._backend._open_stream(self.drfs)
        except (*_BROKEN, trio.TooSlowError) as exc:
            await self._broke(str(exc) or "no DPM list within the timeout", exc)
            return True
        if self.stopped:  # stop() ran while this connected
            await link.aclose()
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
            with trio.move_on_after(self._backend.timeout):
                await link.send(link.client.end(now=trio.current_time()))
        except (*_BROKEN, trio.ClosedResourceError):
            pass  # it is going away either way
        finally:
            await link.aclose()


class _Readings:
    """What :meth:`TrioSubscription.readings` returns.

    A class rather than an async generator, so that breaking out of an
    ``async for`` leaves nothing to finalize (no ``aclosing`` needed).
    """

    def __init__(self, subscription: TrioSubscription, timeout: float | None) -> None:
        self._subscription = subscription
        self._timeout = timeout
        self._over = False

    def __aiter__(self) -> _Readings:
        return self

    async def __anext__(self) -> tuple[Reading | Gap, TrioSubscription]:
        if not self._over:
            reading = await self._subscription._next_reading(self._timeout)
            if reading is not None:
                return reading, self._subscription
            self._over = True
        raise StopAsyncIteration
