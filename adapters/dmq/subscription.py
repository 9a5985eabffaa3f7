"""One DMQ stream: :class:`DMQSubscription`, its callback worker and its reconnection.

Each stream is a DMQ job of its own on the backend's connection. Its
callbacks run on a worker thread of the subscription, never on the I/O
thread, so a slow or blocking callback (even one that calls the backend)
cannot stall the other jobs.

Streams reconnect, as the DPM ones do. When the connection under a stream
dies (not when Kerberos or the DMQ server refuses it: those end it at
once), the consumer gets an open :class:`~acnet_proto.streams.reconnect.Gap`
at once; a thread of the stream's own pauses as its
:class:`~acnet_proto.streams.reconnect.Reconnect` policy says (exponential backoff
with jitter; ``stop()`` cuts a pause short), connects again (one new
connection, shared by every stream coming back), starts its job again with a
fresh GSS token and signed INIT, and hands the consumer the closed gap at the
server's first word on the new job, before the first new reading. A broker
that cannot be reached when subscribing is the stream's first outage. With
``reconnect=False``, or once the attempts run out, it ends with
:class:`ConnectionLost`, passed to ``on_error``, raised by ``readings()``,
and logged if neither is there to see it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from acnet_proto.adapters._streams import (
    JOIN_PATIENCE,
    ThreadedSubscription,
    resume,
)
from acnet_proto.adapters.dmq._broker import BROKER_REFUSALS, GRACE, START_FAILURES
from acnet_proto.api.backend import ErrorCallback, ReadingCallback, ReadingQueue
from acnet_proto.errors import AuthenticationError, ConnectionLost
from acnet_proto.services.dmq import StreamJob
from acnet_proto.streams.driver import GiveUp, StreamDriver, Wait
from acnet_proto.streams.reconnect import Gap, summary
from acnet_proto.types import Reading

if TYPE_CHECKING:  # for annotations only: the backend imports this module at run time
    from acnet_proto.adapters.dmq._broker import Broker
    from acnet_proto.adapters.dmq.backend import DMQBackend

__all__ = ["DMQSubscription"]

log = logging.getLogger(__name__)


def cause_of(failure: Exception) -> tuple[str, bool]:
    """A job that failed to start (again): what a restart's failure is called, and whether
    another attempt could mend it (not when the broker refused our credentials)."""
    return f"reconnecting failed: {failure}", not isinstance(failure, BROKER_REFUSALS)


class DMQSubscription(ThreadedSubscription):
    """One stream: a DMQ job of its own on the backend's connection.

    Readings go to a bounded queue (``queue_size``; new ones are dropped and
    counted in :attr:`dropped` when the consumer is that far behind). With a
    callback, a worker thread of the subscription calls it; without one,
    iterate :meth:`readings`. If the broker connection breaks, a thread of
    the subscription's own waits as its :class:`StreamDriver` says (``stop()``
    cuts the pause short), connects again, starts the job again with a fresh
    signed INIT, and delivers a :class:`Gap` before the next reading; a job
    the server fell silent on (``server_silence``) is started again the same
    way. The stream ends with :class:`ConnectionLost` when reconnection is
    off or out of tries, or the server ends the job, or with
    :class:`AuthenticationError` if the credentials are refused; it is
    passed to ``on_error``, raised by ``readings()``, or logged.
    """

    def __init__(
        self,
        backend: DMQBackend,
        job: StreamJob,
        driver: StreamDriver,
        callback: ReadingCallback | None,
        on_error: ErrorCallback | None,
        queue_size: int,
    ) -> None:
        super().__init__(job.drfs, callback, on_error, ReadingQueue(queue_size))
        self._job = job
        self._backend = backend
        self._driver = driver
        # the broker and exchange of the job now running; _cond guards them (stop() vs reconnect)
        self._broker: Broker | None = None
        self._exchange = ""
        self._reconnector: threading.Thread | None = None
        self._worker: threading.Thread | None = None
        # callbacks never run on the I/O thread: on_error too gets the worker
        if callback is not None or on_error is not None:
            name = f"acnet-dmq-stream {summary(self.drfs)}"
            self._worker = threading.Thread(target=self._work, name=name, daemon=True)

    def stop(self) -> None:
        """End the job (``D``), any reconnection, and the worker; idempotent."""
        with self._cond:
            first = not self._stop_requested
            self._stop_requested = True
            self._queue.clear()
            self._cond.notify_all()
            broker, exchange = self._broker, self._exchange
        if first and broker is not None:
            done = broker.submit(lambda: broker.end_stream(exchange))
            with contextlib.suppress(Exception):  # a dead connection ended the job already
                done.result(GRACE)
        current = threading.current_thread()
        for thread in (self._reconnector, self._worker):
            if thread is not None and thread.is_alive() and thread is not current:
                thread.join(JOIN_PATIENCE)
        self._backend._forget(self)

    def _started(self, broker: Broker, exchange: str) -> bool:
        """The job is about to start as ``exchange`` on ``broker``; False if stopped already."""
        with self._cond:
            if self._stop_requested:
                return False
            self._broker, self._exchange = broker, exchange
            return True

    # -- reconnection (the dying I/O thread, then a thread of the subscription's own) ----

    def _broken(self, error: ConnectionLost, retry: bool = True) -> None:
        """The connection under the job died (or the first one could not be made): queue the
        open gap and reconnect after a pause, or end the stream. ``retry=False``: another
        attempt could not mend it."""
        with self._cond:
            if self._ended or self._stop_requested:
                return
            now = time.monotonic()
            step = self._driver.broke(str(error), datetime.now(UTC), now, retry=retry, error=error)
            if isinstance(step, GiveUp):
                thread = None
            else:
                name = f"acnet-dmq-reconnect {summary(self.drfs)}"
                thread = threading.Thread(
                    target=self._reconnect, args=(step,), name=name, daemon=True
                )
                self._reconnector = thread
        if thread is None:
            assert isinstance(step, GiveUp)  # only giving up starts no thread
            self._end(step.error)
        else:
            thread.start()

    def _reconnect(self, step: Wait) -> None:
        """Queue the open gap of the outage, pause, then start the job on a (new)
        connection; again, until it runs or the driver gives up. The closed gap is queued on
        the I/O thread at the server's first word on the new job (:meth:`_deliver`), before
        any of its readings."""
        try:
            resume(
                self._driver,
                step,
                lambda: self._backend._start_stream(self),
                self._stopped_after,
                (*START_FAILURES, AuthenticationError),
                self._push_one,
                cause_of,
            )
        except (ConnectionLost, AuthenticationError) as exc:  # the driver gave up
            # (at once for Kerberos refusing the credentials: trying again cannot help)
            self._end(exc)
        except Exception as exc:  # the backend closed meanwhile (RuntimeError), or a bug
            ended = ConnectionLost(f"the stream of {summary(self.drfs)} ended: {exc}")
            ended.__cause__ = exc
            self._end(ended)

    def _stopped_after(self, seconds: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._stop_requested, seconds)

    def _resumed(self) -> None:
        """On the I/O thread, the job's INIT just went out: it runs at the server's first
        word (:meth:`_deliver`)."""
        with self._cond:
            self._driver.sent(datetime.now(UTC), time.monotonic())

    # -- from the I/O thread -----------------------------------------------------------

    def _deliver(self, readings: list[Reading]) -> None:
        """Each message from the server on the job, with the readings it made: any message
        shows the job runs (after an outage, its closed :class:`Gap` goes first)."""
        with self._cond:
            if not readings and not self._driver.starting:
                return
            items = self._driver.received(readings, datetime.now(UTC), started=True)
        if items and isinstance(items[0], Gap):  # a closed gap only ever comes first
            log.info("the stream of %s is back: %s", summary(self.drfs), items[0])
        self._queue_all(items)

    def _push_one(self, item: Reading | Gap) -> None:
        self._queue_all((item,))

    def _end(self, error: Exception) -> None:
        with self._cond:
            if self._ended:
                return
            self._ended = True
            if not self._stop_requested:
                self._exc = error
            self._cond.notify_all()

    # -- the worker (callback mode) -------------------------------------------------------

    def _work(self) -> None:
        def ready() -> bool:
            # without a callback the readings are readings()'s: wait for the end only
            return self._ended or self._stop_requested or bool(self._callback and len(self._queue))

        while True:
            with self._cond:
                self._cond.wait_for(ready)
                if self._stop_requested:
                    return
                if self._callback is None or not len(self._queue):
                    break
                reading = self._queue.pop()
            self._call(self._callback, reading)
        if self._exc is not None:
            self._report(self._exc)
