"""A stream's bound on lateness, against the simulated DPM: a consumer that falls behind gets a
gap counting what was skipped, then fresh readings; one that keeps up gets no gap.

The decisions themselves are checked, with given times, in tests/streams/test_staleness.py.
Nothing here asserts a speed: ages are compared with generous slack.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from acnet_proto.adapters.dpm.asyncio import AsyncioDPMBackend
from acnet_proto.adapters.dpm.sync import SyncClient
from acnet_proto.adapters.dpm.threaded import DPMBackend
from acnet_proto.adapters.sim.dpm import SimServer
from acnet_proto.api.config import ConfigurationError
from acnet_proto.streams.reconnect import Gap
from acnet_proto.streams.staleness import STALE
from acnet_proto.types import Reading

DRFS = ["M:OUTTMP@p,20", "Z:ACLTST@p,20"]
NAP = 3.0  # how long the consumer stops taking readings: six times its max_age


@pytest.fixture
def backend(sim: SimServer) -> Iterator[DPMBackend]:
    with DPMBackend(sim.host, sim.port, timeout=5.0) as b:
        yield b


def test_a_consumer_that_naps_gets_a_gap_then_fresh_readings(backend: DPMBackend) -> None:
    with backend.subscribe(DRFS, max_age=0.5) as stream:
        items = stream.readings(timeout=5)
        first, _ = next(items)
        assert isinstance(first, Reading)
        time.sleep(NAP)  # the reader goes on queueing: about 300 readings
        gap, _ = next(items)
        assert isinstance(gap, Gap), gap
        assert gap.cause == STALE and not gap.open and gap.attempts == 0
        assert gap.skipped >= 50  # of about 300 queued; generous: the machine may be slow
        assert gap.since <= gap.until
        fresh, _ = next(items)
        assert isinstance(fresh, Reading) and fresh.timestamp is not None
        # fresh: stamped well after the consumer's nap began, not when it began
        assert fresh.timestamp > gap.until
        age = (datetime.now(UTC) - fresh.timestamp).total_seconds()
        assert age < NAP - 0.5
        assert stream.dropped == 0


def test_without_a_bound_every_reading_comes_however_late(backend: DPMBackend) -> None:
    with backend.subscribe(DRFS, max_age=None) as stream:
        items = stream.readings(timeout=5)
        next(items)
        time.sleep(1.0)
        late, _ = next(items)
        assert isinstance(late, Reading) and late.timestamp is not None
        assert (datetime.now(UTC) - late.timestamp).total_seconds() >= 0.9


def test_a_consumer_that_keeps_up_sees_no_gap(backend: DPMBackend) -> None:
    with backend.subscribe(DRFS, max_age=0.5) as stream:
        seen = 0
        for item, _ in stream.readings(timeout=5):
            assert not isinstance(item, Gap), item
            seen += 1
            if seen == 100:
                break
        assert seen == 100


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), "5"])
def test_max_age_is_checked_before_any_io(backend: DPMBackend, bad: object) -> None:
    with pytest.raises(ConfigurationError, match="max_age"):
        backend.subscribe(DRFS, max_age=bad)  # type: ignore[arg-type]
    assert not backend._subscriptions


def check_caught_up(gap: object, fresh: object) -> None:
    """``gap`` counts readings skipped, and ``fresh`` came after them, stamped after the nap."""
    assert isinstance(gap, Gap), gap
    assert gap.cause == STALE and gap.skipped >= 50
    assert isinstance(fresh, Reading) and fresh.timestamp is not None
    assert fresh.timestamp > gap.until
    assert (datetime.now(UTC) - fresh.timestamp).total_seconds() < NAP - 0.5


def test_the_sync_client_skips_what_piled_up_on_its_connection(sim: SimServer) -> None:
    # the sync client reads only when asked: the backlog waits as bytes on the socket
    with SyncClient(sim.host, sim.port) as client, client.subscribe(DRFS, max_age=0.5) as stream:
        items = stream.readings(timeout=5)
        next(items)
        time.sleep(NAP)
        gap = next(item for item, _ in items if isinstance(item, Gap))
        fresh, _ = next(items)
        check_caught_up(gap, fresh)


def test_the_asyncio_client_skips_what_piled_up_on_its_connection(sim: SimServer) -> None:
    async def nap() -> tuple[object, object]:
        async with AsyncioDPMBackend(sim.host, sim.port) as backend:
            stream = await backend.subscribe(DRFS, max_age=0.5)
            items = aiter(stream.readings(timeout=5))
            await anext(items)
            time.sleep(NAP)  # the event loop itself stops, as a busy consumer would stop it
            gap = await anext(items)
            while not isinstance(gap[0], Gap):
                gap = await anext(items)
            fresh = await anext(items)
            await stream.stop()
            return gap[0], fresh[0]

    check_caught_up(*asyncio.run(nap()))
