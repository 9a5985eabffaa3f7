"""Historical data and fast time plots: a logger entry's chunks gathered into one History.

A DRF with ``<-LOGGER:<start ms>:<end ms>[:<node>]`` asks DPM for what a data
logger recorded over a window; one with ``<-FTP`` (``M:OUTTMP@p,100H<-FTP``)
for the device sampled fast, sent in batches until the list stops. Both come
back as timestamped arrays in chunks (DPM/TCP: ``TimedScalarArray_reply`` of
at most :data:`CHUNK_POINTS` points; gRPC: a ``ReadingReply`` of as many
``Reading``). A logger window ends with an *empty* chunk (the end of data);
an error for the entry is a status in a chunk's place, and ends it too.

:class:`HistoryEntries` is what a list plan (DPM/TCP's
:class:`~acnet_proto.plans.lists.ListPlan`, gRPC's plans) keeps of those
entries: it gathers a logger entry's chunks, as the arrays the decoder made,
until the end of data, then makes one :class:`~acnet_proto.types.Reading`
whose value is a :class:`~acnet_proto.types.History`; an FTP chunk is a
reading of its own at once. The arrays are joined once, at the end: no
Python float per point beyond what decoding made. See ``docs/history.md``.

The user's side (``Device.history``, ``Backend.history``) asks with
:func:`logger_request` and unwraps with :func:`history_of`. Pure: no clock,
no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from acnet_proto import drf as _drf
from acnet_proto.errors import ConfigurationError, DeviceError
from acnet_proto.status import Status
from acnet_proto.types import DeviceMeta, History, Reading, ValueType

__all__ = [
    "CHUNK_POINTS",
    "MAX_POINTS",
    "HistoryEntries",
    "history_of",
    "is_chunked",
    "logger_request",
    "refuse_history",
    "unix_ms",
]

#: The most points the lab's DPM puts in one ``TimedScalarArray_reply`` of a logger window.
CHUNK_POINTS = 487
#: The most points the logger entries of one list may gather together (80 MB of values and
#: 80 MB of times); the entry whose chunk would pass it ends with ``DPM_REPLY_OVERFLOW``
#: rather than fill the client's memory.
MAX_POINTS = 10_000_000

_MALFORMED = Status.from_name("ACNET_RPLYPACK")
_TOO_MANY = Status.from_name("DPM_REPLY_OVERFLOW")
#: What a logger answers for a window it holds nothing of: an empty History, not an error.
_NO_DATA = Status.from_name("DAE_LJ_NO_DATA")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SOURCES = "<-LOGGER or <-FTP"
_USE_DPM = (
    "read historical data and fast time plots through DPM: acnet_proto.dpm(...) "
    "(DPM/TCP) or acnet_proto.grpc(...) (DPM over gRPC)"
)


def is_chunked(request: _drf.DataRequest) -> bool:
    """True if ``request`` is answered in timestamped chunks: a logger window or an FTP."""
    return isinstance(request.source, (_drf.LoggerSource, _drf.FTPSource))


def unix_ms(when: object, name: str) -> int:
    """``when`` (an aware ``datetime``, or Unix seconds as int or float) in Unix milliseconds.

    A naive datetime (no ``tzinfo``: which zone would it be?), a time before
    1970, NaN or infinity is a :class:`~acnet_proto.errors.ConfigurationError`
    naming the argument ``name``; anything else is a TypeError.
    """
    if isinstance(when, datetime):
        if when.tzinfo is None or when.utcoffset() is None:
            raise ConfigurationError(
                f"{name}={when!r} is a naive datetime: give it a time zone, "
                "e.g. datetime(..., tzinfo=timezone.utc), or pass Unix seconds"
            )
        seconds = (when - _EPOCH) / timedelta(seconds=1)
    elif isinstance(when, (int, float)) and not isinstance(when, bool):
        seconds = float(when)
    else:
        raise TypeError(
            f"{name} must be an aware datetime or Unix seconds, not {type(when).__name__}"
        )
    if not math.isfinite(seconds) or seconds < 0:
        raise ConfigurationError(f"{name}={when!r} is not a time since 1970 (UTC)")
    return round(seconds * 1000)


def logger_request(
    request: _drf.DataRequest | str, start: object, end: object, node: str | None = None
) -> _drf.DataRequest:
    """``request`` as read from a logger, ``start`` to ``end`` (both included, see :func:`unix_ms`).

    ``node`` names the logger (None: the server picks the best). The
    request keeps its property, range, field and event (a logger ignores the
    event for the window). A window that ends before it starts, or a node
    that is no logger name, is a :class:`~acnet_proto.errors.ConfigurationError`.
    """
    parsed = _drf.parse(request) if isinstance(request, str) else request
    start_ms, end_ms = unix_ms(start, "start"), unix_ms(end, "end")
    if end_ms < start_ms:
        raise ConfigurationError(
            f"end ({end!r}) is before start ({start!r}): a logger window runs forward in time"
        )
    if node is not None and not isinstance(node, str):
        raise TypeError(f"node must be a logger name or None, not {type(node).__name__}")
    try:
        source = _drf.LoggerSource(start_ms, end_ms, None if node is None else node.upper())
    except ValueError as e:
        raise ConfigurationError(f"start={start!r}, end={end!r}, node={node!r}: {e}") from None
    return replace(parsed, source=source)


def history_of(reading: Reading) -> History:
    """The :class:`History` a logger read made; :class:`DeviceError` if it is an error.

    ``DAE_LJ_NO_DATA`` (the logger holds nothing of the window) is an empty
    History, however the reading was made. A ``{"data": ..., "micros": ...}``
    value (what pacsys and test doubles return) is taken as one; any other
    value is a TypeError naming the DRF.
    """
    value = reading.value
    if (reading.facility_code, reading.error_code) == (_NO_DATA.facility, _NO_DATA.error):
        return History()
    if not reading.ok or value is None:
        raise DeviceError(reading.drf, reading.facility_code, reading.error_code, reading.message)
    if isinstance(value, History):
        return value
    if isinstance(value, dict) and value.keys() == {"data", "micros"}:
        return History(value["data"], value["micros"])
    raise TypeError(
        f"{reading.drf} read as {type(value).__name__}, not logged data: is it a <-LOGGER request?"
    )


def refuse_history(drfs: Sequence[str], requests: Sequence[_drf.DataRequest], what: str) -> None:
    """:class:`~acnet_proto.drf.DRFError` for the first of ``drfs`` with a logger or FTP source.

    For the reads that cannot fetch them (``what``: ``"DMQ read"``,
    ``"ACL read"``): the lab serves historical data over DPM only, and a
    service that does not know the source would answer with something else.
    """
    for text, request in zip(drfs, requests, strict=True):
        if is_chunked(request):
            raise _drf.DRFError(
                text,
                max(text.find("<-"), 0),
                f"the {what} cannot fetch historical data or fast time plots ({_SOURCES})",
                _USE_DPM,
                subject="cannot read",
            )


class _Gathered:
    """One logger entry's chunks so far, as the decoder made them."""

    __slots__ = ("micros", "points", "values")

    def __init__(self) -> None:
        self.values: list[np.ndarray] = []
        self.micros: list[np.ndarray] = []
        self.points = 0

    def history(self) -> History:
        if not self.values:
            return History()
        return History.adopt(np.concatenate(self.values), np.concatenate(self.micros))


def _arrays(values: Any, micros: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """``values`` and ``micros`` as 1-D float64 and int64 arrays (no copy when they are
    already), or None if they are not one time per value."""
    data = np.asarray(values, dtype=np.float64)
    stamps = np.asarray(micros, dtype=np.int64)
    if data.ndim != 1 or data.shape != stamps.shape:
        return None
    return data, stamps


def _first_time(micros: np.ndarray) -> datetime | None:
    if not micros.size:
        return None
    try:
        return _EPOCH + timedelta(microseconds=int(micros[0]))
    except OverflowError:
        return None  # a time no datetime holds: the arrays still say it


class HistoryEntries:
    """The logger and FTP entries of one list (by 0-based index), and what their chunks make.

    ``drfs`` and ``requests`` are the list's DRFs and them parsed. A plan
    asks ``index in entries`` for each reply, then passes a chunk's arrays
    to :meth:`chunk`, or the reading a status made to :meth:`failed`. Each
    returns the ``(index, reading)`` pairs made: nothing while a logger
    window is still arriving, its whole :class:`History` at the end of data.
    ``limit`` bounds the points all the logger entries gather together (one
    budget per list: a list of N windows holds no more than one).
    """

    def __init__(
        self,
        drfs: Sequence[str],
        requests: Sequence[_drf.DataRequest],
        limit: int = MAX_POINTS,
    ) -> None:
        self._drfs = drfs
        self._limit = limit
        # one pass over the few requests with a source: a plain read list has none
        sourced = [(i, r.source) for i, r in enumerate(requests) if r.source is not None]
        self._logged = {
            i: _Gathered() for i, source in sourced if isinstance(source, _drf.LoggerSource)
        }
        self._plots = {i for i, source in sourced if isinstance(source, _drf.FTPSource)}
        self._ended: set[int] = set()
        self._points = 0  # gathered by all the logger entries, ended or not

    def __contains__(self, index: object) -> bool:
        return index in self._logged or index in self._plots

    def __bool__(self) -> bool:
        return bool(self._logged or self._plots)

    def chunk(
        self, index: int, values: Any, micros: Any, meta: DeviceMeta | None = None
    ) -> list[tuple[int, Reading]]:
        """Fold one chunk of entry ``index``: ``values`` and their ``micros`` (Unix µs).

        An FTP chunk is a reading at once (an empty one makes none). A logger
        chunk is kept; an empty one ends the window: its reading, all of it.
        A chunk without one time per value, or one that takes the list's
        logger entries past ``limit`` points together, ends the entry with an
        error reading. Chunks after the end are ignored.
        """
        if index in self._ended:
            return []
        arrays = _arrays(values, micros)
        if arrays is None:
            note = "a chunk of logged data has not one time per value"
            return self._end(index, self._error(index, _MALFORMED, note, meta))
        data, stamps = arrays
        if index in self._plots:
            return (
                []
                if not data.size
                else [(index, self._reading(index, History(data, stamps), meta))]
            )
        gathered = self._logged[index]
        if not data.size:
            return self._end(index, self._reading(index, gathered.history(), meta))
        if self._points + data.size > self._limit:
            note = (
                f"the list's logger windows hold more than {self._limit:,} points together; "
                "ask for shorter windows, or read them in separate lists"
            )
            return self._end(index, self._error(index, _TOO_MANY, note, meta))
        gathered.values.append(data)
        gathered.micros.append(stamps)
        gathered.points += data.size
        self._points += data.size
        return []

    def failed(self, index: int, reading: Reading) -> list[tuple[int, Reading]]:
        """Entry ``index`` got ``reading`` in place of a chunk (a status, or data of another
        shape). For an FTP it is passed on as any reading is. For a logger window it ends
        the entry: as an error if it carries data (an array device's records), and with
        the message saying how many points had arrived; ``DAE_LJ_NO_DATA`` (the logger
        holds nothing of the window) ends it as the History gathered, empty if none."""
        if index in self._ended:
            return []
        if index in self._plots:
            return [(index, reading)]
        if (reading.facility_code, reading.error_code) == (_NO_DATA.facility, _NO_DATA.error):
            gathered = self._logged[index].history()
            return self._end(index, self._reading(index, gathered, reading.meta))
        if reading.value is not None:  # data of another shape: an array device's records
            kind = reading.value_type.name if reading.value_type else "untyped"
            note = f"the server sent {kind} data, not timestamped points"
            reading = self._error(index, _MALFORMED, note, reading.meta)
        points = self._logged[index].points
        if points:
            said = reading.message or str(reading.status)
            reading = replace(reading, message=f"{said} (after {points:,} points of the window)")
        return self._end(index, reading)

    def progress(self, indexes: Sequence[int]) -> list[str]:
        """For a read cut short: what each logger window of ``indexes`` still waiting got."""
        return [
            f"{self._drfs[i]}: {self._logged[i].points:,} points, no end of data"
            for i in indexes
            if i in self._logged and i not in self._ended
        ]

    def _end(self, index: int, reading: Reading) -> list[tuple[int, Reading]]:
        self._ended.add(index)
        if index in self._logged:
            self._logged[index] = _Gathered()  # the arrays now belong to the reading alone
        return [(index, reading)]

    def _reading(self, index: int, history: History, meta: DeviceMeta | None) -> Reading:
        return Reading(
            self._drfs[index],
            ValueType.TIMED_SCALAR_ARRAY,
            value=history,
            timestamp=_first_time(history.micros),
            meta=meta,
        )

    def _error(self, index: int, status: Status, note: str, meta: DeviceMeta | None) -> Reading:
        message = f"{status.label}: {status.text}: {note}"
        return Reading(
            self._drfs[index],
            facility_code=status.facility,
            error_code=status.error,
            message=message,
            meta=meta,
        )
