"""An in-memory backend for unit tests of code that reads devices (the seeds' ``FakeBackend``).

::

    from acnet_proto.testing import FakeBackend

    fake = FakeBackend()
    fake.set_reading("M:OUTTMP", 72.5, units="DegF")
    fake.set_error("Z:BROKEN", "DPM_NO_SUCH_DEVICE")
    fake.set_write_result("Z:LOCKED", success=False, message="locked out")

    assert fake.read("M:OUTTMP") == 72.5
    assert fake.get("Z:BROKEN").is_error
    assert Device("M:OUTTMP", fake).read() == 72.5
    assert fake.reads == ["M:OUTTMP", "Z:BROKEN", "M:OUTTMP@I"]
    assert not fake.write("Z:LOCKED", 1.0).ok and fake.get_written_value("Z:LOCKED") == 1.0

    with fake.subscribe(["M:OUTTMP@p,1000"]) as stream:
        fake.emit_reading("M:OUTTMP@p,1000", 73.0)
        [(reading, _)] = list(stream.readings(timeout=0))

Values are stored per device, property and field; a read with any event or
range finds them (array ranges are applied). Settings are recorded in
:attr:`FakeBackend.writes` and succeed unless :meth:`~FakeBackend.set_write_result`
said otherwise: a setting of ``Z:ACLTST`` is what ``Z:ACLTST.SETTING`` then
reads. Bad DRF text, and reads of ``@N`` (which never sends data), raise
:class:`~acnet_proto.drf.DRFError` as a real backend does;
:meth:`~FakeBackend.set_silent` makes a device time out.

Pure: no sockets, no threads, no clock (timestamps are None unless given).
So a subscription's readings are the ones :meth:`FakeBackend.emit_reading`
put there; ``readings()`` yields them and returns when there are no more,
whatever its ``timeout``, since nothing else could add one while it waited.
Callbacks run inline, inside ``emit_reading``. Not thread-safe.

``replay_server``, a pytest fixture that serves a recorded DPM session to
the client under test (docs/replay.md), is importable from here too::

    from acnet_proto.testing import replay_server  # in conftest.py

It is made when first imported, from :mod:`acnet_proto.adapters.sim.replay`:
importing this module needs neither pytest nor any I/O.
"""

from __future__ import annotations

import importlib
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
from acnet_proto.api.config import check_timeout
from acnet_proto.errors import ConnectionLost
from acnet_proto.plans.lists import ListPlan, ReadBatch, error_reading
from acnet_proto.status import Status
from acnet_proto.streams.reconnect import Reconnect
from acnet_proto.types import DeviceMeta, Reading, ValueType, WriteResult

__all__ = ["FakeBackend", "FakeSubscription"]

_Key = tuple[str, _drf.Property, _drf.Field | None]

# A device the test set nothing for is the test's omission, not the lab's unknown device
# (DPM_PEND, a warning): an error status makes it fail loudly, even where code tests is_error.
# To model the lab's answer, set_error(drf, "DPM_PEND").
_NO_SUCH_DEVICE = Status.from_name("DPM_NO_SUCH_DEVICE")
_NO_PROPERTY = Status.from_name("DBM_NOPROP")
_OUT_OF_BOUNDS = Status.from_name("DPM_OUT_OF_BOUNDS")
_RETRY = Status.from_name("ACNET_RETRY")  # pacsys's failed write, when no code is given
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


def _status(code: int | str, what: str) -> Status:
    """A status name (``"DBM_NOPROP"``) or a bare error number (an ACNET one, as in pacsys)."""
    if isinstance(code, str):
        return Status.from_name(code)
    if type(code) is int:
        return Status(_ACNET, code)
    raise TypeError(f"{what} must be a status name or an error number, not {code!r}")


class _FakeRead(ReadBatch):
    """A one-shot read the fake answers entry by entry (the shared plan words its timeout)."""

    def answer(self, index: int, reading: Reading) -> None:
        self._keep([(index, reading)])


class FakeBackend(Backend):
    """A backend that answers from values set in the test (see the module docstring).

    The seeds' ``FakeBackend``: set up with :meth:`set_reading`,
    :meth:`set_error`, :meth:`set_analog_alarm`, :meth:`set_digital_alarm`,
    :meth:`set_write_result` (and :meth:`set_silent`); look with
    :attr:`reads`, :attr:`writes`, :meth:`was_read`, :meth:`was_written`,
    :meth:`get_written_value`; stream with :meth:`emit_reading` and
    :meth:`emit_error`; start again with :meth:`reset`. ``timeout`` is the
    default a timed-out read reports.
    """

    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = check_timeout(timeout)
        self._values: dict[_Key, Reading] = {}
        self._silent: set[_Key] = set()
        self._write_results: dict[str, WriteResult] = {}
        self._subscriptions: list[FakeSubscription] = []
        self._closed = False
        #: Every DRF read, as given, in order.
        self.reads: list[str] = []
        #: Every ``(drf, value)`` setting, as given, in order (refused ones too).
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
        fit the given type is a TypeError. Replaces an error or silence set
        for the same device, property and field.
        """
        key = _key(_drf.parse(drf))
        self._values[key] = self._reading(
            drf, value, value_type, units, description, timestamp, cycle
        )
        self._silent.discard(key)

    def set_error(self, drf: str, error_code: int | str, message: str | None = None) -> None:
        """Reads of ``drf`` answer a status and no value (the seeds' "status-only response").

        ``error_code`` is a status name (``"DBM_NOPROP"``) or a non-zero error
        number: negative an error, positive a warning (as in pacsys, a bare
        number is an ACNET, facility 1, status). Either way the reading has no
        value, so ``read()`` raises :class:`~acnet_proto.errors.DeviceError`
        and ``get()`` returns it. ``message`` follows the status in the
        reading's message. Replaces a value set for the same device, property
        and field.
        """
        key = _key(_drf.parse(drf))
        status = _status(error_code, "error_code")
        if status.error == 0:
            raise ValueError(
                f"set_error({drf!r}, {error_code!r}) needs a non-zero status; "
                "a success is a value: use set_reading()"
            )
        self._values[key] = error_reading(drf, status, note=message or "")
        self._silent.discard(key)

    def set_silent(self, drf: str) -> None:
        """Reads of ``drf``'s device, property and field get no answer: they time out.

        ``get_many`` then raises :class:`~acnet_proto.errors.ReadError` as a
        real backend does when its timeout passes (the readings that did
        arrive, ``ACNET_REQTMO`` for the silent ones, the timeout named), but
        at once: the fake has no clock. :meth:`set_reading` ends the silence.
        """
        self._silent.add(_key(_drf.parse(drf)))

    def set_analog_alarm(self, drf: str, alarm: Mapping[str, Any]) -> None:
        """What reads of the device's analog alarm block (``Z@ACLTST``) return.

        ``drf`` names the device (``"Z:ACLTST"``) or its ANALOG property;
        ``alarm`` has DPM's keys (``minimum``, ``maximum``, ``alarm_enable``, ...).
        """
        self._set_alarm(drf, alarm, _drf.Property.ANALOG, ValueType.ANALOG_ALARM)

    def set_digital_alarm(self, drf: str, alarm: Mapping[str, Any]) -> None:
        """What reads of the device's digital alarm block (``Z$ACLTST``) return.

        ``drf`` names the device or its DIGITAL property; ``alarm`` has DPM's
        keys (``nominal``, ``mask``, ``alarm_enable``, ...).
        """
        self._set_alarm(drf, alarm, _drf.Property.DIGITAL, ValueType.DIGITAL_ALARM)

    def _set_alarm(
        self, drf: str, alarm: Mapping[str, Any], prop: _drf.Property, kind: ValueType
    ) -> None:
        request = _drf.parse(drf)
        if request.property not in (_drf.Property.READING, prop) or request.field is not None:
            raise ValueError(
                f"{drf!r} is not a device or its {prop.name} property: "
                f"give the device name, e.g. {request.device!r}"
            )
        if not isinstance(alarm, Mapping):
            raise TypeError(f"{drf}: an alarm block is a dict, not {type(alarm).__name__}")
        self.set_reading(f"{request.device}.{prop.name}", dict(alarm), kind)

    def set_write_result(
        self,
        drf: str,
        success: bool = True,
        error_code: int | str | None = None,
        message: str | None = None,
    ) -> None:
        """What settings that go where a setting of ``drf`` goes answer from now on.

        As in the seeds: ``error_code`` (a status name or error number)
        defaults to success, or to ``ACNET_RETRY`` when ``success`` is False.
        A setting whose result is not ok is recorded in :attr:`writes` but
        changes nothing that reads see; a successful one is applied as usual.
        """
        target = _drf.to_write_drf(drf)
        if error_code is None:
            status = Status(0, 0) if success else _RETRY
        else:
            status = _status(error_code, "error_code")
        if not success and status.error == 0:
            raise ValueError(
                f"set_write_result({drf!r}, success=False) needs a non-zero error_code"
            )
        text = message if message is not None else (str(status) if status.error else None)
        self._write_results[target] = WriteResult(drf, status.facility, status.error, text)

    def get_written_value(self, drf: str) -> Any:
        """The value last written where a setting of ``drf`` goes (refused or not), or None."""
        wanted = _drf.to_write_drf(drf)
        return next((v for d, v in reversed(self.writes) if _drf.to_write_drf(d) == wanted), None)

    def reset(self) -> None:
        """Forget every value, error, silence and write result set, the :attr:`reads` and
        :attr:`writes` recorded, and stop every subscription. The fake stays open."""
        self._values.clear()
        self._silent.clear()
        self._write_results.clear()
        self.reads.clear()
        self.writes.clear()
        self.stop_streaming()

    def stop_streaming(self) -> None:
        """Stop every subscription (as the seeds' fake does)."""
        for subscription in self._subscriptions:
            subscription.stop()
        self._subscriptions.clear()

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
        """Answer every DRF from what was set; :class:`ReadError` (at once) if any is silent."""
        self._check_open()
        batch = _FakeRead(drfs)
        seconds = self.timeout if timeout is None else check_timeout(timeout)
        self.reads += batch.drfs
        # the plan's parse: an entry's key and range are the same with or without its @I
        for index, (drf, request) in enumerate(zip(batch.drfs, batch.requests, strict=True)):
            if _key(request) not in self._silent:
                batch.answer(index, self._answer(drf, request))
        if not batch.done:
            raise batch.timed_out(seconds)
        return batch.readings()

    def _answer(self, drf: str, request: _drf.DataRequest) -> Reading:
        found = self._values.get(_key(request))
        if found is not None:
            return _in_range(found, drf, request)
        if any(device == request.device for device, _, _ in self._values):
            return error_reading(drf, _NO_PROPERTY, note=f"nothing set for {drf}")
        return error_reading(drf, _NO_SUCH_DEVICE, note=f"nothing set for {request.device}")

    def write_many(
        self, settings: Sequence[tuple[Any, Any]] | Mapping[Any, Any], timeout: float | None = None
    ) -> list[WriteResult]:
        """Record the settings and apply each where it goes; results as set by
        :meth:`set_write_result`, else success."""
        self._check_open()
        pairs = setting_pairs(settings)
        results = [self._write(drf, value) for drf, value in pairs]
        self.writes += pairs
        return results

    def _write(self, drf: str, value: Any) -> WriteResult:
        target = _drf.to_write_drf(drf)
        preset = self._write_results.get(target)
        result = WriteResult(drf) if preset is None else replace(preset, drf=drf)
        request = _drf.parse(target)
        if result.ok and request.property is not _drf.Property.CONTROL:
            kind = _infer(value, request.property)
            self._values[_key(request)] = Reading(
                drf, value_type=kind, value=_stored(drf, value, kind)
            )
        return result

    def subscribe(
        self,
        drfs: Sequence[str | _drf.DataRequest],
        callback: ReadingCallback | None = None,
        on_error: ErrorCallback | None = None,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        reconnect: bool | Reconnect = True,
    ) -> FakeSubscription:
        """A subscription fed by :meth:`emit_reading`; callbacks run inside it.

        ``reconnect`` is taken as every backend takes it; the fake never
        reconnects (:meth:`emit_error` ends the stream).
        """
        self._check_open()
        check_callbacks(callback, on_error)
        plan = ListPlan(drfs, default_event=None)
        subscription = FakeSubscription(plan.drfs, callback, on_error, queue_size)
        self._subscriptions.append(subscription)
        return subscription

    def close(self) -> None:
        self.stop_streaming()
        self._closed = True


def __getattr__(name: str) -> Any:
    """``replay_server``: the fixture, built from the adapters when first asked for."""
    if name != "replay_server":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # by name, not an import statement: the core never imports the adapters itself
    module = importlib.import_module("acnet_proto.adapters.sim.replay")
    fixture = module.replay_server_fixture()
    globals()[name] = fixture
    return fixture
