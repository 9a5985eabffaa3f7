"""The stream driver: what a reconnecting subscription does next, decided with no I/O."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from acnet_proto.engine import MISSED_HEARTBEATS
from acnet_proto.errors import AuthenticationError, ConnectionLost
from acnet_proto.streams.driver import CONNECT, GiveUp, StreamDriver, Wait, heartbeat_driver
from acnet_proto.streams.reconnect import SILENT, Gap, Reconnect

DRFS = ["M:OUTTMP@p,1000", "Z:ACLTST@p,1000"]
T0 = datetime(2026, 1, 1, tzinfo=UTC)
STEADY = Reconnect(initial_backoff=0.5, factor=2.0, jitter=0.0, max_retries=3)


def test_a_broken_connection_waits_as_the_policy_says_and_backs_off() -> None:
    driver = StreamDriver(DRFS, STEADY)
    assert not driver.down
    first = driver.broke("gone", T0, now=100.0)
    assert first.until == 100.5 and first.then_connect  # type: ignore[union-attr]
    assert driver.down
    assert driver.broke("refused", T0, now=101.0) == Wait(102.0)  # the second attempt: 1 s
    assert driver.broke("refused", T0, now=103.0) == Wait(105.0)


def test_the_first_failure_of_an_outage_tells_it_at_once_with_an_open_gap() -> None:
    driver = StreamDriver(DRFS, STEADY, server="dpm.example:6802")
    step = driver.broke("the server closed the connection", T0, now=10.0)
    assert isinstance(step, Wait) and step.gap is not None
    opened = step.gap
    assert opened == Gap(
        tuple(DRFS), T0, None, "the server closed the connection", 0, "dpm.example:6802"
    )
    assert opened.open and opened.duration is None and not opened.ok and opened.value is None
    # the attempts that fail after it are the same outage: no second notice
    later = driver.broke("connection refused", T0 + timedelta(seconds=1), now=11.0)
    assert isinstance(later, Wait) and later.gap is None
    # the list runs again: the closed gap spans the outage, from the same moment
    back = T0 + timedelta(seconds=2)
    [closed] = driver.received([], back, started=True)
    assert (closed.since, closed.until, closed.open) == (T0, back, False)
    assert (closed.cause, closed.attempts, closed.server) == (
        "connection refused",
        2,
        opened.server,
    )
    # the next outage is told again
    again = driver.broke("gone", back, now=20.0)
    assert isinstance(again, Wait) and again.gap is not None and again.gap.attempts == 2


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


@pytest.mark.parametrize("outages", [0, 1])
def test_refused_credentials_end_the_stream_with_that_error_at_once(outages: int) -> None:
    # e.g. an expired Kerberos ticket met by a reconnection: every attempt would meet it too
    driver = StreamDriver(DRFS, Reconnect(max_retries=None, jitter=0.0))
    for _ in range(outages):
        driver.broke("the server closed the connection", T0, 0.0)
    expired = AuthenticationError("the Kerberos ticket expired; run kinit")
    step = driver.broke(str(expired), T0, 1.0, error=expired)
    assert step == GiveUp(expired) and step.error is expired  # not wrapped, not retried


def test_other_failures_given_as_errors_are_retried() -> None:
    driver = StreamDriver(DRFS, STEADY)
    refused = ConnectionRefusedError(111, "Connection refused")
    step = driver.broke(str(refused), T0, 0.0, error=refused)
    assert isinstance(step, Wait) and step.gap is not None
    assert step.gap.cause == "[Errno 111] Connection refused"


def test_the_connection_lost_given_up_with_is_caused_by_the_failure() -> None:
    reset = ConnectionResetError(104, "Connection reset by peer")
    out = StreamDriver(DRFS, None).broke(str(reset), T0, 0.0, error=reset)
    assert isinstance(out, GiveUp) and out.error.__cause__ is reset
    unmendable = StreamDriver(DRFS, STEADY).broke("no", T0, 0.0, retry=False, error=reset)
    assert isinstance(unmendable, GiveUp) and unmendable.error.__cause__ is reset
    assert StreamDriver(DRFS, None).broke("gone", T0, 0.0).error.__cause__ is None  # type: ignore[union-attr]


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


def test_the_list_running_delivers_the_closed_gap_at_once() -> None:
    driver = StreamDriver(DRFS, STEADY)
    assert driver.received([], T0, started=True) == []  # the first connection ends no outage
    driver.broke("gone", T0, 0.0)
    driver.broke("refused", T0 + timedelta(seconds=1), 1.0)
    back = T0 + timedelta(seconds=3)
    [gap] = driver.received([], back, started=True)
    assert gap == Gap(tuple(DRFS), T0, back, "refused", 2)
    assert not driver.down
    assert driver.received(["r1"], back) == ["r1"]  # the gap came already


def test_without_word_from_the_server_the_first_reading_brings_the_gap() -> None:
    driver = StreamDriver(DRFS, STEADY)  # as gRPC: a call says nothing until it reads
    driver.broke("gone", T0, 0.0)
    assert driver.received([], T0) == []  # no reading: no sign of life yet
    assert driver.down
    back = T0 + timedelta(seconds=2)
    gap, reading = driver.received(["r1"], back)
    assert isinstance(gap, Gap) and (gap.since, gap.until, gap.attempts) == (T0, back, 1)
    assert reading == "r1"
    assert driver.received(["r2"], back) == ["r2"]


def test_a_sent_list_closes_the_gap_when_it_runs_dated_when_it_was_sent() -> None:
    driver = StreamDriver(DRFS, STEADY)
    driver.broke("gone", T0, 0.0)
    sent = T0 + timedelta(seconds=1)
    driver.sent(sent, 1.0)
    assert driver.starting and driver.down
    assert driver.received([], sent + timedelta(seconds=1)) == []  # heartbeats say nothing
    # the server's word that the list runs: readings after the gap were made after ``sent``
    [gap] = driver.received([], sent + timedelta(seconds=2), started=True)
    assert gap.until == sent and not driver.starting and not driver.down


def test_a_reading_starts_the_count_afresh_the_word_that_the_list_runs_does_not() -> None:
    driver = StreamDriver(DRFS, STEADY)
    driver.broke("gone", T0, 0.0)
    driver.broke("gone", T0, 0.0)  # two attempts into the outage: 1 s
    driver.sent(T0, 0.0)
    driver.received([], T0, started=True)
    assert driver.broke("gone again", T0, now=50.0).until == 52.0  # type: ignore[union-attr]
    driver.sent(T0, 0.0)
    driver.received(["r1"], T0, started=True)
    assert driver.broke("gone again", T0, now=60.0).until == 60.5  # type: ignore[union-attr]


def test_wait_is_the_silence_rule_or_the_callers_deadline() -> None:
    driver = StreamDriver(DRFS, STEADY)
    assert driver.wait(None) == (math.inf, None)
    assert driver.wait(16.0) == (16.0, SILENT)
    assert driver.wait(16.0, deadline=12.0) == (12.0, None)  # the caller's wait is over first
    assert driver.wait(16.0, deadline=16.0) == (16.0, SILENT)  # a tie: the connection is dead
    assert driver.wait(None, deadline=12.0) == (12.0, None)


def test_a_list_never_started_is_a_dead_connection_by_its_bound() -> None:
    driver = StreamDriver(DRFS, STEADY, start_within=6.0)
    driver.sent(T0, 10.0)  # due to run by 16.0
    # heartbeats keep pushing the silence rule on: the start bound stays
    until, cause = driver.wait(19.0)
    assert until == 16.0 and cause is not None
    assert cause == (
        "the server did not start the list within 6 s of its request "
        "(it kept the connection open without answering it)"
    )
    assert driver.wait(19.0, deadline=12.0) == (12.0, None)
    assert driver.wait(14.0) == (14.0, SILENT)  # silence, if it comes first, is the cause
    driver.received([], T0, started=True)
    assert driver.wait(19.0) == (19.0, SILENT)  # it runs: no bound any more


def test_a_list_never_started_is_an_outage_told_once_until_one_runs() -> None:
    driver = StreamDriver(DRFS, Reconnect(max_retries=2, jitter=0.0), start_within=0.3)
    driver.sent(T0, 0.0)
    _, cause = driver.wait(None)
    assert cause is not None
    first = driver.broke(cause, T0, 0.3)  # the first connection: told at once
    assert isinstance(first, Wait) and first.gap is not None and first.gap.open
    driver.sent(T0, 1.0)  # the next attempt's list is not started either
    second = driver.broke(cause, T0, 1.3)
    assert isinstance(second, Wait) and second.gap is None and not driver.starting
    driver.sent(T0, 2.0)
    step = driver.broke(cause, T0, 2.3)
    assert isinstance(step, GiveUp)
    assert str(step.error).endswith(f"{cause}; gave up after 2 reconnection attempt(s)")


def test_a_heartbeat_stream_must_start_as_soon_as_silence_would_count() -> None:
    driver = heartbeat_driver(DRFS, STEADY, 0.5, "127.0.0.1", 6802)
    assert driver.start_within == MISSED_HEARTBEATS * 0.5
    assert driver.recovery.server == "127.0.0.1:6802"
