"""The DPM/TCP async backend both event-loop adapters share, written against an :class:`IOKit`.

Pooled reads, the settings connection, subscriptions and their reconnection
are the same under asyncio and trio; only the I/O differs. Each adapter
(:mod:`acnet_proto.adapters.dpm.asyncio`, :mod:`acnet_proto.adapters.dpm.trio`)
supplies a kit of its library's own primitives and subclasses
:class:`AsyncDPMBackend` and :class:`AsyncDPMSubscription` under its public names, so
neither library is ever imported by the other's adapter.

The kit's contract: a deadline scope raises the builtin :class:`TimeoutError`
when its time passes (never a library's own timeout type), and anything else
(a cancellation from outside above all) passes through it unchanged.

Callback subscriptions are delivered by a task each, in a task group (a trio
nursery, an :class:`asyncio.TaskGroup`) that the backend opens when entered
with ``async with`` and closes on the way out, after stopping every
subscription so that every delivery task has ended. The body's own exception
never goes into that group: it leaves ``async with`` as it came, not wrapped
in an :class:`ExceptionGroup`.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, ClassVar, Protocol, Self, TypeVar, cast

from acnet_proto import drf as _drf
from acnet_proto.adapters._streams import DefaultTimeout, admitted, arrived, describe, freshness
from acnet_proto.api.auth import Auth, AuthHolder
from acnet_proto.api.backend import AsyncBackend, AsyncSubscription, check_callbacks, setting_pairs
from acnet_proto.api.config import (
    DEFAULT_POOL_SIZE,
    DEFAULT_PORT,
    DEFAULT_TIMEOUT,
    check_host,
    check_pool_size,
    check_port,
    check_timeout,
)
from acnet_proto.engine import HEARTBEAT_PERIOD
from acnet_proto.engine.client import ClientConnection
from acnet_proto.errors import ConnectionLost, ProtocolError
from acnet_proto.plans.lists import ListPlan, ReadBatch
from acnet_proto.plans.settings import GSSContext, WritePlan, dpm_write_batch, outcome_unknown
from acnet_proto.streams.driver import Ending, GiveUp, StreamDriver, Wait, heartbeat_driver
from acnet_proto.streams.reconnect import Gap, Reconnect, summary
from acnet_proto.streams.staleness import DEFAULT_MAX_AGE, Freshness
from acnet_proto.types import Reading, WriteResult

__all__ = [
    "AsyncDPMBackend",
    "AsyncDPMSubscription",
    "ErrorCallback",
    "Flag",
    "IOKit",
    "ReadingCallback",
    "Stream",
    "TaskGroup",
]

log = logging.getLogger(__name__)

_READ_SIZE = 262144

#: ``callback(reading, handle)``, a plain function or an ``async def`` one (then awaited);
#: it gets a :class:`Gap` in a reading's place when the connection dies (open) and when the
#: list runs again (closed).
ReadingCallback = Callable[[Reading | Gap, "AsyncDPMSubscription"], object]
#: ``on_error(exc, handle)``, plain or ``async def``, once the stream died.
ErrorCallback = Callable[[Exception, "AsyncDPMSubscription"], object]


class Stream(Protocol):
    """A connected byte stream as the kit hands it out."""

    async def receive_some(self, max_bytes: int) -> bytes:
        """Wait for bytes; ``b""`` once the peer closed."""
        ...

    async def send_all(self, data: bytes) -> None:
        """Send every byte of ``data`` (waiting for room as need be)."""
        ...


class Flag(Protocol):
    """A one-way flag tasks can wait for (an ``asyncio.Event`` or a ``trio.Event``)."""

    def set(self) -> None: ...

    async def wait(self) -> object: ...


class TaskGroup(Protocol):
    """Where the kit runs tasks: each ends before the group's ``async with`` does."""

    def start_soon(self, async_fn: Callable[..., Awaitable[object]], *args: object) -> None:
        """Run ``async_fn(*args)`` in a new task of the group."""
        ...


StreamT = TypeVar("StreamT", bound=Stream)
GroupT = TypeVar("GroupT", bound=TaskGroup)


class IOKit(Protocol[StreamT, GroupT]):
    """One event-loop library's I/O, as the shared backend uses it.

    ``StreamT`` and ``GroupT`` are the library's own stream and task group: the
    kit takes back only streams and groups it made.
    """

    #: What a stream broken under us raises, besides OSError and ProtocolError.
    broken: tuple[type[BaseException], ...]
    #: What a stream closed by this side (stop() from another task) raises.
    closed: tuple[type[BaseException], ...]

    async def connect(self, host: str, port: int) -> StreamT:
        """A TCP connection to ``host:port``."""
        ...

    def now(self) -> float:
        """The event loop's clock, in seconds."""
        ...

    def fail_at(self, when: float | None) -> AbstractAsyncContextManager[Any]:
        """A scope that raises :class:`TimeoutError` at ``when`` (None: never); ``as`` gives
        the handle :meth:`expire` takes."""
        ...

    def expire(self, scope: Any) -> None:
        """Make a :meth:`fail_at` scope time out now (called from another task)."""
        ...

    def lock(self) -> AbstractAsyncContextManager[Any]:
        """A new lock."""
        ...

    def semaphore(self, size: int) -> AbstractAsyncContextManager[Any]:
        """A new semaphore of ``size`` slots."""
        ...

    def event(self) -> Flag:
        """A new flag, not set."""
        ...

    def task_group(self) -> AbstractAsyncContextManager[GroupT]:
        """A new task group; leaving its ``async with`` waits for its tasks."""
        ...

    def cancel_tasks(self, group: GroupT) -> None:
        """Cancel every task of ``group`` that is still running."""
        ...

    async def abort(self, stream: StreamT) -> None:
        """Drop ``stream`` now, unsent bytes and all, even inside a cancelled scope."""
        ...

    async def aclose(self, stream: StreamT) -> None:
        """Close ``stream`` after what was sent has gone."""
        ...


class _GSSAuth(Protocol):
    """An :class:`Auth` that makes GSS contexts (``KerberosAuth``), as settings need."""

    def context(self, service: str) -> GSSContext: ...


# The shared backend sees kits of either library: it hands each kit back only
# the streams and task groups that kit made, whatever their types.
_AnyKit = IOKit[Any, Any]


class _Link:
    """One TCP stream and the client engine on it."""

    def __init__(
        self, kit: _AnyKit, stream: Stream, heartbeat_period: float = HEARTBEAT_PERIOD
    ) -> None:
        self.client = ClientConnection(heartbeat_period=heartbeat_period)
        self._kit = kit
        self._stream = stream
        # the last receive filled the whole read: more bytes likely wait (a stream behind)
        self.full = False

    @classmethod
    async def open(
        cls, kit: _AnyKit, host: str, port: int, heartbeat_period: float = HEARTBEAT_PERIOD
    ) -> _Link:
        """Connect and wait for the list id; the caller bounds the wait."""
        link = cls(kit, await kit.connect(host, port), heartbeat_period)
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
        self.full = len(data) == _READ_SIZE
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

    def __init__(self, kit: _AnyKit, host: str, port: int, size: int) -> None:
        self._kit = kit
        self.host = host
        self.port = port
        self.slots = kit.semaphore(size)
        self._idle: list[_Link] = []
        self._closed = False

    async def take(self) -> tuple[_Link, bool]:
        """A ready connection for one read (an idle one, else a new one), and whether it
        was idle: the server may have closed it meanwhile. Call with a slot held (``slots``);
        :meth:`give_back` ends the loan."""
        if self._idle:
            return self._idle.pop(), True
        return await _Link.open(self._kit, self.host, self.port), False

    async def give_back(self, link: _Link, intact: bool) -> None:
        """Keep ``link`` for the next read if ``intact`` (its read ran to the end), else drop it:
        stopped mid-list, what it would say next is unknown."""
        if intact and not self._closed and link.client.usable:
            self._idle.append(link)
        else:
            await link.abort()

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        await _each([link.aclose for link in idle])


async def _each(steps: Sequence[Callable[[], Awaitable[object]]]) -> None:
    """Await every step even if one raises, then raise the first error.

    Closing under a cancelled scope raises after each close; stopping at the
    first would leave the rest open.
    """
    failure: BaseException | None = None
    for step in steps:
        try:
            await step()
        except BaseException as exc:
            failure = failure or exc
    if failure is not None:
        raise failure


class AsyncDPMBackend(AuthHolder, DefaultTimeout, AsyncBackend):
    """A DPM/TCP client on the event loop of ``_kit``. ``aclose()`` or ``async with`` ends it.

    ``timeout`` is the default total deadline of each call, in seconds;
    ``pool_size`` the most connections reads use at once; ``auth`` and
    ``role`` are what settings need (``KerberosAuth()``, e.g. ``"testing"``);
    ``heartbeat_period`` as :class:`~acnet_proto.adapters.dpm.sync.SyncClient`'s.
    Callback subscriptions need the backend entered with ``async with``: their
    delivery tasks run in the task group it opens (see :meth:`subscribe`).
    """

    _kit: ClassVar[_AnyKit]
    _subscription_type: ClassVar[type[AsyncDPMSubscription]]

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        pool_size: int = DEFAULT_POOL_SIZE,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        auth: Auth | None = None,
        role: str | None = None,
        heartbeat_period: float = HEARTBEAT_PERIOD,
    ) -> None:
        self.host = check_host(host)
        self.port = check_port(port)
        self.timeout = check_timeout(timeout)
        self.heartbeat_period = check_timeout(heartbeat_period, "heartbeat_period")
        self.auth = auth
        self.role = role
        self._pool = _Pool(self._kit, self.host, self.port, check_pool_size(pool_size))
        self._subscriptions: set[AsyncDPMSubscription] = set()
        self._write_link: _Link | None = None
        self._write_lock = self._kit.lock()
        self.closed = False
        # the task group of ``async with``, and what its __aexit__ closes
        self._tasks: TaskGroup | None = None
        self._group: AbstractAsyncContextManager[TaskGroup] | None = None

    async def __aenter__(self) -> Self:
        """Open the task group that delivers to callbacks; ``async with`` closes it again."""
        if self._group is not None:
            raise RuntimeError(f"this {type(self).__name__} is already entered")
        group = self._kit.task_group()
        self._tasks = await group.__aenter__()
        self._group = group
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """:meth:`aclose`, which ends every delivery task, then close the task group."""
        group, self._group = self._group, None
        tasks, self._tasks = self._tasks, None
        ending = exc
        try:
            await self.aclose()
        except BaseException as error:
            ending = error
            raise
        finally:
            if tasks is not None:
                # Every stream is stopped: what is left is a callback under way, which
                # may wait for ever (on a queue the body no longer drains, say).
                self._kit.cancel_tasks(tasks)
            if group is not None:
                # A cancellation or an interrupt goes into the group, which cancels its
                # tasks at once (a callback under way, say). An ordinary exception does
                # not: it leaves `async with` as it came, not wrapped in an ExceptionGroup.
                if ending is None or isinstance(ending, Exception):
                    await group.__aexit__(None, None, None)
                else:
                    await group.__aexit__(type(ending), ending, ending.__traceback__)

    @property
    def _broken(self) -> tuple[type[BaseException], ...]:
        return (OSError, ProtocolError, *self._kit.broken)

    async def aclose(self) -> None:
        """Stop every subscription and close every connection; the backend is then done.

        Every subscription is stopped, and its delivery task thereby ends, and every
        connection is closed, even if an earlier step raised (a cancellation, say);
        the first such error is raised after.
        """
        self.closed = True
        link, self._write_link = self._write_link, None
        steps = [subscription.stop for subscription in list(self._subscriptions)]
        steps.append(self._pool.aclose)
        if link is not None:
            steps.append(link.aclose)
        await _each(steps)

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
            raise batch.timed_out(self._seconds(timeout)) from exc
        except self._broken as exc:
            raise batch.disconnected(exc) from exc
        return batch.readings()

    async def _run(self, batch: ReadBatch) -> None:
        pool = self._pool
        while True:
            async with pool.slots:
                link, reused = await pool.take()
                intact = False
                try:
                    await link.run(batch)
                    intact = True
                    return
                except self._broken:
                    if not batch.may_repeat(reused):
                        raise
                finally:
                    await pool.give_back(link, intact)

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
                    # dpm_write_batch let through only an auth that makes contexts
                    auth = cast("_GSSAuth", self.auth)
                    plan = WritePlan(batch, auth.context, link.client.settings_enabled)
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
        callback: ReadingCallback | None = None,
        on_error: ErrorCallback | None = None,
        *,
        timeout: float | None = None,
        reconnect: bool | Reconnect = True,
        max_age: float | None = DEFAULT_MAX_AGE,
    ) -> AsyncDPMSubscription:
        """Start streaming ``drfs`` on a connection of its own.

        Without ``callback``, iterate the handle's ``readings()``. With one, a
        task in the backend's task group calls ``callback(reading, handle)``
        for each reading (and each :class:`Gap` of an outage), awaiting it if
        it is an ``async def``, until the subscription stops: by
        :meth:`AsyncDPMSubscription.stop`, by :meth:`aclose` or leaving ``async
        with``, or because the stream died. That task group exists only while
        the backend is entered with ``async with``; a callback subscription on
        a backend that is not raises :class:`RuntimeError`. An exception from
        ``callback`` is logged and delivery goes on. ``on_error(exc, handle)``
        (plain or ``async def``) gets the :class:`ConnectionLost` that ends a
        dead stream, in either mode; without it, a callback subscription logs it.
        A callback that cannot take two arguments raises :class:`TypeError`,
        before any I/O.

        ``timeout`` bounds the first connection, made here. A server that
        cannot be reached (refused, or no list within ``timeout``) is not
        raised here: it is the stream's first outage, told as any later one
        (an open :class:`Gap`, then reconnection; with ``reconnect=False``,
        :class:`ConnectionLost` from ``readings()`` or to ``on_error``).
        ``reconnect``: if the connection dies, connect again with the default
        :class:`Reconnect` policy (True), a policy of your own, or not at all
        (False). ``max_age``: the staleness bound, as
        :func:`~acnet_proto.adapters._streams.freshness` says.
        """
        check_callbacks(callback, on_error)
        driver = heartbeat_driver(drfs, reconnect, self.heartbeat_period, self.host, self.port)
        fresh = freshness(driver, max_age)
        deadline = self._deadline(timeout)
        if callback is not None and self._tasks is None:
            raise RuntimeError(
                f"a callback subscription is delivered by a task of the backend's own: "
                f"use `async with {type(self).__name__}(...) as backend:` around it"
            )
        subscription = self._subscription_type(self, driver, callback, on_error, fresh)
        await subscription._attempt(deadline)
        tasks = self._tasks
        if self.closed or (callback is not None and tasks is None):
            await subscription._halt()  # nothing would ever stop it, nor end its delivery task
            raise RuntimeError(f"this {type(self).__name__} was closed while subscribing")
        self._subscriptions.add(subscription)
        if tasks is not None and callback is not None:
            tasks.start_soon(subscription._deliver, callback)
        return subscription

    async def _open_stream(self, drfs: Sequence[str]) -> tuple[_Link, ListPlan]:
        """A new connection with a fresh list of ``drfs`` started on it, and that list; the
        caller bounds it."""
        link = await _Link.open(self._kit, self.host, self.port, self.heartbeat_period)
        try:
            plan = ListPlan(drfs, default_event=None)
            await link.send(link.client.begin(plan, now=self._kit.now()))
        except BaseException:
            await link.abort()
            raise
        return link, plan

    def _deadline(self, timeout: float | None) -> float:
        """When a call of ``timeout`` seconds (None: the default) must end, on the loop's
        clock; RuntimeError once the backend is closed."""
        if self.closed:
            raise RuntimeError(f"this {type(self).__name__} is closed")
        return self._kit.now() + self._seconds(timeout)


class AsyncDPMSubscription(AsyncSubscription):
    """A running stream: iterate :meth:`readings`, then :meth:`stop` (or use ``async with``);
    or, made with a callback, a stream delivered to it until :meth:`stop`.

    ``exc`` is the :class:`ConnectionLost` that ended a dead stream, else None.
    """

    dropped: int

    def __init__(
        self,
        backend: AsyncDPMBackend,
        driver: StreamDriver,
        callback: ReadingCallback | None = None,
        on_error: ErrorCallback | None = None,
        fresh: Freshness | None = None,
    ) -> None:
        self._backend = backend
        self._fresh = fresh  # the bound on lateness, if any
        self._kit = backend._kit
        self._link: _Link | None = None  # None between a broken connection and the next
        self._plan: ListPlan | None = None  # the list running on _link
        # the error the driver gave up with, for the next wait to raise (after what came first)
        self._lost: Ending | None = None
        self._driver = driver
        self._callback = callback
        self._on_error = on_error
        self.drfs = list(driver.drfs)
        self._buffer: deque[Reading | Gap] = deque()
        self._stopping = self._kit.event()  # set by stop(): it cuts a reconnection pause short
        self._connecting: Any = None  # the deadline scope of a reconnection under way
        self.stopped = False
        self.exc: Ending | None = None
        self.dropped = 0  # nothing is turned away: readings wait in an unbounded buffer

    def readings(self, timeout: float | None = None) -> _Readings:
        """``(reading, self)`` pairs until :meth:`stop`, or until no reading comes for ``timeout``.

        ``timeout`` is seconds to wait for each next reading (None waits
        forever, 0 yields only what already arrived). If the server breaks
        the connection or falls silent past its heartbeats (or does not start
        the list in that time), the subscription yields an open :class:`Gap`
        at once, connects again (a connection attempt may outlast ``timeout``)
        and yields the closed gap when the list runs; with reconnection off or
        out of attempts it
        stops and raises :class:`ConnectionLost` (after passing it to
        ``on_error``, if given). Use with ``async for``; leaving the loop
        early needs no clean-up. A callback subscription has no readings to
        iterate: :class:`RuntimeError`.
        """
        if self._callback is not None:
            raise RuntimeError("this subscription delivers to its callback; it has no readings()")
        return _Readings(self, timeout)

    async def _deliver(self, callback: ReadingCallback) -> None:
        """The delivery task of a callback subscription: each reading to ``callback`` until
        the stream stops, then its death, if it died, to ``on_error``."""
        try:
            while (reading := await self._next_reading(None)) is not None:
                await self._call(callback, reading)
        except ConnectionLost as exc:  # the driver gave up
            await self._report(exc)
        except Exception as exc:  # a bug: it ends this stream, never the task group
            if self.stopped:  # stop() from another task, mid-receive: the end asked for
                return
            await self._halt()
            self.exc = ConnectionLost(f"the stream of {summary(self.drfs)} broke: {exc!r}")
            self.exc.__cause__ = exc
            await self._report(self.exc)

    async def _report(self, error: Ending) -> None:
        """Tell ``on_error`` that the stream died; with no one to tell, log it."""
        if self._on_error is not None:
            await self._call(self._on_error, error)
        elif self._callback is not None:
            log.error("%s (no on_error callback was given)", error)

    async def _call(
        self, function: Callable[[Any, AsyncDPMSubscription], object], argument: object
    ) -> None:
        try:
            result = function(argument, self)
            if inspect.isawaitable(result):
                await result
        except Exception:
            # a bug in a callback must not end the stream that calls it
            log.exception("a callback of the stream of %s raised", summary(self.drfs))

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
        is over or the stream stopped. Raises the driver's error (ConnectionLost) once it
        gave up, ending the stream."""
        if self._lost is not None:
            await self._halt()
            self.exc = self._lost
            raise self._lost
        link, plan, driver = self._link, self._plan, self._driver
        if link is None or plan is None:
            return await self._reconnect(deadline)
        until, cause = driver.wait(link.client.overdue_at, deadline)
        try:
            async with self._kit.fail_at(until):
                made = await link.pump()
        except self._kit.closed:  # stop() from another task closed the connection
            return False
        except TimeoutError as exc:  # before OSError: it is one
            if self.stopped or cause is None:
                return False  # the caller's wait is over; the stream goes on
            await self._broke(cause, exc)
            return True
        except self._backend._broken as exc:
            if self.stopped:  # stop() from another task closed the connection
                return False
            await self._broke(describe(exc), exc)
            return True
        items = arrived(driver, made, plan.started)
        self._buffer.extend(admitted(self._fresh, items, lambda: link.full))
        return not self.stopped

    async def _broke(self, cause: str, exc: BaseException) -> None:
        """Drop the dead connection, buffer the open gap of the outage and note when to try
        again; if never, keep the driver's error for the next wait to raise."""
        link, self._link = self._link, None
        if link is not None:
            await link.abort()
        step = self._driver.broke(cause, datetime.now(UTC), self._kit.now(), error=exc)
        if isinstance(step, GiveUp):
            self._lost = step.error
        elif step.gap is not None:
            self._buffer.append(step.gap)

    async def _halt(self) -> None:
        """End the stream without a word to the server: its connection is dropped."""
        self.stopped = True
        self._stopping.set()
        self._backend._subscriptions.discard(self)
        link, self._link = self._link, None
        if link is not None:
            await link.abort()

    async def _reconnect(self, deadline: float | None) -> bool:
        """Wait for the next attempt and make it, unless ``deadline`` comes first."""
        step = self._driver.next_step(self._kit.now(), deadline)
        if isinstance(step, Wait):
            with contextlib.suppress(TimeoutError):  # the pause is over
                async with self._kit.fail_at(step.until):
                    await self._stopping.wait()
            if not step.then_connect:
                return False
        if self.stopped:
            return False
        try:
            await self._connect(self._kit.now() + self._backend.timeout)
        except self._backend._broken as exc:  # TimeoutError included: it is an OSError
            # stop() may have run in another task during the await; the casts keep mypy
            # from holding on to the check above (which would make this unreachable)
            if cast(bool, self.stopped):  # stop() cut the attempt short
                return False
            await self._broke(describe(exc), exc)
        return True

    async def _attempt(self, deadline: float) -> None:
        """The first connection, made by subscribe() by ``deadline``: a failure is the
        stream's first outage, from that moment (its open gap the first item)."""
        try:
            await self._connect(deadline)
        except self._backend._broken as exc:  # TimeoutError included: it is an OSError
            await self._broke(describe(exc), exc)

    async def _connect(self, deadline: float) -> None:
        """Connect and send the list by ``deadline`` (stop() cuts it short); the closed gap
        of an outage comes when the list runs."""
        at = datetime.now(UTC)
        try:
            async with self._kit.fail_at(deadline) as scope:
                self._connecting = scope
                link, plan = await self._backend._open_stream(self.drfs)
        except TimeoutError as exc:
            raise TimeoutError("no DPM list within the timeout") from exc
        finally:
            self._connecting = None
        if self.stopped:  # stop() ran while this connected
            await link.abort()
            return
        self._link, self._plan = link, plan
        self._driver.sent(at, self._kit.now())

    async def stop(self) -> None:
        """Stop the stream (``StopList``) and close its connection; later calls do nothing."""
        if self.stopped:
            return
        self.stopped = True
        self._stopping.set()
        if self._connecting is not None:  # a server that never answers must not hold it up
            self._kit.expire(self._connecting)
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
    """What :meth:`AsyncDPMSubscription.readings` returns.

    A class rather than an async generator, so that breaking out of an
    ``async for`` leaves nothing to finalize (no ``aclosing`` needed).
    """

    def __init__(self, subscription: AsyncDPMSubscription, timeout: float | None) -> None:
        self._subscription = subscription
        self._timeout = timeout
        self._over = False

    def __aiter__(self) -> _Readings:
        return self

    async def __anext__(self) -> tuple[Reading | Gap, AsyncDPMSubscription]:
        if not self._over:
            try:
                reading = await self._subscription._next_reading(self._timeout)
            except ConnectionLost as exc:  # the stream ended
                self._over = True
                await self._subscription._report(exc)
                raise
            if reading is not None:
                return reading, self._subscription
            self._over = True
        raise StopAsyncIteration
