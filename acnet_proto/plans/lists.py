"""Planning DPM lists and folding their replies into :class:`Reading` objects.

Every adapter reads the same way: parse the DRFs (bad text fails here, before
any I/O), send ``AddToList`` per entry and ``StartList`` in one write, then
feed each event (:func:`acnet_proto.engine.client.events`) to the plan, which
says which readings it completed. This module holds that logic once, with no
I/O, so the sync, threaded, asyncio and trio adapters only move bytes::

    batch = ReadBatch(["M:OUTTMP", "Z:ACLTS1[0:4]"])
    sock.sendall(conn.send(*batch.commands(conn.list_id)))
    while not batch.done:
        conn.receive_data(sock.recv(65536))
        for event in events(conn):
            batch.feed(event)
    sock.sendall(conn.send(*batch.teardown(conn.list_id)))
    readings = batch.readings()

Ref ids are the 1-based positions of the DRFs, so results come back in input
order whatever order the server answers in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from acnet_proto import drf as _drf
from acnet_proto._text import summary
from acnet_proto.engine.events import ConnectionEvent, DataReply, StaleReply
from acnet_proto.errors import DeviceError, ReadError, RemoteProtocolError
from acnet_proto.pc import dpm
from acnet_proto.pc._message import Message
from acnet_proto.plans.history import HistoryEntries, refuse_history
from acnet_proto.status import Status
from acnet_proto.types import DeviceMeta, Reading, ValueType, utc_of_millis

__all__ = [
    "NO_DATA",
    "UNREADABLE",
    "FirstReadings",
    "ListPlan",
    "ReadBatch",
    "check_drf_list",
    "check_readable",
    "error_reading",
    "reading_from_reply",
    "timestamp",
    "value_of",
    "values_of",
]

_ALARM_FLAGS = (
    "alarm_enable",
    "alarm_status",
    "abort",
    "abort_inhibit",
    "tries_needed",
    "tries_now",
)
_BASIC_STATUS = ("on", "ready", "remote", "positive", "ramp")
_TIMED_OUT = Status.from_name("ACNET_REQTMO")
_DISCONNECTED = Status.from_name("ACNET_DISCONNECTED")
_NAMED = 3  # how many DRFs a message names before "and N more"
#: What a reading with no data and no error status means, and what to do about it. The
#: lab's DPM answers a device it cannot find with DPM_PEND (17/1): a warning, and no data.
NO_DATA = "no data: the device was not found, or has no data yet; check the device name"
# what sockets and the blocking loop say when a deadline passes: nothing the timeout does not
_SAYS_NOTHING = frozenset({"timed out", "deadline passed", "no data waiting"})


def check_readable(drfs: Sequence[str], requests: Sequence[_drf.DataRequest]) -> None:
    """:class:`~acnet_proto.drf.DRFError` for the first of ``drfs`` with the event ``@N``.

    ``@N`` (never) is how settings are sent: a device asked for it sends no
    data, so a read of it could only wait out its timeout. Every one-shot
    read refuses it before any I/O, whatever the backend. ``requests`` are
    ``drfs`` parsed (every plan has them parsed already).
    """
    # by index, not zip(strict=True): a keyword argument costs zip a slow call on every read
    for index, request in enumerate(requests):
        if isinstance(request.event, _drf.NeverEvent):
            drf = drfs[index]
            raise _drf.DRFError(
                drf,
                drf.rfind("@"),
                "the event @N never sends data, so reading it could only time out",
                "no event or @I (read once, now), or a repeating event such as @p,1000",
                subject="cannot read",
            )


#: What a reading is when its reply cannot stand for one (e.g. stamped with no date).
UNREADABLE = Status.from_name("ACNET_RPLYPACK")


#: Unix milliseconds as a UTC datetime: :func:`~acnet_proto.types.utc_of_millis`.
timestamp = utc_of_millis


def error_reading(
    drf: str,
    status: int | Status,
    meta: DeviceMeta | None = None,
    *,
    at: int = 0,
    cycle: int | None = None,
    note: str = "",
    text: str | None = None,
) -> Reading:
    """A reading that carries only an error ``status`` (packed int or :class:`Status`).

    Its message is the status (name, codes and text), then ``note``; ``text``
    stands in for the status's own text when that would mislead (a timeout
    says the caller's, not ``ACNET_REQTMO``'s "6.5 min"). A warning (e.g.
    ``DPM_PEND``, how the lab's DPM answers an unknown device) says :data:`NO_DATA`
    too: with no value it is not ``ok``, though not ``is_error``.
    """
    status = status if isinstance(status, Status) else Status.from_int(status)
    said = status.text if text is None else text
    message = f"{status.label}: {said}{': ' + note if note else ''}"
    if status.error >= 0:
        message = _no_data(message)
    return Reading.of_reply(
        drf, None, status.facility, status.error, None, message, at, cycle, meta
    )


def reading_from_reply(reply: Message, drf: str, meta: DeviceMeta | None = None) -> Reading:
    """The :class:`Reading` a data reply (or a per-entry ``StatusReply``) stands for.

    A reply no reading can stand for (stamped with no date) is an
    ``ACNET_RPLYPACK`` error reading of its entry: it spoils that reading, not
    the connection. Any other message is a TypeError naming it.
    """
    make = _READINGS.get(type(reply))
    if make is None:
        raise TypeError(f"{type(reply).__name__} is not a data reply")
    try:
        return make(reply, drf, meta)
    except RemoteProtocolError as e:
        return error_reading(drf, UNREADABLE, meta, note=str(e))


def _of_data(
    reply: DataReply, status: int, value: Any, kind: ValueType, drf: str, meta: DeviceMeta | None
) -> Reading:
    """The reading of a data reply's ``value``, unless its ``status`` is an error."""
    if not status:
        return Reading.of_reply(drf, kind, 0, 0, value, None, reply.timestamp, reply.cycle, meta)
    parts = Status.from_int(status)
    if parts.error < 0:
        return error_reading(drf, parts, meta, at=reply.timestamp, cycle=reply.cycle)
    message = str(parts) if parts.error else None  # a warning says what it warns of
    return Reading.of_reply(
        drf, kind, parts.facility, parts.error, value, message, reply.timestamp, reply.cycle, meta
    )


# One function per reply class: each reads its own class's fields, typed, with no cast.
# Alarm and basic-status replies carry no status: receiving one is success.


def _status(reply: dpm.StatusReply, drf: str, meta: DeviceMeta | None) -> Reading:
    return error_reading(drf, reply.status, meta, at=reply.timestamp, cycle=reply.cycle)


def _scalar(reply: dpm.ScalarReply, drf: str, meta: DeviceMeta | None) -> Reading:
    return _of_data(reply, reply.status, reply.data, ValueType.SCALAR, drf, meta)


def _scalar_array(reply: dpm.ScalarArrayReply, drf: str, meta: DeviceMeta | None) -> Reading:
    data = np.asarray(reply.data, dtype=np.float64)
    return _of_data(reply, reply.status, data, ValueType.SCALAR_ARRAY, drf, meta)


def _raw(reply: dpm.RawReply, drf: str, meta: DeviceMeta | None) -> Reading:
    return _of_data(reply, reply.status, bytes(reply.data), ValueType.RAW, drf, meta)


def _text(reply: dpm.TextReply, drf: str, meta: DeviceMeta | None) -> Reading:
    return _of_data(reply, reply.status, reply.data, ValueType.TEXT, drf, meta)


def _text_array(reply: dpm.TextArrayReply, drf: str, meta: DeviceMeta | None) -> Reading:
    return _of_data(reply, reply.status, tuple(reply.data), ValueType.TEXT_ARRAY, drf, meta)


def _timed(reply: dpm.TimedScalarArrayReply, drf: str, meta: DeviceMeta | None) -> Reading:
    data = np.asarray(reply.data, dtype=np.float64)
    micros = np.asarray(reply.micros, dtype=np.int64)
    if not micros.size:
        # pacsys: without per-point times it is a plain array
        return _of_data(reply, reply.status, data, ValueType.SCALAR_ARRAY, drf, meta)
    value = {"data": data, "micros": micros}
    return _of_data(reply, reply.status, value, ValueType.TIMED_SCALAR_ARRAY, drf, meta)


_ANALOG_FIELDS = ("minimum", "maximum", *_ALARM_FLAGS)
_DIGITAL_FIELDS = ("nominal", "mask", *_ALARM_FLAGS)


def _analog(reply: dpm.AnalogAlarmReply, drf: str, meta: DeviceMeta | None) -> Reading:
    value = {f: getattr(reply, f) for f in _ANALOG_FIELDS}
    return _of_data(reply, 0, value, ValueType.ANALOG_ALARM, drf, meta)


def _digital(reply: dpm.DigitalAlarmReply, drf: str, meta: DeviceMeta | None) -> Reading:
    value = {f: getattr(reply, f) for f in _DIGITAL_FIELDS}
    return _of_data(reply, 0, value, ValueType.DIGITAL_ALARM, drf, meta)


def _basic_status(reply: dpm.BasicStatusReply, drf: str, meta: DeviceMeta | None) -> Reading:
    present = {f: getattr(reply, f) for f in _BASIC_STATUS}
    value = {f: v for f, v in present.items() if v is not None}
    return _of_data(reply, 0, value, ValueType.BASIC_STATUS, drf, meta)


_Make = Callable[[Any, str, DeviceMeta | None], Reading]
#: The reading each reply class makes: looked up by class, once per reply.
_READINGS: dict[type, _Make] = {
    dpm.StatusReply: _status,
    dpm.ScalarReply: _scalar,
    dpm.ScalarArrayReply: _scalar_array,
    dpm.RawReply: _raw,
    dpm.TextReply: _text,
    dpm.TextArrayReply: _text_array,
    dpm.TimedScalarArrayReply: _timed,
    dpm.AnalogAlarmReply: _analog,
    dpm.DigitalAlarmReply: _digital,
    dpm.BasicStatusReply: _basic_status,
}


#: How many DRFs (parsed, and their AddToList requests) are cached. A list longer than
#: this skips the caches: it could only evict what fits, and never hit.
_CACHED = 4096


@lru_cache(maxsize=_CACHED)
def _parsed(text: str, default_event: str | None) -> tuple[_drf.DataRequest, str]:
    """DRF ``text`` parsed, and as sent (with ``default_event`` if it names none).

    Cached: a program reads the same DRFs again and again.
    """
    request = _drf.parse(text)
    return request, text if default_event is None else _drf.with_default_event(text, default_event)


# The requests a read sends, made once per list id (and entry): messages are immutable,
# and a pooled connection sends the same ones read after read.


@lru_cache(maxsize=_CACHED)
def _add(list_id: int, ref_id: int, drf: str) -> dpm.AddToListRequest:
    return dpm.AddToListRequest(list_id=list_id, ref_id=ref_id, drf_request=drf)


@lru_cache(maxsize=256)
def _start(list_id: int) -> dpm.StartListRequest:
    return dpm.StartListRequest(list_id=list_id)


@lru_cache(maxsize=256)
def _stop(list_id: int) -> dpm.StopListRequest:
    return dpm.StopListRequest(list_id=list_id)


@lru_cache(maxsize=256)
def _clear(list_id: int) -> dpm.ClearListRequest:
    return dpm.ClearListRequest(list_id=list_id)


def check_drf_list(drfs: object) -> None:
    """TypeError unless ``drfs`` is a list (a sequence) and not one bare DRF string: what
    every backend and the top-level calls raise, before reading any DRF."""
    if type(drfs) is list or type(drfs) is tuple:
        return  # what nearly every caller passes, without asking the Sequence ABC
    if isinstance(drfs, (str, bytes)) or not isinstance(drfs, Sequence):
        raise TypeError(f"drfs must be a list of DRF strings, not {type(drfs).__name__}")


class ListPlan:
    """The entries of one DPM list, and the readings their replies make.

    ``drfs`` may be strings or :class:`~acnet_proto.drf.DataRequest` objects;
    each is parsed now, so invalid text raises :class:`~acnet_proto.drf.DRFError`
    (a ``ValueError``) before anything is sent. ``default_event`` is appended
    to DRFs that name no event (``"I"`` for one-shot reads, None to leave
    them to the server's default).
    """

    def __init__(self, drfs: Sequence[str | _drf.DataRequest], default_event: str | None) -> None:
        check_drf_list(drfs)
        if not drfs:
            raise ValueError("drfs is empty: give at least one DRF")
        for i, d in enumerate(drfs):
            if not isinstance(d, (str, _drf.DataRequest)):
                raise TypeError(
                    f"drfs[{i}] must be a DRF string or DataRequest, not {type(d).__name__}: {d!r}"
                )
        self.drfs = [d.to_drf() if isinstance(d, _drf.DataRequest) else d for d in drfs]
        #: ``drfs`` parsed, in the same order
        self.requests: list[_drf.DataRequest] = []
        #: ``drfs`` as sent: with ``default_event`` where they name none
        self.wire: list[str] = []
        parsed = _parsed if len(drfs) <= _CACHED else _parsed.__wrapped__
        for d in self.drfs:
            # a str subclass could override __eq__/__hash__ and poison the cache
            request, wire = parsed(d if type(d) is str else str.__str__(d), default_event)
            self.requests.append(request)
            self.wire.append(wire)
        self.meta: list[DeviceMeta | None] = [None] * len(drfs)
        self.failed: list[bool] = [False] * len(drfs)
        #: the logger and FTP entries, whose replies come in chunks (docs/history.md)
        self.history = HistoryEntries(self.drfs, self.requests)
        self._chunked = bool(self.history)
        #: True once the server answered ``StartList``: the list runs (or failed as a whole)
        self.started = False

    def __len__(self) -> int:
        return len(self.drfs)

    def commands(self, list_id: int) -> list[Message]:
        """``AddToList`` per entry, then ``StartList``: one pipelined write."""
        add = _add if len(self.wire) <= _CACHED else _add.__wrapped__
        adds = [add(list_id, ref, wire) for ref, wire in enumerate(self.wire, 1)]
        return [*adds, _start(list_id)]

    def feed(self, event: ConnectionEvent) -> list[tuple[int, Reading]]:
        """Fold one engine event in; return the ``(index, reading)`` pairs it made."""
        return _FOLD.get(type(event), ListPlan._on_other)(self, event)

    def _on_info(self, info: dpm.DeviceInfoReply) -> list[tuple[int, Reading]]:
        index = self._index(info.ref_id)
        if index is not None:
            self.meta[index] = DeviceMeta(
                info.di, info.name, info.description, info.units, info.format_hint
            )
        return []

    def _on_added(self, added: dpm.AddToListReply) -> list[tuple[int, Reading]]:
        index = self._index(added.ref_id)
        if added.status == 0 or index is None or self.failed[index]:
            return []
        self.failed[index] = True
        return [(index, error_reading(self.drfs[index], added.status))]

    def _on_status(self, reply: dpm.StatusReply) -> list[tuple[int, Reading]]:
        if reply.ref_id == 0:
            return self._job_failed(reply.status, reply.timestamp)
        return self._on_reply(reply)

    def _on_started(self, reply: dpm.StartListReply) -> list[tuple[int, Reading]]:
        self.started = True
        return self._job_failed(reply.status, 0)

    def _on_ignored(self, event: ConnectionEvent) -> list[tuple[int, Reading]]:
        return []

    def _on_other(self, event: Any) -> list[tuple[int, Reading]]:
        # a reply with a ref_id that no handler took is an entry's, to read as data
        return self._on_reply(event) if hasattr(event, "ref_id") else []

    def _on_reply(self, reply: Any) -> list[tuple[int, Reading]]:
        """An entry's data or status reply (``reply.ref_id`` names it)."""
        index = self._index(reply.ref_id)
        if index is None or self.failed[index]:
            return []
        if self._chunked and index in self.history:
            return self._chunk(index, reply)
        return [(index, reading_from_reply(reply, self.drfs[index], self.meta[index]))]

    def _chunk(self, index: int, reply: Message) -> list[tuple[int, Reading]]:
        """A logger or FTP entry's reply: a chunk of timestamped data, or what ends it."""
        if type(reply) is dpm.TimedScalarArrayReply and Status.from_int(reply.status).error >= 0:
            return self.history.chunk(index, reply.data, reply.micros, self.meta[index])
        made = reading_from_reply(reply, self.drfs[index], self.meta[index])
        return self.history.failed(index, made)

    def take_commands(self) -> list[Message]:
        """Nothing: a list of reads never answers the server."""
        return []

    def teardown(self, list_id: int) -> list[Message]:
        """``StopList``: the server stops sending; the connection is then closed."""
        return [_stop(list_id)]

    def _index(self, ref_id: int) -> int | None:
        index = ref_id - 1
        return index if 0 <= index < len(self.drfs) else None

    def _job_failed(self, status: int, at: int) -> list[tuple[int, Reading]]:
        # A non-zero status on ref 0 means the list as a whole could not run;
        # every entry still waiting gets that status.
        if status == 0:
            return []
        made = []
        for index, failed in enumerate(self.failed):
            if not failed:
                self.failed[index] = True
                made.append((index, error_reading(self.drfs[index], status, at=at)))
        return made


_Fold = Callable[[ListPlan, Any], list[tuple[int, Reading]]]
#: How :meth:`ListPlan.feed` folds each event class in (any other: :meth:`ListPlan._on_other`).
_FOLD: dict[type, _Fold] = {
    dpm.DeviceInfoReply: ListPlan._on_info,
    dpm.AddToListReply: ListPlan._on_added,
    dpm.StatusReply: ListPlan._on_status,
    dpm.StartListReply: ListPlan._on_started,
    StaleReply: ListPlan._on_ignored,
    dpm.ListStatusReply: ListPlan._on_ignored,
    **dict.fromkeys(_READINGS.keys() - {dpm.StatusReply}, ListPlan._on_reply),
}


class FirstReadings:
    """What every one-shot read keeps: the first reading of each entry, in input order.

    Shared by :class:`ReadBatch` (DPM and gRPC), :class:`~acnet_proto.services.dmq.ReadJob`
    (DMQ) and :class:`~acnet_proto.services.acl.ACLRead` (ACL). A subclass sets ``drfs``, calls
    :meth:`_expect_readings`, hands what its replies make to :meth:`_keep`, and ends a read
    cut short with :meth:`_ended`, whose message it words.
    """

    drfs: list[str]
    results: list[Reading | None]
    #: The end of the RuntimeError of :meth:`readings` before every entry has its reading.
    _unfinished = "batch not done"
    #: What messages call this read (``"DMQ read"``).
    _what = "read"
    #: Whether this read can fetch ``<-LOGGER`` and ``<-FTP`` (only DPM serves them).
    _serves_history = False

    def _expect_readings(self, requests: Sequence[_drf.DataRequest]) -> None:
        """Wait for one reading of each of ``drfs`` (``requests``: them parsed);
        :func:`check_readable` refuses ``@N``, and a read that cannot fetch historical
        data refuses ``<-LOGGER`` and ``<-FTP``."""
        check_readable(self.drfs, requests)
        if not self._serves_history:
            refuse_history(self.drfs, requests, self._what)
        self.results = [None] * len(self.drfs)
        self._missing = len(self.drfs)

    @property
    def done(self) -> bool:
        """True once every entry has its reading or its error."""
        return self._missing == 0

    @property
    def arrived(self) -> int:
        """How many entries have their reading or error."""
        return len(self.drfs) - self._missing

    def may_repeat(self, reused: bool) -> bool:
        """Whether a read whose connection failed may be made again on a new one.

        Only when the connection had been ``reused`` (it sat idle in a pool,
        where the server may have closed it) and nothing came back yet: then
        no reading can arrive twice, and the failure says nothing of the
        server. A new connection that fails is a real failure.
        """
        return reused and self.arrived == 0

    def _keep(self, made: Iterable[tuple[int, Reading]]) -> list[tuple[int, Reading]]:
        """The pairs of ``made`` that are their entry's first reading, now its result."""
        first = []
        for index, reading in made:
            if self.results[index] is None:
                self.results[index] = reading
                first.append((index, reading))
        self._missing -= len(first)
        return first

    def _meta(self, index: int) -> DeviceMeta | None:
        """The metadata an error reading of entry ``index`` carries (none by default)."""
        return None

    def readings(
        self, missing: int | Status | None = None, note: str = "", text: str | None = None
    ) -> list[Reading]:
        """The readings in input order.

        Entries still without a reading get an error reading with status
        ``missing`` (e.g. ``ACNET_REQTMO`` after a deadline), ``note`` and
        ``text`` (see :func:`error_reading`); without ``missing`` that is a
        :class:`RuntimeError`, because the read is not done.
        """
        out = []
        for index, reading in enumerate(self.results):
            if reading is None:
                if missing is None:
                    raise RuntimeError(
                        f"no reading yet for {self.drfs[index]!r}; {self._unfinished}"
                    )
                meta = self._meta(index)
                reading = error_reading(self.drfs[index], missing, meta, note=note, text=text)
            out.append(reading)
        return out

    def _ended(
        self,
        message: str,
        *,
        timed_out: bool,
        note: str = "",
        text: str | None = None,
        advice: str = "",
    ) -> ReadError:
        """The :class:`ReadError` of a read cut short: ``message``, how many readings
        arrived, then ``advice``; entries still waiting get ``ACNET_REQTMO`` if it
        ``timed_out``, ``ACNET_DISCONNECTED`` otherwise, with ``note`` and ``text``."""
        status = _TIMED_OUT if timed_out else _DISCONNECTED
        progress = f"{self.arrived} of {len(self.drfs)} readings arrived"
        then = f"; {advice}" if advice else ""
        return ReadError(
            self.readings(status, note, text), f"{message}; {progress}{then}", timed_out=timed_out
        )

    def timed_out(self, timeout: float, cause: object = None) -> ReadError:
        """The :class:`ReadError` for a deadline that passed: entries still waiting get
        ``ACNET_REQTMO``, and every message names ``timeout``, the seconds the caller set
        (or the backend's default), rather than that status's text. ``cause`` (e.g. what
        was being waited for) goes into the message when it says something. Adapters
        raise it ``from`` the timeout."""
        waiting = [drf for drf, got in zip(self.drfs, self.results, strict=True) if got is None]
        named = summary(waiting, _NAMED)
        within = f"within {timeout:g} s (timeout={timeout:g})"
        said = "" if cause is None else str(cause)
        detail = f" ({said})" if said and said not in _SAYS_NOTHING else ""
        partial = "".join(f"; {part}" for part in self._progress())
        message = f"{self._what} timed out: no reading of {named} {within}{detail}{partial}"
        advice = "pass a longer timeout if the devices answer slowly"
        return self._ended(message, timed_out=True, text=f"no reading {within}", advice=advice)

    def _progress(self) -> list[str]:
        """What entries still waiting got so far, for a timeout's message (nothing to say)."""
        return []


class ReadBatch(FirstReadings, ListPlan):
    """A one-shot read of several DRFs: the first reading of each entry.

    DRFs without an event are read with ``@I``; one with an explicit event
    (``@p,1000``) is read once, at its first reading. A logger window
    (``<-LOGGER``) is read to its end of data: its reading's value is the
    whole :class:`~acnet_proto.types.History` (see :mod:`acnet_proto.plans.history`).
    """

    _serves_history = True

    def __init__(self, drfs: Sequence[str | _drf.DataRequest]) -> None:
        super().__init__(drfs, default_event="I")
        self._expect_readings(self.requests)

    def feed(self, event: ConnectionEvent) -> list[tuple[int, Reading]]:
        # ListPlan.feed's dispatch rather than a call to it: one call fewer per event
        made = _FOLD.get(type(event), ListPlan._on_other)(self, event)
        return self._keep(made) if made else made

    def teardown(self, list_id: int) -> list[Message]:
        """``StopList`` and ``ClearList``: the connection goes back to the pool empty."""
        return [_stop(list_id), _clear(list_id)]

    def _meta(self, index: int) -> DeviceMeta | None:
        return self.meta[index]

    def _progress(self) -> list[str]:
        waiting = [index for index, got in enumerate(self.results) if got is None]
        return self.history.progress(waiting)

    def disconnected(self, cause: object) -> ReadError:
        """The :class:`ReadError` for a connection that broke (``cause``): entries still
        waiting get ``ACNET_DISCONNECTED``. Adapters raise it ``from`` the failure."""
        return self._ended(f"connection failed: {cause}", timed_out=False)


def value_of(reading: Reading) -> Any:
    """``reading.value``, or :class:`DeviceError` if the reading is not ``ok``.

    This is what ``read()`` returns: the value alone, for scripts that would
    rather fail loudly than check a status. A reading with no value and a
    warning status (``DPM_PEND`` for an unknown device) fails too: its error
    carries that status and says :data:`NO_DATA`. A warning with a value is
    that value.
    """
    if reading.is_error or reading.value is None:
        message = reading.message or str(reading.status)
        if not reading.is_error:
            message = _no_data(message)
        raise DeviceError(reading.drf, reading.facility_code, reading.error_code, message)
    return reading.value


def _no_data(message: str) -> str:
    # once only: a reading made by error_reading already says it
    return message if NO_DATA in message else f"{message}; {NO_DATA}"


def values_of(readings: Sequence[Reading]) -> list[Any]:
    """Every reading's value, or :class:`ReadError` (carrying all of them) if any is not ok.

    This is what ``read_many()`` returns.
    """
    failed = [reading.drf for reading in readings if not reading.ok]
    if failed:
        raise ReadError(readings, f"no value for {', '.join(failed)}")
    return [reading.value for reading in readings]
