"""The stream driver: what a reconnecting subscription does next, decided with no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from acnet_proto.errors import ConnectionLost
from acnet_proto.streams.driver import CONNECT, GiveUp, StreamDriver, Wait
from acnet_proto.streams.reconnect import Gap, Reconnect

DRFS = ["M:OUTTMP@p,1000", "Z:ACLTST@p,1000"]
T0 = datetime(2026, 1, 1, tzinfo=UTC)
STEADY = Reconnect(initial_backoff=0.5, factor=2.0, jitter=0.0, max_retries=3)


def test_a_broken_connection_waits_as_the_policy_says_and_backs_off() -> None:
    driver = StreamDriver(DRFS, STEADY)
    assert not driver.down
    assert driver.broke("gone", T0, now=100.0) == Wait(100.5)
    assert driver.down
    assert driver.broke("refused", T0, now=101.0) == Wait(102.0)  # the second attempt: 1 s
    assert driver.broke("refused", T0, now=103.0) == Wait(105.0)


def test_out_of_attempts_it_gives_up_naming_the_count_and_the_last_cause() -> None:
    driver = StreamDriver(DRFS, Reconnect(max_retries=1, jitter=0.0))
    assert isinstance(driver.broke("gone", T0, 0.0), Wait)
    step = driver.broke("refused", T0, 1.0)
    assert isinstance(step, GiveUp) and step.error is not None
    assert str(step.error) == (
        "the stream of M:OUTTMP@p,1000 and 1 more is lost: refused; "
        "gave up after 1 reconnection attempt(s)"
    )


def test_without_a_policy_the_first_break_is_the_end() -> None:
    step = StreamDriver(DRFS, None).broke("gone", T0, 0.0)
    assert isinstance(step, GiveUp)
    assert str(step.error) == "the stream of M:OUTTMP@p,1000 and 1 more is lost: gone"


def test_a_failure_a_new_connection_cannot_mend_ends_the_stream_at_once() -> None:
    driver = StreamDriver(DRFS, STEADY)
    step = driver.broke("PERMISSION_DENIED: no", T0, 0.0, retry=False)
    assert isinstance(step, GiveUp) and isinstance(step.error, ConnectionLost)
    assert (
        str(step.error) == "the stream of M:OUTTMP@p,1000 and 1 more broke: PERMISSION_DENIED: no"
    )


def test_next_step_waits_for_the_attempt_then_connects() -> None:
    driver = StreamDriver(DRFS, STEADY)
    driver.broke("gone", T0, now=10.0)  # the attempt is due at 10.5
    assert driver.next_step(10.0) == Wait(10.5, then_connect=True)
    assert driver.next_step(10.5) is CONNECT
    assert driver.next_step(11.0) is CONNECT


def test_next_step_ends_the_callers_wait_first_when_it_ends_first() -> None:
    driver = StreamDriver(DRFS, STEADY)
    driver.broke("gone", T0, now=10.0)
    assert driver.next_step(10.0, deadline=10.2) == Wait(10.2, then_connect=False)
    assert driver.next_step(10.0, deadline=20.0) == Wait(10.5, then_connect=True)


def test_a_new_connection_delivers_the_gap_at_once() -> None:
    driver = StreamDriver(DRFS, STEADY)
    assert driver.connected(T0) == []  # the first connection ends no outage
    driver.broke("gone", T0, 0.0)
    driver.broke("refused", T0 + timedelta(seconds=1), 1.0)
    back = T0 + timedelta(seconds=3)
    [gap] = driver.connected(back)
    assert gap == Gap(tuple(DRFS), T0, back, "refused", 2)
    assert not driver.down
    assert driver.received(["r1"], back) == ["r1"]  # the gap came already


def test_where_gaps_wait_for_a_reading_the_first_reading_brings_it() -> None:
    driver = StreamDriver(DRFS, STEADY, gap_on_connect=False)
    driver.broke("gone", T0, 0.0)
    assert driver.connected(T0) == []
    assert driver.received([], T0) == []  # no reading: no sign of life yet
    assert driver.down
    back = T0 + timedelta(seconds=2)
    gap, reading = driver.received(["r1"], back)
    assert isinstance(gap, Gap) and (gap.since, gap.until, gap.attempts) == (T0, back, 1)
    assert reading == "r1"
    assert driver.received(["r2"], back) == ["r2"]


@pytest.mark.parametrize("gap_on_connect", [True, False])
def test_a_reading_starts_the_count_afresh(gap_on_connect: bool) -> None:
    driver = StreamDriver(DRFS, STEADY, gap_on_connect=gap_on_connect)
    driver.broke("gone", T0, 0.0)
    driver.broke("gone", T0, 0.0)  # two attempts into the outage: 1 s
    driver.connected(T0)
    driver.received(["r1"], T0)
    assert driver.broke("gone again", T0, now=50.0) == Wait(50.5)
