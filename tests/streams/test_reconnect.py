"""The reconnection core: the backoff schedule, the policy's checks, and the bookkeeping.

All pure: no clock, no socket. The adapters that use it are checked through
the fault-injecting proxy in tests/adapters/dpm/test_faults.py.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from acnet_proto.api.backend import ReadingQueue
from acnet_proto.errors import ConnectionLost
from acnet_proto.plans.lists import error_reading
from acnet_proto.streams.reconnect import (
    SILENT,
    Gap,
    Reconnect,
    Recovery,
    backoff,
    reconnect_policy,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def schedule(policy: Reconnect, attempts: int) -> list[float]:
    return [backoff(n, policy) for n in range(attempts)]


def test_backoff_doubles_up_to_the_cap_without_jitter() -> None:
    policy = Reconnect(initial_backoff=0.1, max_backoff=1.0, jitter=0.0)
    assert schedule(policy, 6) == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_jitter_takes_off_at_most_its_fraction() -> None:
    # the random source is the policy's: a constant gives the bounds exactly
    shape = {"initial_backoff": 1.0, "max_backoff": 8.0, "factor": 3.0, "jitter": 0.25}
    low, high = Reconnect(**shape, random=lambda: 1.0), Reconnect(**shape, random=lambda: 0.0)
    assert schedule(high, 4) == pytest.approx([1.0, 3.0, 8.0, 8.0])
    assert schedule(low, 4) == pytest.approx([0.75, 2.25, 6.0, 6.0])


def test_a_seeded_source_gives_a_repeatable_schedule_within_the_bounds() -> None:
    def policy(seed: int) -> Reconnect:
        return Reconnect(initial_backoff=0.1, max_backoff=5.0, random=random.Random(seed).random)

    first, again, other = schedule(policy(7), 20), schedule(policy(7), 20), schedule(policy(8), 20)
    assert first == again and first != other
    bases = schedule(Reconnect(initial_backoff=0.1, max_backoff=5.0, jitter=0.0), 20)
    for delay, base in zip(first, bases, strict=True):
        assert base * 0.5 <= delay <= base  # the default jitter is half


def test_far_attempts_stay_at_the_cap() -> None:
    policy = Reconnect(initial_backoff=0.1, max_backoff=30.0, factor=10.0, jitter=0.0)
    assert backoff(100_000, policy) == 30.0  # 10.0**100000 overflows a float


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 2.5}, "max_retries"),
        ({"initial_backoff": 0}, "initial_backoff"),
        ({"initial_backoff": float("nan")}, "initial_backoff"),
        ({"max_backoff": float("inf")}, "max_backoff"),
        ({"initial_backoff": 2.0, "max_backoff": 1.0}, "less than"),
        ({"factor": 0.5}, "factor"),
        ({"jitter": 1.5}, "jitter"),
        ({"jitter": True}, "jitter"),
    ],
)
def test_a_bad_policy_is_refused_naming_the_setting(arguments: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        Reconnect(**arguments)


def test_a_random_source_out_of_range_is_refused() -> None:
    with pytest.raises(TypeError, match="random must be callable"):
        Reconnect(random=0.5)
    with pytest.raises(ValueError, match=r"random\(\) must give a number in \[0, 1\], gave 2"):
        backoff(0, Reconnect(random=lambda: 2))
    with pytest.raises(ValueError, match="attempt"):
        backoff(-1, Reconnect())


def test_the_subscribe_argument() -> None:
    assert reconnect_policy(True) == Reconnect()
    assert reconnect_policy(False) is None
    mine = Reconnect(max_retries=1)
    assert reconnect_policy(mine) is mine
    with pytest.raises(TypeError, match="reconnect must be True, False or a Reconnect"):
        reconnect_policy("yes")


def test_an_outage_ends_in_a_gap_that_spans_it() -> None:
    recovery = Recovery(["M:OUTTMP@p,1000", "Z:ACLTST@p,1000"], Reconnect(jitter=0.0))
    assert not recovery.down
    assert recovery.broke("the server closed the connection", T0) == pytest.approx(0.1)
    # a failed attempt: the outage goes on from its first moment, with the newest cause
    assert recovery.broke("connection refused", T0 + timedelta(seconds=1)) == pytest.approx(0.2)
    assert recovery.down
    gap = recovery.resumed(T0 + timedelta(seconds=2))
    assert gap == Gap(
        ("M:OUTTMP@p,1000", "Z:ACLTST@p,1000"),
        T0,
        T0 + timedelta(seconds=2),
        "connection refused",
        2,
    )
    assert not gap.ok and gap.value is None and gap.duration == timedelta(seconds=2)
    assert str(gap) == (
        "gap of 2.000 s in the stream of M:OUTTMP@p,1000 and 1 more "
        "(connection refused; back after 2 attempt(s))"
    )
    assert not recovery.down
    with pytest.raises(RuntimeError, match="no outage"):
        recovery.resumed(T0)


def test_attempts_count_across_outages_until_a_reading_arrives() -> None:
    recovery = Recovery(["M:OUTTMP@p,1000"], Reconnect(jitter=0.0, max_backoff=100.0))
    recovery.broke(SILENT, T0)
    recovery.resumed(T0)
    # it died again before any reading: the pause keeps growing
    assert recovery.broke(SILENT, T0) == pytest.approx(0.2)
    recovery.resumed(T0)
    recovery.heard()
    assert recovery.broke(SILENT, T0) == pytest.approx(0.1)


def test_out_of_retries_is_connection_lost() -> None:
    recovery = Recovery(["M:OUTTMP@p,1000"], Reconnect(max_retries=2))
    assert recovery.broke("reset", T0) is not None
    assert recovery.broke("reset", T0) is not None
    assert recovery.broke("refused", T0) is None
    error = recovery.lost()
    assert isinstance(error, ConnectionLost)
    assert str(error) == (
        "the stream of M:OUTTMP@p,1000 is lost: refused; gave up after 2 reconnection attempt(s)"
    )


def test_without_a_policy_the_first_break_is_final() -> None:
    recovery = Recovery(["M:OUTTMP@p,1000"], None)
    assert recovery.broke(SILENT, T0) is None
    assert str(recovery.lost()) == f"the stream of M:OUTTMP@p,1000 is lost: {SILENT}"


def test_the_next_attempt_is_due_on_the_adapters_clock() -> None:
    recovery = Recovery(["M:OUTTMP@p,1000"], Reconnect(jitter=0.0))
    assert recovery.broke(SILENT, T0, now=50.0) == pytest.approx(0.1)
    assert recovery.retry_at == pytest.approx(50.1)
    # a caller that waits longer than the pause makes the attempt; one that waits less
    # wakes at its own deadline, and the attempt stays due
    assert recovery.retry_wait(None) == (pytest.approx(50.1), True)
    assert recovery.retry_wait(60.0) == (pytest.approx(50.1), True)
    assert recovery.retry_wait(50.05) == (50.05, False)


def test_a_full_queue_drops_new_readings_but_never_a_gap() -> None:
    queue = ReadingQueue(3)
    r1, r2, r3, r4 = (error_reading(f"Z:SIM000{i}", 1) for i in range(4))
    at = datetime(2026, 1, 1, tzinfo=UTC)
    gap1, gap2 = (Gap(("Z:SIM0000",), at, at, "gone", n) for n in (1, 2))
    assert all(queue.push(r) for r in (r1, r2, r3))
    assert not queue.push(r4) and queue.dropped == 1
    # the newest reading makes room: readings before the gap, in order
    assert queue.push(gap1) and queue.dropped == 2
    assert queue.push(gap2) and queue.dropped == 3
    assert [queue.pop() for _ in range(len(queue))] == [r1, gap1, gap2]


def test_an_outage_is_told_by_an_open_gap_as_it_begins() -> None:
    recovery = Recovery(["M:OUTTMP@p,1000"], Reconnect(jitter=0.0), server="dpm.example:6802")
    with pytest.raises(RuntimeError, match="no outage"):
        recovery.opened()
    recovery.broke("the server closed the connection", T0)
    recovery.broke("connection refused", T0 + timedelta(seconds=1))  # the same outage
    gap = recovery.opened()
    assert gap == Gap(("M:OUTTMP@p,1000",), T0, None, "connection refused", 0, "dpm.example:6802")
    assert gap.open and gap.duration is None and not gap.ok and gap.value is None
    assert str(gap) == (
        "the stream of M:OUTTMP@p,1000 lost its connection to dpm.example:6802 at "
        "2026-01-01T00:00:00.000+00:00 (connection refused); "
        "reconnecting, readings from then on are missing"
    )
    closed = recovery.resumed(T0 + timedelta(seconds=2))
    assert not closed.open and closed.server == "dpm.example:6802"
    assert closed.duration == timedelta(seconds=2)
