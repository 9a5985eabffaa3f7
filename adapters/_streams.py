"""What the thread-fed subscriptions and their backends share, and the default timeout of
every backend here.

A stream's thread (DPM's reader, gRPC's
:class:`~acnet_proto.adapters.grpc._common.StreamThread`, DMQ's I/O thread) pushes
readings into the queue of a :class:`ThreadedSubscription` and notifies
``_cond``; the consumer's :meth:`ThreadedSubscription.readings` waits on it.
The backend keeps its live streams in a :class:`StreamRegistry`, which stops
them all when the backend closes. When a stream's connection dies, its
thread carries out the :class:`~acnet_proto.streams.driver.StreamDriver`'s
decisions with :func:`resume`: the one reconnection loop of every blocking
stream, which tells the consumer of an outage (the open gap) as it begins.
A backend resolves each call's ``timeout`` with :class:`DefaultTimeout`.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from acnet_proto.api.backend import (
    ErrorCallback,
    QueuedSubscription,
    ReadingCallback,
    ReadingQueue,
    Subscription,
)
from acnet_proto.api.config import check_timeout
from acnet_proto.streams.driver import GiveUp, StreamDriver, Wait
from acnet_proto.streams.reconnect import Gap, summary
from acnet_proto.streams.staleness import Freshness
from acnet_proto.types import Reading

__all__ = [
    "JOIN_PATIENCE",
    "DefaultTimeout",
    "StreamRegistry",
    "ThreadedSubscription",
    "admitted",
    "arrived",
    "describe",
    "freshness",
    "resume",
    "waiting",
    "warn_dropping",
]

log = logging.getLogger(__name__)

#: How long stop() waits for a stream's threads. They only block on I/O that
#: stop() interrupts, or in a user callback; one stuck longer is left, and logged.
JOIN_PATIENCE = 10.0


def warn_dropping(drfs: Sequence[str], queue: ReadingQueue) -> None:
    """Log that a stream's consumer fell a whole queue behind (once per stream: callers
    call it at the first drop)."""
    log.warning(
        "the stream of %s is dropping readings: its consumer is %d readings behind "
        "(see .dropped for how many)",
        summary(drfs),
        queue.limit,
    )


def resume(
    driver: StreamDriver,
    step: Wait | GiveUp,
    connect: Callable[[], object],
    stopped_after: Callable[[float], bool],
    broken: tuple[type[Exception], ...],
    deliver: Callable[[Gap], object],
    cause_of: Callable[[Exception], tuple[str, bool]] | None = None,
) -> bool:
    """Carry out ``step``, the driver's answer to a dead connection, and the steps after it,
    on this thread, until a new connection is made.

    The open gap of an outage goes to ``deliver`` first, before any pause.
    ``stopped_after(seconds)`` pauses, True if the stream was stopped
    meanwhile; ``connect()`` makes an attempt (and tells the driver it
    :meth:`~StreamDriver.sent` the list), which fails with one of ``broken``;
    ``cause_of(exc)`` says what such a failure is called and whether another
    attempt could mend it (by default: its text, and yes); the driver itself
    ends the stream on an :class:`~acnet_proto.errors.AuthenticationError`.
    Returns True once connected (the closed gap comes when the list runs),
    False if stopped; raises the driver's error (caused by the last failure) when
    it gives up.
    """
    while True:
        if isinstance(step, GiveUp):
            raise step.error
        if step.gap is not None:
            deliver(step.gap)
        pause = max(0.0, step.until - time.monotonic())
        cause = driver.recovery.cause
        log.info("the stream of %s broke (%s); again in %.3f s", summary(driver.drfs), cause, pause)
        if stopped_after(pause):
            return False
        try:
            connect()
        except broken as exc:
            text, retry = cause_of(exc) if cause_of is not None else (describe(exc), True)
            now = time.monotonic()
            step = driver.broke(text, datetime.now(UTC), now, retry=retry, error=exc)
            continue
        return True


def arrived(
    driver: StreamDriver, made: Sequence[tuple[int, Reading]], started: bool
) -> Sequence[Reading | Gap]:
    """What to deliver of the ``(index, reading)`` pairs that bytes from a DPM server made,
    once its list ``started`` (see :meth:`StreamDriver.received`).

    The clock is read only when there is something to tell: most bytes are heartbeats.
    """
    if not made and not driver.starting:
        return ()
    return driver.received([reading for _, reading in made], datetime.now(UTC), started=started)


def freshness(driver: StreamDriver, max_age: float | None) -> Freshness:
    """The staleness bound of ``driver``'s stream, from ``subscribe(..., max_age=)``.

    ``max_age``: readings more than that many seconds late, with newer ones
    waiting behind them, are skipped and counted in a :class:`Gap`
    (``docs/streaming.md``); None delivers every reading however late.
    Anything but positive, finite seconds or None raises
    :class:`~acnet_proto.errors.ConfigurationError` naming ``max_age``.
    """
    return Freshness(driver.drfs, max_age, driver.recovery.server)


def admitted(
    fresh: Freshness | None, items: Sequence[Reading | Gap], more: Callable[[], bool]
) -> Sequence[Reading | Gap]:
    """What to deliver of a batch just decoded from a stream's connection, under its bound
    ``fresh`` (None: all of it); ``more()`` says whether more data waits behind the batch.
    See :meth:`~acnet_proto.streams.staleness.Freshness.admit`."""
    if fresh is None or fresh.max_age is None or not items:
        return items
    return fresh.admit(items, time.time(), more)


def waiting(sock: socket.socket) -> bool:
    """Whether more bytes already wait on ``sock`` (asked only of a stream found late).

    A peek rather than ``select``, which refuses descriptors past 1023 (a
    process with many streams has them). A closed connection counts as
    waiting: its end is there to read.
    """
    try:
        sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        pass  # the error itself waits to be read
    return True


def describe(failure: BaseException) -> str:
    """A failure's text for a gap or a message: its ``str``, else its type's name."""
    return str(failure) or type(failure).__name__


class ThreadedSubscription(QueuedSubscription):
    """A :class:`QueuedSubscription` fed by another thread; ``_cond`` guards its state.

    The feeding thread pushes under ``_cond`` (with :meth:`_enqueue`) and
    notifies it, as does whatever sets ``_ended`` or ``_stop_requested``;
    the consumer takes with :meth:`_take`. With ``fresh`` (a bound on
    lateness; see :mod:`~acnet_proto.streams.staleness`), the feeding
    thread passes each batch through :meth:`_admit` first, and what waited
    in the queue past the bound is skipped as it is taken; both change the
    bound's counts, so both run under ``_cond``.
    """

    def __init__(
        self,
        drfs: list[str],
        callback: ReadingCallback | None,
        on_error: ErrorCallback | None,
        queue: ReadingQueue,
        fresh: Freshness | None = None,
    ) -> None:
        super().__init__(drfs, callback, on_error, queue)
        self._cond = threading.Condition()
        self._fresh = fresh if fresh is not None and fresh.max_age is not None else None
        # when each queued item would have been fresh (Freshness.queued_at), with the bound:
        # index for index with the queue
        self._times: deque[float] = deque()

    def _admit(
        self, items: Sequence[Reading | Gap], more: Callable[[], bool]
    ) -> Sequence[Reading | Gap]:
        """What to deliver of a batch the feeding thread just decoded; ``more()`` says
        whether more bytes wait on its connection. Without a bound: ``items``."""
        if self._fresh is None or not items:
            return items
        with self._cond:
            return admitted(self._fresh, items, lambda: self._behind() or more())

    def _behind(self) -> bool:
        """Whether the consumer is behind (under ``_cond``): the queue's head has waited half
        the bound. One that keeps up on average is not, though its queue is seldom empty."""
        fresh, times = self._fresh, self._times
        assert fresh is not None and fresh.max_age is not None  # asked only with a bound
        return bool(times) and times[0] < time.time() - fresh.max_age / 2

    def _queue_all(self, items: Sequence[Reading | Gap]) -> None:
        """Queue ``items`` for ``readings()`` (from the feeding thread): a whole batch under
        one lock and one wake-up; the first reading a full queue drops is warned of, once."""
        with self._cond:
            if self._stop_requested:
                return
            dropped = self._queue.dropped
            if any([self._enqueue(item) for item in items]):
                self._cond.notify_all()
        if not dropped and self._queue.dropped:
            warn_dropping(self.drfs, self._queue)

    def _enqueue(self, item: Reading | Gap) -> bool:
        """Queue ``item`` (under ``_cond``); False if the full queue dropped it."""
        fresh = self._fresh
        if fresh is None:
            return self._queue.push(item)
        if not self._queue.push(item, self._times):
            return False
        self._times.append(fresh.queued_at(time.time()))
        return True

    def _clear(self) -> None:
        """Drop everything queued (under ``_cond``), when the stream stops."""
        self._queue.clear()
        self._times.clear()

    def _take(self) -> Reading | Gap:
        """The next item for the consumer (under ``_cond``; the queue is not empty): the
        oldest, or a gap in place of those at the head that waited past the bound."""
        queue, fresh = self._queue, self._fresh
        if fresh is None:
            return queue.pop()
        times = self._times
        now = time.time()
        late = fresh.late_head(queue, times, now)
        if not late:
            times.popleft()
            return queue.pop()
        skipped = []
        for _ in range(late):
            times.popleft()
            reading = queue.pop()
            assert not isinstance(reading, Gap)  # late_head never counts a gap
            skipped.append(reading)
        return fresh.gap(skipped, now)

    def _ready(self) -> bool:
        return bool(len(self._queue)) or self._ended or self._stop_requested

    def _call(
        self, function: Callable[[Any, ThreadedSubscription], object], argument: object
    ) -> None:
        try:
            function(argument, self)
        except Exception:
            # a bug in a callback must not end the stream that calls it
            log.exception("a callback of the stream of %s raised", summary(self.drfs))

    def _report(self, error: Exception) -> None:
        """Tell ``on_error`` that the stream died; a callback stream with no one to tell logs it."""
        if self._on_error is not None:
            self._call(self._on_error, error)
        elif self._callback is not None:
            log.error("%s (no on_error callback was given)", error)

    def readings(
        self, timeout: float | None = None
    ) -> Iterator[tuple[Reading | Gap, ThreadedSubscription]]:
        """Yield ``(reading, self)`` until :meth:`stop`, or ``timeout`` seconds without one.

        ``timeout`` is the wait for each next reading (None: as long as the
        stream lives; 0: only what has arrived). A stream whose connection
        dies yields an open :class:`Gap` at once and a closed one when it is
        back. If the stream died, what arrived first is yielded, then its
        exception is raised.
        """
        self._check_iterable()
        wait = None if timeout is None else (check_timeout(timeout) if timeout else 0.0)
        while True:
            with self._cond:
                self._cond.wait_for(self._ready, wait)
                if self._stop_requested:
                    return
                if not len(self._queue):
                    if self._exc is not None:
                        raise self._exc
                    return
                reading = self._take()
            yield reading, self


class DefaultTimeout:
    """A backend's default ``timeout`` (seconds), and what a call's own ``timeout`` comes to."""

    timeout: float

    def _seconds(self, timeout: float | None) -> float:
        """The seconds an operation may take: ``timeout`` (checked: positive and finite), or
        the default when None."""
        return self.timeout if timeout is None else check_timeout(timeout)

    def _deadline(self, timeout: float | None) -> float:
        """When an operation of ``timeout`` seconds (None: the default) must end, on the
        monotonic clock."""
        return time.monotonic() + self._seconds(timeout)


class StreamRegistry(DefaultTimeout):
    """A threaded backend's live subscriptions, and whether it is closed (``closed``).

    ``_lock`` guards both (a backend may guard more of its own state with
    it); ``timeout`` is the backend's default timeout. A subscription's
    ``stop()`` calls :meth:`_forget`; the backend's ``close()`` calls
    :meth:`_stop_streams` first.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscriptions: set[Subscription] = set()
        self.closed = False

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError(f"this {type(self).__name__} is closed")

    def _register(self, subscription: Subscription, discard: Callable[[], None]) -> None:
        """Keep ``subscription``; if the backend closed meanwhile, ``discard()`` it and raise."""
        with self._lock:
            closed = self.closed
            if not closed:
                self._subscriptions.add(subscription)
        if closed:
            discard()
            raise RuntimeError(f"this {type(self).__name__} was closed while subscribing")

    def _forget(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions.discard(subscription)

    def _stop_streams(self) -> None:
        """Mark the backend closed, then stop every stream (joining its threads)."""
        with self._lock:
            self.closed = True
            streams = list(self._subscriptions)
        for subscription in streams:  # outside the lock: stop() calls _forget
            subscription.stop()
