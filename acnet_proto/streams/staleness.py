"""Bounding how late a stream's readings reach user code: what to skip, and the gap that says so.

A stream whose consumer, or whose decoding, cannot keep up with its server
falls behind: readings wait in the subscription's queue, or as bytes in
socket buffers (which Linux lets grow to 32 MiB), and reach user code a
minute after they were taken, with nothing to say so. A :class:`Freshness`
bounds that: a reading more than ``max_age`` seconds late is skipped, *if*
newer data already waits behind it, and what was skipped is told in the
stream, by a closed :class:`~acnet_proto.streams.reconnect.Gap` whose
``skipped`` counts it, in the readings' place.

How late a reading is cannot be read off its timestamp against the client's
clock, for two reasons seen in the lab: the server's clock and the client's
differ (by a constant, or near enough), and a sample-and-hold device sends,
promptly, a value stamped when it was sampled, long ago. So:

- lateness is measured against a baseline: the smallest ``now - stamp``
  the stream saw in the last :data:`BASELINE_WINDOW` to twice that seconds,
  so a constant skew (and the usual transit time) cancels. It falls at
  once. It rises by up to a tenth of ``max_age`` (:data:`DRIFT` at least)
  per window from a batch with nothing waiting behind it (its lag cannot
  include a backlog: a clock set back is followed so), but by
  :data:`DRIFT` per window at most while more waits (a drifting clock is
  followed; a backlog growing faster than a clock drifts is not taken,
  after a while, for skew);
- a reading counts as sent no earlier than the freshest reading before it
  in the stream, so a held value that arrives among fresh ones is judged
  by them, not by its own old stamp;
- a reading is skipped only when newer data already waits behind it:
  fresher readings later in the same batch, more bytes on its connection,
  or a backlog in the queue to user code (a held value that no fresher
  stamp in its batch precedes, first after a quiet spell, say, is judged
  late only on the last two). A consumer that keeps up is never shown a
  gap, however old the values it is sent;
- an outage's gap is never skipped, nor a reading without a timestamp (an
  error) unless it follows a skipped reading in its batch: no stamp says
  when it was sent but its neighbour's.

Where it is applied, and so what it bounds:

- :meth:`Freshness.admit`, on each batch of readings decoded from the
  connection, before anything is queued or delivered: it catches up a
  stream whose reader fell behind (the bytes piled up in the socket);
- :meth:`Freshness.late_head`, when user code takes the next reading from
  a queue between a reader thread and it: it catches up a slow consumer.
  Each queued item is kept with when it would have been fresh
  (:meth:`Freshness.queued_at`), so that the two add up to one bound.

The skipping happens after decoding (the engine checks every byte it is
given); what it saves is queueing, waking the consumer and calling user
code, and the wait behind a backlog that only grows. A stream too slow even
to decode what it is sent stays late, skipping, by up to the time it takes
to decode what one read of the connection brings. A server clock stepped
back is followed only as fast as the baseline rises; until then the stream
skips only what has newer data behind it.

Nothing here reads a clock: ``now`` (wall-clock seconds, as the readings'
timestamps are) comes from the adapter.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from acnet_proto.api.config import check_timeout
from acnet_proto.streams.reconnect import Gap
from acnet_proto.types import Reading

__all__ = ["BASELINE_WINDOW", "DEFAULT_MAX_AGE", "DRIFT", "STALE", "Freshness", "check_max_age"]

#: How late (seconds) a reading may reach user code by default (``subscribe(..., max_age=)``).
DEFAULT_MAX_AGE = 5.0
#: Seconds after which a smallest ``now - stamp`` seen no longer counts in the baseline (it
#: counts for one to two windows), so that the baseline follows a clock that drifts.
BASELINE_WINDOW = 30.0
#: Seconds the baseline may rise per window while more data waits: a clock drifting 1.7 ms a
#: second, three times the fastest NTP slews. A backlog growing more slowly while the stream
#: is never once idle can hide in the baseline, at most this much per window.
DRIFT = 0.05
#: The cause of a gap where readings were skipped.
STALE = "readings more than max_age late were skipped to catch up"

Item = Reading | Gap


class Queued(Protocol):
    """A queue of items to user code, oldest first, that can be looked into without taking."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int, /) -> Item: ...


def check_max_age(max_age: object) -> float | None:
    """A ``subscribe(..., max_age=)`` argument: positive, finite seconds, or None (no bound).

    Anything else raises :class:`~acnet_proto.errors.ConfigurationError` naming ``max_age``.
    """
    return None if max_age is None else check_timeout(max_age, "max_age")


def _stamp(item: Item) -> float | None:
    if isinstance(item, Gap) or item.timestamp is None:
        return None
    return item.timestamp.timestamp()


class Freshness:
    """One stream's bound: readings at most ``max_age`` seconds late (None: no bound).

    ``drfs`` and ``server`` name the stream in its gaps. :attr:`skipped`
    counts every reading skipped so far; :attr:`lateness` is how late (in
    seconds past the baseline) the oldest reading delivered of the last batch was.
    """

    def __init__(
        self,
        drfs: Sequence[str],
        max_age: float | None = DEFAULT_MAX_AGE,
        server: str | None = None,
    ) -> None:
        self.drfs = tuple(drfs)
        self.max_age = check_max_age(max_age)
        self.server = server
        self.skipped = 0
        self.lateness = 0.0
        self._newest = -math.inf  # the freshest stamp the stream has seen
        self._current = math.inf  # the smallest now - stamp of this baseline window
        self._previous = math.inf  # and of the window before
        self._rotate_at = -math.inf
        self._rise = 0.0 if self.max_age is None else max(DRIFT, self.max_age / 10)

    def admit(
        self, items: Sequence[Item], now: float, behind: Callable[[], bool]
    ) -> Sequence[Item]:
        """What to deliver of ``items``, a batch just decoded (gaps of an outage included), at
        ``now`` (wall-clock seconds).

        ``behind()`` says whether more data already waits after the batch
        (bytes on the connection, readings queued for user code); it is
        asked only when late readings have nothing fresher after them in the
        batch. A gap of an outage comes first in a batch, if anywhere (as
        :meth:`~acnet_proto.streams.driver.StreamDriver.received` puts it).
        Returns ``items`` itself when nothing is late (the usual case: a
        batch in timestamp order costs the same whatever its length), else
        the items with the late readings replaced by one gap counting them.
        An outage's gap is never skipped, nor a reading without a timestamp
        that no skipped reading precedes in the batch; no gap of nothing is made.
        """
        if self.max_age is None or not items:
            return items
        first, last = _stamp(items[0]), _stamp(items[-1])
        before = self._newest
        if first is None or last is None or last < first or last < before:
            return self._trim(items, now, behind, None)  # out of order, or not only readings
        more = self._observe(now - last, now, behind, None)
        base = self._base()
        self.lateness = now - base - max(first, before)
        if self.lateness <= self.max_age:
            self._newest = last
            return items  # even its first reading was sent in time: so were the rest
        if now - base - last <= self.max_age:
            return self._trim(items, now, behind, more)
        if more is None:
            more = behind()
        if more:
            # even its last is late, and more waits (a reader catching up): all of it goes,
            # with no look at each reading, as the stream is short of time already (it starts
            # with a stamped reading, so it holds no outage's gap: those come first)
            self._newest = last
            self.lateness = now - base - last
            since, until = datetime.fromtimestamp(first, UTC), datetime.fromtimestamp(last, UTC)
            return [self._gap(len(items), since, until)]
        return self._trim(items, now, behind, more)

    def _trim(
        self, items: Sequence[Item], now: float, behind: Callable[[], bool], more: bool | None
    ) -> Sequence[Item]:
        """:meth:`admit` reading by reading: skip the late head of ``items`` that has newer
        data behind it (``more``: what ``behind()`` answered, if asked already)."""
        assert self.max_age is not None
        # When each item was sent, at the earliest: at the freshest stamp up to it. Until a
        # stamp in the batch is fresher than what came before it, that says little (a held
        # value first in a batch after a quiet spell): such items go only if more waits.
        before = newest = self._newest
        sent = []
        for item in items:
            stamp = _stamp(item)
            if stamp is not None and stamp > newest:
                newest = stamp
            sent.append(newest)
        if newest > -math.inf:
            more = self._observe(now - newest, now, behind, more)
        self._newest = newest
        base = self._base()
        late_before = now - base - self.max_age  # sent before this: late
        cut = 0  # the head of items up to the last reading skipped
        skipped: list[Reading] = []
        kept: list[Item] = []  # the items of the head not skipped, and maybe a few after it
        held = 0  # how many of kept are in the head
        for index, item in enumerate(items):
            # An outage's gap is kept, and so is an unstamped item (an error reading) unless
            # it goes with the skipped reading before it: nothing else says when it was sent.
            if isinstance(item, Gap) or (item.timestamp is None and not (skipped and cut == index)):
                kept.append(item)
                continue
            at = sent[index]
            if at >= late_before:
                break
            if at >= newest or at <= before:  # nothing known fresher behind it in the batch
                if more is None:
                    more = behind()
                if not more:
                    break
            skipped.append(item)
            cut, held = index + 1, len(kept)
        # unstamped items (an error reading first in a stream) say nothing about lateness
        stamped = [at for at in sent[cut:] if at > -math.inf]
        self.lateness = now - base - stamped[0] if stamped else 0.0
        if not skipped:
            return items  # nothing skipped: no gap of nothing, an outage's gap kept in place
        return [*kept[:held], self.gap(skipped, now), *items[cut:]]

    def queued_at(self, now: float) -> float:
        """The time to keep with a reading of the last batch as it is queued at ``now``, for
        :meth:`late_head`: ``now`` less :attr:`lateness`, so that the time it waits in the
        queue adds to how late the batch's oldest reading already was."""
        return now - self.lateness

    def late_head(self, items: Queued, times: Sequence[float], now: float) -> int:
        """Before user code takes the next of ``items`` (a queue, oldest first; ``times`` their
        :meth:`queued_at` times) at ``now``: how many at its head to skip, the readings more
        than ``max_age`` late that have others queued behind them.

        Skip them (:meth:`gap` says so in their place). The last item, and a
        gap and whatever follows it, are never skipped.
        """
        if self.max_age is None:
            return 0
        late_before = now - self.max_age
        count = 0
        while count < len(items) - 1 and times[count] < late_before:
            if isinstance(items[count], Gap):
                break
            count += 1
        return count

    def gap(self, readings: Sequence[Reading], now: float) -> Gap:
        """The gap to deliver in place of ``readings``, skipped at ``now``, counted in
        :attr:`skipped`: from the oldest timestamp among them to the newest (both ``now``
        if none has one)."""
        stamps = [r.timestamp for r in readings if r.timestamp is not None]
        if stamps:
            return self._gap(len(readings), min(stamps), max(stamps))
        at = datetime.fromtimestamp(now, UTC)
        return self._gap(len(readings), at, at)

    def _gap(self, count: int, since: datetime, until: datetime) -> Gap:
        self.skipped += count
        return Gap(self.drfs, since, until, STALE, 0, self.server, skipped=count)

    def _observe(
        self, lag: float, now: float, behind: Callable[[], bool], more: bool | None
    ) -> bool | None:
        """Count ``lag`` (``now - stamp`` of a batch's freshest reading) in the baseline;
        returns ``more``, what ``behind()`` answered, if known or asked, else None.

        ``behind()`` is asked only when the lag would raise the baseline more
        than a clock drifts: rarely, as a window's smallest lag is soon found.
        """
        if not now < self._rotate_at or now < self._rotate_at - 2 * BASELINE_WINDOW:
            # a new window (or a wall clock set back); one that saw nothing to count is no
            # window, so the last that did keeps counting
            if self._current < math.inf:
                self._previous, self._current = self._current, math.inf
            self._rotate_at = now + BASELINE_WINDOW
        if lag >= self._current:
            return more
        # The baseline falls at once. A stream that stays late must not come to take its
        # lateness for skew: only a batch with nothing behind it (its lag holds no backlog)
        # raises it more than a clock drifts, and by a tenth of max_age at most.
        base = min(self._current, self._previous)
        if lag <= base + DRIFT:
            self._current = lag
            return more
        if more is None:
            more = behind()
        self._current = min(lag, base + (DRIFT if more else self._rise))
        return more

    def _base(self) -> float:
        base = min(self._current, self._previous)
        return 0.0 if base == math.inf else base
