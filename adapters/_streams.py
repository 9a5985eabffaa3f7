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
import threading
import time
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
from acnet_proto.types import Reading

__all__ = [
    "JOIN_PATIENCE",
    "DefaultTimeout",
    "StreamRegistry",
    "ThreadedSubscription",
    "arrived",
    "describe",
    "resume",
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


def describe(failure: BaseException) -> str:
    """A failure's text for a gap or a message: its ``str``, else its type's name."""
    return str(failure) or type(failure).__name__


class ThreadedSubscription(QueuedSubscription):
    """A :class:`QueuedSubscription` fed by another thread; ``_cond`` guards its state.

    The feeding thread pushes under ``_cond`` and notifies it, as does
    whatever sets ``_ended`` or ``_stop_requested``.
    """

    def __init__(
        self,
        drfs: list[str],
        callback: ReadingCallback | None,
        on_error: ErrorCallback | None,
        queue: ReadingQueue,
    ) -> None:
        super().__init__(drfs, callback, on_error, queue)
        self._cond = threading.Condition()

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
                reading = self._queue.pop()
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
