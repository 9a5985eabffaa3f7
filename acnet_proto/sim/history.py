"""Historical data and fast time plots in the simulator: which samples, in which chunks.

Pure: every question takes the caller's times (``now``, monotonic seconds,
for when to send; ``wall``, Unix seconds, for what the samples are). The
simulated servers (DPM/TCP in :mod:`acnet_proto.sim.dpm`, gRPC in
``acnet_proto.adapters.sim.daq``) turn an entry whose DRF has a ``<-``
source into a :class:`Feed`: both start a list's (or a request's) feeds
with :meth:`Feeds.start` and send what :meth:`Feeds.fire` gives at each
tick, formatted for their protocol.

What is logged
--------------
A logger keeps the device's value as the live simulator serves it: the
entry's own reply at each sample time, so logged data follows the same
motion (and any sample-and-hold) as a live read. Each logger samples on its
own grid, whole multiples of its period since the Unix epoch:

==========  ==========  ==============================================
logger      period      note
==========  ==========  ==============================================
``ARKIV``   1 s         the best one: used when the DRF names no node
``FASTLG``  0.1 s       10 Hz
``SLOWLG``  60 s        once a minute
==========  ==========  ==============================================

Node names are compared in upper case (the DRF parser canonicalizes them).

Reply shape (as the lab's DPM sends it)
---------------------------------------
A logger entry is sent as chunks of at most :data:`CHUNK_POINTS` samples,
each a timed array (values, and the time of each in microseconds since the
epoch), then one empty chunk: the end of data. A fast time plot sends,
every :data:`FTP_BATCH_SECONDS`, the samples taken since the last batch (at
the rate of its periodic event, on that period's grid), until the list stops.

Bounded serving
---------------
One tick of a session (one :meth:`Feeds.fire`) makes at most
:data:`TICK_CHUNKS` chunks in all, shared round-robin by the feeds that are
due: a list of many logger entries is served a slice at a time, each slice
small enough that the server answers its other clients in between, and
never more than one slice ahead of what it writes. A logger entry still
sending stays due, so the next tick goes on where this one stopped; a fast
time plot that waited for its turn sends its latest samples.

Limits and refusals
-------------------
A refused entry is answered with one status, after the list started, and
sends nothing more. The statuses (``acnet-status-codes.json``):

==============================================================  ==========================
what is wrong                                                   status
==============================================================  ==========================
the logger node is not one of the table above                   ``DPM_INVALID_DATASOURCE``
no sample of the logger in the window (a window wholly in the   ``DAE_LJ_NO_DATA``
future, or shorter than the logger's period)
a property the loggers do not keep (anything but READING and    ``DAE_LJ_NO_DATA``
SETTING) or data that is not one number (a whole array, RAW,
text): ask for one element, ``M:ARRAY[3]<-LOGGER:...``
more than :data:`MAX_POINTS` samples in the window              ``DPM_REPLY_OVERFLOW``
the list's logger entries, in list order, past                  ``DPM_REPLY_OVERFLOW``
:data:`MAX_LIST_POINTS` samples together: each entry
past the cap (the ones before it are served)
a fast time plot without a periodic event (``@p,100H``)         ``DPM_BAD_EVENT``
a fast time plot of data that is not one number                 ``DPM_NOT_YET``
==============================================================  ==========================

A window that ends after ``wall`` (now) is cut at ``wall``: nothing is logged
yet beyond it. The event of a logger DRF is ignored (it is not checked
either): the window says what is sent.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from acnet_proto import drf
from acnet_proto.pc import dpm
from acnet_proto.sim.binding import Entry, RequestRejected
from acnet_proto.status import Status

__all__ = [
    "BEST_LOGGER",
    "CHUNK_POINTS",
    "DAE_LJ_NO_DATA",
    "DPM_BAD_EVENT",
    "DPM_INVALID_DATASOURCE",
    "DPM_NOT_YET",
    "DPM_REPLY_OVERFLOW",
    "FTP_BATCH_SECONDS",
    "LOGGERS",
    "MAX_LIST_POINTS",
    "MAX_POINTS",
    "TICK_CHUNKS",
    "Chunk",
    "Feed",
    "Feeds",
    "Logger",
    "Samples",
    "dpm_reply",
    "logger_samples",
    "start_feed",
]

#: Samples per chunk: what the lab's DPM puts in one reply of scalar logger data.
CHUNK_POINTS = 487
#: Most samples one logger request may ask for (about 11.5 days of ``ARKIV``).
MAX_POINTS = 1_000_000
#: Most samples the logger entries of one list (or one gRPC request) may ask for together.
MAX_LIST_POINTS = 2 * MAX_POINTS
#: How often a fast time plot sends what it sampled since the last batch.
FTP_BATCH_SECONDS = 0.5
#: Most chunks one session makes per tick, all its feeds together: about 4,000 samples,
#: tens of milliseconds of work, so other clients are answered between two ticks.
TICK_CHUNKS = 8

DAE_LJ_NO_DATA = Status.from_name("DAE_LJ_NO_DATA").status
DPM_INVALID_DATASOURCE = Status.from_name("DPM_INVALID_DATASOURCE").status
DPM_REPLY_OVERFLOW = Status.from_name("DPM_REPLY_OVERFLOW").status
DPM_BAD_EVENT = Status.from_name("DPM_BAD_EVENT").status
DPM_NOT_YET = Status.from_name("DPM_NOT_YET").status

_LOGGED = (drf.Property.READING, drf.Property.SETTING)


@dataclass(frozen=True, slots=True)
class Logger:
    """A simulated data logger: its node name and how often it samples."""

    name: str
    period_us: int


#: The simulated loggers, by node name.
LOGGERS: Mapping[str, Logger] = {
    lg.name: lg
    for lg in (Logger("ARKIV", 1_000_000), Logger("FASTLG", 100_000), Logger("SLOWLG", 60_000_000))
}
#: The logger used when a DRF names none.
BEST_LOGGER = "ARKIV"


@dataclass(frozen=True, slots=True)
class Samples:
    """``count`` sample times, ``period_us`` apart from ``first_us`` (µs since the epoch)."""

    first_us: int
    period_us: int
    count: int

    def at(self, index: int) -> int:
        """The time of sample ``index``, in µs since the epoch."""
        return self.first_us + index * self.period_us


@dataclass(frozen=True, slots=True)
class Chunk:
    """Samples to send in one reply: their times (µs since the epoch) and values.

    An empty chunk of a logger entry is its end of data.
    """

    micros: list[int]
    values: list[float]


def dpm_reply(ref_id: int, chunk: Chunk, wall: float) -> dpm.TimedScalarArrayReply:
    """The DPM/TCP reply for ``chunk``: stamped with its first sample (the end: ``wall``)."""
    stamp = chunk.micros[0] // 1000 if chunk.micros else round(wall * 1000)
    return dpm.TimedScalarArrayReply(
        ref_id=ref_id,
        timestamp=stamp,
        cycle=0,
        status=0,
        data=chunk.values,
        micros=chunk.micros,
    )


def logger_samples(
    entry: Entry, source: drf.LoggerSource, wall: float, loggers: Mapping[str, Logger] = LOGGERS
) -> Samples:
    """The samples a logger request gets at ``wall``; :class:`RequestRejected` if none.

    The window is cut at ``wall``; the statuses are in the module docstring.
    """
    node = source.node or BEST_LOGGER
    logger = loggers.get(node)
    if logger is None:
        known = ", ".join(sorted(loggers))
        raise RequestRejected(
            entry.drf, DPM_INVALID_DATASOURCE, f"no logger {node}; the loggers are {known}"
        )
    _check_loggable(entry)
    period = logger.period_us
    end_us = min(source.end_ms * 1000, round(wall * 1_000_000))
    first = -(-source.start_ms * 1000 // period)  # the first grid point at or after start
    count = end_us // period - first + 1
    if count <= 0:
        raise RequestRejected(
            entry.drf, DAE_LJ_NO_DATA, f"{node} logged nothing in the window {source.to_drf()}"
        )
    if count > MAX_POINTS:
        raise RequestRejected(
            entry.drf,
            DPM_REPLY_OVERFLOW,
            f"the window holds {count} samples of {node}, over {MAX_POINTS}: ask for less",
        )
    return Samples(first * period, period, count)


def _one_number(entry: Entry) -> bool:
    """True if ``entry``'s data is one number (what a logger or a plot can keep)."""
    return type(entry.reply(0, 0.0)) is dpm.ScalarReply


def _check_loggable(entry: Entry) -> None:
    prop = entry.request.property
    if prop not in _LOGGED or not _one_number(entry):
        raise RequestRejected(
            entry.drf,
            DAE_LJ_NO_DATA,
            f"the loggers keep one number of a READING or SETTING, not {entry.request}; "
            "ask for one element, such as [0]",
        )


def _value(entry: Entry, us: int) -> float:
    reply = entry.reply(0, us / 1_000_000)
    assert type(reply) is dpm.ScalarReply  # checked when the feed started
    return float(reply.data)


class Feed:
    """A started logger or fast-time-plot entry: what it still has to send, and when.

    :attr:`due` is when :meth:`take` has something (monotonic seconds);
    None once everything was sent.
    """

    def __init__(self, entry: Entry, due: float) -> None:
        self.entry = entry
        self.due: float | None = due

    def take(self, now: float, wall: float, budget: int) -> list[Chunk]:
        """At most ``budget`` (>= 1) chunks to send at ``now``; moves :attr:`due` on."""
        raise NotImplementedError

    def _chunks(self, times: range) -> list[Chunk]:
        entry = self.entry
        out = []
        for at in range(0, len(times), CHUNK_POINTS):
            micros = list(times[at : at + CHUNK_POINTS])
            out.append(Chunk(micros, [_value(entry, us) for us in micros]))
        return out


class _LoggerFeed(Feed):
    def __init__(self, entry: Entry, samples: Samples, now: float) -> None:
        super().__init__(entry, now)
        self.samples = samples
        self.sent = 0

    def take(self, now: float, wall: float, budget: int) -> list[Chunk]:
        s = self.samples
        stop = min(s.count, self.sent + budget * CHUNK_POINTS)
        times = range(s.at(self.sent), s.at(stop), s.period_us)
        self.sent = stop
        chunks = self._chunks(times)
        if stop == s.count and len(chunks) < budget:  # else the end of data waits a tick
            chunks.append(Chunk([], []))
            self.due = None
        return chunks


class _PlotFeed(Feed):
    def __init__(self, entry: Entry, period_us: int, now: float, wall: float) -> None:
        super().__init__(entry, now + FTP_BATCH_SECONDS)
        self.period_us = period_us
        self.last_us = round(wall * 1_000_000)  # sampled up to here, included

    def take(self, now: float, wall: float, budget: int) -> list[Chunk]:
        period = self.period_us
        upto = round(wall * 1_000_000) // period * period
        # a client that fell behind (or a plot that waited its turn) gets the latest samples
        latest = upto - period * (CHUNK_POINTS * min(4, budget) - 1)
        start = max(self.last_us // period * period + period, latest)
        self.last_us = max(self.last_us, upto)
        assert self.due is not None  # a plot runs until its list stops
        self.due += FTP_BATCH_SECONDS * (int((now - self.due) // FTP_BATCH_SECONDS) + 1)
        return self._chunks(range(start, upto + 1, period))


def start_feed(entry: Entry, now: float, wall: float) -> Feed:
    """The feed of ``entry`` (its DRF has a ``<-`` source), started at ``now``/``wall``.

    Raises :class:`RequestRejected` with the status to answer (see the module docstring).
    """
    source = entry.request.source
    if isinstance(source, drf.LoggerSource):
        return _LoggerFeed(entry, logger_samples(entry, source, wall), now)
    assert isinstance(source, drf.FTPSource), f"{entry.drf} has no source"
    event = entry.event
    if not isinstance(event, drf.PeriodicEvent):
        raise RequestRejected(
            entry.drf, DPM_BAD_EVENT, "a fast time plot needs a rate: add @p,<rate>H"
        )
    if entry.request.property not in _LOGGED or not _one_number(entry):
        raise RequestRejected(
            entry.drf, DPM_NOT_YET, "the simulator plots one number of a READING or SETTING"
        )
    return _PlotFeed(entry, event.period_us, now, wall)


class Feeds:
    """The started feeds of one list (or one gRPC request), by the caller's key (a ref id,
    a DRF's index), served with one budget of :data:`TICK_CHUNKS` chunks per tick.

    Both simulated servers use it the same way: :meth:`start` at StartList,
    :meth:`fire` when :meth:`next_due` comes; a feed that sent everything is
    dropped, so ``not feeds`` once none has anything left to send.
    """

    def __init__(self) -> None:
        self._feeds: dict[int, Feed] = {}
        self._turns: deque[int] = deque()  # round-robin: the next feed to serve first

    @classmethod
    def start(
        cls, entries: Iterable[tuple[int, Entry]], now: float, wall: float
    ) -> tuple[Feeds, list[tuple[int, RequestRejected]]]:
        """The feeds of those of ``entries`` with a ``<-`` source, and each one refused.

        Logger entries are counted in order against :data:`MAX_LIST_POINTS`:
        one that would pass it is refused ``DPM_REPLY_OVERFLOW``.
        """
        feeds = cls()
        refused: list[tuple[int, RequestRejected]] = []
        points = 0
        for key, entry in entries:
            if entry.request.source is None:
                continue
            try:
                feed = start_feed(entry, now, wall)
                points += _check_list_points(entry, feed, points)
            except RequestRejected as e:
                refused.append((key, e))
                continue
            feeds._feeds[key] = feed
            feeds._turns.append(key)
        return feeds, refused

    def __len__(self) -> int:
        return len(self._feeds)

    def next_due(self) -> float | None:
        """When :meth:`fire` has something to send next (monotonic); None: nothing."""
        return min((f.due for f in self._feeds.values() if f.due is not None), default=None)

    def fire(self, now: float, wall: float) -> list[tuple[int, Chunk]]:
        """The (key, chunk) pairs to send at ``now``: at most :data:`TICK_CHUNKS`, shared
        round-robin by the feeds due; the feeds that ended are dropped."""
        turns, budget = self._turns, TICK_CHUNKS
        due = sum(1 for f in self._feeds.values() if f.due is not None and f.due <= now)
        share = max(1, budget // max(due, 1))
        out: list[tuple[int, Chunk]] = []
        for _ in range(len(turns)):
            if budget <= 0:
                break
            key = turns.popleft()
            feed = self._feeds[key]
            if feed.due is not None and feed.due <= now:
                chunks = feed.take(now, wall, min(share, budget))
                budget -= len(chunks)
                out.extend((key, chunk) for chunk in chunks)
            if feed.due is None:
                del self._feeds[key]
            else:
                turns.append(key)
        return out


def _check_list_points(entry: Entry, feed: Feed, before: int) -> int:
    """The samples ``feed`` adds to its list's ``before``; :class:`RequestRejected` past the cap."""
    if not isinstance(feed, _LoggerFeed):
        return 0
    count = feed.samples.count
    if before + count > MAX_LIST_POINTS:
        raise RequestRejected(
            entry.drf,
            DPM_REPLY_OVERFLOW,
            f"the list's logger entries ask for {before + count} samples with this one, "
            f"over {MAX_LIST_POINTS}: ask for shorter windows, or split the list",
        )
    return count
