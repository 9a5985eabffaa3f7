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
socket write. Both wait for the write buffer to drain. A client that breaks
the protocol is logged and dropped; the others carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from acnet_proto.errors import RemoteProtocolError
from acnet_proto.sim import DeviceModel, SettingsPolicy
from acnet_proto.sim.dpm import FIRST_LIST_ID, DPMSession
from acnet_proto.sim.schedule import ClockEvents
from acnet_proto.sim.settings import ServerSettings

__all__ = ["SimServer", "serve"]

log = logging.getLogger(__name__)

DEFAULT_SERVICE = "daeset/bd"  # announced as-is; clients append the realm
_READ_SIZE = 256 * 1024
_STARTUP_TIMEOUT = 10.0


class _Connection:
    """One client connection: its socket, its :class:`DPMSession`, a reader and a scheduler."""

    def __init__(
        self, server: SimServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.peer = writer.get_extra_info("peername")
        self.session = server.session(note=self._note)
        self.wake = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def _note(self, text: str) -> None:
        log.info("client %s: %s", self.peer, text)

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
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()

    def _report(self, error: BaseException | None) -> None:
        if error is None:
            log.debug("client %s closed the connection", self.peer)
        elif isinstance(error, RemoteProtocolError):
            log.warning("dropped client %s: %s", self.peer, error)
        elif isinstance(error, OSError):
            log.info("lost client %s: %s", self.peer, error)
        else:
            log.error("client %s: internal error", self.peer, exc_info=error)

    async def _read_loop(self) -> None:
        loop = asyncio.get_running_loop()
        session = self.session
        while not session.closed:
            data = await self.reader.read(_READ_SIZE)
            due = session.next_due()
            out = session.receive(data, now=loop.time(), wall=time.time())
            if session.next_due() != due:
                self.wake.set()  # the scheduler waits for what was due before
            if out:
                self.writer.write(out)
                await self.writer.drain()

    async def _tick_loop(self) -> None:
        loop = asyncio.get_running_loop()
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
                self.writer.write(out)
                await self.writer.drain()


class SimServer:
    """A simulated DPM listening on ``host``:``port`` (0: a free port).

    ``model`` defaults to a fresh :meth:`DeviceModel.default`. Use it as
    ``async with SimServer() as sim:``, or call :meth:`start` and
    :meth:`aclose`; from synchronous code, :meth:`in_thread`.
    ``heartbeat_period`` (seconds) is how often an open list hears a
    ``ListStatus_reply``; None: the engine's default (2 s, as the lab's DPM).
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
    ) -> None:
        self.model = model if model is not None else DeviceModel.default()
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
        self._connections: dict[_Connection, asyncio.Task[Any]] = {}
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
        for connection in self._connections:
            connection.abort()
        await asyncio.gather(*self._connections.values(), return_exceptions=True)
        await server.wait_closed()

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def session(self, note: Callable[[str], None] | None = None) -> DPMSession:
        """The pure half of a new client connection; ``note`` hears why settings were refused."""
        return DPMSession(
            self.model,
            self.clock,
            self.session_settings(),
            self._new_list_id,
            insecure_settings=self.insecure_settings,
            heartbeat_period=self.heartbeat_period,
            note=note,
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
        connection = _Connection(self, reader, writer)
        connection.start()
        self._connections[connection] = task
        try:
            await connection.run()
        finally:
            del self._connections[connection]

    @classmethod
    @contextlib.contextmanager
    def in_thread(
        cls,
        model: DeviceModel | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        **settings: Any,
    ) -> Iterator[SimServer]:
        """Run a server on its own event loop in a daemon thread, for sync code.

        Yields once it is listening (read ``.host``/``.port``); on exit stops
        it and joins the thread. A failure to start (e.g. the port is taken)
        is raised here.
        """
        server = cls(model, host, port, **settings)
        started = threading.Event()
        failure: list[BaseException] = []
        stop: list[Callable[[], object]] = []

        async def main() -> None:
            stopping = asyncio.Event()
            try:
                await server.start()
            except BaseException as e:
                failure.append(e)
                started.set()
                return
            loop = asyncio.get_running_loop()
            stop.append(lambda: loop.call_soon_threadsafe(stopping.set))
            started.set()
            try:
                await stopping.wait()
            finally:
                await server.aclose()

        thread = threading.Thread(target=asyncio.run, args=(main(),), name="sim-dpm", daemon=True)
        thread.start()
        if not started.wait(_STARTUP_TIMEOUT):
            raise RuntimeError(f"the simulated DPM did not start within {_STARTUP_TIMEOUT} s")
        if failure:
            thread.join()
            raise failure[0]
        try:
            yield server
        finally:
            stop[0]()
            thread.join(_STARTUP_TIMEOUT)
            if thread.is_alive():
                log.warning("the simulated DPM thread did not stop within %s s", _STARTUP_TIMEOUT)


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
