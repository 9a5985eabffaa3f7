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

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np

from acnet_proto import drf as _drf
from acnet_proto._text import summary
from acnet_proto.engine.events import ConnectionEvent, DataReply, StaleReply
from acnet_proto.errors import DeviceError, ReadError, RemoteProtocolError
from acnet_proto.pc import dpm
from acnet_proto.pc._message import Message
from acnet_proto.plans.history import HistoryEntries, refuse_history
from acnet_proto.status import Status
from acnet_proto.types import DeviceMeta, Reading, ValueType

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
    for drf, request in zip(drfs, requests, strict=True):
        if isinstance(request.event, _drf.NeverEvent):
            raise _drf.DRFError(
                drf,
                drf.rfind("@"),
                "the event @N never sends data, so reading it could only time out",
                "no event or @I (read once, now), or a repeating event such as @p,1000",
                subject="cannot read",
            )


#: What a reading is when its reply cannot stand for one (e.g. stamped with no date).
UNREADABLE = Status.from_name("ACNET_RPLYPACK")


def timestamp(millis: int) -> datetime | None:
    """Milliseconds since the Unix epoch as a UTC datetime; 0 means "not stamped".

    A peer's stamp no date can hold (past the year 9999) raises
    :class:`~acnet_proto.errors.RemoteProtocolError`.
    """
    if not millis:
        return None
    try:
        return datetime.fromtimestamp(millis / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        raise RemoteProtocolError(
            f"a reply is stamped {millis} ms after 1970, which is no date"
        ) from None


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
    return Reading(
        drf,
        facility_code=status.facility,
        error_code=status.error,
        message=message,
        timestamp=timestamp(at),
        cycle=cycle,
        meta=meta,
    )


def _value_of(reply: Message) -> tuple[Any, ValueType]:
    # `kind is` does not narrow `reply` for mypy, hence a cast in each branch
    kind = type(reply)
    if kind is dpm.ScalarReply:
        return cast(dpm.ScalarReply, reply).data, ValueType.SCALAR
    if kind is dpm.ScalarArrayReply:
        data = cast(dpm.ScalarArrayReply, reply).data
        return np.asarray(data, dtype=np.float64), ValueType.SCALAR_ARRAY
    if kind is dpm.RawReply:
        return bytes(cast(dpm.RawReply, reply).data), ValueType.RAW
    if kind is dpm.TextReply:
        return cast(dpm.TextReply, reply).data, ValueType.TEXT
    if kind is dpm.TextArrayReply:
        return tuple(cast(dpm.TextArrayReply, reply).data), ValueType.TEXT_ARRAY
    if kind is dpm.TimedScalarArrayReply:
        timed = cast(dpm.TimedScalarArrayReply, reply)
        data = np.asarray(timed.data, dtype=np.float64)
        micros = np.asarray(timed.micros, dtype=np.int64)
        if not micros.size:
            # pacsys: without per-point times it is a plain array
            return data, ValueType.SCALAR_ARRAY
        return {"data": data, "micros": micros}, ValueType.TIMED_SCALAR_ARRAY
    if kind is dpm.AnalogAlarmReply:
        fields = ("minimum", "maximum", *_ALARM_FLAGS)
        return {f: getattr(reply, f) for f in fields}, ValueType.ANALOG_ALARM
    if kind is dpm.DigitalAlarmReply:
        fields = ("nominal", "mask", *_ALARM_FLAGS)
        return {f: getattr(reply, f) for f in fields}, ValueType.DIGITAL_ALARM
    if kind is dpm.BasicStatusReply:
        present = {f: getattr(reply, f) for f in _BASIC_STATUS}
        return {f: v for f, v in present.items() if v is not None}, ValueType.BASIC_STATUS
    raise TypeError(f"{kind.__name__} is not a data reply")


def reading_from_reply(reply: Message, drf: str, meta: DeviceMeta | None = None) -> Reading:
    """The :class:`Reading` a data reply (or a per-entry ``StatusReply``) stands for.

    A reply no reading can stand for (stamped with no date) is an
    ``ACNET_RPLYPACK`` error reading of its entry: it spoils that reading, not
    the connection.
    """
    try:
        return _reading_of(reply, drf, meta)
    except RemoteProtocolError as e:
        return error_reading(drf, UNREADABLE, meta, note=str(e))


def _reading_of(reply: Message, drf: str, meta: DeviceMeta | None) -> Reading:
    if type(reply) is dpm.StatusReply:
        return error_reading(drf, reply.status, meta, at=reply.timestamp, cycle=reply.cycle)
    value, value_type = _value_of(reply)
    reply = cast(DataReply, reply)  # _value_of raised for any other message
    # alarm and basic-status replies carry no status: receiving one is success
    facility = error = 0
    message = None
    if status := getattr(reply, "status", 0):
        parts = Status.from_int(status)
        if parts.error < 0:
            return error_reading(drf, parts, meta, at=reply.timestamp, cycle=reply.cycle)
        facility, error = parts.facility, parts.error
        message = str(parts) if error else None  # a warning says what it warns of
    return Reading(
        drf,
        value_type=value_type,
        facility_code=facility,
        error_code=error,
        value=value,
        message=message,
        timestamp=timestamp(reply.timestamp),
        cycle=reply.cycle,
        meta=meta,
    )


def check_drf_list(drfs: object) -> None:
    """TypeError unless ``drfs`` is a list (a sequence) and not one bare DRF string: what
    every backend and the top-level calls raise, before reading any DRF."""
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
        for d in self.drfs:
            self.requests.append(_drf.parse(d))
            # with_default_event parses ``d`` again: a hit in parse's cache, just filled
            self.wire.append(
                d if default_event is None else _drf.with_default_event(d, default_event)
            )
        self.meta: list[DeviceMeta | None] = [None] * len(drfs)
        self.failed: list[bool] = [False] * len(drfs)
        #: the logger and FTP entries, whose replies come in chunks (docs/history.md)
        self.history = HistoryEntries(self.drfs, self.requests)
        #: True once the server answered ``StartList``: the list runs (or failed as a whole)
        self.started = False

    def __len__(self) -> int:
        return len(self.drfs)

    def commands(self, list_id: int) -> list[Message]:
        """``AddToList`` per entry, then ``StartList``: one pipelined write."""
        adds = [
            dpm.AddToListRequest(list_id=list_id, ref_id=ref, drf_request=wire)
            for ref, wire in enumerate(self.wire, 1)
        ]
        return [*adds, dpm.StartListRequest(list_id=list_id)]

    def feed(self, event: ConnectionEvent) -> list[tuple[int, Reading]]:
        """Fold one engine event in; return the ``(index, reading)`` pairs it made."""
        # `kind is` does not narrow `event` for mypy, hence the casts
        kind = type(event)
        if kind is dpm.DeviceInfoReply:
            info = cast(dpm.DeviceInfoReply, event)
            index = self._index(info.ref_id)
            if index is not None:
                self.meta[index] = DeviceMeta(
                    info.di, info.name, info.description, info.units, info.format_hint
                )
            return []
        if kind is dpm.AddToListReply:
            added = cast(dpm.AddToListReply, event)
            index = self._index(added.ref_id)
            if added.status == 0 or index is None or self.failed[index]:
                return []
            self.failed[index] = True
            return [(index, error_reading(self.drfs[index], added.status))]
        if kind is dpm.StatusReply:
            status_reply = cast(dpm.StatusReply, event)
            if status_reply.ref_id == 0:
                return self._job_failed(status_reply.status, status_reply.timestamp)
        if kind is dpm.StartListReply:
            self.started = True
            return self._job_failed(cast(dpm.StartListReply, event).status, 0)
        if kind is StaleReply or kind is dpm.ListStatusReply or not hasattr(event, "ref_id"):
            return []
        index = self._index(event.ref_id)
        if index is None or self.failed[index]:
            return []
        # a reply with a ref_id that none of the above took: an entry's data or status
        reply = cast(Message, event)
        if index in self.history:
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
        return [dpm.StopListRequest(list_id=list_id)]

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
        return self._keep(super().feed(event))

    def teardown(self, list_id: int) -> list[Message]:
        """``StopList`` and ``ClearList``: the connection goes back to the pool empty."""
        return [dpm.StopListRequest(list_id=list_id), dpm.ClearListRequest(list_id=list_id)]

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
