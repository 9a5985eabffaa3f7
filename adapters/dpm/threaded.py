"""DPM over TCP for threaded programs: pooled connections for reads, a thread per stream.

::

    from acnet_proto.adapters.dpm.threaded import DPMBackend

    with DPMBackend("localhost", 6802) as backend:        # or acnet_proto.dpm(...)
        backend.read("M:OUTTMP")                          # from any number of threads
        backend.get_many(["M:OUTTMP", "Z:ACLTS1[0:4]"])
        with backend.subscribe(["M:OUTTMP@p,1000"]) as stream:
            for reading, handle in stream.readings(timeout=5):
                print(reading.value)

Reads borrow a ready connection from a pool of at most ``pool_size`` (made
on demand, kept after use), send the whole list in one write, wait for every
entry until the total deadline, then stop and clear the list and give the
connection back. A connection that failed or was left mid-list is closed,
never pooled; an idle one found closed by the server when borrowed is
dropped, and a read that failed on it before any reply is retried once on
another (reads are safe to repeat).

Each :meth:`DPMBackend.subscribe` opens a connection of its own, read by a
thread of its own. Readings go to a bounded queue (10,000 by default): the
iterator takes them from there, or in ``DispatchMode.WORKER`` a worker
thread of the subscription's own hands them to the callback, so a slow
callback never stalls the socket. When the queue is full new readings are
dropped and counted in :attr:`DPMSubscription.dropped` (a warning is logged
at the first). In ``DispatchMode.DIRECT`` the reader thread calls the
callback itself: nothing is queued or dropped, and a slow callback slows the
stream. A stream whose connection dies (the server closed it, sent bytes
that break the protocol, or missed several 2 s heartbeats) connects again,
its reader thread pausing between attempts as
:class:`~acnet_proto.streams.reconnect.Reconnect` says (exponential backoff with
jitter; ``stop()`` cuts a pause short), sends its list again. The consumer
hears of it at once, from an open :class:`~acnet_proto.streams.reconnect.Gap`
delivered when the connection is found dead, and gets the closed gap when
the list runs again; a list the server does not start within the same
three heartbeat periods counts as a dead connection too, and so does a
server that cannot be reached when subscribing.
With ``reconnect=False``, or once the attempts run out, it ends with
:class:`~acnet_proto.errors.ConnectionLost`, passed to ``on_error``, raised
by ``readings()``, and logged if neither is there to see it.

:meth:`DPMBackend.close` stops every stream and joins its threads, and
closes the pool.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import selectors
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from acnet_proto import drf as _drf
from acnet_proto.adapters._streams import (
    JOIN_PATIENCE,
    StreamRegistry,
    ThreadedSubscription,
    arrived,
    describe,
    freshness,
    resume,
    waiting,
)
from acnet_proto.adapters.dpm._blocking import (
    _BROKEN,
    _left,
    _Link,
    apply_settings,
    open_stream,
    run_plan,
)
from acnet_proto.api.auth import Auth, AuthHolder
from acnet_proto.api.backend import (
    DEFAULT_QUEUE_SIZE,
    Backend,
    DispatchMode,
    ErrorCallback,
    ReadingCallback,
    ReadingQueue,
    check_callbacks,
    setting_pairs,
)
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
from acnet_proto.errors import ConnectionLost, ProtocolError
from acnet_proto.plans.lists import ListPlan, ReadBatch
from acnet_proto.plans.settings import dpm_write_batch
from acnet_proto.streams.driver import Ending, GiveUp, StreamDriver, Wait, heartbeat_driver
from acnet_proto.streams.reconnect import Gap, Reconnect, summary
from acnet_proto.streams.staleness import DEFAULT_MAX_AGE, Freshness
from acnet_proto.types import Reading, WriteResult

__all__ = ["DPMBackend", "DPMHTTPBackend", "DPMSubscription", "DispatchMode"]

log = logging.getLogger(__name__)


#: Seconds a pooled link may sit idle and still be lent out without a look at its socket.
_LOOK_AFTER = 1.0


def _still_open(link: _Link) -> bool:
    """Take whatever an idle link has waiting (heartbeats); False if the server closed it."""
    try:
        while True:
            link.pump_for(0)
    except TimeoutError:
        return link.client.usable
    except (OSError, ProtocolError):
        return False


class _Pool:
    """At most ``size`` connections, lent out or idle; thread-safe.

    A loan takes the lock twice (out and back) and waits on the condition
    only when every connection is lent out; the borrower does the I/O itself.
    """

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host = host
        self.port = port
        self.size = size
        self._idle: list[tuple[_Link, float]] = []  # and when each came back (monotonic)
        self._lent = 0  # links lent out, or being made for a borrower
        self._lock = threading.Lock()
        self._returned = threading.Condition(self._lock)
        self._closed = False

    def borrow(self, deadline: float) -> tuple[_Link, bool]:
        """A ready link, and whether it was used before; :meth:`give_back` ends the loan.

        Raises TimeoutError if every link stays lent out until ``deadline``, and
        what connecting raises.
        """
        with self._lock:
            if self._lent >= self.size and not self._returned.wait_for(
                self._has_room, _left(deadline)
            ):
                raise TimeoutError(
                    f"all {self.size} pooled connections stayed busy until the deadline"
                )
            self._lent += 1
        try:
            while (idle := self._take_idle()) is not None:
                link, since = idle
                # A link back within the second is taken as it is (a read that finds it
                # closed is made again on a new one); an older one is looked at first.
                if time.monotonic() - since < _LOOK_AFTER or _still_open(link):
                    return link, True
                link.close()
            return _Link(self.host, self.port, deadline), False
        except BaseException:
            self._end_loan(None)
            raise

    def give_back(self, link: _Link, intact: bool) -> None:
        """End the loan of ``link``: kept for the next if ``intact`` (the read ran to its end)
        and its list is over, else closed."""
        if not (intact and link.client.plan is None and link.client.usable):
            link.close()
            self._end_loan(None)
        else:
            self._end_loan(link)

    def _has_room(self) -> bool:
        return self._lent < self.size

    def _take_idle(self) -> tuple[_Link, float] | None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the backend is closed")
            # the most recently used: the likeliest to be alive
            return self._idle.pop() if self._idle else None

    def _end_loan(self, keep: _Link | None) -> None:
        with self._lock:
            self._lent -= 1
            if keep is not None and not self._closed:
                self._idle.append((keep, time.monotonic()))
                keep = None
            self._returned.notify()
        if keep is not None:
            keep.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for link, _ in idle:
            link.close()


class DPMSubscription(ThreadedSubscription):
    """One stream on a connection of its own; see the module docstring for its threads."""

    def __init__(
        self,
        backend: DPMBackend,
        driver: StreamDriver,
        callback: ReadingCallback | None,
        on_error: ErrorCallback | None,
        mode: DispatchMode,
        queue: ReadingQueue,
        fresh: Freshness | None = None,
    ) -> None:
        super().__init__(list(driver.drfs), callback, on_error, queue, fresh)
        self._backend = backend
        # the connection and its list; None between a dead connection and the next
        self._link: _Link | None = None
        self._plan: ListPlan | None = None
        # the driver's answer to the first attempt's failure (made by subscribe()), for the
        # reader to carry out: the outage began then
        self._first: Wait | GiveUp | None = None
        self._driver = driver
        # the callback the reader thread calls itself (DIRECT mode), else None
        self._direct: ReadingCallback | None = callback if mode is DispatchMode.DIRECT else None
        # stop() wakes the reader out of select() through this pair, so that
        # the reader alone touches the engine (and sends the StopList)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_lock = threading.Lock()
        name = f"acnet-stream {summary(self.drfs)}"
        self._reader = threading.Thread(target=self._read, name=f"{name} reader", daemon=True)
        self._worker = None
        if callback is not None and self._direct is None:
            self._worker = threading.Thread(
                target=self._work, args=(callback,), name=f"{name} worker", daemon=True
            )

    def _start(self) -> None:
        self._reader.start()
        if self._worker is not None:
            self._worker.start()

    def stop(self) -> None:
        """Stop the stream (StopList, then close), and join its threads; idempotent."""
        with self._cond:
            first = not self._stop_requested
            self._stop_requested = True
            self._clear()
            self._cond.notify_all()
        if first:
            with self._wake_lock, contextlib.suppress(OSError):  # closed: the reader is gone
                self._wake_w.send(b"\0")
        current = threading.current_thread()
        for thread in (self._reader, self._worker):
            if thread is None or thread is current:
                continue  # stop() from a callback: the thread ends when the callback returns
            thread.join(JOIN_PATIENCE)
            if thread.is_alive():
                log.warning("%s still runs %s s after stop()", thread.name, JOIN_PATIENCE)
        self._backend._forget(self)

    # -- the reader thread -----------------------------------------------------------

    def _read(self) -> None:
        error: Ending | None = None
        try:
            self._stream()
        except ConnectionLost as exc:  # the driver gave up
            error = exc
        except Exception as exc:  # OSError, ProtocolError, or a bug: the stream is dead either way
            error = ConnectionLost(f"the stream of {summary(self.drfs)} broke: {exc}")
            error.__cause__ = exc
        finally:
            # whatever happened, the link goes and every waiter hears the stream ended
            with contextlib.suppress(OSError):
                self._close_link(polite=error is None)
            self._finish(error)

    def _stream(self) -> None:
        """Pump one connection after another until stopped, or until the driver gives up.

        Each outage is told at once (its open gap, delivered by :func:`resume`)."""
        driver = self._driver
        step, self._first = self._first, None
        while True:
            if step is None:
                try:
                    self._pump()
                    return  # stopped
                except _BROKEN as exc:
                    self._drop_link()
                    step = self._broke(exc)
            if not resume(driver, step, self._connect, self._stopped_after, _BROKEN, self._deliver):
                return
            step = None

    def _attempt(self) -> None:
        """The first connection, made by subscribe(): a failure is the stream's first outage,
        from that moment; the reader tells it."""
        try:
            self._connect()
        except _BROKEN as exc:
            self._first = self._broke(exc)

    def _broke(self, exc: Exception) -> Wait | GiveUp:
        """The driver's answer to the connection (or an attempt to make one) dying of ``exc``,
        now."""
        return self._driver.broke(describe(exc), datetime.now(UTC), time.monotonic(), error=exc)

    def _connect(self) -> None:
        backend = self._backend
        deadline = backend._deadline(None)
        self._link, self._plan = open_stream(
            backend.host, backend.port, self._driver, deadline, backend.heartbeat_period
        )

    def _drop_link(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            link.close()

    def _stopped_after(self, seconds: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._stop_requested, seconds)

    def _pump(self) -> None:
        """Deliver what the connection brings until stopped; raises TimeoutError (with the
        driver's cause) when it is found dead of silence or of a list never started."""
        link, plan, driver = self._link, self._plan, self._driver
        assert link is not None and plan is not None  # _pump runs on a connection
        with selectors.DefaultSelector() as selector:
            selector.register(link.sock, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            more = functools.partial(waiting, link.sock)
            while True:
                until, cause = driver.wait(link.client.overdue_at)
                wait = None if until == math.inf else max(0.0, until - time.monotonic())
                ready = selector.select(wait)
                if self._stop_requested:
                    return
                if not ready:
                    raise TimeoutError(cause)
                try:
                    made = link.pump_for(0)
                except TimeoutError:
                    continue  # readable, yet nothing to read: a spurious wakeup
                self._deliver_all(self._admit(arrived(driver, made, plan.started), more))

    def _deliver(self, item: Reading | Gap) -> None:
        self._deliver_all((item,))

    def _deliver_all(self, items: Sequence[Reading | Gap]) -> None:
        """Hand ``items`` to the callback, or queue them for ``readings()`` (all at once: a
        socket read brings hundreds)."""
        if self._direct is None:
            self._queue_all(items)
            return
        for item in items:
            if self._stop_requested:
                return
            self._call(self._direct, item)

    def _close_link(self, polite: bool) -> None:
        link = self._link
        if link is not None:
            if polite:
                with contextlib.suppress(OSError, ProtocolError):  # it is closing either way
                    now = time.monotonic()
                    link.send(link.client.end(now), now + self._backend.timeout)
            link.close()
        with self._wake_lock:
            self._wake_w.close()
        self._wake_r.close()

    def _finish(self, error: Ending | None) -> None:
        with self._cond:
            self._ended = True
            if error is not None and not self._stop_requested:
                self._exc = error
            self._cond.notify_all()
        if self._exc is not None and self._worker is None:
            self._report(self._exc)
        # with a worker, the worker reports, after the readings that came first

    # -- callbacks ---------------------------------------------------------------------

    def _work(self, callback: ReadingCallback) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(self._ready)
                if self._stop_requested:
                    return
                if not len(self._queue):
                    break
                reading = self._take()
            self._call(callback, reading)
        if self._exc is not None:
            self._report(self._exc)


class DPMBackend(AuthHolder, StreamRegistry, Backend):
    """DPM over TCP (the seeds' ``DPMHTTPBackend``), safe to share between threads.

    ``host``/``port``: the DPM proxy; ``pool_size``: most connections for
    reads at once (more concurrent reads wait, within their timeout);
    ``timeout``: the default total timeout of an operation, in seconds;
    ``heartbeat_period``: as :class:`~acnet_proto.adapters.dpm.sync.SyncClient`'s.
    No connection is made until the first operation.
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
        heartbeat_period: float = HEARTBEAT_PERIOD,
    ) -> None:
        super().__init__()
        self.auth = auth
        self.role = role
        self.heartbeat_period = check_timeout(heartbeat_period, "heartbeat_period")
        self._writer: _Link | None = None
        self._write_lock = threading.Lock()
        self._host = check_host(host)
        self._port = check_port(port)
        self._pool = _Pool(self._host, self._port, check_pool_size(pool_size))
        self.timeout = check_timeout(timeout)

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self._port

    @property
    def pool_size(self) -> int:
        return self._pool.size

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"DPMBackend({self._host!r}, {self._port}, pool_size={self.pool_size}, {state})"

    # -- reads ---------------------------------------------------------------------------

    def get_many(
        self, drfs: Sequence[str | _drf.DataRequest], timeout: float | None = None
    ) -> list[Reading]:
        """Read every DRF once; see :meth:`Backend.get_many`. Thread-safe."""
        batch = ReadBatch(drfs)
        deadline = self._deadline(timeout)
        self._check_open()
        try:
            self._run(batch, deadline)
        except TimeoutError as exc:
            raise batch.timed_out(self._seconds(timeout), exc) from exc
        except (OSError, ProtocolError) as exc:
            raise batch.disconnected(f"{self._host}:{self._port}: {exc}") from exc
        return batch.readings()

    def _run(self, batch: ReadBatch, deadline: float) -> None:
        pool = self._pool
        while True:
            link, reused = pool.borrow(deadline)
            intact = False
            try:
                run_plan(link, batch, deadline)
                intact = True
                return
            except (OSError, ProtocolError) as exc:
                if isinstance(exc, TimeoutError) or not batch.may_repeat(reused):
                    raise
                log.debug("a pooled connection to %s was closed; reading again", self._host)
            finally:
                pool.give_back(link, intact)

    # -- settings --------------------------------------------------------------------------

    def write_many(
        self, settings: Sequence[tuple[Any, Any]] | Mapping[Any, Any], timeout: float | None = None
    ) -> list[WriteResult]:
        """Apply several settings in one ``ApplySettings``; results in input order.

        Needs ``auth=KerberosAuth()`` and ``role=``. Settings share one
        connection, authenticated once and reused. If the connection breaks
        after the settings left, :class:`SettingOutcomeUnknown` is raised and
        nothing is sent again.
        """
        self._check_open()
        batch = dpm_write_batch(setting_pairs(settings), self.auth, self.role)
        deadline = self._deadline(timeout)
        with self._write_lock:
            link, self._writer = self._writer, None
            self._writer = apply_settings(link, batch, self.auth, self._host, self._port, deadline)
        return batch.write_results()

    # -- streams ---------------------------------------------------------------------------

    def subscribe(
        self,
        drfs: Sequence[str | _drf.DataRequest],
        callback: ReadingCallback | None = None,
        on_error: ErrorCallback | None = None,
        dispatch_mode: DispatchMode = DispatchMode.WORKER,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        reconnect: bool | Reconnect = True,
        max_age: float | None = DEFAULT_MAX_AGE,
    ) -> DPMSubscription:
        """Stream ``drfs`` on a new connection; see :meth:`Backend.subscribe`.

        Makes the first connection (within the backend's timeout) and sends
        the list before returning. A server that cannot be reached is not
        raised here: it is the stream's first outage, told as any later one
        (an open :class:`Gap`, then reconnection; with ``reconnect=False`` the
        stream ends with :class:`ConnectionLost` from ``readings()`` or to
        ``on_error``). ``dispatch_mode`` picks the thread that runs
        ``callback``; ``queue_size`` bounds the readings held for a slow
        consumer. ``reconnect``: if the connection dies, connect again with
        the default :class:`Reconnect` policy (True), a policy of your own,
        or not at all (False: the stream ends with :class:`ConnectionLost`).
        ``max_age``: the staleness bound, as
        :func:`~acnet_proto.adapters._streams.freshness` says.
        """
        self._check_open()
        check_callbacks(callback, on_error)
        if not isinstance(dispatch_mode, DispatchMode):
            raise TypeError(f"dispatch_mode must be a DispatchMode, not {dispatch_mode!r}")
        queue = ReadingQueue(queue_size)
        driver = heartbeat_driver(drfs, reconnect, self.heartbeat_period, self._host, self._port)
        fresh = freshness(driver, max_age)
        subscription = DPMSubscription(
            self, driver, callback, on_error, dispatch_mode, queue, fresh
        )
        try:
            subscription._attempt()
        except BaseException:
            subscription._close_link(polite=False)
            raise
        self._register(subscription, lambda: subscription._close_link(polite=False))
        subscription._start()
        return subscription

    def close(self) -> None:
        """Stop every stream (joining its threads) and close every pooled connection."""
        self._stop_streams()
        self._pool.close()
        with self._write_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None


#: pacsys's name for the same backend.
DPMHTTPBackend = DPMBackend
