"""A recording served as a DPM server: ``acnet-proto replay`` and the ``replay_server`` fixture.

::

    recording = load("session.jsonl")            # and session-2.jsonl, ... if recorded
    with ReplayServer.in_thread(recording) as server:
        with pacsys.dpm(host=server.host, port=server.port) as backend:
            assert backend.read("M:OUTTMP") == 41.7
    server.check()                               # raises the first ReplayMismatch

Each client connection plays the next recorded one
(:class:`~acnet_proto.engine.replay.ReplaySession`, pure: what matches and
what is sent is decided there); this module only moves bytes and keeps
time. While waiting for the client it sends a ``ListStatusReply`` every
``heartbeat_period`` seconds, as the lab's DPM does, so that a streaming
client does not count it dead. A departure from the recording is kept in
:attr:`ReplayServer.mismatches`, reported once (logged as a warning, or
handed to ``on_mismatch`` instead when given, for a caller that reports it
its own way), and the connection is closed; the server goes on serving the
next connections.

Given a ``keytab``, the server plays Kerberos live
(:class:`~acnet_proto.engine.replay.LiveAuth`): it announces ``service``
and accepts tickets for ``service@realm`` from the keytab (as the
simulated DPM does), so a real Kerberos client (pacsys, or ours with
``KerberosAuth``) can replay a recorded write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from acnet_proto._text import shown
from acnet_proto.adapters._in_thread import in_thread
from acnet_proto.adapters.sim.dpm import DEFAULT_SERVICE, peer_name
from acnet_proto.engine.connection import HEARTBEAT_PERIOD
from acnet_proto.engine.recording import Recording
from acnet_proto.engine.replay import LiveAuth, Replay, ReplayMismatch, ReplaySession
from acnet_proto.sim.policy import SettingsPolicy
from acnet_proto.sim.settings import ServerSettings

__all__ = ["ReplayServer", "live_kerberos", "load", "replay_server_fixture", "transcripts"]

log = logging.getLogger(__name__)
_READ_SIZE = 256 * 1024


def transcripts(path: str | Path) -> list[Path]:
    """``path`` and the files the recorder numbered after it (``session-2.jsonl``, ...)."""
    first = Path(path)
    found = [first]
    while (after := first.with_name(f"{first.stem}-{len(found) + 1}{first.suffix}")).is_file():
        found.append(after)
    return found


def load(*paths: str | Path) -> Recording:
    """The recording in ``paths``, each with its numbered siblings (each file once).

    Raises :class:`~acnet_proto.engine.recording.RecordingError` for a file
    that is no transcript, :class:`OSError` for one that cannot be read.
    """
    files = list(dict.fromkeys(f for path in paths for f in transcripts(path)))
    return Recording.load(*files)


class ReplayServer:
    """Serves ``recording`` on ``host``:``port`` (0: a free port), a recorded connection to
    each client connection, in order (see the module docstring).

    ``on_mismatch`` hears each departure (in the server's thread or loop) instead of the log.
    :attr:`done` is set once every recorded connection was served and closed.
    ``keytab`` plays Kerberos live as ``service@realm`` (see the module docstring); a keytab
    that cannot accept as that principal raises
    :class:`~acnet_proto.errors.AuthenticationError` here.
    """

    def __init__(
        self,
        recording: Recording,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        heartbeat_period: float = HEARTBEAT_PERIOD,
        on_mismatch: Callable[[ReplayMismatch], None] | None = None,
        keytab: str | Path | None = None,
        service: str = DEFAULT_SERVICE,
        realm: str = "FNAL.GOV",
    ) -> None:
        live = None if keytab is None else live_kerberos(keytab, service, realm)
        self.replay = Replay(recording, live_auth=live)
        self.host = host
        self.port = port
        self.heartbeat_period = heartbeat_period
        self.on_mismatch = on_mismatch
        #: Every departure from the recording, in the order they happened.
        self.mismatches: list[ReplayMismatch] = []
        self.done = asyncio.Event()
        self._ended = 0  # sessions that took a recorded connection and are over
        self._server: asyncio.Server | None = None
        self._live: dict[ReplaySession, asyncio.Task[Any]] = {}

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info(
            "replaying %d recorded connections on %s:%d", len(self.replay.recording), *self.address
        )

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    async def aclose(self) -> None:
        """Stop listening and end every connection; one still short of its recording counts
        as a departure."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in self._live.values():
            task.cancel()
        await asyncio.gather(*self._live.values(), return_exceptions=True)
        await server.wait_closed()

    def check(self) -> None:
        """Raise the first departure (:class:`ReplayMismatch`), counting recorded connections
        that no client made; nothing if the client played the whole recording."""
        problems = self.problems()
        if problems:
            raise problems[0]

    def problems(self) -> list[ReplayMismatch]:
        """:attr:`mismatches`, then a departure for each recorded connection never made."""
        return [*self.mismatches, *self.replay.unserved()]

    @classmethod
    def in_thread(
        cls, recording: Recording, **options: Any
    ) -> contextlib.AbstractContextManager[ReplayServer]:
        """A replay server on an event loop of its own in a daemon thread, for sync code.

        Yields once it listens (read ``.host``/``.port``); on exit stops it and
        joins the thread. A failure to start is raised here.
        """
        return in_thread(cls(recording, **options), "the replay server", "replay")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = self.replay.session()
        task = asyncio.current_task()
        assert task is not None  # start_server runs each client in its own task
        self._live[session] = task
        try:
            await self._play(session, reader, writer)
        except asyncio.CancelledError:
            session.receive(b"")  # the server stops: as if the client had left
        except OSError as exc:
            peer = peer_name(writer.get_extra_info("peername"))
            log.info("replay: lost client %s: %s", peer, shown(str(exc)))
            session.receive(b"")
        finally:
            del self._live[session]
            writer.close()
            self._ended += session.connection is not None
            if session.mismatch is not None:
                self._report(session.mismatch)
            if self.replay.exhausted and self._ended == self.replay.taken:
                self.done.set()

    async def _play(
        self, session: ReplaySession, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while not session.finished:
            try:
                async with asyncio.timeout(self.heartbeat_period):
                    data = await reader.read(_READ_SIZE)
            except TimeoutError:
                out = session.heartbeat()
            else:
                out = session.receive(data)
            if out:
                writer.write(out)
                await writer.drain()

    def _report(self, mismatch: ReplayMismatch) -> None:
        self.mismatches.append(mismatch)
        if self.on_mismatch is None:
            log.warning("replay: %s", mismatch)
        else:
            self.on_mismatch(mismatch)


def live_kerberos(keytab: str | Path, service: str, realm: str) -> Callable[[], LiveAuth]:
    """Kerberos state for each connection: announces ``service``, accepts tickets for
    ``service@realm`` with ``keytab``. Checks the keytab now (an
    :class:`~acnet_proto.errors.AuthenticationError` if it cannot accept as that principal)."""
    from acnet_proto.adapters.kerberos import KerberosAcceptor  # gssapi: only with a keytab

    principal = f"{service}@{realm}"
    KerberosAcceptor(principal, keytab)
    # a replay authorizes nothing (its ApplySettings replies are recorded): no roles
    policy = SettingsPolicy()

    def make() -> LiveAuth:
        return ServerSettings(service, lambda: KerberosAcceptor(principal, keytab), policy)

    return make


def replay_server_fixture() -> Any:
    """The ``replay_server`` pytest fixture (``acnet_proto.testing.replay_server``).

    Built on demand so that serving a recording needs no pytest.
    """
    import pytest

    @pytest.fixture
    def replay_server() -> Iterator[Callable[..., tuple[str, int]]]:
        """A factory: ``replay_server("session.jsonl", ...)`` serves the recording (the
        files and their numbered siblings; options as :class:`ReplayServer`'s) and returns
        ``(host, port)``. At teardown the servers stop, and the test fails if the client
        departed from a recording or made fewer connections than it holds."""
        servers: list[ReplayServer] = []
        with contextlib.ExitStack() as running:

            def start(*paths: str | Path, **options: Any) -> tuple[str, int]:
                server = running.enter_context(ReplayServer.in_thread(load(*paths), **options))
                servers.append(server)
                return server.address

            yield start
        problems = [str(p) for server in servers for p in server.problems()]
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)

    return replay_server
