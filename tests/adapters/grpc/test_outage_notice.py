"""A DPM-over-gRPC subscription tells its user of an outage when it starts.

The simulated DAQ service is stopped under a live stream (every call fails at once,
``UNAVAILABLE``: gRPC's detection of a dead server; one that vanishes without a word is
noticed by the channel's keepalive, minutes later) and started again on the same port,
for each flavour (threaded, asyncio, trio). The open gap must come at once, while the
stream keeps calling; the closed one with the first reading of the new call.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from acnet_proto.adapters.grpc.asyncio import AsyncioGRPCBackend
from acnet_proto.adapters.grpc.threaded import GRPCBackend
from acnet_proto.adapters.sim.daq import DAQSimServer
from acnet_proto.errors import ConnectionLost
from acnet_proto.streams.reconnect import Gap
from tests.adapters._watch import PATIENT, Run, Watcher, check_outage, gap, readings_after

DRF = "M:OUTTMP@p,20"
SLACK = 1.0  # a failed call is noticed at once: this is a loaded machine's scheduling
FLAVOURS = ["grpc", "grpc-asyncio", "grpc-trio"]


def _threaded(port: int) -> Run:
    def run(record: Callable[[object], None], stop: threading.Event) -> None:
        with GRPCBackend("127.0.0.1", port) as backend:
            sub = backend.subscribe(
                [DRF], lambda item, _: record(item), lambda exc, _: record(exc), reconnect=PATIENT
            )
            stop.wait()
            sub.stop()

    return run


def _watcher(backend_class: Any, port: int) -> Any:
    """The async watch loop, the same for the asyncio and the trio backend."""

    async def main(record: Callable[[object], None], stop: threading.Event) -> None:
        async with backend_class("127.0.0.1", port) as backend:
            sub = await backend.subscribe([DRF], reconnect=PATIENT)
            try:
                while not stop.is_set():
                    async for item, _ in sub.readings(timeout=0.05):
                        record(item)
                        if stop.is_set():
                            break
            except ConnectionLost as exc:
                record(exc)
            await sub.stop()

    return main


def _asyncio(port: int) -> Run:
    main = _watcher(AsyncioGRPCBackend, port)
    return lambda record, stop: asyncio.run(main(record, stop))


def _trio(port: int) -> Run:
    trio = pytest.importorskip("trio")
    from acnet_proto.adapters.grpc.trio import TrioGRPCBackend

    main = _watcher(TrioGRPCBackend, port)
    return lambda record, stop: trio.run(main, record, stop)


RUNNERS: dict[str, Callable[[int], Run]] = {
    "grpc": _threaded,
    "grpc-asyncio": _asyncio,
    "grpc-trio": _trio,
}


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest) -> str:
    return request.param


@contextlib.contextmanager
def serving(port: int = 0) -> Iterator[DAQSimServer]:
    server = DAQSimServer(port=port)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_a_stopped_server_is_told_at_once_and_again_when_it_is_back(flavour: str) -> None:
    with contextlib.ExitStack() as first:
        port = first.enter_context(serving()).port
        watcher = Watcher(RUNNERS[flavour](port))
        try:
            watcher.wait_for(readings_after(0.0, 3))
            stopped = time.monotonic()
            first.close()
            opened = watcher.wait_for(gap(open_=True), SLACK)
            assert opened.at - stopped < SLACK
            time.sleep(5 * PATIENT.max_backoff)  # calls fail meanwhile: nothing more is said
            assert watcher.items()[-1] is opened.item
            with serving(port):
                closed = watcher.wait_for(gap(open_=False))
                watcher.wait_for(readings_after(closed.at, 2))
                watcher.stop()  # before this server goes too
        finally:
            watcher.stop()
    open_gap, closed_gap = check_outage(watcher, opened, closed)
    assert isinstance(open_gap, Gap) and "UNAVAILABLE" in open_gap.cause
    assert open_gap.server == f"127.0.0.1:{port}" and closed_gap.attempts >= 2
