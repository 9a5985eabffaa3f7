"""The threaded DMQ backend, :class:`DMQBackend`, and the :func:`dmq` factory.

Callers, from any number of threads, build their job and its signed INIT in
their own thread (Kerberos may ask the KDC), hand it to the backend's I/O
thread (:mod:`acnet_proto.adapters.dmq._broker`), and wait with their own
deadline. If the connection breaks, every job on it fails (reads with
``ACNET_DISCONNECTED``, settings in flight with :class:`SettingOutcomeUnknown`)
and the next call reconnects.

Writes: settings of one device property share a *write session* (a DMQ
job for its write DRF, e.g. ``Z:ACLTST.SETTING@N``), kept for reuse until
idle for ``write_session_ttl`` seconds. Settings wait in the session until
the server confirms the job, are signed as they are published, and are
answered in order. A setting that timed out before it was sent is withdrawn
(never sent later); one sent and not answered in time reports
``ACNET_REQTMO`` saying it may have been applied.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pika
import pika.exceptions

from acnet_proto import drf as _drf
from acnet_proto.adapters._streams import StreamRegistry
from acnet_proto.adapters.dmq._broker import (
    DISCONNECTED,
    GRACE,
    START_FAILURES,
    Broker,
    Prepared,
    ReadOp,
    WriteOp,
    job_failure,
    new_id,
    refused,
)
from acnet_proto.adapters.dmq.subscription import DMQSubscription, cause_of
from acnet_proto.adapters.dpm._blocking import _left
from acnet_proto.adapters.kerberos import KerberosAuth
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
    host_port,
    resolve_endpoint,
)
from acnet_proto.errors import (
    AuthenticationError,
    ConnectionLost,
    SettingOutcomeUnknown,
)
from acnet_proto.pc import daqdata
from acnet_proto.services.dmq import (
    HEARTBEAT_INTERVAL,
    MAX_IDLE_TIME,
    ReadJob,
    SettingJob,
    StreamJob,
    service_principal,
    setting_sample,
)
from acnet_proto.status import Status
from acnet_proto.streams.driver import StreamDriver
from acnet_proto.streams.reconnect import Reconnect, reconnect_policy
from acnet_proto.types import Reading, WriteResult

__all__ = ["DMQBackend", "dmq"]

log = logging.getLogger(__name__)

DEFAULT_PORT = 5672
DEFAULT_WRITE_SESSION_TTL = 600.0
APP_ID = "acnet-proto"

_TIMED_OUT = Status.from_name("ACNET_REQTMO")


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
        self._broker: Broker | None = None

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
        # the auth's own repr: self.principal checks the ticket, and a repr must not raise
        return f"DMQBackend({self.host!r}, {self.port}, {self._auth!r}, {state})"

    # -- plumbing ------------------------------------------------------------------------

    def _connected(self, deadline: float) -> Broker:
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
            broker = Broker(self, parameters)
            try:
                broker.start(left)
            except BaseException:
                broker.close()  # a connection that arrives late closes itself
                raise
            self._broker = broker
            return broker
        finally:
            self._lock.release()

    def _prepare(self, job: ReadJob | StreamJob | SettingJob) -> Prepared:
        """A fresh GSS context for ``job`` and its signed INIT (in the caller's thread)."""
        context = self._auth.context(self.service, mutual=False)
        token = context.step(None)
        if not context.complete or not token:
            raise AuthenticationError(
                f"the Kerberos context for {self.service} is not complete after one token; "
                "DMQ has room for only one"
            )
        exchange = new_id()
        init = job.init_message(
            exchange=exchange,
            message_id=new_id(),
            app_id=APP_ID,
            host_address=self.host_address,
            token=token,
            signer=context,
        )
        return Prepared(exchange, init, context)

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
        op = ReadOp(job)
        broker: Broker | None = None
        try:
            broker = self._connected(deadline)
            broker.submit(lambda: broker.start_read(op, prepared)).result(_left(deadline))
            finished = op.done.wait(_left(deadline))
        except TimeoutError as exc:
            with op.lock:
                raise job.timed_out(self._seconds(timeout)) from exc
        except (pika.exceptions.AMQPError, OSError, ConnectionLost) as exc:
            with op.lock:
                raise job.disconnected(exc) from exc
        finally:
            if broker is not None:
                broker.submit(lambda: broker.end_read(prepared.exchange))
        with op.lock:
            if refused(job.failure):
                raise job_failure(job.failure, job.drfs)
            if job.done:
                return job.readings()
            if op.error is not None:
                raise job.disconnected(op.error) from op.error
            assert not finished
            raise job.timed_out(self._seconds(timeout))

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
        op = WriteOp([drf for drf, _ in pairs])
        broker: Broker | None = None
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
                broker.submit(lambda: broker.withdraw(op)).result(GRACE)
            except Exception:
                withdrawn = False
        return self._write_results(op, withdrawn)

    def _write_results(self, op: WriteOp, withdrawn: bool) -> list[WriteResult]:
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
                    result = WriteResult(drf, DISCONNECTED.facility, DISCONNECTED.error, note)
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
        timeout). A broker that cannot be reached is not raised here: it is
        the stream's first outage, told as any later one (an open
        :class:`Gap`, then reconnection; with ``reconnect=False``,
        :class:`ConnectionLost` from ``readings()`` or to ``on_error``).
        Kerberos failing raises :class:`AuthenticationError` here, before any
        I/O. Callbacks run on the subscription's worker thread.
        ``queue_size`` (default: the backend's) bounds the readings held for
        a slow consumer.
        ``reconnect``: if the connection dies later, connect again with the
        default :class:`Reconnect` policy (True), a policy of your own, or
        not at all (False: the stream ends with :class:`ConnectionLost`).
        """
        check_callbacks(callback, on_error)
        policy = reconnect_policy(reconnect)
        job = StreamJob(drfs)
        self._check_open()
        size = self.queue_size if queue_size is None else queue_size
        driver = StreamDriver(job.drfs, policy, server=host_port(self.host, self.port))
        subscription = DMQSubscription(self, job, driver, callback, on_error, size)
        try:
            self._start_stream(subscription)
        except START_FAILURES as exc:
            # the stream's first outage: the handle reports it and reconnects
            where = driver.recovery.server
            lost = ConnectionLost(f"could not start the job on the DMQ broker {where}: {exc}")
            lost.__cause__ = exc
            _, retry = cause_of(exc)
            subscription._broken(lost, retry=retry)
        except BaseException:
            # The I/O thread may start the job yet (and reconnect it if the connection
            # dies); stopped, it never streams to a handle nobody holds.
            subscription.stop()
            raise
        self._register(subscription, subscription.stop)
        if subscription._worker is not None:
            subscription._worker.start()
        return subscription

    def _start_stream(self, subscription: DMQSubscription) -> None:
        """Start the subscription's job, with a fresh signed INIT, connecting if need be.

        Within the backend's timeout; raises one of ``START_FAILURES`` if the
        broker cannot be reached, :class:`AuthenticationError` from Kerberos.
        """
        deadline = self._deadline(None)
        prepared = self._prepare(subscription._job)
        broker: Broker | None = None
        try:
            broker = self._connected(deadline)
            if not subscription._started(broker, prepared.exchange):
                return
            broker.submit(lambda: broker.start_stream(subscription, prepared)).result(
                _left(deadline)
            )
        except START_FAILURES:
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
