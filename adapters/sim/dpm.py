"""A simulated DPM server: DPM over TCP on asyncio, answering from a device model.

The project's embedded default server, used by the demo, the CLI
(``acnet-proto sim`` calls :func:`serve`) and the integration tests::

    with SimServer.in_thread() as sim:          # its own loop in a daemon thread
        backend = pacsys.dpm(host=sim.host, port=sim.port)

Each client connection is a :class:`~acnet_proto.engine.connection.DPMConnection`
in the server role, which checks every move; the values come from a
:class:`~acnet_proto.sim.model.DeviceModel` shared by all connections.

What is sent, and in what order (as in the recorded conversations of ``tests/shared/transcripts``):

- after the handshake, ``OpenList_reply`` with a fresh list id;
- per ``AddToList``, its ``AddToList_reply`` (a refused entry carries the
  model's status, e.g. ``DPM_NO_SUCH_DEVICE``);
- per ``StartList``: a ``DeviceInfo_reply`` per accepted entry,
  ``StartList_reply(status=0)``, a ``Status_reply`` per refused entry whose
  event streams (periodic or clock), then one reply per ``@I`` entry. A
  refused one-shot entry gets nothing beyond its ``AddToList_reply``, which
  already settled it; clients that count one answer per entry (pacsys's
  ``get_many``) would otherwise count it twice;
- periodic entries (``@p``; ``@q`` only when the value changed) first one
  period after the start, as the recorded stream shows, then every period;
  clock entries (``@e``) whenever the simulated clock-event generator fires
  (periods from the model's ``[clock]`` table, machine-wide, so all lists see
  the same firings); ``@N`` never; ``@U`` or no event: the device's default;
- ``ListStatus_reply`` every :attr:`DPMConnection.heartbeat_period` (2 s)
  once the list is open, the first one period after the open;
- settings: ``Authenticate`` announces the service name (``daeset/bd``) and
  steps a Kerberos context with the keytab given (without one every token is
  refused with a ref-0 ``Status_reply(DPM_PRIV)``); ``EnableSettings`` must
  carry a MIC that verifies; each ``ApplySettings`` entry is then authorized
  by principal, ``#ROLE:`` and device (:class:`~acnet_proto.sim.policy.Policy`)
  and refused with ``DPM_PRIV``/``DPM_DBPRIV``, or applied to the model.
  ``ApplySettings`` without enabled settings refuses every entry with
  ``DPM_PRIV`` — unless the server runs with ``insecure_settings``
  (``--insecure-settings``, off by default), which applies them unchecked.

One scheduler per connection wakes at the earliest due time and writes
everything due (data of every group that fired, and the heartbeat) in one
socket write; it waits for the write buffer to drain, and a list that fell
behind skips the periods it missed rather than bursting. A client that breaks
the protocol is logged and dropped; the others carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from acnet_proto import drf
from acnet_proto.engine._state import ConnectionState, Role
from acnet_proto.engine.connection import DPMConnection
from acnet_proto.engine.events import NEED_DATA, ConnectionClosed, Handshake, SettingsNotEnabled
from acnet_proto.errors import RemoteProtocolError
from acnet_proto.pc import dpm
from acnet_proto.pc._message import Message
from acnet_proto.sim import DeviceModel, Entry, SettingsPolicy, status_reply
from acnet_proto.sim.settings import ServerSettings
from acnet_proto.status import Status

__all__ = ["ClockEvents", "SimServer", "serve"]

log = logging.getLogger(__name__)

DPM_PRIV_STATUS = Status.from_name("DPM_PRIV")
DPM_PRIV = DPM_PRIV_STATUS.status
DPM_BAD_REQUEST = Status.from_name("DPM_BAD_REQUEST").status
DEFAULT_SERVICE = "daeset/bd"  # announced as-is; clients append the realm
_FIRST_LIST_ID = 4096  # where the real DPM's list id pool starts
_READ_SIZE = 256 * 1024
_STARTUP_TIMEOUT = 10.0


class ClockEvents:
    """The simulated clock-event generator, shared by every list of one server.

    Event ``n`` fires at ``origin + delay + k * model.clock_period(n)`` for
    whole ``k``: a fixed, machine-wide schedule, like TCLK.
    """

    def __init__(self, model: DeviceModel, origin: float) -> None:
        self.model = model
        self.origin = origin

    def next_after(self, event: drf.ClockEvent, t: float) -> float:
        """The first firing of ``event`` (with its delay) strictly after ``t``."""
        period = self.model.clock_period(event.event_number)
        start = self.origin + event.delay_us / 1e6
        return start + (math.floor((t - start) / period) + 1) * period


class _Group:
    """Entries that fire together: one periodic rate, or one clock event."""

    __slots__ = ("clock_event", "due", "last", "members", "period")

    def __init__(
        self,
        due: float,
        period: float | None,
        clock_event: drf.ClockEvent | None,
        changes_only: bool,
    ) -> None:
        self.due = due
        self.period = period
        self.clock_event = clock_event
        self.members: list[tuple[int, Entry]] = []
        # @q: what was last sent per ref (everything after the timestamp and cycle)
        self.last: dict[int, tuple[Any, ...]] | None = {} if changes_only else None

    def fire(self, send: Callable[[Message], bytes], wall: float, out: list[bytes]) -> None:
        last = self.last
        for ref, entry in self.members:
            reply = entry.reply(ref, wall)
            if last is not None:
                key = tuple(reply[3:])
                if last.get(ref) == key:
                    continue
                last[ref] = key
            out.append(send(reply))

    def advance(self, now: float, clock: ClockEvents) -> None:
        if self.clock_event is not None:
            self.due = clock.next_after(self.clock_event, now)
            return
        period = self.period
        # keep the phase; skip whatever was missed while the client was not reading
        self.due += period * (math.floor((now - self.due) / period) + 1)


class _Session:
    """One client connection: its engine, its list, and its scheduler."""

    def __init__(
        self, server: SimServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.peer = writer.get_extra_info("peername")
        self.conn = DPMConnection(Role.SERVER)
        self.entries: dict[int, Entry] = {}
        # refused entries whose event streams: ref -> status, reported at StartList
        self.refused: dict[int, int] = {}
        self.properties: dict[str, str] = {}
        self.settings = server.session_settings()
        self.groups: list[_Group] = []
        self.opened_at: float | None = None
        self.closed = False
        self.wake = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

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

    def _write(self, parts: list[bytes]) -> None:
        self.writer.write(b"".join(parts))

    # -- receiving ----------------------------------------------------------

    async def _read_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.closed:
            data = await self.reader.read(_READ_SIZE)
            self.conn.receive_data(data, now=loop.time())
            out: list[bytes] = []
            self._handle_events(out)
            if out:
                self._write(out)
                await self.writer.drain()

    def _handle_events(self, out: list[bytes]) -> None:
        send = self.conn.send
        while True:
            event = self.conn.next_event()
            if event is NEED_DATA:
                return
            if isinstance(event, dpm.AddToListRequest):
                out.append(send(self._add(event)))
            elif isinstance(event, dpm.StartListRequest):
                self._start(out)
            elif isinstance(event, dpm.StopListRequest):
                self.groups = []
            elif isinstance(event, dpm.ClearListRequest):
                self.groups = []
                self.entries.clear()
                self.refused.clear()
            elif isinstance(event, dpm.RemoveFromListRequest):
                self.entries.pop(event.ref_id, None)
                self.refused.pop(event.ref_id, None)
                reply = dpm.RemoveFromListReply(
                    list_id=event.list_id, ref_id=event.ref_id, status=0
                )
                out.append(send(reply))
            elif isinstance(event, Handshake):
                list_id = self.server._new_list_id()
                out.append(send(dpm.OpenListReply(list_id=list_id)))
                self.opened_at = asyncio.get_running_loop().time()
                self.wake.set()
            elif isinstance(event, dpm.AuthenticateRequest):
                out.append(send(*self.settings.on_authenticate(event)))
            elif isinstance(event, dpm.EnableSettingsRequest):
                out.append(send(*self.settings.on_enable(event)))
                if self.settings.refusal:
                    log.info("client %s: settings refused: %s", self.peer, self.settings.refusal)
            elif isinstance(event, dpm.ApplySettingsRequest):
                out.append(send(self._apply(event)))
            elif isinstance(event, SettingsNotEnabled):
                if self.server.insecure_settings:
                    out.append(send(self._apply(event.request)))
                else:
                    out.append(send(_refuse_settings(event.request, DPM_PRIV)))
            elif isinstance(event, ConnectionClosed):
                self.closed = True
                return
            else:
                raise RemoteProtocolError(f"this simulator does not serve {event!r}")

    def _add(self, request: Message) -> Message:
        ref, text = request.ref_id, request.drf_request
        if text.startswith("#"):
            # a list property such as #ROLE:testing, kept for the settings layer
            key, sep, value = text[1:].partition(":")
            ok = bool(key and sep)
            if ok:
                self.properties[key] = value
            status = 0 if ok else DPM_BAD_REQUEST
            return dpm.AddToListReply(list_id=request.list_id, ref_id=ref, status=status)
        reply, entry = self.server.model.add_to_list(request.list_id, ref, text)
        if entry is not None:
            self.entries[ref] = entry
        elif _streams(text):
            self.refused[ref] = reply.status
        return reply

    def _start(self, out: list[bytes]) -> None:
        send = self.conn.send
        loop = asyncio.get_running_loop()
        now, wall = loop.time(), time.time()
        for ref, entry in self.entries.items():
            out.append(send(entry.device_info(ref)))
        out.append(send(dpm.StartListReply(list_id=self.conn.list_id, status=0)))
        for ref, status in self.refused.items():
            out.append(send(status_reply(ref, status, wall)))
        groups: dict[tuple[Any, ...], _Group] = {}
        clock = self.server.clock
        for ref, entry in self.entries.items():
            event = entry.event
            if isinstance(event, drf.ImmediateEvent):
                out.append(send(entry.reply(ref, wall)))
            elif isinstance(event, drf.PeriodicEvent):
                key = ("p", event.period_us, event.continuous)
                group = groups.get(key)
                if group is None:
                    period = event.period_us / 1e6
                    group = groups[key] = _Group(now + period, period, None, not event.continuous)
                group.members.append((ref, entry))
            elif isinstance(event, drf.ClockEvent):
                key = ("e", event)
                group = groups.get(key)
                if group is None:
                    group = groups[key] = _Group(clock.next_after(event, now), None, event, False)
                group.members.append((ref, entry))
        self.groups = list(groups.values())
        # Only streams need the scheduler; waking it for one-shot reads too
        # cost a task switch per read.
        if self.groups:
            self.wake.set()

    def _apply(self, request: Message) -> Message:
        """Authorize each setting (principal, role, device), then apply the allowed ones."""
        values: dict[int, object] = {}
        for array in (request.raw_array, request.scaled_array, request.text_array):
            for setting in array or ():
                values[setting.ref_id] = setting.data
        listed = {ref: entry.drf for ref, entry in self.entries.items()}
        if "ROLE" in self.properties:
            listed[0] = "#ROLE:" + self.properties["ROLE"]
        model = self.server.model

        def protection(name: str) -> int:
            device = model.device(name)
            return device.protection if device is not None else 0

        if self.server.insecure_settings and not self.settings.enabled:
            # --insecure-settings: no authentication, only "is it on the list"
            verdicts = {ref: None if ref in self.entries else DPM_PRIV_STATUS for ref in values}
        else:
            verdicts = self.settings.authorize(listed, list(values), protection)
        statuses = []
        for ref, value in values.items():
            refusal = verdicts[ref]
            if refusal is None:
                status = model.apply_setting(self.entries[ref], value)
            else:
                status = refusal.status
                log.info("client %s: refused setting ref %d: %s", self.peer, ref, refusal)
            statuses.append(dpm.SettingStatus(ref_id=ref, status=status))
        return dpm.ApplySettingsReply(status=statuses)

    async def _tick_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                async with asyncio.timeout_at(self._next_due()):
                    await self.wake.wait()
            except TimeoutError:
                pass
            self.wake.clear()
            out = self._tick(loop.time())
            if out:
                self._write(out)
                await self.writer.drain()

    def _heartbeat_due(self) -> float | None:
        due = self.conn.heartbeat_due_at()
        if due is None or self.opened_at is None:
            return None
        return max(due, self.opened_at + self.conn.heartbeat_period)

    def _next_due(self) -> float | None:
        dues = [g.due for g in self.groups]
        heartbeat = self._heartbeat_due()
        if heartbeat is not None:
            dues.append(heartbeat)
        return min(dues, default=None)

    def _tick(self, now: float) -> list[bytes]:
        out: list[bytes] = []
        if self.conn.state is not ConnectionState.OPEN:
            return out  # the reader just saw the end; run() is about to stop us
        wall = time.time()
        send = self.conn.send
        clock = self.server.clock
        for group in self.groups:
            if group.due <= now:
                group.fire(send, wall, out)
                group.advance(now, clock)
        heartbeat = self._heartbeat_due()
        if heartbeat is not None and heartbeat <= now:
            out.append(self.conn.heartbeat(now))
        return out


def _streams(drf_text: str) -> bool:
    """True if ``drf_text`` names a periodic or clock event (one that keeps sending)."""
    try:
        event = drf.parse(drf_text).event
    except drf.DRFError:
        return False
    return isinstance(event, drf.PeriodicEvent | drf.ClockEvent)


def _refuse_settings(request: Message, status: int) -> Message:
    settings = (request.raw_array or (), request.scaled_array or (), request.text_array or ())
    return dpm.ApplySettingsReply(
        status=[dpm.SettingStatus(ref_id=s.ref_id, status=status) for a in settings for s in a]
    )


class SimServer:
    """A simulated DPM listening on ``host``:``port`` (0: a free port).

    ``model`` defaults to a fresh :meth:`DeviceModel.default`. Use it as
    ``async with SimServer() as sim:``, or call :meth:`start` and
    :meth:`aclose`; from synchronous code, :meth:`in_thread`.
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
    ) -> None:
        self.model = model if model is not None else DeviceModel.default()
        self.insecure_settings = insecure_settings
        if insecure_settings:
            log.warning("simulated DPM: --insecure-settings: anyone may set any device")
        self.keytab = keytab
        self.service = service
        self.realm = realm
        self.policy = policy if policy is not None else SettingsPolicy.default()
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._sessions: dict[_Session, asyncio.Task[Any]] = {}
        self._list_ids = itertools.count(_FIRST_LIST_ID)
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
        for session in self._sessions:
            session.abort()
        await asyncio.gather(*self._sessions.values(), return_exceptions=True)
        await server.wait_closed()

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

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
        session = _Session(self, reader, writer)
        session.start()
        self._sessions[session] = task
        try:
            await session.run()
        finally:
            del self._sessions[session]

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
        stop: list[Callable[[], None]] = []

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
