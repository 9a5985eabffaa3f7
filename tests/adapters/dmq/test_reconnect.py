"""DMQ streams that outlive their broker connection: a real RabbitMQ, a real KDC, a raw relay.

The client reaches the broker through :class:`Relay`, a byte-for-byte TCP
relay on loopback that can cut every connection through it (the broker and
the simulated DMQ carry on) or stop listening (the broker is unreachable).
The simulated DMQ talks to the broker directly.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from acnet_proto.errors import ConnectionLost
from acnet_proto.streams.reconnect import Gap, Reconnect
from tests.support.servers.kdc import KDC
from tests.support.servers.rabbitmq import RabbitMQ

pytest.importorskip("pika")
pytest.importorskip("gssapi")
from acnet_proto.adapters.dmq import DMQBackend
from acnet_proto.adapters.kerberos import KerberosAuth
from acnet_proto.adapters.sim.dmq import DMQSimServer

pytestmark = pytest.mark.integration

SERVICE = "daeset/bd/localhost@FNAL.GOV"
T = 5.0  # generous per-wait timeout: a failure must fail, never hang
DRF = "M:OUTTMP@p,100"
QUICK = Reconnect(initial_backoff=0.05, max_backoff=0.2)


class Relay:
    """Relays TCP connections on loopback to ``target``, byte for byte, until told otherwise."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)  # how late the accept loop sees refuse()
        self.port: int = self._listener.getsockname()[1]
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._refusing = threading.Event()
        #: connections accepted so far
        self.accepted = 0
        self._thread = threading.Thread(target=self._accept, name="relay", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        with self._listener:
            while not self._refusing.is_set():
                try:
                    client, _ = self._listener.accept()
                except TimeoutError:
                    continue
                try:
                    upstream = socket.create_connection(self.target, timeout=T)
                except OSError:
                    client.close()
                    continue
                upstream.settimeout(None)
                client.settimeout(None)
                with self._lock:
                    self.accepted += 1
                    self._pairs.append((client, upstream))
                for source, sink in ((client, upstream), (upstream, client)):
                    threading.Thread(target=_pump, args=(source, sink), daemon=True).start()

    def cut(self) -> None:
        """Hang up every connection through the relay, both ends; new ones are still relayed."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def refuse(self) -> None:
        """Stop listening (connecting is refused from now on), then cut every connection."""
        self._refusing.set()
        self._thread.join(T)
        self.cut()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    for sock in (source, sink):  # one side gone: so is the other
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def sim(rabbitmq: RabbitMQ, kdc: KDC) -> Iterator[DMQSimServer]:
    server = DMQSimServer(
        host=rabbitmq.host, port=rabbitmq.port, keytab=kdc.keytab, service=SERVICE
    )
    with server:
        yield server


@pytest.fixture
def relay(rabbitmq: RabbitMQ) -> Iterator[Relay]:
    relay = Relay((rabbitmq.host, rabbitmq.port))
    yield relay
    relay.refuse()


@pytest.fixture
def backend(sim: DMQSimServer, relay: Relay) -> Iterator[DMQBackend]:
    with DMQBackend(
        "127.0.0.1", relay.port, auth=KerberosAuth(), service=SERVICE, timeout=T
    ) as backend:
        yield backend


def _wait_for(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + T
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _reconnecting() -> bool:
    return any(t.name.startswith("acnet-dmq-reconnect") for t in threading.enumerate())


def test_a_cut_connection_comes_back_with_a_gap_then_readings(
    backend: DMQBackend, relay: Relay
) -> None:
    seen: list[Any] = []
    gaps: list[int] = []
    with backend.subscribe([DRF], reconnect=QUICK) as stream:
        items = stream.readings(timeout=T)
        for reading, _ in items:
            seen.append(reading)
            if len(seen) == 3:
                relay.cut()
            gaps = [i for i, item in enumerate(seen) if isinstance(item, Gap) and not item.open]
            if gaps and len(seen) - gaps[0] > 3:
                break
    assert stream.stopped and stream.exc is None
    assert len(gaps) == 1, seen
    gap, opened = seen[gaps[0]], seen[gaps[0] - 1]  # told as it began, then when back
    assert isinstance(opened, Gap) and opened.open and opened.since == gap.since
    assert gap.drfs == (DRF,) and gap.attempts >= 1 and gap.until >= gap.since
    assert "DMQ connection" in gap.cause and str(relay.port) in gap.cause
    readings = [item for item in seen if not isinstance(item, Gap)]
    assert all(r.ok and r.drf == DRF for r in readings)
    assert relay.accepted == 2  # the first connection, then one more after the cut


def test_a_callback_gets_the_gap_between_readings(backend: DMQBackend, relay: Relay) -> None:
    seen: list[Any] = []
    errors: list[BaseException] = []
    flowing, back = threading.Event(), threading.Event()

    def on_reading(item: Any, handle: Any) -> None:
        seen.append(item)
        if len(seen) == 3:
            flowing.set()
        gaps = [i for i, each in enumerate(seen) if isinstance(each, Gap) and not each.open]
        if gaps and len(seen) - gaps[0] > 2:
            back.set()

    def on_error(error: BaseException, handle: Any) -> None:
        errors.append(error)

    stream = backend.subscribe([DRF], callback=on_reading, on_error=on_error, reconnect=QUICK)
    try:
        assert flowing.wait(T)
        relay.cut()
        assert back.wait(T), seen
    finally:
        stream.stop()
    assert errors == [] and stream.exc is None
    assert [item.open for item in seen if isinstance(item, Gap)] == [True, False]
    assert relay.accepted == 2


def test_without_reconnect_a_cut_ends_the_stream(backend: DMQBackend, relay: Relay) -> None:
    count = 0
    stream = backend.subscribe([DRF], reconnect=False)
    with stream, pytest.raises(ConnectionLost, match="is lost") as caught:
        for reading, _ in stream.readings(timeout=T):
            assert not isinstance(reading, Gap)
            count += 1
            if count == 3:
                relay.cut()
    assert count >= 3 and stream.exc is caught.value
    assert "DMQ connection" in str(caught.value) and "reconnection attempt" not in str(caught.value)
    assert relay.accepted == 1


def test_without_reconnect_on_error_hears_of_the_cut(backend: DMQBackend, relay: Relay) -> None:
    readings: list[Any] = []
    errors: list[tuple[BaseException, Any]] = []
    flowing, ended = threading.Event(), threading.Event()

    def on_reading(reading: Any, handle: Any) -> None:
        readings.append(reading)
        if len(readings) == 3:
            flowing.set()

    def on_error(error: BaseException, handle: Any) -> None:
        errors.append((error, handle))
        ended.set()

    stream = backend.subscribe([DRF], callback=on_reading, on_error=on_error, reconnect=False)
    try:
        assert flowing.wait(T)
        relay.cut()
        assert ended.wait(T)
    finally:
        stream.stop()
    [(error, handle)] = errors
    assert isinstance(error, ConnectionLost) and handle is stream
    assert not any(isinstance(r, Gap) for r in readings)
    assert relay.accepted == 1


def test_stop_cuts_a_backoff_pause_short(backend: DMQBackend, relay: Relay) -> None:
    patient = Reconnect(initial_backoff=600.0, max_backoff=600.0, jitter=0.0)
    stream = backend.subscribe([DRF], reconnect=patient)
    next(stream.readings(timeout=T))
    relay.cut()
    assert _wait_for(_reconnecting), "the stream never began to reconnect"
    stopper = threading.Thread(target=stream.stop, daemon=True)
    stopper.start()
    stopper.join(T)  # far less than the pause, and than stop()'s patience with its threads
    assert not stopper.is_alive(), "stop() waited out the backoff pause"
    assert stream.stopped and stream.exc is None
    assert not _reconnecting()
    assert relay.accepted == 1


def test_an_unreachable_broker_uses_up_the_retries(backend: DMQBackend, relay: Relay) -> None:
    stream = backend.subscribe([DRF], reconnect=Reconnect(max_retries=2, initial_backoff=0.05))
    with stream, pytest.raises(ConnectionLost, match="gave up after 2 reconnection") as caught:
        for count, _ in enumerate(stream.readings(timeout=T), 1):
            if count == 2:
                relay.refuse()
    assert "reconnecting failed" in str(caught.value)
    assert caught.value.__cause__ is not None
    assert relay.accepted == 1


def test_reconnect_must_be_a_bool_or_a_policy(backend: DMQBackend) -> None:
    with pytest.raises(TypeError, match="reconnect must be"):
        backend.subscribe([DRF], reconnect="yes")  # type: ignore[arg-type]
