"""Historical data and fast time plots in the simulator: which samples, in which chunks.

Pure: every question takes the caller's times (``now``, monotonic seconds,
for when to send; ``wall``, Unix seconds, for what the samples are). The
simulated servers (DPM/TCP in :mod:`acnet_proto.sim.dpm`, gRPC in
``acnet_proto.adapters.sim.daq``) turn an entry whose DRF has a ``<-``
source into a :class:`Feed` with :func:`start_feed` and send what
:meth:`Feed.take` gives, formatted for their protocol.

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
a fast time plot without a periodic event (``@p,100H``)         ``DPM_BAD_EVENT``
a fast time plot of data that is not one number                 ``DPM_NOT_YET``
==============================================================  ==========================

A window that ends after ``wall`` (now) is cut at ``wall``: nothing is logged
yet beyond it. The event of a logger DRF is ignored: the window says what is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    "MAX_POINTS",
    "Chunk",
    "Feed",
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
#: How often a fast time plot sends what it sampled since the last batch.
FTP_BATCH_SECONDS = 0.5
#: Most chunks one :meth:`Feed.take` gives: the rest waits until those are written.
TAKE_CHUNKS = 32

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

    def take(self, now: float, wall: float) -> list[Chunk]:
        """The chunks to send at ``now`` (at most :data:`TAKE_CHUNKS`); moves :attr:`due` on."""
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

    def take(self, now: float, wall: float) -> list[Chunk]:
        s = self.samples
        stop = min(s.count, self.sent + TAKE_CHUNKS * CHUNK_POINTS)
        times = range(s.at(self.sent), s.at(stop), s.period_us)
        self.sent = stop
        chunks = self._chunks(times)
        if stop == s.count:
            chunks.append(Chunk([], []))
            self.due = None
        return chunks


class _PlotFeed(Feed):
    def __init__(self, entry: Entry, period_us: int, now: float, wall: float) -> None:
        super().__init__(entry, now + FTP_BATCH_SECONDS)
        self.period_us = period_us
        self.last_us = round(wall * 1_000_000)  # sampled up to here, included

    def take(self, now: float, wall: float) -> list[Chunk]:
        period = self.period_us
        upto = round(wall * 1_000_000) // period * period
        # a client that fell behind gets the latest samples, not a burst
        start = max(self.last_us // period * period + period, upto - period * CHUNK_POINTS * 4)
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
