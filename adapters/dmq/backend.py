"""DMQ, ACNET over AMQP (RabbitMQ), for threaded programs: the seeds' ``DMQBackend``.

::

    from acnet_proto.adapters.dmq.backend import DMQBackend
    from acnet_proto.adapters.kerberos import KerberosAuth

    with DMQBackend("localhost", 5672, auth=KerberosAuth()) as backend:
        backend.read("M:OUTTMP")
        backend.write("Z:ACLTST", 45.0)
        with backend.subscribe(["M:OUTTMP@p,1000"]) as stream:
            for reading, handle in stream.readings(timeout=5):
                print(reading.value)

Kerberos is required for every operation, reads included: each read,
subscription and write session starts a DMQ job whose INIT carries a fresh
GSS token and a signature (spec §3). Without credentials the constructor
raises :class:`~acnet_proto.errors.AuthenticationError`; an expired ticket
raises it at the next operation.

Threads. pika's ``BlockingConnection`` is not thread-safe, so a backend has
**one I/O thread** that owns its one broker connection and every channel on
it (one channel per job), rather than a connection per job: one TCP
connection and one AMQP heartbeat however many reads run. Callers, from any
number of threads, build their job and its signed INIT in their own thread
(Kerberos may ask the KDC), hand it to the I/O thread, and wait with their
own deadline. The I/O thread declares the job's exchange and queue,
publishes, feeds every delivery to the job (the pure logic is
:mod:`acnet_proto.services.dmq`), sends each job's ``H`` keep-alive every 5 s, notices
silent servers and closes idle write sessions. Subscription callbacks run on
a worker thread of the subscription, never on the I/O thread, so a slow or
blocking callback (even one that calls the backend) cannot stall the other
jobs. If the connection breaks, every job on it fails (reads with
``ACNET_DISCONNECTED``, settings in flight with :class:`SettingOutcomeUnknown`)
and the next call reconnects.

Streams reconnect instead, as the DPM ones do. When the connection under a
stream dies (not when Kerberos or the DMQ server refuses it: those end it at
once), a thread of the stream's own pauses as its
:class:`~acnet_proto.streams.reconnect.Reconnect` policy says (exponential backoff
with jitter; ``stop()`` cuts a pause short), connects again (one new
connection, shared by every stream coming back), starts its job again with a
fresh GSS token and signed INIT, and hands the consumer a
:class:`~acnet_proto.streams.reconnect.Gap` before the first new reading. With
``reconnect=False``, or once the attempts run out, it ends with
:class:`ConnectionLost`, passed to ``on_error``, raised by ``readings()``,
and logged if neither is there to see it.

Writes: settings of one device property share a *write session* (a DMQ
job for its write DRF, e.g. ``Z:ACLTST.SETTING@N``), kept for reuse until
idle for ``write_session_ttl`` seconds. Settings wait in the session until
the server confirms the job, are signed as they are published, and are
answered in order. A setting that timed out before it was sent is withdrawn
(never sent later); one sent and not answered in time reports
``ACNET_REQTMO`` saying it may have been applied.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import pika
import pika.exceptions
from acnet_proto.adapters._streams import (
    JOIN_PATIENCE,
    StreamRegistry,
    ThreadedSubscription,
    warn_dropping,
)
from acnet_proto.adapters.dpm._blocking import _left
from acnet_proto.adapters.kerberos import KerberosAuth, KerberosContext
from pika.adapters.blocking_connection import BlockingChannel

from acnet_proto import drf as _drf
from acnet_proto.api.auth import Auth
from acnet_proto.api.backend import (
    DEFAULT_QUEUE_SIZE,
    Backend,
    ErrorCallback,
    ReadingCallback,
    ReadingQueue,
    check_callbacks,
    setting_pairs,
)
from acnet_proto.api.config import (
    DEFAULT_TIMEOUT,
    check_host,
    check_port,
    check_timeout,
    resolve_endpoint,
)
from acnet_proto.errors import (
    AuthenticationError,
    ConnectionLost,
    SettingOutcomeUnknown,
)
from acnet_proto.pc import daqdata
from acnet_proto.services.dmq import (
    DMQ_LOGIN_REQUIRED,
    DMQ_SECURITY_VIOLATION,
    HEARTBEAT_INTERVAL,
    MAX_IDLE_TIME,
    REPLY_BINDINGS,
    Publish,
    ReadJob,
    SettingJob,
    StreamJob,
    drop_message,
    heartbeat_message,
    service_principal,
    setting_sample,
)
from acnet_proto.status import Status
from acnet_proto.streams.reconnect import Gap, Reconnect, Recovery, reconnect_policy, summary
from acnet_proto.types import Reading, WriteResult

__all__ = ["DMQBackend", "DMQSubscription", "dmq"]

log = logging.getLogger(__name__)

DEFAULT_PORT = 5672
DEFAULT_WRITE_SESSION_TTL = 600.0
APP_ID = "acnet-proto"

_TIMED_OUT = Status.from_name("ACNET_REQTMO")
_DISCONNECTED = Status.from_name("ACNET_DISCONNECTED")
_REFUSED_CREDENTIALS = (DMQ_SECURITY_VIOLATION, DMQ_LOGIN_REQUIRED)
# The broker refusing the login: connecting again would be refused again.
_BROKER_REFUSALS = (
    pika.exceptions.AuthenticationError,
    pika.exceptions.ProbableAuthenticationError,
    pika.exceptions.ProbableAccessDeniedError,
)
# What starting a stream's job raises when the broker cannot be reached or the connection fails.
_START_FAILURES = (pika.exceptions.AMQPError, OSError, TimeoutError, ConnectionLost)
# Longest the I/O thread sleeps: bounds how late a keep-alive or a silence is noticed.
_TICK = 0.25
# How long a caller waits for the I/O thread to tidy up after its own deadline passed.
_GRACE = 2.0

_T = TypeVar("_T")


def _new_id() -> str:
    return str(uuid.uuid4())


def _local_address(host: str, port: int) -> bytes:
    """The address this host reaches the broker from, as raw bytes (``b""`` if unknown).

    A UDP socket "connected" to the broker sends nothing; it only makes the
    kernel pick the route, whose source address the ``host-address`` header
    and the signatures carry.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.connect(address)
            return socket.inet_pton(family, probe.getsockname()[0])
    except OSError as exc:
        log.warning("cannot tell the local address towards %s (%s); sending none", host, exc)
        return b""


def _refused(failure: Status | None) -> bool:
    return failure in _REFUSED_CREDENTIALS


def _worth_reconnecting(cause: BaseException | None) -> bool:
    """True if ``cause`` is the connection itself failing, which connecting again may mend."""
    return isinstance(cause, (pika.exceptions.AMQPConnectionError, OSError)) and not isinstance(
        cause, _BROKER_REFUSALS
    )


# ---------------------------------------------------------------- what callers wait on


@dataclass(eq=False)
class _ReadOp:
    job: ReadJob
    done: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    error: BaseException | None = None


@dataclass(eq=False)
class _WriteOp:
    """One write_many call: a result per setting, filled by the I/O thread."""

    drfs: list[str]
    results: list[WriteResult | None] = field(init=False)
    sent: set[int] = field(default_factory=set)
    done: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    error: BaseException | None = None

    def __post_init__(self) -> None:
        self.results = [None] * len(self.drfs)

    @property
    def complete(self) -> bool:
        with self.lock:
            return all(r is not None for r in self.results)

    def settle(self, index: int, result: WriteResult) -> None:
        with self.lock:
            if self.results[index] is None:
                self.results[index] = result
            if all(r is not None for r in self.results):
                self.done.set()

    def fail(self, error: BaseException) -> None:
        with self.lock:
            if self.error is None:
                self.error = error
            self.done.set()


@dataclass(eq=False)
class _Live:
    """A job running on a channel of the I/O thread."""

    exchange: str
    job: ReadJob | StreamJob | SettingJob
    handle: Callable[[str, bytes, str | None, float], None]
    channel: BlockingChannel | None = None
    last_keepalive: float = 0.0


@dataclass(eq=False)
class _Session:
    """A cached write session: one SettingJob and who waits for its tickets."""

    live: _Live
    job: SettingJob
    signer: KerberosContext
    last_used: float
    waiters: dict[int, tuple[_WriteOp, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A job with its exchange, its signed INIT, and the context that signed it."""

    exchange: str
    init: Publish
    signer: KerberosContext


# ---------------------------------------------------------------- the I/O thread


class _Broker:
    """One broker connection, the thread that owns it, and every job on it.

    Everything but :meth:`submit`, :meth:`start` and :meth:`close` runs on
    the I/O thread.
    """

    def __init__(self, backend: DMQBackend, parameters: pika.ConnectionParameters) -> None:
        self.backend = backend
        self.parameters = parameters
        self.connection: pika.BlockingConnection | None = None
        self.jobs: dict[str, _Live] = {}
        self.sessions: dict[str, _Session] = {}
        self.streams: dict[str, DMQSubscription] = {}
        self.reads: dict[str, _ReadOp] = {}
        self.dead: BaseException | None = None
        self._work: deque[tuple[Callable[[], Any], Future[Any]]] = deque()
        self._arrived: list[tuple[_Live, str, bytes, str | None]] = []
        self._lock = threading.Lock()
        self._closing = False
        self._ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, name="acnet-dmq-io", daemon=True)

    # -- from any thread -------------------------------------------------------------

    def start(self, timeout: float) -> None:
        """Connect; raises what connecting raised (or TimeoutError)."""
        self._thread.start()
        self._ready.result(timeout)

    def submit(self, fn: Callable[[], _T]) -> Future[_T]:
        """Run ``fn`` on the I/O thread; its result or exception comes in the future."""
        future: Future[_T] = Future()
        with self._lock:
            dead = self.dead is not None or self._closing
            if not dead:
                self._work.append((fn, future))
        connection = self.connection
        if dead or connection is None:
            future.set_exception(ConnectionLost(f"the DMQ connection is closed: {self.dead}"))
            return future
        with contextlib.suppress(Exception):  # closed under us: the loop fails the work
            connection.add_callback_threadsafe(_nothing)
        return future

    @property
    def alive(self) -> bool:
        return self.dead is None and not self._closing and self._thread.is_alive()

    def close(self) -> None:
        """Let the queued work finish, then close the connection and join the thread."""
        with self._lock:
            self._closing = True
        connection = self.connection
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.add_callback_threadsafe(_nothing)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(JOIN_PATIENCE)

    # -- the loop --------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self.connection = pika.BlockingConnection(self.parameters)
        except BaseException as exc:
            self.dead = exc
            self._ready.set_exception(exc)
            return
        self._ready.set_result(None)
        cause: BaseException | None = None
        try:
            while True:
                with self._lock:
                    if self._closing and not self._work:
                        break
                self.connection.process_data_events(time_limit=_TICK)
                self._dispatch()
                self._do_work()
                self._tick(time.monotonic())
        except BaseException as exc:
            cause = exc
            log.warning("the DMQ connection failed: %s", exc)
        finally:
            self._die(cause)

    def _dispatch(self) -> None:
        arrived, self._arrived = self._arrived, []
        for live, key, body, correlation_id in arrived:
            if self.jobs.get(live.exchange) is not live:
                continue  # ended while its message waited
            try:
                live.handle(key, body, correlation_id, time.monotonic())
            except pika.exceptions.AMQPConnectionError:
                raise
            except pika.exceptions.AMQPChannelError as exc:
                self._lost(live.exchange, exc)
            except Exception:
                # a bug must not kill the thread every other job depends on
                log.exception("handling a DMQ message on %s failed", live.exchange)

    def _do_work(self) -> None:
        while True:
            with self._lock:
                if not self._work:
                    return
                fn, future = self._work.popleft()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except pika.exceptions.AMQPConnectionError as exc:
                future.set_exception(exc)
                raise
            except BaseException as exc:
                future.set_exception(exc)

    def _die(self, cause: BaseException | None) -> None:
        lost = ConnectionLost(
            f"the DMQ connection to {self.backend.host}:{self.backend.port} "
            + (f"failed: {cause}" if cause is not None else "was closed")
        )
        if cause is not None:
            lost.__cause__ = cause
        with self._lock:
            self.dead = lost
            work, self._work = list(self._work), deque()
        for _, future in work:
            if future.set_running_or_notify_cancel():
                future.set_exception(lost)
        for op in self.reads.values():
            op.error = lost
            op.done.set()
        # streams outlive their connection when they may: each reconnects on a thread of its own
        recoverable = _worth_reconnecting(cause)
        for subscription in self.streams.values():
            if recoverable:
                subscription._broken(lost)
            else:
                subscription._end(lost)
        for session in self.sessions.values():
            for op, _ in session.waiters.values():
                op.fail(lost)
        self.jobs.clear()
        self.reads.clear()
        self.streams.clear()
        self.sessions.clear()
        if self.connection is not None:
            with contextlib.suppress(Exception):
                self.connection.close()

    def _tick(self, now: float) -> None:
        backend = self.backend
        for live in list(self.jobs.values()):
            if now - live.last_keepalive >= backend.keepalive:
                live.last_keepalive = now
                try:
                    self._publish(live, heartbeat_message(live.exchange))
                except pika.exceptions.AMQPChannelError as exc:
                    self._lost(live.exchange, exc)
        for exchange, subscription in list(self.streams.items()):
            if subscription._job.overdue(now, backend.server_silence):
                self.end_stream(exchange)
                # the server forgot the job (restarted, or disposed of it): a new INIT
                # starts it again, as for a lost connection
                subscription._broken(
                    ConnectionLost(
                        f"the DMQ server sent nothing for {backend.server_silence} s on the stream "
                        f"of {summary(subscription.drfs)}: its job is gone"
                    )
                )
        for init_drf, session in list(self.sessions.items()):
            idle = now - session.last_used >= backend.write_session_ttl
            silent = session.job.overdue(now, backend.server_silence)
            if silent or (idle and not session.job.busy):
                self._close_session(init_drf)

    def _lost(self, exchange: str, cause: Exception) -> None:
        """The broker closed a job's channel: that job fails, the others carry on."""
        log.warning("the DMQ job on %s lost its channel: %s", exchange, cause)
        lost = ConnectionLost(f"the broker closed the DMQ job's channel: {cause}")
        lost.__cause__ = cause
        if (op := self.reads.get(exchange)) is not None:
            op.error = lost
            op.done.set()
            self.end_read(exchange)
        elif (subscription := self.streams.get(exchange)) is not None:
            subscription._end(lost)
            self.end_stream(exchange)
        else:
            for init_drf, session in list(self.sessions.items()):
                if session.live.exchange == exchange:
                    self._close_session(init_drf)

    # -- jobs --------------------------------------------------------------------------

    def _open(self, live: _Live, init: Publish) -> None:
        """Declare the job's exchange and queue, consume, publish its INIT."""
        assert self.connection is not None
        channel = self.connection.channel()
        try:
            queue = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
            channel.exchange_declare(live.exchange, exchange_type="topic", auto_delete=True)
            for key in REPLY_BINDINGS:
                channel.queue_bind(queue, live.exchange, routing_key=key)

            def collect(ch: Any, method: Any, props: Any, body: bytes) -> None:
                # inside process_data_events: note it now, handle it after
                self._arrived.append((live, method.routing_key, body, props.correlation_id))

            channel.basic_consume(queue, collect, auto_ack=True)
            live.channel = channel
            # keep-alives and silence are counted from the start
            live.last_keepalive = live.job.heard_at = time.monotonic()
            self._publish(live, init)
        except BaseException:
            with contextlib.suppress(pika.exceptions.AMQPError):
                channel.close()
            raise
        # replies that came meanwhile wait in _arrived: registered now, before they are handled
        self.jobs[live.exchange] = live

    def _publish(self, live: _Live, message: Publish) -> None:
        channel = live.channel
        if channel is None or not _is_open(live):
            return
        properties = pika.BasicProperties(
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            reply_to=message.reply_to,
            app_id=message.app_id,
            headers=dict(message.headers) if message.headers else None,
        )
        channel.basic_publish(message.exchange, message.routing_key, message.body, properties)

    def _end(self, exchange: str) -> None:
        """Drop the job (``D``) and close its channel (its queue goes with it)."""
        live = self.jobs.pop(exchange, None)
        if live is None or live.channel is None:
            return
        with contextlib.suppress(pika.exceptions.AMQPChannelError):
            if live.channel.is_open:
                self._publish(live, drop_message(exchange))
                live.channel.close()

    # reads

    def start_read(self, op: _ReadOp, prepared: _Prepared) -> None:
        def handle(key: str, body: bytes, correlation_id: str | None, now: float) -> None:
            with op.lock:
                op.job.receive(key, body, correlation_id, now)
                if op.job.done:
                    op.done.set()

        self.reads[prepared.exchange] = op
        try:
            self._open(_Live(prepared.exchange, op.job, handle), prepared.init)
        except BaseException:
            del self.reads[prepared.exchange]
            raise

    def end_read(self, exchange: str) -> None:
        self.reads.pop(exchange, None)
        self._end(exchange)

    # streams

    def start_stream(self, subscription: DMQSubscription, prepared: _Prepared) -> None:
        """Start the stream's job; after an outage, its :class:`Gap` goes before any reading."""
        if subscription._stop_requested:
            return  # stopped while it reconnected: its job is not wanted
        job = subscription._job

        def handle(key: str, body: bytes, correlation_id: str | None, now: float) -> None:
            made = job.receive(key, body, correlation_id, now)
            subscription._deliver([reading for _, reading in made])
            if job.failure is not None:
                subscription._end(_job_failure(job.failure, subscription.drfs))
                self.end_stream(prepared.exchange)

        self.streams[prepared.exchange] = subscription
        try:
            self._open(_Live(prepared.exchange, job, handle), prepared.init)
        except BaseException:
            del self.streams[prepared.exchange]
            raise
        # the replies are handled after this returns: the gap is queued first
        subscription._resumed()

    def end_stream(self, exchange: str) -> None:
        self.streams.pop(exchange, None)
        self._end(exchange)

    # writes

    def enqueue_writes(
        self,
        op: _WriteOp,
        groups: Mapping[str, list[tuple[int, str, bytes]]],
        prepared: Mapping[str, tuple[SettingJob, _Prepared]],
    ) -> None:
        """Hand each group of settings to its device's session, opening sessions as needed."""
        now = time.monotonic()
        for init_drf, settings in groups.items():
            session = self.sessions.get(init_drf)
            if session is not None and not _is_open(session.live):
                self._close_session(init_drf)
                session = None
            if session is None:
                session = self._open_session(*prepared[init_drf])
            session.last_used = now
            for index, drf, body in settings:
                session.waiters[session.job.submit(drf, body)] = (op, index)
            self._flush(init_drf, session)

    def _open_session(self, job: SettingJob, prepared: _Prepared) -> _Session:
        def handle(key: str, body: bytes, correlation_id: str | None, now: float) -> None:
            settled = job.receive(key, body, correlation_id, now)
            # credentials refused at the INIT: the callers get AuthenticationError
            refusal = _job_failure(job.failure, [job.init_drf]) if _refused(job.failure) else None
            for ticket, result in settled:
                waiter = session.waiters.pop(ticket, None)
                if waiter is None:
                    continue
                if refusal is not None:
                    waiter[0].fail(refusal)
                else:
                    waiter[0].settle(waiter[1], result)
            if job.failure is not None:
                self._close_session(job.init_drf)
            else:
                self._flush(job.init_drf, session)

        live = _Live(prepared.exchange, job, handle)
        session = _Session(live, job, prepared.signer, time.monotonic())
        self._open(live, prepared.init)
        self.sessions[job.init_drf] = session
        return session

    def _flush(self, init_drf: str, session: _Session) -> None:
        """Publish the settings the session may send now, signed in publishing order."""
        job = session.job
        before = len(job.sent)
        try:
            outgoing = job.take_outgoing(
                session.live.exchange, self.backend.host_address, session.signer, _new_id
            )
        except AuthenticationError as exc:  # the context outlived its ticket
            for op, _ in session.waiters.values():
                op.fail(exc)
            session.waiters.clear()
            self._close_session(init_drf)
            return
        for (ticket, _), message in zip(job.sent[before:], outgoing):
            waiter = session.waiters.get(ticket)
            if waiter is not None:
                with waiter[0].lock:
                    waiter[0].sent.add(waiter[1])
            self._publish(session.live, message)

    def withdraw(self, op: _WriteOp) -> None:
        """``op``'s caller gave up: withdraw its unsent settings, forget its waiters."""
        for session in self.sessions.values():
            tickets = [t for t, (owner, _) in session.waiters.items() if owner is op]
            session.job.cancel(tickets)
            for ticket in tickets:
                del session.waiters[ticket]

    def _close_session(self, init_drf: str) -> None:
        """End a write session; settings still waiting in it fail with ``ACNET_DISCONNECTED``."""
        session = self.sessions.pop(init_drf, None)
        if session is None:
            return
        sent = {ticket for ticket, _ in session.job.sent}
        for ticket, result in session.job.fail(_DISCONNECTED):
            waiter = session.waiters.pop(ticket, None)
            if waiter is not None:
                note = (
                    "sent, but the write session closed before it was answered: "
                    "it may have been applied"
                    if ticket in sent
                    else "not sent: the write session closed"
                )
                waiter[0].settle(waiter[1], replace(result, message=note))
        self._end(session.live.exchange)

    def close_all(self) -> None:
        """End every job politely (``D``), before the connection closes."""
        for init_drf in list(self.sessions):
            self._close_session(init_drf)
        for exchange in list(self.jobs):
            self._end(exchange)


def _is_open(live: _Live) -> bool:
    return live.channel is not None and live.channel.is_open


def _nothing() -> None:
    """A callback that only wakes the I/O thread."""


def _job_failure(failure: Status, drfs: Sequence[str]) -> Exception:
    if _refused(failure):
        return AuthenticationError(
            f"the DMQ server refused the Kerberos credentials for {summary(drfs)}: {failure}"
        )
    return ConnectionLost(f"the DMQ server ended the job for {summary(drfs)}: {failure}")


# ---------------------------------------------------------------- subscriptions


class DMQSubscription(ThreadedSubscription):
    """One stream: a DMQ job of its own on the backend's connection.

    Readings go to a bounded queue (``queue_size``; new ones are dropped and
    counted in :attr:`dropped` when the consumer is that far behind). With a
    callback, a worker thread of the subscription calls it; without one,
    iterate :meth:`readings`. If the broker connection breaks, a thread of
    the subscription's own waits as its :class:`Recovery` says (``stop()``
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
        recovery: Recovery,
        callback: ReadingCallback | None,
        on_error: ErrorCallback | None,
        queue_size: int,
    ) -> None:
        super().__init__(job.drfs, callback, on_error, ReadingQueue(queue_size))
        self._job = job
        self._backend = backend
        self._recovery = recovery
        # the broker and exchange of the job now running; _cond guards them (stop() vs reconnect)
        self._broker: _Broker | None = None
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
                done.result(_GRACE)
        current = threading.current_thread()
        for thread in (self._reconnector, self._worker):
            if thread is not None and thread.is_alive() and thread is not current:
                thread.join(JOIN_PATIENCE)
        self._backend._forget(self)

    def _started(self, broker: _Broker, exchange: str) -> bool:
        """The job is about to start as ``exchange`` on ``broker``; False if stopped already."""
        with self._cond:
            if self._stop_requested:
                return False
            self._broker, self._exchange = broker, exchange
            return True

    # -- reconnection (the dying I/O thread, then a thread of the subscription's own) ----

    def _broken(self, error: ConnectionLost) -> None:
        """The connection under the job died: reconnect after a pause, or end the stream."""
        with self._cond:
            if self._ended or self._stop_requested:
                return
            delay = self._recovery.broke(str(error), datetime.now(UTC), time.monotonic())
            if delay is None:
                thread = None
            else:
                name = f"acnet-dmq-reconnect {summary(self.drfs)}"
                thread = threading.Thread(
                    target=self._reconnect, args=(delay,), name=name, daemon=True
                )
                self._reconnector = thread
        if thread is None:
            self._give_up(error)
            return
        log.info(
            "the stream of %s broke (%s); reconnecting in %.3f s", summary(self.drfs), error, delay
        )
        thread.start()

    def _reconnect(self, delay: float) -> None:
        """Pause, then start the job on a (new) connection; again, until it runs or gives up."""
        while True:
            with self._cond:
                if self._cond.wait_for(lambda: self._stop_requested, delay):
                    return
            try:
                self._backend._start_stream(self)
                return
            except _START_FAILURES as exc:
                failure: Exception = exc
            except AuthenticationError as exc:  # Kerberos refused: trying again cannot help
                self._end(exc)
                return
            except Exception as exc:  # the backend closed meanwhile (RuntimeError), or a bug
                lost = ConnectionLost(f"the stream of {summary(self.drfs)} ended: {exc}")
                lost.__cause__ = exc
                self._end(lost)
                return
            with self._cond:
                if self._stop_requested:
                    return
                next_delay = self._recovery.broke(
                    f"reconnecting failed: {failure}", datetime.now(UTC), time.monotonic()
                )
            if next_delay is None or isinstance(failure, _BROKER_REFUSALS):
                self._give_up(failure)
                return
            log.info(
                "reconnecting the stream of %s failed (%s); again in %.3f s",
                summary(self.drfs),
                failure,
                next_delay,
            )
            delay = next_delay

    def _give_up(self, cause: Exception) -> None:
        lost = self._recovery.lost()
        lost.__cause__ = cause
        self._end(lost)

    def _resumed(self) -> None:
        """On the I/O thread, the job just started: after an outage, queue its :class:`Gap`."""
        with self._cond:
            if not self._recovery.down:
                return  # the first start
            gap = self._recovery.resumed(datetime.now(UTC))
        log.info("the stream of %s is back: %s", summary(self.drfs), gap)
        self._push([gap])

    # -- from the I/O thread -----------------------------------------------------------

    def _deliver(self, readings: list[Reading]) -> None:
        if not readings:
            return
        with self._cond:
            self._recovery.heard()
        self._push(readings)

    def _push(self, readings: Sequence[Reading | Gap]) -> None:
        with self._cond:
            if self._stop_requested:
                return
            before = self._queue.dropped
            for reading in readings:
                self._queue.push(reading)
            self._cond.notify_all()
        if before == 0 and self._queue.dropped:
            warn_dropping(self.drfs, self._queue)

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


# ---------------------------------------------------------------- the backend


class DMQBackend(StreamRegistry, Backend):
    """DMQ over a RabbitMQ broker (the seeds' ``DMQBackend``), safe to share between threads.

    ``auth`` must be a :class:`~acnet_proto.adapters.kerberos.KerberosAuth`:
    DMQ needs Kerberos for every operation. ``service`` is the DMQ service
    principal (default ``daeset/bd/<host>@FNAL.GOV``). ``timeout`` is the
    default total timeout of an operation in seconds. ``username``,
    ``password`` and ``vhost`` log in to the broker; ``amqp_heartbeat`` is
    the AMQP heartbeat in seconds. ``keepalive`` (the ``H`` period, 5 s) and
    ``server_silence`` (how long without a word from the server before a
    stream or session counts as gone, 30 s) follow the DMQ server's timing;
    change them only to match a server that differs. ``host_address`` (raw
    address bytes) overrides the address reported in ``host-address``.
    No connection is made until the first operation.
    """

    def __init__(
        self,
        host: str = "localhost",
        port: int = DEFAULT_PORT,
        auth: Auth | None = None,
        *,
        service: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        vhost: str = "/",
        username: str = "guest",
        password: str = "guest",
        write_session_ttl: float = DEFAULT_WRITE_SESSION_TTL,
        keepalive: float = HEARTBEAT_INTERVAL,
        server_silence: float = MAX_IDLE_TIME,
        amqp_heartbeat: int = 30,
        host_address: bytes | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
    ) -> None:
        if auth is None:
            raise AuthenticationError(
                "DMQ needs Kerberos for every operation, reads included: "
                "pass auth=KerberosAuth() (after kinit)"
            )
        if not isinstance(auth, KerberosAuth):
            raise AuthenticationError(
                f"DMQ needs Kerberos, not {type(auth).__name__}: pass auth=KerberosAuth()"
            )
        super().__init__()
        self.host = check_host(host)
        self.port = check_port(port)
        self.timeout = check_timeout(timeout)
        self.write_session_ttl = check_timeout(write_session_ttl, "write_session_ttl")
        self.keepalive = check_timeout(keepalive, "keepalive")
        self.server_silence = check_timeout(server_silence, "server_silence")
        self.service = service if service is not None else service_principal(self.host)
        self.queue_size = queue_size
        ReadingQueue(queue_size)  # checks it now
        self._auth = auth
        self._credentials = pika.PlainCredentials(username, password)
        self._vhost = vhost
        self._amqp_heartbeat = amqp_heartbeat
        self._host_address = host_address
        self._broker: _Broker | None = None

    @property
    def principal(self) -> str:
        """Who the operations run as (the Kerberos principal)."""
        return self._auth.principal

    @property
    def host_address(self) -> bytes:
        """The raw address bytes sent in ``host-address`` and signed."""
        if self._host_address is None:
            self._host_address = _local_address(self.host, self.port)
        return self._host_address

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"DMQBackend({self.host!r}, {self.port}, principal={self.principal!r}, {state})"

    # -- plumbing ------------------------------------------------------------------------

    def _connected(self, deadline: float) -> _Broker:
        """The live broker connection, connecting (again) if there is none."""
        if not self._lock.acquire(timeout=_left(deadline)):
            raise TimeoutError("another thread is still connecting to the broker")
        try:
            self._check_open()
            broker = self._broker
            if broker is not None and broker.alive:
                return broker
            left = _left(deadline)
            parameters = pika.ConnectionParameters(
                self.host,
                self.port,
                virtual_host=self._vhost,
                credentials=self._credentials,
                heartbeat=self._amqp_heartbeat,
                connection_attempts=1,
                socket_timeout=left,
                stack_timeout=left,
                blocked_connection_timeout=self.timeout,
            )
            broker = _Broker(self, parameters)
            try:
                broker.start(left)
            except BaseException:
                broker.close()  # a connection that arrives late closes itself
                raise
            self._broker = broker
            return broker
        finally:
            self._lock.release()

    def _prepare(self, job: ReadJob | StreamJob | SettingJob) -> _Prepared:
        """A fresh GSS context for ``job`` and its signed INIT (in the caller's thread)."""
        context = self._auth.context(self.service, mutual=False)
        token = context.step(None)
        if not context.complete or not token:
            raise AuthenticationError(
                f"the Kerberos context for {self.service} is not complete after one token; "
                "DMQ has room for only one"
            )
        exchange = _new_id()
        init = job.init_message(
            exchange=exchange,
            message_id=_new_id(),
            app_id=APP_ID,
            host_address=self.host_address,
            token=token,
            signer=context,
        )
        return _Prepared(exchange, init, context)

    # -- reads ---------------------------------------------------------------------------

    def get_many(
        self, drfs: Sequence[str | _drf.DataRequest], timeout: float | None = None
    ) -> list[Reading]:
        """Read every DRF once over one DMQ job; see :meth:`Backend.get_many`. Thread-safe.

        The server refusing the credentials raises :class:`AuthenticationError`.
        """
        job = ReadJob(drfs)
        deadline = self._deadline(timeout)
        self._check_open()
        prepared = self._prepare(job)
        op = _ReadOp(job)
        broker: _Broker | None = None
        try:
            broker = self._connected(deadline)
            broker.submit(lambda: broker.start_read(op, prepared)).result(_left(deadline))
            finished = op.done.wait(_left(deadline))
        except TimeoutError as exc:
            with op.lock:
                raise job.timed_out() from exc
        except (pika.exceptions.AMQPError, OSError, ConnectionLost) as exc:
            with op.lock:
                raise job.disconnected(exc) from exc
        finally:
            if broker is not None:
                broker.submit(lambda: broker.end_read(prepared.exchange))
        with op.lock:
            if _refused(job.failure):
                raise _job_failure(job.failure, job.drfs)
            if job.done:
                return job.readings()
            if op.error is not None:
                raise job.disconnected(op.error) from op.error
            assert not finished
            raise job.timed_out()

    # -- writes --------------------------------------------------------------------------

    def write_many(
        self, settings: Sequence[tuple[Any, Any]] | Mapping[Any, Any], timeout: float | None = None
    ) -> list[WriteResult]:
        """Apply settings, one write session per device property; results in input order.

        Values become DAQData samples (see :func:`acnet_proto.services.dmq.setting_sample`);
        bad DRFs or values raise before anything is sent. A setting not
        answered by the deadline gets ``ACNET_REQTMO``; if the connection
        breaks with settings sent and unanswered, :class:`SettingOutcomeUnknown`.
        """
        pairs = setting_pairs(settings)
        if not pairs:
            return []
        stamp = int(time.time() * 1000)
        groups: dict[str, list[tuple[int, str, bytes]]] = {}
        for index, (drf, value) in enumerate(pairs):
            body = daqdata.encode(setting_sample(drf, value, stamp))
            groups.setdefault(_drf.to_write_drf(drf), []).append((index, drf, body))
        deadline = self._deadline(timeout)
        self._check_open()
        # every call proves its credentials, even when cached sessions will carry it
        prepared = {}
        for init_drf in groups:
            job = SettingJob(init_drf)
            prepared[init_drf] = (job, self._prepare(job))
        op = _WriteOp([drf for drf, _ in pairs])
        broker: _Broker | None = None
        try:
            broker = self._connected(deadline)
            enqueued = broker.submit(lambda: broker.enqueue_writes(op, groups, prepared))
            enqueued.result(_left(deadline))
            op.done.wait(max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            pass
        except (pika.exceptions.AMQPError, OSError, ConnectionLost) as exc:
            op.fail(exc)
        withdrawn = True
        if broker is not None and not op.complete:
            # never let a setting whose caller gave up go out later
            try:
                broker.submit(lambda: broker.withdraw(op)).result(_GRACE)
            except Exception:
                withdrawn = False
        return self._write_results(op, withdrawn)

    def _write_results(self, op: _WriteOp, withdrawn: bool) -> list[WriteResult]:
        """The results, with the unanswered ones filled in (``withdrawn``: the unsent ones
        are known never to go out)."""
        with op.lock:
            results, sent, error = list(op.results), set(op.sent), op.error
        if not withdrawn:
            sent = set(range(len(results)))  # the I/O thread did not answer: assume the worst
        if isinstance(error, AuthenticationError):
            raise error
        unanswered = [i for i, r in enumerate(results) if r is None]
        if error is not None and any(i in sent for i in unanswered):
            raise SettingOutcomeUnknown([op.drfs[i] for i in unanswered if i in sent], str(error))
        out = []
        for index, result in enumerate(results):
            if result is None:
                drf = op.drfs[index]
                if error is not None:
                    note = f"not sent: the DMQ connection failed: {error}"
                    result = WriteResult(drf, _DISCONNECTED.facility, _DISCONNECTED.error, note)
                elif index in sent:
                    note = "sent, but not answered before the timeout: it may have been applied"
                    result = WriteResult(drf, _TIMED_OUT.facility, _TIMED_OUT.error, note)
                else:
                    note = "timed out before it could be sent: not applied"
                    result = WriteResult(drf, _TIMED_OUT.facility, _TIMED_OUT.error, note)
            out.append(result)
        return out

    # -- streams -------------------------------------------------------------------------

    def subscribe(
        self,
        drfs: Sequence[str | _drf.DataRequest],
        callback: ReadingCallback | None = None,
        on_error: ErrorCallback | None = None,
        *,
        queue_size: int | None = None,
        reconnect: bool | Reconnect = True,
    ) -> DMQSubscription:
        """Stream ``drfs`` over a DMQ job of their own; see :meth:`Backend.subscribe`.

        Returns once the job's INIT is published (within the backend's
        timeout); a broker that cannot be reached raises
        :class:`ConnectionLost`. Callbacks run on the subscription's worker
        thread. ``queue_size`` (default: the backend's) bounds the readings
        held for a slow consumer.
        ``reconnect``: if the connection dies later, connect again with the
        default :class:`Reconnect` policy (True), a policy of your own, or
        not at all (False: the stream ends with :class:`ConnectionLost`).
        """
        check_callbacks(callback, on_error)
        policy = reconnect_policy(reconnect)
        job = StreamJob(drfs)
        self._check_open()
        size = self.queue_size if queue_size is None else queue_size
        subscription = DMQSubscription(
            self, job, Recovery(job.drfs, policy), callback, on_error, size
        )
        try:
            self._start_stream(subscription)
        except BaseException as exc:
            # The I/O thread may start the job yet (and reconnect it if the connection
            # dies); stopped, it never streams to a handle nobody holds.
            subscription.stop()
            if isinstance(exc, _START_FAILURES):
                raise ConnectionLost(
                    f"cannot start the stream of {summary(job.drfs)} on the DMQ broker "
                    f"{self.host}:{self.port}: {exc}"
                ) from exc
            raise
        self._register(subscription, subscription.stop)
        if subscription._worker is not None:
            subscription._worker.start()
        return subscription

    def _start_stream(self, subscription: DMQSubscription) -> None:
        """Start the subscription's job, with a fresh signed INIT, connecting if need be.

        Within the backend's timeout; raises one of ``_START_FAILURES`` if the
        broker cannot be reached, :class:`AuthenticationError` from Kerberos.
        """
        deadline = self._deadline(None)
        prepared = self._prepare(subscription._job)
        broker: _Broker | None = None
        try:
            broker = self._connected(deadline)
            if not subscription._started(broker, prepared.exchange):
                return
            broker.submit(lambda: broker.start_stream(subscription, prepared)).result(
                _left(deadline)
            )
        except _START_FAILURES:
            if broker is not None:  # the I/O thread may start it yet: end it there
                broker.submit(lambda: broker.end_stream(prepared.exchange))
            raise

    # -- the end -------------------------------------------------------------------------

    def close(self) -> None:
        """Stop every stream, end every job (``D``) and close the connection; idempotent."""
        self._stop_streams()
        with self._lock:  # after the flag, which keeps _connected from making another
            broker, self._broker = self._broker, None
        if broker is not None:
            broker.submit(broker.close_all)
            broker.close()


def dmq(
    host: str | None = None,
    port: int | None = None,
    auth: Auth | None = None,
    timeout: float | None = None,
    **options: Any,
) -> DMQBackend:
    """A DMQ backend, as the seeds' ``pacsys.dmq()`` (``auth=KerberosAuth()`` is required).

    ``host``/``port`` default to ``ACNET_DMQ_HOST``/``ACNET_DMQ_PORT`` (then
    ``PACSYS_DMQ_*``; port 5672); other keywords go to :class:`DMQBackend`.
    """
    host, port = resolve_endpoint("DMQ", host, port, DEFAULT_PORT, "--dmq-url amqp://...")
    if timeout is not None:
        options["timeout"] = timeout
    return DMQBackend(host, port, auth, **options)
