"""What the thread-fed subscriptions share: a queue of readings waited on under a condition.

A stream's thread (gRPC's :class:`~acnet_proto.adapters.grpc.StreamThread`,
DMQ's I/O thread) pushes readings into the queue and notifies ``_cond``;
the consumer's :meth:`ThreadedSubscription.readings` waits on it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from acnet_proto.backend import ErrorCallback, QueuedSubscription, ReadingCallback, ReadingQueue
from acnet_proto.config import check_timeout
from acnet_proto.types import Reading

__all__ = ["ThreadedSubscription"]


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

    def readings(
        self, timeout: float | None = None
    ) -> Iterator[tuple[Reading, ThreadedSubscription]]:
        """Yield ``(reading, self)`` until :meth:`stop`, or ``timeout`` seconds without one.

        ``timeout`` is the wait for each next reading (None: as long as the
        stream lives; 0: only what has arrived). If the stream died, what
        arrived first is yielded, then its exception is raised.
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
