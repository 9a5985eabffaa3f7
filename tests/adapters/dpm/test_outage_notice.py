"""A DPM subscription tells its user of an outage when it starts, not when it ends.

Every flavour (sync, threaded, asyncio, trio) against the simulated DPM on loopback,
heartbeats every :data:`HB` s at both ends: the server is killed under a live stream (it
closes every connection), or falls silent behind the fault proxy, or heartbeats without
ever answering ``StartList``. The open gap must come within the detection time
(:data:`MISSED_HEARTBEATS` heartbeat periods) plus slack for a loaded machine, while
reconnection goes on; the closed gap when the list runs again; or ``ConnectionLost``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from acnet_proto.adapters.dpm.asyncio import AsyncioDPMBackend
from acnet_proto.adapters.dpm.sync import SyncClient
from acnet_proto.adapters.dpm.threaded import DPMBackend
from acnet_proto.adapters.sim.dpm import SimServer
from acnet_proto.engine import MISSED_HEARTBEATS
from acnet_proto.errors import ConnectionLost
from acnet_proto.streams.reconnect import SILENT, Gap, Reconnect
from tests.adapters._watch import (
    PATIENT,
    Run,
    Seen,
    Watcher,
    check_outage,
    free_port,
    gap,
    readings_after,
)
from tests.support.faults import Fault, Proxy

pytestmark = pytest.mark.integration

HB = 0.1  # the heartbeat period of the sim and the clients
DETECT = MISSED_HEARTBEATS * HB  # silence, or a list not started, this long is a dead server
SLACK = 1.0  # a loaded machine's scheduling; a hang still fails
DRF = "M:OUTTMP@p,20"
FLAVOURS = ["sync", "threaded", "asyncio", "trio"]


def _sync(host: str, port: int, policy: bool | Reconnect) -> Run:
    def run(record: Callable[[object], None], stop: threading.Event) -> None:
        with SyncClient(host, port, timeout=1, heartbeat_period=HB) as client:
            sub = client.subscribe([DRF], reconnect=policy)
            try:
                while not stop.is_set():  # short waits: stop() is this thread's to call
                    for item, _ in sub.readings(timeout=0.05):
                        record(item)
                        if stop.is_set():
                            break
            except ConnectionLost as exc:
                record(exc)
            sub.stop()

    return run


def _threaded(host: str, port: int, policy: bool | Reconnect) -> Run:
    def run(record: Callable[[object], None], stop: threading.Event) -> None:
        with DPMBackend(host, port, timeout=1, heartbeat_period=HB) as backend:
            sub = backend.subscribe(
                [DRF], lambda item, _: record(item), lambda exc, _: record(exc), reconnect=policy
            )
            stop.wait()
            sub.stop()

    return run


def _asyncio(host: str, port: int, policy: bool | Reconnect) -> Run:
    async def main(record: Callable[[object], None], stop: threading.Event) -> None:
        async with AsyncioDPMBackend(host, port, timeout=1, heartbeat_period=HB) as backend:
            sub = await backend.subscribe(
                [DRF], lambda item, _: record(item), lambda exc, _: record(exc), reconnect=policy
            )
            while not stop.is_set():
                await asyncio.sleep(0.01)
            await sub.stop()

    return lambda record, stop: asyncio.run(main(record, stop))


def _trio(host: str, port: int, policy: bool | Reconnect) -> Run:
    trio = pytest.importorskip("trio")
    from acnet_proto.adapters.dpm.trio import TrioDPMBackend

    async def main(record: Callable[[object], None], stop: threading.Event) -> None:
        async with TrioDPMBackend(host, port, timeout=1, heartbeat_period=HB) as backend:
            sub = await backend.subscribe(
                [DRF], lambda item, _: record(item), lambda exc, _: record(exc), reconnect=policy
            )
            while not stop.is_set():
                await trio.sleep(0.01)
            await sub.stop()

    return lambda record, stop: trio.run(main, record, stop)


RUNNERS: dict[str, Callable[[str, int, bool | Reconnect], Run]] = {
    "sync": _sync,
    "threaded": _threaded,
    "asyncio": _asyncio,
    "trio": _trio,
}


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest) -> str:
    return request.param


@contextlib.contextmanager
def watching(
    flavour: str, host: str, port: int, policy: bool | Reconnect = PATIENT
) -> Iterator[Watcher]:
    watcher = Watcher(RUNNERS[flavour](host, port, policy))
    try:
        yield watcher
    finally:
        watcher.stop()


def error(seen: list[Seen]) -> Seen | None:
    return next((s for s in seen if isinstance(s.item, Exception)), None)


def test_a_killed_server_is_told_at_once_and_again_when_it_is_back(flavour: str) -> None:
    with contextlib.ExitStack() as first:
        sim = first.enter_context(SimServer.in_thread(heartbeat_period=HB))
        host, port = sim.host, sim.port
        with watching(flavour, host, port) as watcher:
            watcher.wait_for(readings_after(0.0, 3))
            killed = time.monotonic()
            first.close()  # the server goes away, closing its connections
            opened = watcher.wait_for(gap(open_=True), DETECT + SLACK)
            assert opened.at - killed < DETECT + SLACK
            time.sleep(5 * PATIENT.max_backoff)  # attempts fail meanwhile: nothing more is said
            assert watcher.items()[-1] is opened.item
            with SimServer.in_thread(port=port, heartbeat_period=HB):
                closed = watcher.wait_for(gap(open_=False))
                watcher.wait_for(readings_after(closed.at, 2))
                watcher.stop()  # before this server goes too
    open_gap, closed_gap = check_outage(watcher, opened, closed)
    assert open_gap.server == f"{host}:{port}" and closed_gap.attempts >= 2
    assert str(open_gap).startswith(f"the stream of {DRF} lost its connection to {host}:{port}")


def test_a_silent_server_is_told_within_the_detection_time(flavour: str) -> None:
    # after three readings nothing more comes through, heartbeats included, nor a close
    stall = Fault("stall", at=3, match="ScalarReply")
    with (
        SimServer.in_thread(heartbeat_period=HB) as sim,
        Proxy((sim.host, sim.port), lambda n: [stall] if n == 0 else []) as proxy,
        watching(flavour, proxy.host, proxy.port) as watcher,
    ):
        last = watcher.wait_for(readings_after(0.0, 3))
        opened = watcher.wait_for(gap(open_=True), DETECT + SLACK)
        assert opened.at - last.at < DETECT + SLACK
        closed = watcher.wait_for(gap(open_=False))  # the next connection is left alone
        watcher.wait_for(readings_after(closed.at, 2))
    open_gap, _ = check_outage(watcher, opened, closed)
    assert open_gap.cause == SILENT


# every connection: heartbeats flow, but the list never runs (no StartList answer, no data)
NEVER_STARTED = [
    Fault("drop", match="StartListReply", times=None),
    Fault("drop", match="ScalarReply", times=None),
]


def test_a_list_never_started_is_told_then_given_up(flavour: str) -> None:
    policy = Reconnect(max_retries=1, initial_backoff=0.05, jitter=0.0)
    with (
        SimServer.in_thread(heartbeat_period=HB) as sim,
        Proxy((sim.host, sim.port), lambda n: NEVER_STARTED) as proxy,
    ):
        started = time.monotonic()
        with watching(flavour, proxy.host, proxy.port, policy) as watcher:
            opened = watcher.wait_for(gap(open_=True), DETECT + SLACK)
            lost = watcher.wait_for(error, 2 * DETECT + SLACK)
    assert opened.at - started < DETECT + SLACK
    assert isinstance(opened.item, Gap) and "did not start the list" in opened.item.cause
    assert isinstance(lost.item, ConnectionLost)
    assert "did not start the list" in str(lost.item)
    assert str(lost.item).endswith("gave up after 1 reconnection attempt(s)")
    assert watcher.items() == [opened.item, lost.item]  # told, then the end: no endless wait
    assert "ListStatusReply" in proxy.connections[0].names("s2c")  # it did heartbeat
    assert len(proxy.connections) == 2


def test_a_list_started_on_the_next_connection_closes_the_gap(flavour: str) -> None:
    with (
        SimServer.in_thread(heartbeat_period=HB) as sim,
        Proxy((sim.host, sim.port), lambda n: NEVER_STARTED if n == 0 else []) as proxy,
        watching(flavour, proxy.host, proxy.port) as watcher,
    ):
        opened = watcher.wait_for(gap(open_=True), DETECT + SLACK)
        closed = watcher.wait_for(gap(open_=False))
        watcher.wait_for(readings_after(closed.at, 2))
    check_outage(watcher, opened, closed)
    assert len(proxy.connections) == 2


def test_an_unreachable_server_is_an_outage_from_the_start(flavour: str) -> None:
    # subscribe() returns: the open gap, then the end, reach callbacks and readings() alike
    policy = Reconnect(max_retries=2, initial_backoff=0.05, jitter=0.0)
    with watching(flavour, "127.0.0.1", free_port(), policy) as watcher:
        lost = watcher.wait_for(error)
    opened, end = watcher.items()
    assert isinstance(opened, Gap) and opened.open and opened.cause  # the library's words
    assert opened.server is not None and opened.server in str(opened)
    assert end is lost.item and isinstance(end, ConnectionLost)
    assert str(end).endswith("gave up after 2 reconnection attempt(s)")


def test_an_unreachable_server_without_reconnection_ends_the_stream_at_once(flavour: str) -> None:
    with watching(flavour, "127.0.0.1", free_port(), False) as watcher:
        lost = watcher.wait_for(error, SLACK)
    assert watcher.items() == [lost.item] and isinstance(lost.item, ConnectionLost)
    assert f"the stream of {DRF} is lost" in str(lost.item)


def test_an_unreachable_servers_outage_dates_from_the_failed_attempt() -> None:
    # not from the first wait for a reading, however much later that comes
    policy = Reconnect(max_retries=1, initial_backoff=0.05, jitter=0.0)
    with SyncClient("127.0.0.1", free_port(), timeout=1, heartbeat_period=HB) as client:
        sub = client.subscribe([DRF], reconnect=policy)
        subscribed = datetime.now(UTC)
        time.sleep(0.3)
        opened, _ = next(sub.readings(timeout=SLACK))
        assert isinstance(opened, Gap) and opened.open and opened.since <= subscribed
        sub.stop()


def test_an_unreachable_servers_outage_dates_from_the_failed_attempt_async() -> None:
    policy = Reconnect(max_retries=1, initial_backoff=0.05, jitter=0.0)

    async def main() -> None:
        port = free_port()
        async with AsyncioDPMBackend("127.0.0.1", port, timeout=1, heartbeat_period=HB) as dpm:
            sub = await dpm.subscribe([DRF], reconnect=policy)
            subscribed = datetime.now(UTC)
            await asyncio.sleep(0.3)
            async for opened, _ in sub.readings(timeout=SLACK):
                assert isinstance(opened, Gap) and opened.open and opened.since <= subscribed
                break
            await sub.stop()

    asyncio.run(main())
