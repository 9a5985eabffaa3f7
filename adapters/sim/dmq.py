"""A simulated DMQ server: a consumer on a RabbitMQ broker answering from the device model.

For tests, demos and the CLI (``acnet-proto sim --dmq`` or ``--dmq-url URL`` calls :func:`serve`)::

    with DMQSimServer(host="127.0.0.1", port=5672, keytab="/etc/krb5.keytab") as sim:
        with DMQBackend("localhost", 5672, auth=KerberosAuth()) as backend:
            backend.read("M:OUTTMP")

Everything the server decides is :class:`~acnet_proto.sim.dmq.DMQService`
(pure); this module only moves messages. One thread owns one pika
``BlockingConnection`` (pika connections are not thread-safe): it consumes
the INITs (a private queue bound to ``amq.topic``/``I``) and everything the
jobs bind on the clients' exchanges (a second private queue), and carries
out the service's publishes, binds and unbinds in order, on a channel of
their own so that a client's exchange vanishing (the broker closes that
channel) never stops the consumers.

Kerberos: each INIT's ``gss-token`` is accepted with
:class:`~acnet_proto.adapters.kerberos.KerberosAcceptor` from ``keytab``
(None: the default keytab, ``KRB5_KTNAME``): a ticket for any principal
the keytab holds, as the lab's DMQ accepts (pacsys asks for
``daeset/bd/dmq.fnal.gov@FNAL.GOV``, our client for
``daeset/bd/<host>@FNAL.GOV``), or only for ``service`` if one is given.

Each refusal (a bad signature, a token refused, a routing key that is not
the job's, a DRF the model refuses...) is logged as a warning: the first of
each kind in a burst with its reason, then the count of the burst, as the
other simulators do (:class:`~acnet_proto.adapters._refusals.RefusalLog`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from acnet_proto.adapters._refusals import RefusalLog
from acnet_proto.adapters.kerberos import KerberosAcceptor
from acnet_proto.errors import ConnectionLost
from acnet_proto.limits import DEFAULT_LIMITS
from acnet_proto.services.dmq import INIT_EXCHANGE, INIT_KEY, Publish
from acnet_proto.sim import DeviceModel, SettingsPolicy
from acnet_proto.sim.dmq import Action, Bind, Delivery, DMQService, Refused, Unbind
from acnet_proto.sim.schedule import ClockEvents

__all__ = ["DMQSimServer", "serve"]

log = logging.getLogger(__name__)

_STARTUP_TIMEOUT = 15.0
# How long serve() waits for the server's thread when cancelled: a thread stuck on its broker
# (it is a daemon) is left, so that a program stopping never waits on a broker.
_STOP_TIMEOUT = 2.0
# Longest the loop sleeps: bounds how late a stop request or a due tick is seen.
_MAX_WAIT = 0.1
_MISSING_EXCHANGE = re.compile(r"no exchange '([^']*)'")


class DMQSimServer:
    """A simulated DMQ on a broker: ``amqp_url``, or ``host``/``port`` with guest credentials.

    ``model`` defaults to a fresh :meth:`DeviceModel.default`; ``policy`` to
    :meth:`SettingsPolicy.default` (role ``testing`` may set ``Z:*``).
    ``keytab`` (None: ``KRB5_KTNAME``) holds the service principals whose
    tickets are accepted: all of them, or only ``service`` if given.
    ``idle_timeout``, ``heartbeat_period`` (the ``Q`` period) and
    ``init_delay`` (time between a job's PENDING and its first data) are in
    seconds; ``quiet_period`` is how long refusals of a kind must stop before
    their count is logged. Use as a context manager, or :meth:`start` /
    :meth:`stop`.
    """

    def __init__(
        self,
        amqp_url: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 5672,
        username: str = "guest",
        password: str = "guest",
        model: DeviceModel | None = None,
        keytab: str | Path | None = None,
        service: str | None = None,
        policy: SettingsPolicy | None = None,
        idle_timeout: float = 30.0,
        heartbeat_period: float = 5.0,
        init_delay: float = 0.0,
        quiet_period: float = DEFAULT_LIMITS.quiet_period,
    ) -> None:
        if amqp_url is not None:
            self._parameters = pika.URLParameters(amqp_url)
        else:
            credentials = pika.PlainCredentials(username, password)
            self._parameters = pika.ConnectionParameters(host, port, credentials=credentials)
        self.model = model if model is not None else DeviceModel.default()
        #: the one principal accepted, or None: any principal in the keytab
        self.service_name = service
        self._refusal_log = RefusalLog("simulated DMQ", log, quiet_period)

        def make_acceptor() -> KerberosAcceptor:
            return KerberosAcceptor(service, keytab)

        def refused(refusal: Refused) -> None:
            self._refusal_log.refused(refusal.label, refusal.peer, refusal.why)

        self._service = DMQService(
            self.model,
            ClockEvents(self.model, time.monotonic()),
            make_acceptor,
            policy,
            idle_timeout=idle_timeout,
            heartbeat_period=heartbeat_period,
            init_delay=init_delay,
            refused=refused,
        )
        self._lock = threading.Lock()  # the service, between the loop and inspecting callers
        self._stopping = threading.Event()
        self._started: Future[None] = Future()
        self._ended: Future[None] = Future()  # done when the thread ends
        self._thread: threading.Thread | None = None
        self._connection: pika.BlockingConnection | None = None
        #: Why the server stopped on its own (its connection failed), if it did.
        self.failure: BaseException | None = None

    # -- inspection (thread-safe) ---------------------------------------------------

    @property
    def job_count(self) -> int:
        """Jobs running now."""
        with self._lock:
            return len(self._service.jobs)

    @property
    def disposed(self) -> int:
        """Jobs ended so far (by ``D`` or for idleness)."""
        with self._lock:
            return self._service.disposed

    def refusals(self) -> list[str]:
        """Why recent requests were refused, oldest first."""
        with self._lock:
            return list(self._service.refusals)

    # -- life -----------------------------------------------------------------------

    def start(self) -> DMQSimServer:
        """Connect and start consuming; returns once INITs are being consumed."""
        if self._thread is not None:
            raise RuntimeError("this DMQSimServer is already started")
        self._thread = threading.Thread(target=self._run, name="dmq-sim", daemon=True)
        self._thread.start()
        self._started.result(_STARTUP_TIMEOUT)
        return self

    def stop(self, timeout: float = _STARTUP_TIMEOUT) -> None:
        """Stop consuming and close the connection (every job ends with it); idempotent.

        Waits at most ``timeout`` seconds for the server's thread (a daemon) to end.
        """
        thread = self._thread
        if thread is None or self._stopping.is_set():
            return
        self._stopping.set()
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(Exception):  # already closed: the loop is ending anyway
                connection.add_callback_threadsafe(lambda: None)
        thread.join(timeout)
        if thread.is_alive():
            log.warning("the simulated DMQ did not stop within %s s", timeout)

    def __enter__(self) -> DMQSimServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the server stops (its connection failed, or :meth:`stop`); True if it did."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self._thread is None or not self._thread.is_alive()

    # -- the loop (its own thread) --------------------------------------------------

    def _run(self) -> None:
        try:
            self._serve()
        finally:
            with contextlib.suppress(InvalidStateError):  # its waiter was cancelled
                self._ended.set_result(None)

    def _serve(self) -> None:
        try:
            connection = pika.BlockingConnection(self._parameters)
        except BaseException as exc:
            self._started.set_exception(exc)
            return
        self._connection = connection
        try:
            _Loop(self, connection).run()
        except BaseException as exc:
            if not self._started.done():
                self._started.set_exception(exc)
            elif not self._stopping.is_set():
                self.failure = exc
                log.error("the simulated DMQ stopped: %s", exc, exc_info=exc)
        finally:
            with contextlib.suppress(Exception):
                connection.close()
            self._refusal_log.flush()


class _Loop:
    """The server thread's state: its channels, queues, and what arrived."""

    def __init__(self, server: DMQSimServer, connection: pika.BlockingConnection) -> None:
        self.server = server
        self.connection = connection
        self.consumer = connection.channel()
        self.init_queue = _private_queue(self.consumer)
        self.consumer.queue_bind(self.init_queue, INIT_EXCHANGE, routing_key=INIT_KEY)
        self.job_queue = _private_queue(self.consumer)
        self.arrived: list[tuple[bool, Delivery]] = []
        self.consumer.basic_consume(self.init_queue, self._on(True), auto_ack=True)
        self.consumer.basic_consume(self.job_queue, self._on(False), auto_ack=True)
        self.actions = connection.channel()

    def _on(self, init: bool) -> Callable[..., None]:
        # pika calls this inside process_data_events: only note the message, act after
        def on_message(channel: Any, method: Any, props: Any, body: bytes) -> None:
            delivery = Delivery.received(
                method.exchange,
                method.routing_key,
                body,
                props.headers,
                message_id=props.message_id,
                correlation_id=props.correlation_id,
                reply_to=props.reply_to,
                app_id=props.app_id,
            )
            if delivery is None:
                log.info("dropped a message whose names are not UTF-8 text")
            else:
                self.arrived.append((init, delivery))

        return on_message

    def run(self) -> None:
        server = self.server
        service = server._service
        server._started.set_result(None)
        log.info("simulated DMQ consuming INITs on %s", server._parameters.host)
        while not server._stopping.is_set():
            with server._lock:
                due = service.next_due()
            wait = _MAX_WAIT if due is None else min(_MAX_WAIT, max(0.0, due - time.monotonic()))
            self.connection.process_data_events(time_limit=wait)
            arrived, self.arrived = self.arrived, []
            for init, delivery in arrived:
                now, wall = time.monotonic(), time.time()
                with server._lock:
                    handle = service.on_init if init else service.on_job_message
                    actions = handle(delivery, now, wall)
                self._carry_out(actions)
            with server._lock:
                actions = service.tick(time.monotonic(), time.time())
            self._carry_out(actions)
            server._refusal_log.sweep()

    def _carry_out(self, actions: list[Action]) -> None:
        for action in actions:
            for _attempt in range(2):
                if not self.actions.is_open:
                    self.actions = self.connection.channel()
                try:
                    self._do(action)
                    break
                except pika.exceptions.ChannelClosedByBroker as exc:
                    # A client's exchange is gone (it left without D), so is its job. The
                    # broker closes the channel late, maybe on a later action: the error
                    # names the exchange, and any other action is tried again.
                    self.actions = self.connection.channel()
                    gone = _MISSING_EXCHANGE.search(exc.reply_text or "")
                    if gone is None:
                        raise
                    log.info("dropping the job on %s: its exchange is gone", gone[1])
                    with self.server._lock:
                        self.server._service.dispose(gone[1])
                    if gone[1] == action.exchange:
                        break

    def _do(self, action: Action) -> None:
        if isinstance(action, Publish):
            properties = pika.BasicProperties(
                message_id=action.message_id, correlation_id=action.correlation_id
            )
            self.actions.basic_publish(action.exchange, action.routing_key, action.body, properties)
        elif isinstance(action, Bind):
            self.actions.queue_bind(self.job_queue, action.exchange, routing_key=action.routing_key)
        elif isinstance(action, Unbind):
            self.actions.queue_unbind(
                self.job_queue, action.exchange, routing_key=action.routing_key
            )


def _private_queue(channel: BlockingChannel) -> str:
    # pika is untyped: the broker names the queue, a str
    name: str = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
    return name


async def serve(
    amqp_url: str,
    model: DeviceModel | None = None,
    *,
    keytab: str | Path | None = None,
    service: str | None = None,
    policy: SettingsPolicy | None = None,
    ready: Callable[[DMQSimServer], None] | None = None,
) -> None:
    """Serve a simulated DMQ on the broker at ``amqp_url`` until cancelled
    (``acnet-proto sim --dmq-url URL``).

    A coroutine, to run beside the DPM simulator's
    :func:`acnet_proto.adapters.sim.dpm.serve` on one loop (the server itself runs
    in its own thread); give it the same ``model`` to serve one simulated
    machine over both. ``ready`` is called with the server once it consumes
    INITs. Raises :class:`~acnet_proto.errors.ConnectionLost` if the server stops
    on its own (its broker connection failed).
    """
    server = DMQSimServer(amqp_url, model=model, keytab=keytab, service=service, policy=policy)
    await asyncio.to_thread(server.start)
    try:
        if ready is not None:
            ready(server)
        # no thread waits for it: one stuck on the broker would hold the loop's executor
        await asyncio.wrap_future(server._ended)
        raise ConnectionLost(f"the simulated DMQ stopped: {server.failure or 'connection closed'}")
    finally:
        await asyncio.to_thread(server.stop, _STOP_TIMEOUT)
