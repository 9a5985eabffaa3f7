"""DPM over gRPC, the pure half: the DAQ service's messages as readings and write results.

The DAQ service (``protos/controls/service/DAQ/v1/DAQ.proto``, spec §4) has
two calls: ``Read(ReadingList) -> stream ReadingReply`` and
``Set(SettingList) -> SettingReply``. This module turns requests into those
messages and replies into :class:`~acnet_proto.types.Reading` and
:class:`~acnet_proto.types.WriteResult`, both ways (clients and the
simulated server use it), with the same values DPM over TCP gives:

=================================  ==========================================
``common.device.Value``            :attr:`Reading.value` (:class:`ValueType`)
=================================  ==========================================
``scalar``                         float (SCALAR)
``scalarArr``                      read-only float64 ndarray (SCALAR_ARRAY)
``raw``                            bytes (RAW)
``text``                           str (TEXT)
``textArr``                        tuple of str (TEXT_ARRAY)
``anaAlarm`` / ``digAlarm``        dict, DPM/TCP's keys (ANALOG/DIGITAL_ALARM)
``basicStatus``                    dict: ``{"on": True, ...}`` when every key
                                   is a basic status bit and every value
                                   ``"True"``/``"False"``; else the str map
several ``scalar`` readings in     ``{"data": float64 array, "micros": int64
one reply                          array}`` (TIMED_SCALAR_ARRAY)
=================================  ==========================================

Timestamps are UTC-aware datetimes (microseconds; an unset timestamp is
None). A ``common.status.Status`` is ``facility_code`` and ``status_code``,
the signed error number (a server sending it unsigned, 128..255, is read as
negative); its ``message``, or else the status's name and meaning, becomes
the reading's message. A reply entry with an error status and no data, or a
reply that is only a status, is an error reading (``value is None``).

A subscription's ``Read`` calls, one after another, are a
:class:`GRPCStream`: what each call asks for, the readings (and after a
reconnection the :class:`~acnet_proto.streams.reconnect.Gap`) its replies make, and
whether a failed call is worth making again. gRPC status codes come to it by
name (``grpc.StatusCode.UNAVAILABLE.name``), so it needs no grpc.

Imports the generated protobuf modules, never grpc: sockets are the
adapters' business (:mod:`acnet_proto.adapters.grpc.threaded`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import numpy as np

from acnet_proto import drf as _drf
from acnet_proto.api.backend import setting_pairs
from acnet_proto.errors import RemoteProtocolError
from acnet_proto.pc import dpm
from acnet_proto.plans.lists import ListPlan, ReadBatch
from acnet_proto.plans.settings import setting_for
from acnet_proto.protos.controls.common.v1 import device_pb2, status_pb2
from acnet_proto.protos.controls.service.DAQ.v1 import DAQ_pb2
from acnet_proto.status import Status
from acnet_proto.streams.driver import GiveUp, StreamDriver, Wait
from acnet_proto.streams.reconnect import Gap, Reconnect
from acnet_proto.types import Reading, ValueType, WriteResult

__all__ = [
    "TRANSIENT_CODES",
    "GRPCListPlan",
    "GRPCReadBatch",
    "GRPCStream",
    "SettingBatch",
    "reading_reply",
    "readings_of_reply",
    "setting_reply",
    "setting_value",
    "status_message",
    "status_parts",
    "timestamp_of",
    "value_from_proto",
    "value_to_proto",
]

# common.device.Value's alarm fields, under the dict keys DPM/TCP readings use
_ALARM_FIELDS = (
    ("alarm_enable", "alarmEnable"),
    ("alarm_status", "alarmStatus"),
    ("abort", "abort"),
    ("abort_inhibit", "abortInhibit"),
    ("tries_needed", "triesNeeded"),
    ("tries_now", "triesNow"),
)
_ANALOG_FIELDS = (("minimum", "minimum"), ("maximum", "maximum"), *_ALARM_FIELDS)
_DIGITAL_FIELDS = (("nominal", "nominal"), ("mask", "mask"), *_ALARM_FIELDS)
_BASIC_STATUS_KEYS = frozenset({"on", "ready", "remote", "positive", "ramp"})
_BOOL_TEXT = {"True": True, "False": False}
_UNANSWERED = Status.from_name("ACNET_RETRY")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- statuses and timestamps ---------------------------------------------------------------


def status_parts(status: status_pb2.Status) -> tuple[int, int, str | None]:
    """``(facility, error, message)`` of a ``common.status.Status``.

    ``message`` is the server's text, or for a non-zero error the status's
    name and meaning, or None for success. Codes outside what an ACNET
    status can hold raise :class:`RemoteProtocolError`.
    """
    facility, error = status.facility_code, status.status_code
    if 128 <= error <= 255:
        error -= 256  # an unsigned byte on the wire: the same error number
    if not (0 <= facility <= 255 and -128 <= error <= 127):
        raise RemoteProtocolError(
            f"the server sent status facility_code={status.facility_code} "
            f"status_code={status.status_code}: not an ACNET status (0..255, -128..127)"
        )
    if status.message:
        return facility, error, status.message
    return facility, error, None if error == 0 else str(Status(facility, error))


def status_message(facility: int, error: int, message: str | None = None) -> status_pb2.Status:
    """The ``common.status.Status`` for ``facility``/``error`` (the name and meaning as text)."""
    if message is None and error != 0:
        message = str(Status(facility, error))
    return status_pb2.Status(facility_code=facility, status_code=error, message=message or "")


def timestamp_of(reading: DAQ_pb2.Reading) -> datetime | None:
    """The reading's time as a UTC datetime (microseconds), or None if it has none.

    A timestamp outside what ``google.protobuf.Timestamp`` allows (years
    1..9999, nanos 0..999,999,999) raises :class:`RemoteProtocolError`.
    """
    stamp = reading.timestamp
    if not (stamp.seconds or stamp.nanos):
        return None
    try:
        return stamp.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        raise RemoteProtocolError(
            f"the server sent timestamp seconds={stamp.seconds} nanos={stamp.nanos}: "
            "not a time a google.protobuf.Timestamp can hold"
        ) from None


# --- values ------------------------------------------------------------------------------


def value_from_proto(value: device_pb2.Value) -> tuple[Any, ValueType]:
    """A ``common.device.Value`` as ``(value, value_type)``; see the table above.

    A Value with no kind set raises :class:`RemoteProtocolError`.
    """
    kind = value.WhichOneof("value")
    if kind == "scalar":
        return value.scalar, ValueType.SCALAR
    if kind == "scalarArr":
        return np.array(value.scalarArr.value, dtype=np.float64), ValueType.SCALAR_ARRAY
    if kind == "raw":
        return bytes(value.raw), ValueType.RAW
    if kind == "text":
        return value.text, ValueType.TEXT
    if kind == "textArr":
        return tuple(value.textArr.value), ValueType.TEXT_ARRAY
    if kind == "anaAlarm":
        ana = value.anaAlarm
        return {key: getattr(ana, name) for key, name in _ANALOG_FIELDS}, ValueType.ANALOG_ALARM
    if kind == "digAlarm":
        dig = value.digAlarm
        return {key: getattr(dig, name) for key, name in _DIGITAL_FIELDS}, ValueType.DIGITAL_ALARM
    if kind == "basicStatus":
        text = dict(value.basicStatus.value)
        bits = text.keys() <= _BASIC_STATUS_KEYS and all(v in _BOOL_TEXT for v in text.values())
        status = {k: _BOOL_TEXT[v] for k, v in text.items()} if bits else text
        return status, ValueType.BASIC_STATUS
    raise RemoteProtocolError("the server sent a common.device.Value with no value set")


def value_to_proto(value: Any, value_type: ValueType) -> device_pb2.Value:
    """A reading's value (of ``value_type``) as a ``common.device.Value``.

    The inverse of :func:`value_from_proto`. A timed array is not one Value
    but a reply of several readings: :func:`reading_reply` makes those.
    """
    if value_type is ValueType.SCALAR:
        return device_pb2.Value(scalar=float(value))
    if value_type is ValueType.SCALAR_ARRAY:
        return device_pb2.Value(scalarArr={"value": np.asarray(value, dtype=np.float64).tolist()})
    if value_type is ValueType.RAW:
        return device_pb2.Value(raw=bytes(value))
    if value_type is ValueType.TEXT:
        return device_pb2.Value(text=value)
    if value_type is ValueType.TEXT_ARRAY:
        return device_pb2.Value(textArr={"value": list(value)})
    if value_type is ValueType.ANALOG_ALARM:
        return device_pb2.Value(anaAlarm=_alarm_fields(value, _ANALOG_FIELDS))
    if value_type is ValueType.DIGITAL_ALARM:
        return device_pb2.Value(digAlarm=_alarm_fields(value, _DIGITAL_FIELDS))
    if value_type is ValueType.BASIC_STATUS:
        return device_pb2.Value(basicStatus={"value": {k: str(v) for k, v in value.items()}})
    raise ValueError(f"a {value_type.name} value is not one common.device.Value")


def _alarm_fields(value: Mapping[str, Any], fields: Sequence[tuple[str, str]]) -> dict[str, Any]:
    return {name: value[key] for key, name in fields if key in value}


def setting_value(drf: str, value: Any) -> device_pb2.Value:
    """What a user writes to ``drf``, as the ``common.device.Value`` of a ``Setting``.

    Accepts what DPM/TCP settings accept (see
    :func:`acnet_proto.plans.settings.setting_for`): bytes -> ``raw``, str ->
    ``text``, a list of str -> ``textArr``, a number or bool -> ``scalar``,
    a list/tuple/1-D array of numbers -> ``scalarArr``. Anything else is a
    TypeError (ValueError for an empty list or a non-finite number) naming
    ``drf``, before any I/O.
    """
    # setting_for names the struct it made by its kind
    kind, struct = setting_for(drf, 0, value)
    if kind == "raw":
        return device_pb2.Value(raw=cast(dpm.RawSetting, struct).data)
    if kind == "text":
        texts = list(cast(dpm.TextSetting, struct).data)
        if isinstance(value, str):
            return device_pb2.Value(text=texts[0])
        return device_pb2.Value(textArr={"value": texts})
    numbers = list(cast(dpm.ScaledSetting, struct).data)
    if isinstance(value, (list, tuple, np.ndarray)):
        return device_pb2.Value(scalarArr={"value": numbers})
    return device_pb2.Value(scalar=numbers[0])


# --- readings ------------------------------------------------------------------------------


def _reading(drf: str, entry: DAQ_pb2.Reading) -> Reading:
    facility, error, message = status_parts(entry.status)
    at = timestamp_of(entry)
    if error < 0 or entry.data.WhichOneof("value") is None:
        return Reading(drf, facility_code=facility, error_code=error, message=message, timestamp=at)
    value, value_type = value_from_proto(entry.data)
    return Reading(drf, value_type, facility, error, value, message, at)


def _timed_array(drf: str, entries: Sequence[DAQ_pb2.Reading]) -> Reading:
    # every entry is a usable scalar (the caller checked); the first warning speaks for all
    parts = [status_parts(e.status) for e in entries]
    facility, error, message = next((p for p in parts if p[1] > 0), (0, 0, None))
    micros = [e.timestamp.seconds * 1_000_000 + e.timestamp.nanos // 1000 for e in entries]
    value = {
        "data": np.array([e.data.scalar for e in entries], dtype=np.float64),
        "micros": np.array(micros, dtype=np.int64),
    }
    at = timestamp_of(entries[0])
    return Reading(drf, ValueType.TIMED_SCALAR_ARRAY, facility, error, value, message, at)


def readings_of_reply(reply: DAQ_pb2.ReadingReply, drf: str) -> list[Reading]:
    """The readings one ``ReadingReply`` carries for ``drf`` (the DRF at its index).

    A status reply is one error reading. Several scalar readings in one reply
    are one timed array (as DPM/TCP's ``TimedScalarArray_reply``); several
    readings of any other kind stay separate readings; an error among them
    is one error reading. An empty reply carries none.
    """
    if reply.WhichOneof("value") == "status":
        facility, error, message = status_parts(reply.status)
        return [Reading(drf, facility_code=facility, error_code=error, message=message)]
    entries = list(reply.readings.reading)
    readings = [_reading(drf, e) for e in entries]
    if len(readings) <= 1:
        return readings
    failed = next((r for r in readings if r.value is None), None)
    if failed is not None:
        return [failed]
    if all(r.value_type is ValueType.SCALAR for r in readings):
        return [_timed_array(drf, entries)]
    return readings


def _entry(
    reading: Reading, value: Any, value_type: ValueType, at: datetime | None
) -> DAQ_pb2.Reading:
    entry = DAQ_pb2.Reading(
        data=value_to_proto(value, value_type),
        status=status_message(reading.facility_code, reading.error_code, reading.message),
    )
    if at is not None:
        entry.timestamp.FromDatetime(at)
    return entry


def reading_reply(index: int, reading: Reading) -> DAQ_pb2.ReadingReply:
    """The ``ReadingReply`` a server sends for ``reading``, the request's ``index``-th DRF.

    The inverse of :func:`readings_of_reply`: a reading without a value is a
    status reply; a timed array is one scalar reading per point.
    """
    if reading.value is None:
        status = status_message(reading.facility_code, reading.error_code, reading.message)
        return DAQ_pb2.ReadingReply(index=index, status=status)
    if reading.value_type is ValueType.TIMED_SCALAR_ARRAY:
        data, micros = reading.value["data"], reading.value["micros"]
        entries = [
            _entry(reading, float(v), ValueType.SCALAR, _EPOCH + timedelta(microseconds=int(us)))
            for v, us in zip(data, micros, strict=True)
        ]
    else:
        assert reading.value_type is not None  # a Reading with a value has its type
        entries = [_entry(reading, reading.value, reading.value_type, reading.timestamp)]
    return DAQ_pb2.ReadingReply(index=index, readings={"reading": entries})


def _fold(reply: DAQ_pb2.ReadingReply, drfs: Sequence[str]) -> list[tuple[int, Reading]]:
    if reply.index >= len(drfs):
        raise RemoteProtocolError(
            f"the server sent a reply for index {reply.index}, "
            f"but only {len(drfs)} DRFs were asked for"
        )
    return [(reply.index, r) for r in readings_of_reply(reply, drfs[reply.index])]


def _fold_plan(reply: DAQ_pb2.ReadingReply, plan: ListPlan) -> list[tuple[int, Reading]]:
    """:func:`_fold` for ``plan``'s entries, whose logger and FTP entries come in chunks."""
    if reply.index not in plan.history:
        return _fold(reply, plan.drfs)
    index = reply.index
    error = reply.WhichOneof("value") == "status" and status_parts(reply.status)[1] != 0
    chunk = None if error else _chunk_arrays(reply.readings.reading)
    if chunk is not None:  # an empty one (no readings, or a status of success): end of data
        return plan.history.chunk(index, *chunk)
    made = readings_of_reply(reply, plan.drfs[index])  # what stands in the chunk's place
    return [pair for reading in made for pair in plan.history.failed(index, reading)]


def _chunk_arrays(entries: Sequence[DAQ_pb2.Reading]) -> tuple[np.ndarray, np.ndarray] | None:
    """A chunk's values and times (Unix µs), or None unless every entry is a scalar, not
    an error."""
    if not all(
        e.data.WhichOneof("value") == "scalar" and 0 <= e.status.status_code < 128 for e in entries
    ):
        return None
    count = len(entries)
    values = np.fromiter((e.data.scalar for e in entries), np.float64, count)
    stamps = (e.timestamp.seconds * 1_000_000 + e.timestamp.nanos // 1000 for e in entries)
    return values, np.fromiter(stamps, np.int64, count)


class GRPCListPlan(ListPlan):
    """A subscription over gRPC: :meth:`request`, then :meth:`feed` each reply of the stream.

    As :class:`~acnet_proto.plans.lists.ListPlan` with no default event: the DRFs
    are parsed now (bad text raises :class:`~acnet_proto.drf.DRFError`) and
    sent as given; readings name the DRF at the reply's index.
    """

    def __init__(self, drfs: Sequence[str | _drf.DataRequest]) -> None:
        super().__init__(drfs, default_event=None)

    def request(self) -> DAQ_pb2.ReadingList:
        return DAQ_pb2.ReadingList(drf=self.wire)

    # a DAQ reply, not a DPM engine event: only ListPlan's entries and results are shared
    def feed(self, reply: DAQ_pb2.ReadingReply) -> list[tuple[int, Reading]]:  # type: ignore[override]
        """The ``(index, reading)`` pairs one reply makes (a reply for an index that was not
        asked for raises :class:`RemoteProtocolError`); an FTP entry's reply is one chunk."""
        return _fold_plan(reply, self)


#: The gRPC status codes (by name) of a ``Read`` stream that broke because its server or the
#: connection went away, rather than because the server refused it: a new call may well work.
#: ``UNAVAILABLE`` is a server stopping, restarting or unreachable; ``CANCELLED`` (when the
#: client did not cancel) a server or proxy dropping the call; ``ABORTED`` is retryable by
#: definition. Every other code (``INVALID_ARGUMENT``, ``UNAUTHENTICATED``,
#: ``PERMISSION_DENIED``, ``UNKNOWN``, ``INTERNAL``, ...) is the server's answer, which the
#: same request would get again.
TRANSIENT_CODES = frozenset({"UNAVAILABLE", "CANCELLED", "ABORTED"})


class GRPCStream:
    """A subscription over gRPC: one ``Read`` call after another, with the same request.

    An adapter makes a call with :meth:`request` and passes each reply to
    :meth:`feed`. When the call fails it asks :meth:`broke` what to do: a
    :class:`~acnet_proto.streams.driver.Wait` before calling again, or
    :class:`~acnet_proto.streams.driver.GiveUp` with the error that ends the
    stream::

        stream = GRPCStream(drfs, reconnect_policy(reconnect))
        while not stopped:
            try:
                for reply in stub.Read(stream.request()):
                    for item in stream.feed(reply, datetime.now(UTC)):
                        deliver(item)
                break                                   # the server ended it: all sent
            except grpc.RpcError as e:
                step = stream.broke(e.code().name, str(e), datetime.now(UTC), monotonic(), e)
                if isinstance(step, GiveUp):
                    raise step.error                    # caused by e
                if step.gap is not None:
                    deliver(step.gap)                   # the outage, told at once
            sleep(step.until - monotonic())             # cut short by stop()

    Only a failure whose code is in :data:`TRANSIENT_CODES` is retried (as
    ``reconnect`` says); any other (``code`` None: not a gRPC status, e.g. a
    reply that breaks the protocol) ends the stream at once. A stream the
    server ends with ``OK`` is over too: the server had nothing more to send
    (one-shot and refused entries only), and would say so again. The first
    failure of an outage gives the open :class:`Gap` to deliver at once (in
    the :class:`~acnet_proto.streams.driver.Wait`); a call only shows it
    works with its first reading, so the closed gap comes with that reading.
    ``server`` names the server in the gaps.
    """

    def __init__(
        self,
        drfs: Sequence[str | _drf.DataRequest],
        reconnect: Reconnect | None,
        server: str | None = None,
    ) -> None:
        self.plan = GRPCListPlan(drfs)
        self.drfs = self.plan.drfs
        self.driver = StreamDriver(self.drfs, reconnect, server=server)

    def request(self) -> DAQ_pb2.ReadingList:
        """The request of every call. The plan keeps no state between replies (each
        names its entry by index), so a new call needs nothing reset."""
        return self.plan.request()

    def feed(self, reply: DAQ_pb2.ReadingReply, at: datetime) -> Sequence[Reading | Gap]:
        """What one reply (arriving at ``at``, UTC) gives the user, in order: its readings,
        after the closed :class:`Gap` (whose ``until`` is ``at``) if an outage ends with
        them."""
        return self.driver.received([reading for _, reading in self.plan.feed(reply)], at)

    def broke(
        self,
        code: str | None,
        cause: str,
        at: datetime,
        now: float = 0.0,
        error: BaseException | None = None,
    ) -> Wait | GiveUp:
        """The call failed at ``at`` (``now`` on the adapter's clock) with gRPC status
        ``code`` (its name; None for a failure that is not a gRPC status), because of
        ``cause`` (the failure ``error``, if there is one: the ``__cause__`` of the error
        given up with): wait before calling again (delivering the open gap of an outage
        as it begins), or give up."""
        return self.driver.broke(cause, at, now, retry=code in TRANSIENT_CODES, error=error)


class GRPCReadBatch(ReadBatch):
    """A one-shot read over gRPC: :meth:`request`, then :meth:`feed` each reply until :attr:`done`.

    As :class:`~acnet_proto.plans.lists.ReadBatch` (whose deadline and failure
    helpers it keeps): DRFs without an event are read with ``@I``, results
    come in input order, and each entry's first reading is its result.
    """

    def request(self) -> DAQ_pb2.ReadingList:
        return DAQ_pb2.ReadingList(drf=self.wire)

    # a DAQ reply, not a DPM engine event (see GRPCListPlan.feed)
    def feed(self, reply: DAQ_pb2.ReadingReply) -> list[tuple[int, Reading]]:  # type: ignore[override]
        # a reply is all for one index, so at most its first reading is kept
        return self._keep(_fold_plan(reply, self))


# --- settings --------------------------------------------------------------------------------


class SettingBatch:
    """Settings for one ``Set`` call: :meth:`request`, then :meth:`results` of the reply.

    ``settings`` is ``[(drf, value), ...]`` or ``{drf: value}``. Each DRF is
    sent as written for a setting (``Z:ACLTST`` -> ``Z:ACLTST.SETTING@N``,
    see :func:`~acnet_proto.drf.to_write_drf`) and each value converted by
    :func:`setting_value`, so bad input raises here, before any I/O.
    """

    def __init__(self, settings: Sequence[tuple[Any, Any]] | Mapping[Any, Any]) -> None:
        pairs = setting_pairs(settings)
        if not pairs:
            raise ValueError("settings is empty: give at least one (drf, value) pair")
        self.drfs = [name for name, _ in pairs]
        self._settings = [
            DAQ_pb2.Setting(device=_drf.to_write_drf(name), value=setting_value(name, value))
            for name, value in pairs
        ]

    def request(self) -> DAQ_pb2.SettingList:
        return DAQ_pb2.SettingList(setting=self._settings)

    def results(self, reply: DAQ_pb2.SettingReply) -> list[WriteResult]:
        """One result per setting, in input order; one the reply left out gets ``ACNET_RETRY``."""
        statuses = list(reply.status)
        out = []
        for index, drf in enumerate(self.drfs):
            if index < len(statuses):
                facility, error, message = status_parts(statuses[index])
            else:
                facility, error = _UNANSWERED.facility, _UNANSWERED.error
                message = f"{_UNANSWERED}: the reply gave no status for it"
            out.append(WriteResult(drf, facility, error, message))
        return out


def setting_reply(statuses: Iterable[Status | int]) -> DAQ_pb2.SettingReply:
    """The ``SettingReply`` for per-setting statuses (:class:`Status` or packed int; 0 = done)."""
    parts = [s if isinstance(s, Status) else Status.from_int(s) for s in statuses]
    return DAQ_pb2.SettingReply(status=[status_message(p.facility, p.error) for p in parts])
