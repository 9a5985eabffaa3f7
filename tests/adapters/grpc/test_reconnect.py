"""DPM-over-gRPC subscriptions come back with their server, a Gap marking the readings lost.

The pure half (:class:`~acnet_proto.services.daq.GRPCStream`: which failures are retried, where
the gap goes) is checked on messages alone; the rest against the simulated DAQ service over
loopback, stopped mid-stream and started again on the same port, for each of the three flavours
(threaded, asyncio, trio).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from acnet_proto.adapters.grpc.asyncio import AsyncioGRPCBackend
from acnet_proto.adapters.grpc.stubs import DAQ_pb2_grpc
from acnet_proto.adapters.grpc.threaded import GRPCBackend
from acnet_proto.adapters.sim.daq import DAQSimServer
from acnet_proto.errors import ConnectionLost
from acnet_proto.protos.controls.service.DAQ.v1 import DAQ_pb2
from acnet_proto.services.daq import TRANSIENT_CODES, GRPCStream, reading_reply
from acnet_proto.streams.driver import GiveUp, Wait
from acnet_proto.streams.reconnect import Gap, Reconnect
from acnet_proto.types import Reading, ValueType
from tests.adapters._watch import free_port
from tests.support.clients import GRPC_ADAPTERS

DRF = "M:OUTTMP@p,20"
#: Back after one attempt, unless a restart took longer than the pause.
QUICK = Reconnect(initial_backoff=0.1, jitter=0.0)
#: A pause no test waits out: stop() has to cut it short.
LONG = Reconnect(initial_backoff=60.0, max_backoff=60.0, jitter=0.0)
#: How long anything here may take before the test calls it a hang.
GUARD = 5.0


@pytest.fixture(params=list(GRPC_ADAPTERS))
def flavour(request: pytest.FixtureRequest) -> str:
    if request.param == "grpc-trio":
        pytest.importorskip("trio")
    return request.param


class Bouncing:
    """The simulated DAQ service on a fixed port, which :meth:`bounce` stops and starts again."""

    def __init__(self) -> None:
        self.server = DAQSimServer()
        self.server.start()
        self.port = self.server.port

    def bounce(self) -> None:
        self.server.stop()
        self.server = DAQSimServer(port=self.port)
        self.server.start()

    def stop(self) -> None:
        self.server.stop()


@contextlib.contextmanager
def bouncing(*after: float, restart: bool = True) -> Iterator[Bouncing]:
    """A server that stops ``after`` seconds (each), and comes back at once if ``restart``."""
    sim = Bouncing()
    action = sim.bounce if restart else sim.stop
    timers = [threading.Timer(delay, action) for delay in after]
    try:
        for timer in timers:
            timer.start()
        yield sim
    finally:
        for timer in timers:
            timer.cancel()
            timer.join()
        sim.stop()


@contextlib.contextmanager
def client_on(flavour: str, port: int) -> Iterator[Any]:
    with contextlib.closing(GRPC_ADAPTERS[flavour]("127.0.0.1", port)) as client:
        yield client


def assert_resumed(items: list[Reading | Gap], gaps: int) -> list[Gap]:
    """``items`` are good readings of :data:`DRF`, in time order, with ``gaps`` outages
    between, each an open gap then its closed one (returned)."""
    found = [i for i, item in enumerate(items) if isinstance(item, Gap) and not item.open]
    assert len(found) == gaps, items
    for i in found:  # told as it began, then again when back
        opened = items[i - 1]
        assert isinstance(opened, Gap) and opened.open and opened.since == items[i].since
    assert found[0] > 0 and found[-1] < len(items) - 1, "readings come before and after a gap"
    readings = [item for item in items if not isinstance(item, Gap)]
    assert all(r.ok and r.drf == DRF for r in readings), readings
    stamps = [r.timestamp for r in readings]
    assert stamps == sorted(stamps)
    out = [items[i] for i in found]
    for gap in out:
        assert gap.drfs == (DRF,) and not gap.ok and gap.value is None
        assert "UNAVAILABLE" in gap.cause and gap.until >= gap.since
    return out


# --- the pure half ----------------------------------------------------------------------------


def reply() -> DAQ_pb2.ReadingReply:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    return reading_reply(0, Reading(DRF, ValueType.SCALAR, value=41.5, timestamp=at))


def test_a_gap_comes_before_the_first_reading_after_an_outage() -> None:
    stream = GRPCStream([DRF], Reconnect(initial_backoff=0.5, jitter=0.0))
    broke_at = datetime(2026, 1, 1, tzinfo=UTC)
    assert [r.value for r in stream.feed(reply(), broke_at)] == [41.5]
    step = stream.broke("UNAVAILABLE", "UNAVAILABLE: gone", broke_at)
    assert step == Wait(0.5, gap=Gap((DRF,), broke_at, None, "UNAVAILABLE: gone", 0))
    assert stream.broke("UNAVAILABLE", "UNAVAILABLE: refused", broke_at) == Wait(1.0)  # backing off
    back = broke_at + timedelta(seconds=2)
    gap, reading = stream.feed(reply(), back)
    assert isinstance(gap, Gap) and isinstance(reading, Reading)
    assert (gap.since, gap.until, gap.attempts) == (broke_at, back, 2)
    assert gap.cause == "UNAVAILABLE: refused"
    assert [type(r) for r in stream.feed(reply(), back)] == [Reading]  # one gap per outage
    step = stream.broke("UNAVAILABLE", "again", back)
    assert step == Wait(0.5, gap=Gap((DRF,), back, None, "again", 0))  # a reading: count afresh


def test_an_empty_reply_is_no_sign_of_life() -> None:
    stream = GRPCStream([DRF], Reconnect(initial_backoff=0.5, jitter=0.0))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    stream.broke("UNAVAILABLE", "gone", now)
    assert stream.feed(DAQ_pb2.ReadingReply(index=0, readings={}), now) == []
    assert isinstance(stream.feed(reply(), now)[0], Gap)


@pytest.mark.parametrize(
    "code", ["INVALID_ARGUMENT", "UNAUTHENTICATED", "PERMISSION_DENIED", "UNKNOWN", None]
)
def test_answers_from_the_server_are_not_retried(code: str | None) -> None:
    stream = GRPCStream([DRF, "Z:ACLTST@p,1000"], Reconnect())
    assert code not in TRANSIENT_CODES
    step = stream.broke(code, f"{code}: no", datetime.now(UTC))
    assert isinstance(step, GiveUp)
    assert isinstance(step.error, ConnectionLost)
    assert str(step.error) == f"the stream of {DRF} and 1 more broke: {code}: no"


def test_without_a_policy_the_first_outage_is_the_end() -> None:
    stream = GRPCStream([DRF], None)
    step = stream.broke("UNAVAILABLE", "UNAVAILABLE: gone", datetime.now(UTC))
    assert isinstance(step, GiveUp)
    assert str(step.error) == f"the stream of {DRF} is lost: UNAVAILABLE: gone"


def test_out_of_tries_names_the_count() -> None:
    stream = GRPCStream([DRF], Reconnect(max_retries=1, initial_backoff=0.1))
    now = datetime.now(UTC)
    assert isinstance(stream.broke("UNAVAILABLE", "gone", now), Wait)
    step = stream.broke("CANCELLED", "gone", now)
    assert isinstance(step, GiveUp)
    assert "gave up after 1 reconnection attempt(s)" in str(step.error)


# --- over loopback ----------------------------------------------------------------------------


def test_the_stream_survives_a_restart(flavour: str) -> None:
    with bouncing(0.1) as sim, client_on(flavour, sim.port) as client:
        items = client.stream([DRF], count=15, timeout=GUARD, reconnect=QUICK)
    assert len(items) == 15
    assert_resumed(items, gaps=1)


def test_each_outage_has_its_gap_and_its_own_count(flavour: str) -> None:
    with bouncing(0.1, 0.35) as sim, client_on(flavour, sim.port) as client:
        items = client.stream([DRF], count=25, timeout=GUARD, reconnect=QUICK)
    first, second = assert_resumed(items, gaps=2)
    assert first.until <= second.since
    assert first.attempts == second.attempts == 1  # readings between reset the count


def test_callbacks_get_the_gap_in_order() -> None:
    items: list[Reading | Gap] = []
    errors: list[Exception] = []
    resumed = threading.Event()

    def take(item: Reading | Gap, handle: Any) -> None:
        items.append(item)
        if any(isinstance(i, Gap) and not i.open for i in items[:-2]):
            resumed.set()

    with bouncing(0.1) as sim, GRPCBackend("127.0.0.1", sim.port) as backend:
        sub = backend.subscribe(
            [DRF], callback=take, on_error=lambda e, h: errors.append(e), reconnect=QUICK
        )
        assert resumed.wait(GUARD), items
        sub.stop()
    assert_resumed(items, gaps=1)
    assert errors == [] and sub.exc is None


def test_without_reconnection_a_restart_is_the_end(flavour: str) -> None:
    lost = r"the stream of M:OUTTMP@p,20 is lost: UNAVAILABLE"
    with (
        bouncing(0.1) as sim,
        client_on(flavour, sim.port) as client,
        pytest.raises(ConnectionLost, match=lost),
    ):
        client.stream([DRF], count=100, timeout=GUARD, reconnect=False)


def test_a_server_that_stays_away_ends_the_stream(flavour: str) -> None:
    policy = Reconnect(max_retries=2, initial_backoff=0.05)
    drfs = [DRF, "Z:ACLTST@p,50"]
    with (
        bouncing(0.1, restart=False) as sim,
        client_on(flavour, sim.port) as client,
        pytest.raises(ConnectionLost) as raised,
    ):
        client.stream(drfs, count=1000, timeout=GUARD, reconnect=policy)
    message = str(raised.value)
    assert f"the stream of {DRF} and 1 more is lost: UNAVAILABLE" in message
    assert message.endswith("gave up after 2 reconnection attempt(s)")


def test_an_unreachable_server_is_an_outage_too(flavour: str) -> None:
    policy = Reconnect(max_retries=1, initial_backoff=0.05)
    gave_up = "gave up after 1 reconnection attempt"
    with client_on(flavour, free_port()) as client:
        [opened] = client.stream([DRF], count=1, timeout=GUARD, reconnect=policy)
        assert isinstance(opened, Gap) and opened.open and "UNAVAILABLE" in opened.cause
        with pytest.raises(ConnectionLost, match=gave_up):
            client.stream([DRF], count=2, timeout=GUARD, reconnect=policy)


class Refusing(DAQ_pb2_grpc.DAQServicer):
    """A DAQ service whose Read sends one reading, then refuses the caller."""

    def __init__(self) -> None:
        self.calls = 0

    def Read(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        self.calls += 1
        yield reply()
        context.abort(grpc.StatusCode.PERMISSION_DENIED, "not for you")


def test_a_refusal_is_not_retried(flavour: str) -> None:
    servicer = Refusing()
    server = grpc.server(ThreadPoolExecutor(2))
    DAQ_pb2_grpc.add_DAQServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        refused = "broke: PERMISSION_DENIED: not for you"
        with client_on(flavour, port) as client, pytest.raises(ConnectionLost, match=refused):
            client.stream([DRF], count=10, timeout=GUARD, reconnect=QUICK)
    finally:
        server.stop(None).wait()
    assert servicer.calls == 1


# --- stop() during the pause ------------------------------------------------------------------


def stream_threads(drf: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"acnet-grpc-stream {drf}"]


def test_threaded_stop_cuts_the_pause_short() -> None:
    drf = "M:OUTTMP@p,101"  # its own, to tell its thread from others
    with GRPCBackend("127.0.0.1", free_port()) as backend:
        sub = backend.subscribe([drf], reconnect=LONG)
        time.sleep(0.3)  # the first call is refused at once: the stream is in its pause
        stopper = threading.Thread(target=sub.stop)
        stopper.start()
        stopper.join(GUARD)
        assert not stopper.is_alive(), "stop() slept through the reconnection pause"
    assert sub.stopped and sub.exc is None and stream_threads(drf) == []


def test_asyncio_stop_cuts_the_pause_short() -> None:
    async def main() -> None:
        async with AsyncioGRPCBackend("127.0.0.1", free_port()) as backend:
            sub = await backend.subscribe([DRF], reconnect=LONG)
            await asyncio.sleep(0.3)
            async with asyncio.timeout(GUARD):
                await sub.stop()
            assert sub.stopped
            assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []

    asyncio.run(main())


def test_trio_stop_cuts_the_pause_short() -> None:
    trio = pytest.importorskip("trio")
    from acnet_proto.adapters.grpc.trio import TrioGRPCBackend

    drf = "M:OUTTMP@p,102"

    async def main() -> None:
        async with TrioGRPCBackend("127.0.0.1", free_port()) as backend:
            sub = await backend.subscribe([drf], reconnect=LONG)
            await trio.sleep(0.3)
            assert len(stream_threads(drf)) == 1
            with trio.fail_after(GUARD):
                await sub.stop()
                while stream_threads(drf):  # the thread was told to stop, not joined
                    await trio.sleep(0.01)

    trio.run(main)


def test_a_full_trio_stream_queue_drops_readings_but_keeps_a_gap() -> None:
    trio = pytest.importorskip("trio")
    from acnet_proto.adapters.grpc.trio import TrioGRPCSubscription
    from acnet_proto.plans.lists import error_reading

    # only the queue of a subscription: no stream thread, no server
    sub = object.__new__(TrioGRPCSubscription)
    sub._send, sub._receive = trio.open_memory_channel(2)
    sub.dropped = 0
    r1, r2, r3 = (error_reading(f"Z:SIM000{i}", 1) for i in range(3))
    at = datetime(2026, 1, 1, tzinfo=UTC)
    gap = Gap(("Z:SIM0000",), at, at, "gone", 1)
    for reading in (r1, r2, r3):
        sub._push(reading)
    assert sub.dropped == 1
    sub._push(gap)
    assert sub.dropped == 2
    assert [sub._receive.receive_nowait() for _ in range(2)] == [r1, gap]


def test_a_call_that_cannot_start_ends_the_stream_instead_of_hanging() -> None:
    # a closed channel refuses new calls outright (no status code): that ends the
    # stream with ConnectionLost, never leaves readings() waiting for ever
    with bouncing() as sim, GRPCBackend("127.0.0.1", sim.port) as backend:
        sub = backend.subscribe([DRF], reconnect=QUICK)
        items = sub.readings(timeout=GUARD)
        assert next(items)[0].ok
        backend._channel.close()  # the call under way fails, the next cannot start
        with pytest.raises(ConnectionLost, match="stream of M:OUTTMP"):
            for _ in items:
                pass
        assert sub.stopped
