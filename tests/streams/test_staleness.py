"""The staleness bound: which readings a stream skips to stay within max_age, and the gap.

All pure: times are given, as the adapters give them (wall-clock seconds).
The adapters that use it are checked against the simulator in
tests/adapters/dpm/test_staleness.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from acnet_proto.errors import ConfigurationError
from acnet_proto.streams.reconnect import Gap
from acnet_proto.streams.staleness import (
    BASELINE_WINDOW,
    STALE,
    Freshness,
    check_max_age,
)
from acnet_proto.types import Reading, ValueType

DRFS = ("Z:SIM0000@p,100", "Z:SIM0001@p,100")
T0 = 1_800_000_000.0  # wall-clock seconds: the client's "now" at the start


def reading(stamp: float | None, drf: str = DRFS[0]) -> Reading:
    at = None if stamp is None else datetime.fromtimestamp(stamp, UTC)
    return Reading(drf, ValueType.SCALAR, value=1.0, timestamp=at)


def batch(*stamps: float | None) -> list[Reading]:
    return [reading(s) for s in stamps]


class Asked:
    """A ``behind`` that answers ``answer`` and counts the questions."""

    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.times = 0

    def __call__(self) -> bool:
        self.times += 1
        return self.answer


def gaps(items: Sequence[Reading | Gap]) -> list[Gap]:
    return [item for item in items if isinstance(item, Gap)]


def warmed(max_age: float = 5.0, skew: float = 0.0) -> Freshness:
    """A stream that has seen one prompt reading (sent ``skew`` s behind the client's clock)."""
    fresh = Freshness(DRFS, max_age, server="localhost:6802")
    fresh.admit(batch(T0 - skew), T0, Asked(False))
    return fresh


def test_a_prompt_batch_is_delivered_as_it_is_without_asking_what_waits() -> None:
    fresh = warmed()
    items = batch(T0 + 0.9, T0 + 0.95, T0 + 1.0)
    asked = Asked(True)
    assert fresh.admit(items, T0 + 1.01, asked) is items
    assert asked.times == 0
    assert fresh.skipped == 0
    assert fresh.lateness == pytest.approx(0.11)  # its oldest reading's


def test_a_constant_clock_skew_cancels() -> None:
    # the server's clock is 100 s behind the client's: every reading looks 100 s old
    fresh = warmed(skew=100.0)
    for step in range(1, 50):
        now = T0 + step
        items = batch(now - 100.2, now - 100.1, now - 100.0)
        assert fresh.admit(items, now, Asked(True)) is items
    assert fresh.skipped == 0


def test_held_values_among_fresh_readings_are_judged_by_the_fresh_ones() -> None:
    # a sample-and-hold device sends, promptly, a value sampled an hour ago
    fresh = warmed()
    hour_ago = T0 - 3600
    for step in range(1, 20):
        now = T0 + step
        for items in (batch(hour_ago, now, hour_ago), batch(now - 0.01, hour_ago)):
            assert fresh.admit(items, now, Asked(True)) == items
    assert fresh.skipped == 0


def test_a_consumer_that_keeps_up_never_sees_a_gap_for_held_values() -> None:
    # a stream of held values only: their stamps get older and older, nothing waits
    fresh = Freshness(DRFS, 1.0)
    held = T0 - 600
    for tenth in range(3 * int(BASELINE_WINDOW) * 10):
        now = T0 + tenth / 10
        items = batch(held, held, held)
        assert fresh.admit(items, now, Asked(False)) == items
    assert fresh.skipped == 0


def test_a_backlog_loses_its_late_head_and_says_how_many() -> None:
    fresh = warmed()
    now = T0 + 60
    # 10 s of readings, one every 0.1 s, arrive at once: the first 5 s of them are late
    stamps = [now - 10 + i / 10 for i in range(101)]
    asked = Asked(True)
    out = fresh.admit(batch(*stamps), now, asked)
    assert asked.times == 0  # the batch's own tail is newer data behind the head
    [gap] = gaps(out)
    assert out[0] is gap
    kept = out[1:]
    assert gap.skipped + len(kept) == 101
    assert 45 <= gap.skipped <= 55  # those more than max_age late, give or take a reading
    assert all(now - r.timestamp.timestamp() <= 5.0 + 1e-6 for r in kept)  # type: ignore[union-attr]
    assert gap.cause == STALE and gap.attempts == 0 and not gap.open
    assert gap.since == datetime.fromtimestamp(stamps[0], UTC)
    assert gap.until == datetime.fromtimestamp(stamps[gap.skipped - 1], UTC)
    assert gap.drfs == DRFS and gap.server == "localhost:6802"
    assert not gap.ok and gap.value is None
    assert f"skipped {gap.skipped} reading(s)" in str(gap)
    assert fresh.skipped == gap.skipped


def test_a_late_batch_with_nothing_behind_it_is_delivered() -> None:
    # late, but the newest there is: skipping it would leave the consumer with nothing
    fresh = warmed()
    items = batch(T0 + 1, T0 + 1, T0 + 1)
    asked = Asked(False)
    assert fresh.admit(items, T0 + 20, asked) == items
    assert asked.times == 1
    assert fresh.skipped == 0


def test_a_late_batch_with_more_waiting_behind_it_is_skipped_whole() -> None:
    fresh = warmed()
    items = batch(T0 + 1, T0 + 1.1, T0 + 1.2)
    asked = Asked(True)
    out = fresh.admit(items, T0 + 20, asked)
    assert asked.times == 1
    [gap] = out
    assert isinstance(gap, Gap) and gap.skipped == 3
    assert (gap.since, gap.until) == (items[0].timestamp, items[-1].timestamp)
    # the next batch, fresh again, goes through
    items = batch(T0 + 19.9, T0 + 20)
    assert fresh.admit(items, T0 + 20.01, Asked(True)) is items
    assert fresh.skipped == 3


def test_an_outage_gap_is_never_skipped_and_keeps_its_place() -> None:
    fresh = warmed()
    outage = Gap(DRFS, datetime.fromtimestamp(T0, UTC), None, "gone", 0)
    items: list[Reading | Gap] = [reading(T0 + 1), outage, reading(T0 + 2), reading(T0 + 30)]
    out = fresh.admit(items, T0 + 30, Asked(True))
    assert out[0] is outage
    assert isinstance(out[1], Gap) and out[1].skipped == 2
    assert out[2:] == items[3:]


def test_readings_without_timestamps_go_with_their_neighbours() -> None:
    fresh = warmed()
    items = batch(T0 + 1, None, T0 + 30)
    out = fresh.admit(items, T0 + 30, Asked(True))
    assert isinstance(out[0], Gap) and out[0].skipped == 2
    assert out[1:] == items[2:]
    only_errors = batch(None, None)
    assert fresh.admit(only_errors, T0 + 31, Asked(True)) == only_errors


def test_the_baseline_follows_a_drifting_clock() -> None:
    # the server's clock falls behind 2 ms a second: 1.2 s in 10 minutes, past max_age
    fresh = warmed(max_age=1.0)
    for step in range(1, 600):
        now = T0 + step
        skew = step * 0.002
        fresh.admit(batch(now - skew - 0.1, now - skew), now, Asked(True))
    assert fresh.skipped == 0


def test_a_stream_late_for_good_is_not_taken_for_a_skewed_one() -> None:
    # it falls 10 s behind and stays there: every batch of it has newer data waiting (for the
    # first 10 s its stamps are older than the one it saw before: held values, kept)
    fresh = warmed()
    steps = range(11, int(20 * BASELINE_WINDOW))
    for step in steps:
        now = T0 + step
        out = fresh.admit(batch(now - 10.1, now - 10), now, Asked(True))
        assert isinstance(out[0], Gap), step
    assert fresh.skipped == 2 * len(steps)


def test_no_bound_means_nothing_is_looked_at() -> None:
    fresh = Freshness(DRFS, None)
    items = batch(T0 - 1000, T0 - 999)
    asked = Asked(True)
    assert fresh.admit(items, T0, asked) is items
    assert asked.times == 0
    assert fresh.late_head(items, [T0 - 1000, T0 - 1000], T0) == 0


def test_a_queue_loses_its_late_head_but_never_its_last_item() -> None:
    fresh = Freshness(DRFS, 2.0)
    items = batch(T0, T0 + 1, T0 + 2, T0 + 3)
    times = [T0, T0 + 1, T0 + 2, T0 + 3]
    assert fresh.late_head(items, times, T0 + 1.5) == 0  # nothing waited 2 s yet
    assert fresh.late_head(items, times, T0 + 3.5) == 2
    assert fresh.late_head(items, times, T0 + 100) == 3  # the last one stays
    gap = fresh.gap(items[:3], T0 + 100)
    assert gap.skipped == 3 and fresh.skipped == 3
    assert gap.since == datetime.fromtimestamp(T0, UTC)
    assert gap.until == datetime.fromtimestamp(T0 + 2, UTC)
    assert gap.cause == STALE and not gap.open


def test_a_queue_is_skipped_up_to_a_gap_only() -> None:
    fresh = Freshness(DRFS, 2.0)
    outage = Gap(DRFS, datetime.fromtimestamp(T0, UTC), None, "gone", 0)
    items: list[Reading | Gap] = [reading(T0), outage, reading(T0 + 1)]
    assert fresh.late_head(items, [T0, T0, T0 + 1], T0 + 10) == 1


def test_a_gap_for_readings_without_timestamps_is_placed_at_now() -> None:
    gap = Freshness(DRFS, 2.0).gap(batch(None), T0)
    assert gap.since == gap.until == datetime.fromtimestamp(T0, UTC)


def test_queued_at_counts_the_lateness_on_arrival() -> None:
    fresh = warmed()
    fresh.admit(batch(T0 + 1), T0 + 4, Asked(False))
    assert fresh.lateness == pytest.approx(3.0)
    assert fresh.queued_at(T0 + 4) == pytest.approx(T0 + 1)


@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan"), "5", True])
def test_max_age_is_checked(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="max_age"):
        check_max_age(bad)
    with pytest.raises(ConfigurationError, match="max_age"):
        Freshness(DRFS, bad)  # type: ignore[arg-type]


def test_max_age_accepts_seconds_or_none() -> None:
    assert check_max_age(None) is None
    assert check_max_age(2) == 2.0


def test_an_outage_gap_still_reads_as_before() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    gap = Gap(DRFS, at, at, "gone", 1)
    assert gap.skipped == 0
    assert "back after 1 attempt(s)" in str(gap)


def test_an_unstamped_reading_first_in_a_stream_makes_nothing_late() -> None:
    # An error reading (no timestamp) opening a stream whose readings are a year old
    # (a replayed recording): the queue must not take the batch for infinitely late.
    fresh = Freshness(DRFS, 5.0)
    year = 365 * 86400.0
    items = [reading(None), *batch(T0 - year - 1, T0 - year)]
    assert fresh.admit(items, T0, Asked(False)) == items
    assert fresh.lateness == pytest.approx(1.0)
    assert fresh.late_head(items, [fresh.queued_at(T0)] * 3, T0 + 0.5) == 0


def test_lateness_that_grows_slowly_is_bounded_all_the_same() -> None:
    # A consumer falling behind 0.9 s a minute, with more always waiting: the baseline must
    # not absorb the backlog (it rises, while busy, only as fast as a clock drifts)
    fresh = warmed()
    delivered: list[float] = []
    for step in range(1, 3600):
        now = T0 + step
        lag = step * 0.015
        out = fresh.admit(batch(now - lag - 0.1, now - lag), now, Asked(True))
        delivered += [now - r.timestamp.timestamp() for r in out if isinstance(r, Reading)]  # type: ignore[union-attr]
    assert fresh.skipped > 0
    assert max(delivered) < 5.0 + 1.0  # max_age, and a clock's worth of drift


def test_the_baseline_follows_a_clock_stepped_back_while_nothing_waits() -> None:
    # the server's clock is set back 2 s: as nothing waits, that is skew, not lateness, and
    # the baseline rises to it, a tenth of max_age per window
    fresh = warmed(max_age=1.0)
    for step in range(1, int(15 * BASELINE_WINDOW)):
        now = T0 + step
        fresh.admit(batch(now - 2.0), now, Asked(False))
    now = T0 + 15 * BASELINE_WINDOW
    items = batch(now - 2.1, now - 2.0)
    assert fresh.admit(items, now, Asked(True)) is items
    assert fresh.skipped == 0


def test_a_reading_without_a_timestamp_first_in_a_batch_is_never_skipped() -> None:
    # the error reading of a bad DRF (no timestamp) must reach the user, however busy
    fresh = Freshness(DRFS, 5.0)
    error, prompt = reading(None), reading(T0)
    assert fresh.admit([error, prompt], T0, Asked(True)) == [error, prompt]
    # nor is it skipped with the late readings after it: it stays ahead of their gap
    items = [reading(None), *batch(T0 + 1, T0 + 2, T0 + 30)]
    out = fresh.admit(items, T0 + 30, Asked(True))
    assert out[0] is items[0]
    assert isinstance(out[1], Gap) and out[1].skipped == 2
    assert out[2:] == items[3:]
    assert fresh.skipped == 2


def test_a_batch_after_an_outage_gets_no_empty_gap() -> None:
    # the stream was away for a minute: its first batch back, gap first, is judged by its
    # own readings, and no gap of nothing skipped is made
    fresh = warmed()
    now = T0 + 60
    outage = Gap(DRFS, datetime.fromtimestamp(T0, UTC), datetime.fromtimestamp(now, UTC), "gone", 1)
    items: list[Reading | Gap] = [outage, reading(now - 0.1), reading(now)]
    assert fresh.admit(items, now, Asked(True)) == items
    only_gap: list[Reading | Gap] = [outage]
    assert fresh.admit(only_gap, now + 1, Asked(True)) == only_gap
    assert fresh.skipped == 0
