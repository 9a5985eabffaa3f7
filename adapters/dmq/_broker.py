"""The broker connection and the I/O thread that owns it: every DMQ job runs here.

pika's ``BlockingConnection`` is not thread-safe, so a backend has **one I/O
thread** that owns its one broker connection and every channel on it (one
channel per job), rather than a connection per job: one TCP connection and
one AMQP heartbeat however many reads run. Callers, from any number of
threads, hand a job and its signed INIT (a :class:`Prepared`) to
:meth:`Broker.submit` and wait on a :class:`ReadOp` or :class:`WriteOp` with
their own deadline. The I/O thread declares the job's exchange and queue,
publishes, feeds every delivery to the job (the pure logic is
:mod:`acnet_proto.services.dmq`), sends each job's ``H`` keep-alive every
5 s, notices silent servers and closes idle write sessions.

If the connection breaks, every job on it fails with
:class:`~acnet_proto.errors.ConnectionLost`; a stream whose connection failed
(rather than was refused or closed) reconnects on a thread of its own (see
:mod:`acnet_proto.adapters.dmq.subscription`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeGuard, TypeVar

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from acnet_proto.adapters._streams import JOIN_PATIENCE
from acnet_proto.adapters.kerberos import KerberosContext
from acnet_proto.errors import AuthenticationError, ConnectionLost
from acnet_proto.services.dmq import (
    DMQ_LOGIN_REQUIRED,
    DMQ_SECURITY_VIOLATION,
    REPLY_BINDINGS,
    Publish,
    ReadJob,
    SettingJob,
    StreamJob,
    drop_message,
    heartbeat_message,
)
from acnet_proto.status import Status
from acnet_proto.streams.reconnect import summary
from acnet_proto.types import WriteResult

if TYPE_CHECKING:  # for annotations only: both modules import this one at run time
    from acnet_proto.adapters.dmq.backend import DMQBackend
    from acnet_proto.adapters.dmq.subscription import DMQSubscription

__all__ = [
    "BROKER_REFUSALS",
    "DISCONNECTED",
    "GRACE",
    "START_FAILURES",
    "Broker",
    "Prepared",
    "ReadOp",
    "WriteOp",
    "job_failure",
    "new_id",
    "refused",
]

log = logging.getLogger(__name__)

DISCONNECTED = Status.from_name("ACNET_DISCONNECTED")
_REFUSED_CREDENTIALS = (DMQ_SECURITY_VIOLATION, DMQ_LOGIN_REQUIRED)
# The broker refusing the login: connecting again would be refused again.
BROKER_REFUSALS = (
    pika.exceptions.AuthenticationError,
    pika.exceptions.ProbableAuthenticationError,
    pika.exceptions.ProbableAccessDeniedError,
)
# What starting a stream's job raises when the broker cannot be reached or the connection fails.
START_FAILURES = (pika.exceptions.AMQPError, OSError, TimeoutError, ConnectionLost)
# Longest the I/O thread sleeps: bounds how late a keep-alive or a silence is noticed.
_TICK = 0.25
# How long a caller waits for the I/O thread to tidy up after its own deadline passed.
GRACE = 2.0

_T = TypeVar("_T")


def new_id() -> str:
    return str(uuid.uuid4())


def refused(failure: Status | None) -> TypeGuard[Status]:
    return failure in _REFUSED_CREDENTIALS


def _worth_reconnecting(cause: BaseException | None) -> bool:
    """True if ``cause`` is the connection itself failing, which connecting again may mend."""
    return isinstance(cause, (pika.exceptions.AMQPConnectionError, OSError)) and not isinstance(
        cause, BROKER_REFUSALS
    )


# ---------------------------------------------------------------- what callers wait on


@dataclass(eq=False)
class ReadOp:
    job: ReadJob
    done: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    error: BaseException | None = None


@dataclass(eq=False)
class WriteOp:
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
    waiters: dict[int, tuple[WriteOp, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A job with its exchange, its signed INIT, and the context that signed it."""

    exchange: str
    init: Publish
    signer: KerberosContext


# ---------------------------------------------------------------- the I/O thread


class Broker:
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
        self.reads: dict[str, ReadOp] = {}
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
            for write_op, _ in session.waiters.values():
                write_op.fail(lost)
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

    def start_read(self, op: ReadOp, prepared: Prepared) -> None:
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

    def start_stream(self, subscription: DMQSubscription, prepared: Prepared) -> None:
        """Start the stream's job; after an outage, its :class:`Gap` goes before any reading."""
        if subscription._stop_requested:
            return  # stopped while it reconnected: its job is not wanted
        job = subscription._job

        def handle(key: str, body: bytes, correlation_id: str | None, now: float) -> None:
            made = job.receive(key, body, correlation_id, now)
            subscription._deliver([reading for _, reading in made])
            if job.failure is not None:
                subscription._end(job_failure(job.failure, subscription.drfs))
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
        op: WriteOp,
        groups: Mapping[str, list[tuple[int, str, bytes]]],
        prepared: Mapping[str, tuple[SettingJob, Prepared]],
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

    def _open_session(self, job: SettingJob, prepared: Prepared) -> _Session:
        def handle(key: str, body: bytes, correlation_id: str | None, now: float) -> None:
            settled = job.receive(key, body, correlation_id, now)
            # credentials refused at the INIT: the callers get AuthenticationError
            refusal = job_failure(job.failure, [job.init_drf]) if refused(job.failure) else None
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
                session.live.exchange, self.backend.host_address, session.signer, new_id
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

    def withdraw(self, op: WriteOp) -> None:
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
        for ticket, result in session.job.fail(DISCONNECTED):
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


def job_failure(failure: Status, drfs: Sequence[str]) -> Exception:
    if refused(failure):
        return AuthenticationError(
            f"the DMQ server refused the Kerberos credentials for {summary(drfs)}: {failure}"
        )
    return ConnectionLost(f"the DMQ server ended the job for {summary(drfs)}: {failure}")
