"""A stream's bound on lateness, against the simulated DPM: a consumer that falls behind gets a
gap counting what was skipped, then fresh readings; one that keeps up gets no gap.

The decisions themselves are checked, with given times, in tests/streams/test_staleness.py;
the threaded hand-off that applies them, with no server, at the end. Nothing here asserts a
speed: ages are compared with generous slack.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from acnet_proto.adapters._streams import ThreadedSubscription
from acnet_proto.adapters.dpm.asyncio import AsyncioDPMBackend
from acnet_proto.adapters.dpm.sync import SyncClient
from acnet_proto.adapters.dpm.threaded import DPMBackend
from acnet_proto.adapters.sim.dpm import SimServer
from acnet_proto.api.backend import ReadingQueue
from acnet_proto.api.config import ConfigurationError
from acnet_proto.streams.reconnect import Gap
from acnet_proto.streams.staleness import STALE, Freshness
from acnet_proto.types import Reading, ValueType

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
        # One gap, or two when the reader too found a batch late during the nap.
        gaps: list[Gap] = []
        while isinstance(item := next(items)[0], Gap):
            gaps.append(item)
        fresh = item
        assert 1 <= len(gaps) <= 2, gaps
        for gap in gaps:
            assert gap.cause == STALE and not gap.open and gap.attempts == 0
            assert gap.since <= gap.until
        # of about 300 queued; generous: the machine may be slow
        assert sum(gap.skipped for gap in gaps) >= 50
        assert isinstance(fresh, Reading) and fresh.timestamp is not None
        # fresh: stamped well after the consumer's nap began, not when it began
        assert fresh.timestamp > max(gap.until for gap in gaps)
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
    # a bound well above the pauses of a loaded test machine
    with backend.subscribe(DRFS, max_age=3.0) as stream:
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


def stamped(at: float) -> Reading:
    return Reading(DRFS[0], ValueType.SCALAR, value=1.0, timestamp=datetime.fromtimestamp(at, UTC))


class Handoff(ThreadedSubscription):
    """The queue between a stream's thread and its consumer, with no thread: the test is both."""

    def stop(self) -> None:
        with self._cond:
            self._stop_requested = True
            self._clear()


def handoff(max_age: float = 1.0, limit: int = 100) -> tuple[Handoff, float]:
    """A hand-off whose bound saw one prompt reading 20 s ago, and the time now."""
    now = time.time()
    fresh = Freshness(DRFS, max_age)
    fresh.admit([stamped(now - 20)], now - 20, lambda: False)
    return Handoff(list(DRFS), None, None, ReadingQueue(limit), fresh), now


def test_the_reader_decides_under_the_consumers_lock() -> None:
    # the consumer counts what it skips under _cond; the reader's admit must not interleave
    stream, now = handoff()
    free: list[bool] = []

    def more() -> bool:  # asked mid-admit: can the consumer take the lock now?
        probe = threading.Thread(target=lambda: free.append(stream._cond.acquire(blocking=False)))
        probe.start()
        probe.join()
        return False

    late = [stamped(now - 10)]
    assert stream._admit(late, more) == late  # late, but nothing behind it
    assert free == [False]


def test_a_queue_that_empties_as_fast_as_it_fills_is_not_behind() -> None:
    # one reading queued a moment ago: the consumer keeps up, so a late batch with nothing
    # behind it on the connection is delivered, not skipped
    stream, now = handoff()
    with stream._cond:
        assert stream._enqueue(stamped(now - 20))
    late = [stamped(now - 10)]
    assert stream._admit(late, lambda: False) == late
    assert stream._fresh is not None and stream._fresh.skipped == 0


def test_a_queue_whose_head_waited_half_the_bound_is_behind() -> None:
    stream, now = handoff()
    assert stream._admit([stamped(now - 5)], lambda: False)  # delivered, 5 s late
    with stream._cond:
        assert stream._enqueue(stamped(now - 5))  # so it waits as if queued 5 s ago
    [gap] = stream._admit([stamped(now - 4)], lambda: False)
    assert isinstance(gap, Gap) and gap.skipped == 1


def test_the_queued_times_stay_with_their_items_when_a_gap_makes_room() -> None:
    stream, now = handoff(limit=3)
    fresh = stream._fresh
    assert fresh is not None
    at = datetime.fromtimestamp(now, UTC)
    drfs = tuple(DRFS)
    outage, back = Gap(drfs, at, None, "gone", 0), Gap(drfs, at, at, "gone", 1)
    with stream._cond:
        for item, lateness in ((stamped(now - 20), 0.0), (stamped(now - 19), 100.0), (outage, 0.0)):
            fresh.lateness = lateness
            assert stream._enqueue(item)
        assert stream._enqueue(back)  # the newest reading, second, makes room
        assert [stream._queue[i] for i in range(3)][1:] == [outage, back]
        assert min(stream._times) > now - 50  # the time of the reading dropped went with it
    stream.stop()
    assert not len(stream._queue) and not stream._times
