"""A simulated DPM server: DPM over TCP on asyncio, answering from a device model.

The project's embedded default server, used by the demo, the CLI
(``acnet-proto sim`` calls :func:`serve`) and the integration tests::

    with SimServer.in_thread() as sim:          # its own loop in a daemon thread
        backend = pacsys.dpm(host=sim.host, port=sim.port)

This module only moves bytes and keeps time. Each client connection is a
:class:`~acnet_proto.sim.dpm.DPMSession` (pure: the server-role engine, the
list, its schedule and its settings — what is sent and in what order is
described there); the values come from a
:class:`~acnet_proto.sim.DeviceModel` shared by all connections.

Per connection a reader hands what arrives to the session and writes its
answer; a scheduler wakes at the session's next due time and writes
everything due (data of every group that fired, and the heartbeat) in one
socket write. A client that breaks the protocol is logged (one line, its
text through :func:`~acnet_proto._text.shown`) and dropped; the others
carry on.

Limits (:class:`~acnet_proto.limits.ServerLimits`, ``limits=``): the session
enforces those on requests (DRF length, list entries, streams per peer and
per server, frame size: see :mod:`acnet_proto.sim.dpm`); this server those
on connections. A warden task, every quarter of the shortest timeout:

- closes a connection that has not finished the handshake
  ``handshake_timeout`` seconds after it was accepted;
- closes a connection without a streaming list (none started, or one
  answered at once) that sent nothing for ``idle_timeout`` seconds; a
  streaming client only reads, and is never idle.

At accept, beyond ``max_connections`` the oldest connection without a
streaming list (or without a handshake yet) is shed to make room; if every
one streams, the newcomer gets ``HTTP/1.1 503 Service Unavailable`` and a
one-line reason, then is closed (our clients raise
:class:`~acnet_proto.errors.ConnectionRefusedByProxy`).
Writes are not paced: a client whose unsent bytes pass ``max_buffered_bytes``
(it stopped reading) is dropped, so it costs at most that much memory.

Refusals and drops are logged once per burst
(:class:`~acnet_proto.adapters._refusals.RefusalLog`), then their total when
``quiet_period`` passed without one. That includes
``accept()`` failing for want of file descriptors: asyncio then pauses
accepting for a second and reports each failure to the loop's exception
handler, with a traceback; the server installs a handler that counts those
of its own sockets in a burst instead (anything else goes to the handler
that was there before).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from acnet_proto._text import shown
from acnet_proto.adapters._in_thread import in_thread
from acnet_proto.adapters._refusals import RefusalLog
from acnet_proto.api.config import host_port
from acnet_proto.errors import RemoteProtocolError
from acnet_proto.limits import DEFAULT_LIMITS, ServerLimits, StreamQuota, unavailable
from acnet_proto.sim import DeviceModel, SettingsPolicy
from acnet_proto.sim.dpm import FIRST_LIST_ID, DPMSession
from acnet_proto.sim.schedule import ClockEvents
from acnet_proto.sim.settings import ServerSettings

__all__ = ["SimServer", "peer_name", "serve"]

log = logging.getLogger(__name__)

DEFAULT_SERVICE = "daeset/bd"  # announced as-is; clients append the realm
_READ_SIZE = 256 * 1024
_CLOSE_TIMEOUT = 5.0  # a client that neither reads nor closes is then cut off
_FD_SHORTAGE = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class _Connection:
    """One client connection: its socket, its :class:`DPMSession`, a reader and a scheduler."""

    def __init__(
        self, server: SimServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.peer = writer.get_extra_info("peername")
        self.refusals = server.refusals
        self.max_buffered = server.limits.max_buffered_bytes
        # unpaced writes up to the bound: drain() only ever waits beyond it
        writer.transport.set_write_buffer_limits(high=self.max_buffered)
        host = self.peer[0] if isinstance(self.peer, tuple) else str(self.peer)
        self.where = peer_name(self.peer)
        self.session = server.session(note=self._note, peer=host, refused=self._refused)
        self.loop = asyncio.get_running_loop()
        self.accepted = self.last_heard = self.loop.time()
        #: set once the server decided to drop it (shed, timed out): no longer counted
        self.dropping = False
        self.wake = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def _note(self, text: str) -> None:
        log.info("client %s: %s", self.peer, shown(text))

    def _refused(self, limit: str, text: str) -> None:
        self.refusals.refused(f"refused by {limit}", self.where, text)

    def start(self) -> None:
        """Start the reader and the scheduler; :meth:`run` waits for them."""
        self.tasks = [
            asyncio.create_task(self._read_loop(), name=f"sim-read {self.peer}"),
            asyncio.create_task(self._tick_loop(), name=f"sim-tick {self.peer}"),
        ]

    def abort(self) -> None:
        """Drop the client: :meth:`run` returns soon after."""
        for task in self.tasks:
            task.cancel()

    def drop(self, kind: str, why: str) -> None:
        """Drop the client for a limit (``kind``), logged once per burst."""
        if not self.dropping:
            self.dropping = True
            self.refusals.refused(kind, self.where, why)
            self.abort()

    @property
    def holds_nothing(self) -> bool:
        """No streaming list: it may be shed for a newcomer, and it may idle out."""
        return not self.session.streaming

    async def run(self) -> None:
        """Serve until the client leaves, breaks the protocol, or :meth:`abort` is called."""
        # Returns rather than raising CancelledError when aborted: Python 3.11's
        # start_server logs a cancelled client task as an error.
        try:
            done, _ = await asyncio.wait(self.tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if not task.cancelled():
                    self._report(task.exception())
        finally:
            self.abort()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            self.session.release()
            await self._close()

    async def _close(self) -> None:
        if self.dropping:
            self.writer.transport.abort()  # what it did not read is not worth waiting for
            return
        self.writer.close()
        try:
            async with asyncio.timeout(_CLOSE_TIMEOUT):
                await self.writer.wait_closed()
        except TimeoutError:
            self.writer.transport.abort()
        except OSError:
            pass

    def _report(self, error: BaseException | None) -> None:
        if error is None:
            log.debug("client %s closed the connection", self.peer)
        elif isinstance(error, RemoteProtocolError):
            log.warning("dropped client %s: %s", self.peer, shown(str(error)))
        elif isinstance(error, OSError):
            log.info("lost client %s: %s", self.peer, shown(str(error)))
        else:
            log.error("client %s: internal error", self.peer, exc_info=error)

    async def _send(self, out: bytes) -> None:
        self.writer.write(out)
        unsent = self.writer.transport.get_write_buffer_size()
        if unsent > self.max_buffered:
            # it stopped reading: dropped (this task is cancelled too), never waited for
            self.drop(
                "write buffer full",
                f"{unsent} bytes unsent, more than max_buffered_bytes={self.max_buffered}: "
                "it stopped reading",
            )
            return
        await self.writer.drain()

    async def _read_loop(self) -> None:
        loop = self.loop
        session = self.session
        while not session.closed:
            data = await self.reader.read(_READ_SIZE)
            now = loop.time()
            if data:
                self.last_heard = now
            due = session.next_due()
            out = session.receive(data, now=now, wall=time.time())
            if session.next_due() != due:
                self.wake.set()  # the scheduler waits for what was due before
            if out:
                await self._send(out)

    async def _tick_loop(self) -> None:
        loop = self.loop
        session = self.session
        while True:
            try:
                async with asyncio.timeout_at(session.next_due()):
                    await self.wake.wait()
            except TimeoutError:
                pass
            self.wake.clear()
            out = session.tick(loop.time(), time.time())
            if out:
                await self._send(out)

    def overdue(self, now: float, limits: ServerLimits) -> tuple[str, str] | None:
        """(kind, why) if it must be closed at ``now`` for saying nothing, else None."""
        if not self.session.opened and now - self.accepted > limits.handshake_timeout:
            return "handshake timeout", f"no handshake within {limits.handshake_timeout:g} s"
        if self.holds_nothing and now - self.last_heard > limits.idle_timeout:
            return "idle timeout", f"no list started and silent for {limits.idle_timeout:g} s"
        return None


class SimServer:
    """A simulated DPM listening on ``host``:``port`` (0: a free port).

    ``model`` defaults to a fresh :meth:`DeviceModel.default`. Use it as
    ``async with SimServer() as sim:``, or call :meth:`start` and
    :meth:`aclose`; from synchronous code, :meth:`in_thread`.
    ``heartbeat_period`` (seconds) is how often an open list hears a
    ``ListStatus_reply``; None: the engine's default (2 s, as the lab's DPM).
    ``limits`` is what one client may take of it (see the module docstring);
    :data:`~acnet_proto.limits.DEFAULT_LIMITS` unless given.
    """

    def __init__(
        self,
        model: DeviceModel | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        keytab: str | Path | None = None,
        service: str = DEFAULT_SERVICE,
        realm: str = "FNAL.GOV",
        policy: SettingsPolicy | None = None,
        insecure_settings: bool = False,
        heartbeat_period: float | None = None,
        limits: ServerLimits = DEFAULT_LIMITS,
    ) -> None:
        self.model = model if model is not None else DeviceModel.default()
        self.limits = limits
        self.quota = StreamQuota(limits)
        self.refusals = RefusalLog("simulated DPM", log, limits.quiet_period)
        self.insecure_settings = insecure_settings
        if insecure_settings:
            log.warning("simulated DPM: --insecure-settings: anyone may set any device")
        self.keytab = keytab
        self.service = service
        self.realm = realm
        self.policy = policy if policy is not None else SettingsPolicy.default()
        self.heartbeat_period = heartbeat_period
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        # in the order they came: the first one holding nothing is the one to shed
        self._connections: dict[_Connection, asyncio.Task[Any]] = {}
        self._warden: asyncio.Task[None] | None = None
        # (ours, the one it replaced) while ours is installed on the loop
        self._handler: tuple[Callable[..., object], Callable[..., object] | None] | None = None
        self._list_ids = itertools.count(FIRST_LIST_ID)
        self.clock = ClockEvents(self.model, 0.0)

    @property
    def host(self) -> str:
        """The address it listens on."""
        return self._host

    @property
    def port(self) -> int:
        """The port it listens on (the real one once started, even if 0 was asked)."""
        return self._port

    async def start(self) -> None:
        """Start listening; returns once connections are accepted."""
        if self._server is not None:
            raise RuntimeError("this SimServer is already started")
        loop = asyncio.get_running_loop()
        self.clock.origin = loop.time()
        self._server = await asyncio.start_server(self._accept, self._host, self._port)
        self._port = self._server.sockets[0].getsockname()[1]
        self._filter_accept_failures(loop)
        self._warden = asyncio.create_task(self._watch(), name="sim-dpm warden")
        log.info("simulated DPM listening on %s:%d", self._host, self._port)

    async def serve_forever(self) -> None:
        """Start if needed, then serve until cancelled; closes everything on the way out."""
        if self._server is None:
            await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Stop listening, drop every client, and wait until they are gone."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        if self._warden is not None:
            self._warden.cancel()
        self._restore_handler()
        for connection in self._connections:
            connection.abort()
        await asyncio.gather(*self._connections.values(), return_exceptions=True)
        await server.wait_closed()

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def session(
        self,
        note: Callable[[str], None] | None = None,
        *,
        peer: str = "",
        refused: Callable[[str, str], None] | None = None,
    ) -> DPMSession:
        """The pure half of a new client connection from ``peer`` (its address).

        ``note`` hears why settings were refused; ``refused(limit, why)`` each
        request a limit refused.
        """
        return DPMSession(
            self.model,
            self.clock,
            self.session_settings(),
            self._new_list_id,
            insecure_settings=self.insecure_settings,
            heartbeat_period=self.heartbeat_period,
            note=note,
            limits=self.limits,
            quota=self.quota,
            peer=peer,
            refused=refused,
        )

    def session_settings(self) -> ServerSettings:
        """Settings state for a new connection: Kerberos with the keytab, if there is one."""
        if self.keytab is None:
            return ServerSettings(self.service, None, self.policy)
        # gssapi is only needed by a server that accepts settings
        from acnet_proto.adapters.kerberos import KerberosAcceptor

        principal, keytab = f"{self.service}@{self.realm}", self.keytab

        def acceptor() -> KerberosAcceptor:
            return KerberosAcceptor(principal, keytab)

        return ServerSettings(self.service, acceptor, self.policy)

    def _new_list_id(self) -> int:
        return next(self._list_ids)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # start_server runs each client in its own task
        if not self._make_room():
            self._refuse(writer)
            return
        connection = _Connection(self, reader, writer)
        connection.start()
        self._connections[connection] = task
        try:
            await connection.run()
        finally:
            del self._connections[connection]

    def _make_room(self) -> bool:
        """True if a newcomer may stay: under ``max_connections``, or one holding nothing
        (the oldest) was shed for it."""
        live = [c for c in self._connections if not c.dropping]
        cap = self.limits.max_connections
        if len(live) < cap:
            return True
        shed = next((c for c in live if c.holds_nothing), None)
        if shed is None:
            return False
        shed.drop("shed", f"made room for a newer connection (max_connections={cap})")
        return True

    def _refuse(self, writer: asyncio.StreamWriter) -> None:
        """Tell a newcomer there is no room, the way our clients understand, and close it."""
        cap = self.limits.max_connections
        writer.write(
            unavailable(f"simulated DPM: {cap} connections (max_connections), all streaming")
        )
        writer.close()  # a few hundred bytes: the socket takes them at once
        peer = peer_name(writer.get_extra_info("peername"))
        self.refusals.refused("refused connection", peer, f"max_connections={cap}")

    async def _watch(self) -> None:
        """Close connections that say nothing for too long; end bursts that went quiet."""
        limits = self.limits
        loop = asyncio.get_running_loop()
        period = max(0.05, min(limits.handshake_timeout, limits.idle_timeout) / 4)
        while True:
            await asyncio.sleep(min(period, limits.quiet_period))
            now = loop.time()
            for connection in list(self._connections):
                verdict = None if connection.dropping else connection.overdue(now, limits)
                if verdict is not None:
                    connection.drop(*verdict)
            self.refusals.sweep()

    def _filter_accept_failures(self, loop: asyncio.AbstractEventLoop) -> None:
        """Count ``accept()`` failures of our sockets in a burst rather than log each."""
        previous = loop.get_exception_handler()
        ours = {sock.fileno() for sock in self._server.sockets} if self._server else set()

        def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            error, sock = context.get("exception"), context.get("socket")
            if (
                isinstance(error, OSError)
                and error.errno in _FD_SHORTAGE
                and sock is not None
                and sock.fileno() in ours
            ):
                why = f"accept() failed ({shown(str(error))}); asyncio retries in a second"
                self.refusals.refused("out of file descriptors", None, why)
            elif previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)

        loop.set_exception_handler(handler)
        self._handler = handler, previous

    def _restore_handler(self) -> None:
        # only if it is still ours: another server may have chained its own onto it
        installed, self._handler = self._handler, None
        loop = asyncio.get_running_loop()
        if installed is not None and loop.get_exception_handler() is installed[0]:
            loop.set_exception_handler(installed[1])

    @classmethod
    def in_thread(
        cls,
        model: DeviceModel | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        **settings: Any,
    ) -> contextlib.AbstractContextManager[SimServer]:
        """Run a server on its own event loop in a daemon thread, for sync code.

        Yields once it is listening (read ``.host``/``.port``); on exit stops
        it and joins the thread. A failure to start (e.g. the port is taken)
        is raised here.
        """
        return in_thread(cls(model, host, port, **settings), "the simulated DPM", "sim-dpm")


async def serve(
    host: str = "127.0.0.1",
    port: int = 6802,
    model: DeviceModel | None = None,
    *,
    ready: Callable[[SimServer], None] | None = None,
    **settings: Any,
) -> None:
    """Serve a simulated DPM on ``host``:``port`` until cancelled (``acnet-proto sim``).

    ``ready`` is called with the server once it listens (e.g. to print the
    port when ``port=0``).
    """
    server = SimServer(model, host, port, **settings)
    await server.start()
    if ready is not None:
        ready(server)
    await server.serve_forever()


def peer_name(peer: object) -> str:
    """A socket's peer name (``get_extra_info("peername")``) for the log: ``host:port``."""
    if isinstance(peer, tuple) and len(peer) >= 2:
        return host_port(str(peer[0]), int(peer[1]))
    return str(peer)
