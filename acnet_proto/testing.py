"""An in-memory backend for unit tests of code that reads devices (the seeds' ``FakeBackend``).

::

    from acnet_proto.testing import FakeBackend

    fake = FakeBackend()
    fake.set_reading("M:OUTTMP", 72.5, units="DegF")
    fake.set_error("Z:BROKEN", "DPM_NO_SUCH_DEVICE")

    assert fake.read("M:OUTTMP") == 72.5
    assert fake.get("Z:BROKEN").is_error
    assert Device("M:OUTTMP", fake).read() == 72.5
    assert fake.reads == ["M:OUTTMP", "Z:BROKEN", "M:OUTTMP@I"]

    with fake.subscribe(["M:OUTTMP@p,1000"]) as stream:
        fake.emit_reading("M:OUTTMP@p,1000", 73.0)
        [(reading, _)] = list(stream.readings(timeout=0))

Values are stored per device, property and field; a read with any event or
range finds them (array ranges are applied). Settings are recorded in
:attr:`FakeBackend.writes` and succeed: a setting of ``Z:ACLTST`` is what
``Z:ACLTST.SETTING`` then reads. Bad DRF text raises
:class:`~acnet_proto.drf.DRFError` as a real backend does.

Pure: no sockets, no threads, no clock (timestamps are None unless given).
So a subscription's readings are the ones :meth:`FakeBackend.emit_reading`
put there; ``readings()`` yields them and returns when there are no more,
whatever its ``timeout``, since nothing else could add one while it waited.
Callbacks run inline, inside ``emit_reading``. Not thread-safe.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, cast

import numpy as np

from acnet_proto import drf as _drf
from acnet_proto.api.backend import (
    DEFAULT_QUEUE_SIZE,
    Backend,
    ErrorCallback,
    QueuedSubscription,
    ReadingCallback,
    ReadingQueue,
    check_callbacks,
    setting_pairs,
)
from acnet_proto.errors import ConnectionLost, ReadError
from acnet_proto.plans.lists import ListPlan, ReadBatch, error_reading
from acnet_proto.status import Status
from acnet_proto.types import DeviceMeta, Reading, ValueType, WriteResult

__all__ = ["FakeBackend", "FakeSubscription"]

_Key = tuple[str, _drf.Property, _drf.Field | None]

_NO_SUCH_DEVICE = Status.from_name("DPM_NO_SUCH_DEVICE")
_NO_PROPERTY = Status.from_name("DBM_NOPROP")
_OUT_OF_BOUNDS = Status.from_name("DPM_OUT_OF_BOUNDS")
_TIMED_OUT = Status.from_name("ACNET_REQTMO")
_ACNET = 1  # the facility of a bare error number, as in pacsys

_DICT_TYPES = {
    _drf.Property.ANALOG: ValueType.ANALOG_ALARM,
    _drf.Property.DIGITAL: ValueType.DIGITAL_ALARM,
}
# type[Any], not type: isinstance() against these keeps a value Any (type narrows it to object)
_ALLOWED: dict[ValueType, tuple[type[Any], ...]] = {
    ValueType.SCALAR: (int, float, np.number),
    ValueType.SCALAR_ARRAY: (list, tuple, np.ndarray),
    ValueType.RAW: (bytes, bytearray),
    ValueType.TEXT: (str,),
    ValueType.TEXT_ARRAY: (list, tuple),
    ValueType.TIMED_SCALAR_ARRAY: (dict,),
    ValueType.ANALOG_ALARM: (dict,),
    ValueType.DIGITAL_ALARM: (dict,),
    ValueType.BASIC_STATUS: (dict,),
}


def _key(request: _drf.DataRequest) -> _Key:
    return request.device, request.property, request.field


def _infer(value: Any, prop: _drf.Property) -> ValueType:
    if isinstance(value, str):
        return ValueType.TEXT
    if isinstance(value, (bytes, bytearray)):
        return ValueType.RAW
    if isinstance(value, dict):
        return _DICT_TYPES.get(prop, ValueType.BASIC_STATUS)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return ValueType.TEXT_ARRAY
    if isinstance(value, (list, tuple, np.ndarray)):
        return ValueType.SCALAR_ARRAY
    return ValueType.SCALAR


def _stored(drf: str, value: Any, value_type: ValueType) -> Any:
    """``value`` as a real backend hands it over; TypeError if it is no ``value_type``."""
    allowed = _ALLOWED[value_type]
    wrong_bool = isinstance(value, bool) and value_type is not ValueType.SCALAR
    if wrong_bool or not isinstance(value, allowed):
        raise TypeError(f"{drf}: a {type(value).__name__} is not a {value_type.name} value")
    if value_type is ValueType.SCALAR:
        return float(value)
    if value_type is ValueType.SCALAR_ARRAY:
        return np.array(value, dtype=np.float64)
    if value_type is ValueType.RAW:
        return bytes(value)
    if value_type is ValueType.TEXT_ARRAY:
        if not all(isinstance(v, str) for v in value):
            raise TypeError(f"{drf}: every element of a TEXT_ARRAY value must be a str")
        return tuple(value)
    if isinstance(value, dict):
        return dict(value)
    return value


def _in_range(reading: Reading, drf: str, request: _drf.DataRequest) -> Reading:
    """``reading`` as read through ``request``'s array range, if it has one."""
    span = request.range
    if not isinstance(span, _drf.ArrayRange) or not isinstance(reading.value, np.ndarray):
        return replace(reading, drf=drf)
    size = reading.value.size
    end = size - 1 if span.end is None else span.end
    if end >= size:
        note = f"{drf} asks for elements up to {end}; the array has {size}"
        return error_reading(drf, _OUT_OF_BOUNDS, reading.meta, note=note)
    return replace(reading, drf=drf, value=reading.value[span.start : end + 1])


class FakeSubscription(QueuedSubscription):
    """A :class:`FakeBackend` stream, fed by :meth:`FakeBackend.emit_reading`."""

    def __init__(
        self,
        drfs: list[str],
        callback: ReadingCallback | None,
        on_error: ErrorCallback | None,
        queue_size: int,
    ) -> None:
        super().__init__(drfs, callback, on_error, ReadingQueue(queue_size))
        self.canonical = {_drf.canonical(d) for d in drfs}

    def readings(self, timeout: float | None = None) -> Iterator[tuple[Reading, FakeSubscription]]:
        """Yield the emitted readings not yet taken, then raise the stream's error if it died.

        ``timeout`` is accepted for compatibility and has no effect (see the
        module docstring).
        """
        self._check_iterable()
        while len(self._queue) and not self._stop_requested:
            # only deliver() fills the queue, with readings: the fake never reconnects, so no Gap
            yield cast(Reading, self._queue.pop()), self
        if self._exc is not None and not self._stop_requested:
            raise self._exc

    def stop(self) -> None:
        self._stop_requested = True
        self._queue.clear()

    def deliver(self, reading: Reading) -> None:
        if self.stopped:
            return
        if self._callback is not None:
            self._callback(reading, self)
        else:
            self._queue.push(reading)

    def fail(self, exc: Exception) -> None:
        if self.stopped:
            return
        self._exc = exc
        self._ended = True
        if self._on_error is not None:
            self._on_error(exc, self)


class FakeBackend(Backend):
    """A backend that answers from values set in the test (see the module docstring)."""

    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self._values: dict[_Key, Reading] = {}
        self._subscriptions: list[FakeSubscription] = []
        self._closed = False
        #: Every DRF read, as given, in order.
        self.reads: list[str] = []
        #: Every ``(drf, value)`` setting, as given, in order.
        self.writes: list[tuple[str, Any]] = []

    # -- the test's side ----------------------------------------------------------

    def set_reading(
        self,
        drf: str,
        value: Any,
        value_type: ValueType | None = None,
        *,
        units: str | None = None,
        description: str = "",
        timestamp: datetime | None = None,
        cycle: int | None = None,
    ) -> None:
        """What reads of ``drf``'s device, property and field return from now on.

        ``value_type`` is inferred when None (str TEXT, bytes RAW, a number
        SCALAR, a list of numbers SCALAR_ARRAY, ...); a value that does not
        fit the given type is a TypeError.
        """
        request = _drf.parse(drf)
        self._values[_key(request)] = self._reading(
            drf, value, value_type, units, description, timestamp, cycle
        )

    def set_error(self, drf: str, status: int | str, message: str | None = None) -> None:
        """Reads of ``drf`` answer an error: a status name (``"DBM_NOPROP"``) or an error number.

        A bare number is an ACNET (facility 1) error, as in pacsys.
        """
        request = _drf.parse(drf)
        if isinstance(status, str):
            parts = Status.from_name(status)
        elif type(status) is int:
            parts = Status(_ACNET, status)
        else:
            raise TypeError(f"status must be a status name or an error number, not {status!r}")
        self._values[_key(request)] = error_reading(drf, parts, note=message or "")

    def emit_reading(
        self,
        drf: str,
        value: Any,
        value_type: ValueType | None = None,
        *,
        units: str | None = None,
        description: str = "",
        timestamp: datetime | None = None,
        cycle: int | None = None,
    ) -> int:
        """Send a reading of ``drf`` to every live subscription that asked for ``drf``.

        DRFs match in canonical form (``m:outtmp@P,1000`` is
        ``M:OUTTMP@p,1000``). Returns how many subscriptions it reached.
        """
        reading = self._reading(drf, value, value_type, units, description, timestamp, cycle)
        wanted = _drf.canonical(drf)
        reached = [s for s in self._subscriptions if not s.stopped and wanted in s.canonical]
        for subscription in reached:
            subscription.deliver(reading)
        return len(reached)

    def emit_error(self, exc: Exception | None = None) -> None:
        """Kill every live subscription with ``exc`` (default: ConnectionLost)."""
        exc = exc if exc is not None else ConnectionLost("the fake connection was cut")
        for subscription in list(self._subscriptions):
            subscription.fail(exc)

    def was_read(self, drf: str) -> bool:
        """True if some read asked for ``drf``'s device, property and field."""
        wanted = _key(_drf.parse(drf))
        return any(_key(_drf.parse(d)) == wanted for d in self.reads)

    def was_written(self, drf: str) -> bool:
        """True if some setting went to where a setting of ``drf`` goes."""
        wanted = _drf.to_write_drf(drf)
        return any(_drf.to_write_drf(d) == wanted for d, _ in self.writes)

    def _reading(
        self,
        drf: str,
        value: Any,
        value_type: ValueType | None,
        units: str | None,
        description: str,
        timestamp: datetime | None,
        cycle: int | None,
    ) -> Reading:
        request = _drf.parse(drf)
        kind = _infer(value, request.property) if value_type is None else value_type
        meta = DeviceMeta(0, request.device, description, units)
        return Reading(
            drf,
            value_type=kind,
            value=_stored(drf, value, kind),
            timestamp=timestamp,
            cycle=cycle,
            meta=meta,
        )

    # -- the backend API ------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this FakeBackend is closed")

    def get_many(
        self, drfs: Sequence[str | _drf.DataRequest], timeout: float | None = None
    ) -> list[Reading]:
        self._check_open()
        batch = ReadBatch(drfs)
        readings = []
        never = False
        for drf, wire in zip(batch.drfs, batch.wire):
            request = _drf.parse(wire)
            # a real backend waits for @N data until its deadline: so does this one, at once
            never = never or isinstance(request.event, _drf.NeverEvent)
            readings.append(self._answer(drf, request))
        self.reads += batch.drfs
        if never:
            raise ReadError(readings, "read timed out: an @N request never answers")
        return readings

    def _answer(self, drf: str, request: _drf.DataRequest) -> Reading:
        if isinstance(request.event, _drf.NeverEvent):
            return error_reading(drf, _TIMED_OUT, note="@N never sends data")
        found = self._values.get(_key(request))
        if found is not None:
            return _in_range(found, drf, request)
        if any(device == request.device for device, _, _ in self._values):
            return error_reading(drf, _NO_PROPERTY, note=f"nothing set for {drf}")
        return error_reading(drf, _NO_SUCH_DEVICE, note=f"nothing set for {request.device}")

    def write_many(
        self, settings: Sequence[tuple[Any, Any]] | Mapping[Any, Any], timeout: float | None = None
    ) -> list[WriteResult]:
        """Record the settings and make each readable where it went; all succeed."""
        self._check_open()
        pairs = setting_pairs(settings)
        results = []
        for drf, value in pairs:
            target = _drf.parse(_drf.to_write_drf(drf))
            if target.property is not _drf.Property.CONTROL:
                kind = _infer(value, target.property)
                self._values[_key(target)] = Reading(
                    drf, value_type=kind, value=_stored(drf, value, kind)
                )
            results.append(WriteResult(drf))
        self.writes += pairs
        return results

    def subscribe(
        self,
        drfs: Sequence[str | _drf.DataRequest],
        callback: ReadingCallback | None = None,
        on_error: ErrorCallback | None = None,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
    ) -> FakeSubscription:
        """A subscription fed by :meth:`emit_reading`; callbacks run inside it."""
        self._check_open()
        check_callbacks(callback, on_error)
        plan = ListPlan(drfs, default_event=None)
        subscription = FakeSubscription(plan.drfs, callback, on_error, queue_size)
        self._subscriptions.append(subscription)
        return subscription

    def close(self) -> None:
        for subscription in self._subscriptions:
            subscription.stop()
        self._subscriptions.clear()
        self._closed = True
