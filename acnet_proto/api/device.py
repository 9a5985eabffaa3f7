"""Devices as objects: one DRF, checked once, then read and streamed by method.

::

    temp = Device("M:OUTTMP")                   # DRFError here if the text is wrong
    temp.read()                                 # 41.7 (READING, @I)
    temp.get(prop="SETTING")                    # the Reading, with metadata
    temp.with_event("p,1000").subscribe(print_reading)
    ArrayDevice("Z:ACLTS1").with_range(0, 3).read()   # a numpy array of 4
    temp.history(start, end).values             # what the logger recorded, as numpy

A :class:`Device` is immutable: ``with_event``, ``with_range`` and
``with_backend`` return new devices. It does no I/O itself: each method
builds a DRF and hands it to the backend it was given, or to the global
backend behind :func:`acnet_proto.read` (created on first use).

One-shot reads (``read``, ``setting``, ``status``, ...) always ask for
``@I``, whatever event the device carries; ``get()`` without ``prop`` reads
the device's own DRF, event included; ``subscribe`` and ``await_next`` need
an event, from the device or from ``event=``.

Writes go to the backend's ``write`` (which needs its ``auth`` and
``role``)::

    dev = Device("Z:ACLTST", backend=backend)
    dev.write(45.0, verify=Verify(tolerance=0.1))     # SETTING, then read back
    dev.off(verify=True)                              # CONTROL, STATUS.ON read back
    dev.set_analog_alarm({"minimum": 40.0, "maximum": 50.0})

``write`` always sets the SETTING property (of the device's range, and of
its field or ``field=``, e.g. ``"RAW"``); ``control``/``on``/``off``/
``reset`` the CONTROL property. With ``verify``, a successful setting is
read back (SETTING, or the STATUS bit the command changes) until it
matches; see :mod:`acnet_proto.api.verify`. :meth:`Device.confirm` does that
for a setting sent another way (``write_many``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from acnet_proto import drf as _drf
from acnet_proto.api.backend import (
    Backend,
    ErrorCallback,
    ReadingCallback,
    Subscription,
    check_callbacks,
)
from acnet_proto.api.verify import CONTROL_READBACK, Verify, confirm, resolve_verify
from acnet_proto.plans.lists import value_of
from acnet_proto.types import BasicControl, History, Reading, WriteResult

if TYPE_CHECKING:  # DevDB needs grpc and protobuf: imported when used
    from acnet_proto.adapters.devdb import DevDBClient
    from acnet_proto.api.digital_status import DigitalStatus
    from acnet_proto.services.devdb import DeviceInfoResult

__all__ = [
    "ArrayDevice",
    "BasicControl",
    "Device",
    "DeviceSpec",
    "ScalarDevice",
    "TextDevice",
    "Verify",
    "bound_backend",
    "drf_of",
]

#: What waits between readbacks. None (the default): the blocking adapters' pause
#: (``time.sleep``); the core itself never sleeps.
Sleep = Callable[[float], object]

_P = _drf.Property
_IMMEDIATE = _drf.ImmediateEvent()
_BOOL_STATUS_FIELDS = frozenset(
    {_drf.Field.ON, _drf.Field.READY, _drf.Field.REMOTE, _drf.Field.POSITIVE, _drf.Field.RAMP}
)


class Device:
    """One device request, validated at construction (:class:`~acnet_proto.drf.DRFError`).

    ``drf`` is DRF text or a parsed :class:`~acnet_proto.drf.DataRequest`;
    ``backend`` is the backend to use, None for the global one.
    """

    __slots__ = ("_backend", "_request")
    _request: _drf.DataRequest
    _backend: Backend | None

    def __init__(self, drf: str | _drf.DataRequest, backend: Backend | None = None) -> None:
        if isinstance(drf, _drf.DataRequest):
            request = drf
        elif isinstance(drf, str):
            request = _drf.parse(drf)
        else:
            raise TypeError(f"drf must be DRF text or a DataRequest, not {type(drf).__name__}")
        if backend is not None and not isinstance(backend, Backend):
            raise TypeError(f"backend must be a Backend or None, not {type(backend).__name__}")
        object.__setattr__(self, "_request", request)
        object.__setattr__(self, "_backend", backend)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; use with_event() and friends")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    # -- what it is -----------------------------------------------------------

    @property
    def drf(self) -> str:
        """The canonical DRF text."""
        return self._request.to_drf()

    @property
    def name(self) -> str:
        """The device name, ``X:NAME``."""
        return self._request.device

    @property
    def request(self) -> _drf.DataRequest:
        """The parsed request (immutable)."""
        return self._request

    @property
    def backend(self) -> Backend | None:
        """The backend this device is bound to; None means the global one."""
        return self._backend

    @property
    def has_event(self) -> bool:
        """True if the DRF names an event other than the default (``@U``)."""
        event = self._request.event
        return event is not None and not isinstance(event, _drf.DefaultEvent)

    @property
    def is_periodic(self) -> bool:
        """True if the event is periodic (``@p`` or ``@q``)."""
        return isinstance(self._request.event, _drf.PeriodicEvent)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.drf!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Device):
            return NotImplemented
        return self.drf == other.drf

    def __hash__(self) -> int:
        return hash(self.drf)

    # -- new devices from this one ------------------------------------------

    def _with(self, request: _drf.DataRequest, backend: Backend | None) -> Self:
        return type(self)(request, backend)

    def with_event(self, event: str | _drf.Event) -> Self:
        """The same device with ``event`` (``"p,1000"``, ``"@I"``, an Event...)."""
        return self._with(_drf.parse(_drf.with_event(self._request, event)), self._backend)

    def with_range(
        self, start: int | None = None, end: int | None = None, *, at: int | None = None
    ) -> Self:
        """The same device over elements ``start..end`` (both included), or the one ``at``.

        ``with_range()`` is the whole array; ``end=None`` runs to the last element.
        """
        if at is not None:
            if start is not None or end is not None:
                raise ValueError("give either at= or start/end, not both")
            new_range = _drf.ArrayRange(at, at)
        else:
            new_range = _drf.ArrayRange(0 if start is None else start, end)
        return self._with(replace(self._request, range=new_range), self._backend)

    def with_backend(self, backend: Backend) -> Self:
        """The same device, read through ``backend``."""
        if not isinstance(backend, Backend):
            raise TypeError(f"backend must be a Backend, not {type(backend).__name__}")
        return self._with(self._request, backend)

    # -- reads ------------------------------------------------------------------

    def read(self, *, field: str | None = None, timeout: float | None = None) -> Any:
        """The READING value (DeviceError if the reading is not ok: an error, or no data)."""
        return self._read(_P.READING, field, timeout)

    def setting(self, *, field: str | None = None, timeout: float | None = None) -> Any:
        """The SETTING value."""
        return self._read(_P.SETTING, field, timeout)

    def status(self, *, field: str | None = None, timeout: float | None = None) -> Any:
        """The basic status: a dict, or a bool for ``field`` ON, READY, REMOTE, POSITIVE, RAMP."""
        target = self._target(_P.STATUS, field)
        value = self._backend_or_global().read(self._drf_for(_P.STATUS, target), timeout)
        return bool(value) if target in _BOOL_STATUS_FIELDS else value

    def analog_alarm(self, *, field: str | None = None, timeout: float | None = None) -> Any:
        """The ANALOG alarm block (a dict), or one ``field`` of it."""
        return self._read(_P.ANALOG, field, timeout)

    def digital_alarm(self, *, field: str | None = None, timeout: float | None = None) -> Any:
        """The DIGITAL alarm block (a dict), or one ``field`` of it."""
        return self._read(_P.DIGITAL, field, timeout)

    def description(self, *, timeout: float | None = None) -> str:
        """The device's description text."""
        value = self._read(_P.DESCRIPTION, None, timeout)
        if not isinstance(value, str):
            raise TypeError(f"DESCRIPTION of {self.name} is a {type(value).__name__}, not text")
        return value

    def get(
        self, *, prop: str | None = None, field: str | None = None, timeout: float | None = None
    ) -> Reading:
        """The full :class:`Reading` (error or not).

        Without ``prop``, of this device's own DRF (its event included: the
        first reading); with it, of that property (and ``field``) at ``@I``.
        """
        if prop is None:
            if field is not None:
                raise ValueError("field= needs prop= as well (which property is it a field of?)")
            return self._backend_or_global().get(self.drf, timeout)
        which = self._property(prop)
        return self._backend_or_global().get(
            self._drf_for(which, self._target(which, field)), timeout
        )

    def history(
        self,
        start: object,
        end: object,
        *,
        node: str | None = None,
        timeout: float | None = None,
    ) -> History:
        """What a data logger recorded of this device from ``start`` to ``end``, both included.

        ``start`` and ``end`` are aware datetimes (a naive one is a
        :class:`~acnet_proto.errors.ConfigurationError` naming it) or Unix
        seconds. ``node`` names the logger; None lets the server pick the best.
        The request keeps this device's property, range and field. Returns
        the values (``.values``, float64) and their times (``.times``,
        ``datetime64[us]`` UTC; ``.micros``, int64) as numpy arrays; an empty
        window (one the logger holds nothing of, ``DAE_LJ_NO_DATA``: in the
        future, or between two samples) is an empty :class:`History`. An
        error status (no such logger, too many points) is a
        :class:`~acnet_proto.errors.DeviceError`;
        ``timeout`` bounds the whole read, to the end of data. Only DPM
        (over TCP or gRPC) serves historical data; see ``docs/history.md``.
        """
        backend = self._backend_or_global()
        return backend.history(self._request, start, end, node=node, timeout=timeout)

    # -- writes -----------------------------------------------------------------

    def write(
        self,
        value: Any,
        *,
        field: str | None = None,
        verify: Verify | bool | None = None,
        timeout: float | None = None,
        sleep: Sleep | None = None,
    ) -> WriteResult:
        """Set the SETTING property (this device's range; its field, or ``field``).

        ``verify`` (a :class:`Verify`, or True for the defaults) reads the
        SETTING back after a successful setting until it matches ``value``,
        calling ``sleep`` before each readback (by default the blocking
        adapters' pause). A :class:`BasicControl` is a
        TypeError here: use :meth:`control`.
        """
        if isinstance(value, BasicControl):
            raise TypeError(
                f"BasicControl.{value.name} is a command for the CONTROL property: "
                f"use {type(self).__name__}.control() (or on()/off()/reset())"
            )
        check = resolve_verify(verify)
        target = self._target(_P.SETTING, field)
        setting = _drf.DataRequest(self.name, _P.SETTING, self._request.range, target)
        result = self._backend_or_global().write(setting.to_drf(), value, timeout)
        return self.confirm(result, value, check, field=field, timeout=timeout, sleep=sleep)

    def control(
        self,
        command: BasicControl,
        *,
        verify: Verify | bool | None = None,
        timeout: float | None = None,
        sleep: Sleep | None = None,
    ) -> WriteResult:
        """Send ``command`` to the CONTROL property.

        ``verify`` reads back the STATUS bit the command sets (ON for
        ON/OFF, READY for RESET/TRIP, POSITIVE, RAMP, REMOTE) until it shows.
        """
        if not isinstance(command, BasicControl):
            raise TypeError(f"command must be a BasicControl (BasicControl.ON...), not {command!r}")
        check = resolve_verify(verify)
        control = _drf.DataRequest(self.name, _P.CONTROL)
        result = self._backend_or_global().write(control.to_drf(), command, timeout)
        return self.confirm(result, command, check, timeout=timeout, sleep=sleep)

    def confirm(
        self,
        result: WriteResult,
        value: Any,
        verify: Verify | bool | None = True,
        *,
        prop: str | None = None,
        field: str | None = None,
        timeout: float | None = None,
        sleep: Sleep | None = None,
    ) -> WriteResult:
        """``result`` (of setting this device to ``value``) with the verdict of reading it back.

        The second half of :meth:`write` and :meth:`control`, for a setting
        sent some other way (e.g. in a batch, with ``write_many``). A
        :class:`BasicControl` ``value`` is read back as the STATUS bit it
        changes (ON for ON/OFF, READY for RESET/TRIP, POSITIVE, RAMP,
        REMOTE) until that shows; any other value as the SETTING property
        (or ``prop``, e.g. ``"ANALOG"``; this device's range, and its field
        or ``field``) until it matches. ``verify`` is a :class:`Verify`, True
        for the defaults, or None/False: ``result`` as it is; a refused
        setting is returned as it is too. ``sleep`` runs before each readback
        (by default the blocking adapters' pause). ``prop`` and ``field``
        with a command are a ValueError: its STATUS bit is fixed.
        """
        check = resolve_verify(verify)
        read, expected = self._readback(value, prop, field, timeout)
        if check is None:
            return result
        return confirm(result, read, expected, check, _pause(sleep))

    def _readback(
        self, value: Any, prop: str | None, field: str | None, timeout: float | None
    ) -> tuple[Callable[[], Any], Any]:
        """How :meth:`confirm` reads back a setting to ``value``, and what it should read."""
        if isinstance(value, BasicControl):
            if prop is not None or field is not None:
                raise ValueError("a command is read back as its STATUS bit: leave out prop/field")
            bit, expected = CONTROL_READBACK[value]
            return (lambda: self.status(field=bit, timeout=timeout)), expected
        which = _P.SETTING if prop is None else self._property(prop)
        drf = self._drf_for(which, self._target(which, field))
        return (lambda: self._backend_or_global().read(drf, timeout)), value

    def on(
        self,
        *,
        verify: Verify | bool | None = None,
        timeout: float | None = None,
        sleep: Sleep | None = None,
    ) -> WriteResult:
        """Turn the device on (``BasicControl.ON``)."""
        return self.control(BasicControl.ON, verify=verify, timeout=timeout, sleep=sleep)

    def off(
        self,
        *,
        verify: Verify | bool | None = None,
        timeout: float | None = None,
        sleep: Sleep | None = None,
    ) -> WriteResult:
        """Turn the device off (``BasicControl.OFF``)."""
        return self.control(BasicControl.OFF, verify=verify, timeout=timeout, sleep=sleep)

    def reset(
        self,
        *,
        verify: Verify | bool | None = None,
        timeout: float | None = None,
        sleep: Sleep | None = None,
    ) -> WriteResult:
        """Reset the device (``BasicControl.RESET``; verified by STATUS.READY)."""
        return self.control(BasicControl.RESET, verify=verify, timeout=timeout, sleep=sleep)

    def set_analog_alarm(
        self, settings: Mapping[str, Any], *, timeout: float | None = None
    ) -> WriteResult:
        """Set fields of the ANALOG alarm block, one after another.

        Keys: ``minimum``, ``maximum``, ``alarm_enable``, ``abort_inhibit``,
        ``tries_needed`` (others are a ValueError before anything is sent).
        """
        return self._set_alarm(_P.ANALOG, settings, timeout)

    def set_digital_alarm(
        self, settings: Mapping[str, Any], *, timeout: float | None = None
    ) -> WriteResult:
        """Set fields of the DIGITAL alarm block, one after another.

        Keys: ``nominal``, ``mask``, ``alarm_enable``, ``abort_inhibit``,
        ``tries_needed``.
        """
        return self._set_alarm(_P.DIGITAL, settings, timeout)

    def _set_alarm(
        self, prop: _drf.Property, settings: Mapping[str, Any], timeout: float | None
    ) -> WriteResult:
        if not isinstance(settings, Mapping):
            raise TypeError(
                f"alarm settings must be a dict of fields, e.g. {{'maximum': 50.0}}; "
                f"got {type(settings).__name__}"
            )
        alarm = _drf.DataRequest(self.name, prop).to_drf()
        return self._backend_or_global().write(alarm, dict(settings), timeout)

    # -- streams ----------------------------------------------------------------

    def subscribe(
        self,
        callback: ReadingCallback | None = None,
        on_error: ErrorCallback | None = None,
        *,
        prop: str | None = None,
        field: str | None = None,
        event: str | None = None,
    ) -> Subscription:
        """Stream this device (READING unless ``prop``) at its event, or at ``event``.

        Raises ValueError if there is no event, or it is ``@N`` (never sends).
        """
        check_callbacks(callback, on_error)
        drf = self._stream_drf(prop, field, event, "subscribe()")
        return self._backend_or_global().subscribe([drf], callback, on_error)

    def await_next(
        self,
        *,
        prop: str | None = None,
        field: str | None = None,
        event: str | None = None,
        timeout: float = 5.0,
    ) -> Reading:
        """Subscribe, return the first reading, unsubscribe.

        TimeoutError if none arrives within ``timeout`` seconds of a wait.
        A stream that reconnects before its first reading yields a
        :class:`~acnet_proto.streams.reconnect.Gap` first: that is no reading,
        and the wait goes on.
        """
        drf = self._stream_drf(prop, field, event, "await_next()")
        with self._backend_or_global().subscribe([drf]) as stream:
            for item, _ in stream.readings(timeout=timeout):
                if isinstance(item, Reading):
                    return item
        raise TimeoutError(f"no reading of {drf} arrived within {timeout} s")

    # -- metadata (DevDB) ---------------------------------------------------------

    def info(
        self, timeout: float | None = None, *, devdb: DevDBClient | None = None
    ) -> DeviceInfoResult:
        """This device's metadata from DevDB (cached by the client).

        ``devdb`` is the client to ask; None: the process-wide one
        (:func:`acnet_proto.adapters.devdb.default_devdb`, which raises
        :class:`~acnet_proto.api.config.ConfigurationError` if no DevDB host is
        set). :class:`~acnet_proto.errors.DeviceError` if DevDB does not know
        the device.
        """
        return _devdb_or_global(devdb).get_device_info([self.name], timeout)[self.name]

    def digital_status(
        self, timeout: float | None = None, *, devdb: DevDBClient | None = None
    ) -> DigitalStatus:
        """The status word (``STATUS.BIT_VALUE``) and what each of its bits means now.

        The meanings are DevDB's bit definitions (``devdb``, or the
        process-wide client), with one read; if no DevDB is configured, it
        cannot be reached, or it has no definitions for the device, they are
        ``STATUS.BIT_NAMES`` and ``BIT_VALUES``, read with the word in one
        batch. :class:`~acnet_proto.errors.DeviceError` if a read fails;
        ``timeout`` bounds the DevDB query and the read separately.
        """
        from acnet_proto.api.digital_status import DigitalStatus
        from acnet_proto.errors import ConfigurationError, ConnectionLost, DeviceError

        backend = self._backend_or_global()
        try:
            info = _devdb_or_global(devdb).get_device_info([self.name], timeout)[self.name]
        except (ConfigurationError, ConnectionLost, DeviceError):
            info = None  # read the bits' names from the device instead
        if info is not None and info.status_bits is not None:
            (word,) = self._status_fields(backend, [_drf.Field.BIT_VALUE], timeout)
            return DigitalStatus.from_devdb_bits(
                self.name, word, info.status_bits, info.ext_status_bits
            )
        fields = [_drf.Field.BIT_VALUE, _drf.Field.BIT_NAMES, _drf.Field.BIT_VALUES]
        word, names, values = self._status_fields(backend, fields, timeout)
        return DigitalStatus.from_bit_arrays(self.name, word, names, values)

    def _status_fields(
        self, backend: Backend, fields: list[_drf.Field], timeout: float | None
    ) -> list[Any]:
        """The values of STATUS ``fields`` at ``@I`` (the word as an int, texts as lists)."""
        drfs = [
            _drf.DataRequest(self.name, _P.STATUS, None, field, _IMMEDIATE).to_drf()
            for field in fields
        ]
        word, *texts = [value_of(reading) for reading in backend.get_many(drfs, timeout)]
        if isinstance(word, bool) or not isinstance(word, (int, float, np.number)):
            raise TypeError(f"{drfs[0]} read as {type(word).__name__}, not a number")
        for drf, text in zip(drfs[1:], texts, strict=True):
            if not isinstance(text, (list, tuple)) or not all(isinstance(t, str) for t in text):
                raise TypeError(f"{drf} read as {type(text).__name__}, not a list of text")
        return [int(word), *(list(t) for t in texts)]

    # -- building DRFs ------------------------------------------------------------

    def _backend_or_global(self) -> Backend:
        if self._backend is not None:
            return self._backend
        # imported here: the global backend is an adapter, and importing this
        # module must not start one (or import sockets and threads)
        from acnet_proto.adapters.default import default_backend

        return default_backend()

    def _read(self, prop: _drf.Property, field: str | None, timeout: float | None) -> Any:
        drf = self._drf_for(prop, self._target(prop, field))
        return self._backend_or_global().read(drf, timeout)

    def _property(self, prop: str) -> _drf.Property:
        if not isinstance(prop, str):
            raise TypeError(f"prop must be a property name, not {type(prop).__name__}")
        try:
            parsed = _drf.parse(f"{self.name}.{prop}")
        except _drf.DRFError as exc:
            raise ValueError(f"{prop!r} is not a property name: {exc}") from None
        if parsed.range is not None or parsed.field is not None or parsed.event is not None:
            raise ValueError(f"{prop!r} is not a property name (such as 'SETTING')")
        return parsed.property

    def _target(self, prop: _drf.Property, field: str | None) -> _drf.Field | None:
        """The field to read: ``field`` if given, else this device's own if ``prop`` has it."""
        if field is None:
            own = self._request.field
            return own if own in prop.fields else None
        if not isinstance(field, str):
            raise TypeError(f"field must be a field name, not {type(field).__name__}")
        try:
            parsed = _drf.parse(f"{self.name}.{prop.value}.{field}")
        except _drf.DRFError as exc:
            raise ValueError(f"{field!r} is not a field of {prop.name}: {exc}") from None
        if parsed.range is not None or parsed.event is not None:
            raise ValueError(f"{field!r} is not a field name (such as 'RAW')")
        return parsed.field

    def _drf_for(
        self,
        prop: _drf.Property,
        field: _drf.Field | None,
        event: _drf.Event = _IMMEDIATE,
    ) -> str:
        request = _drf.DataRequest(self.name, prop, self._request.range, field, event)
        return request.to_drf()

    def _stream_drf(self, prop: str | None, field: str | None, event: str | None, what: str) -> str:
        if prop is None and field is not None:
            raise ValueError("field= needs prop= as well (which property is it a field of?)")
        which = _P.READING if prop is None else self._property(prop)
        if event is not None:
            chosen = _drf.parse_event(event)
        elif self.has_event:
            assert self._request.event is not None  # has_event says so
            chosen = self._request.event
        else:
            raise ValueError(
                f"{what} needs an event: {self.drf} has none; pass event='p,1000' "
                "or use device.with_event(...)"
            )
        if isinstance(chosen, _drf.NeverEvent):
            raise ValueError(f"{what} cannot use @N: that event never sends data")
        return self._drf_for(which, self._target(which, field), chosen)


class ScalarDevice(Device):
    """A device whose reading is one number: :meth:`read` returns a float."""

    def read(self, *, field: str | None = None, timeout: float | None = None) -> float:
        value = super().read(field=field, timeout=timeout)
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise TypeError(f"{self.name} read as {type(value).__name__}, not a number")
        return float(value)


class ArrayDevice(Device):
    """A device whose reading is an array: :meth:`read` returns a numpy array."""

    def read(self, *, field: str | None = None, timeout: float | None = None) -> np.ndarray:
        value = super().read(field=field, timeout=timeout)
        if isinstance(value, np.ndarray):
            return value
        if isinstance(value, (list, tuple)) and all(
            isinstance(v, (int, float, np.number)) for v in value
        ):
            return np.asarray(value, dtype=np.float64)
        raise TypeError(f"{self.name} read as {type(value).__name__}, not an array")


class TextDevice(Device):
    """A device whose reading is text: :meth:`read` returns a str."""

    def read(self, *, field: str | None = None, timeout: float | None = None) -> str:
        value = super().read(field=field, timeout=timeout)
        if not isinstance(value, str):
            raise TypeError(f"{self.name} read as {type(value).__name__}, not text")
        return value


DeviceSpec = str | _drf.DataRequest | Device


def _devdb_or_global(devdb: DevDBClient | None) -> DevDBClient:
    if devdb is not None:
        return devdb
    from acnet_proto.adapters.devdb import default_devdb

    return default_devdb()


def drf_of(spec: DeviceSpec) -> str:
    """The DRF text a top-level call sends for ``spec`` (a string is passed through as given)."""
    if isinstance(spec, Device):
        return spec.drf
    if isinstance(spec, _drf.DataRequest):
        return spec.to_drf()
    if isinstance(spec, str):
        return spec
    raise TypeError(f"expected DRF text, a DataRequest or a Device, not {type(spec).__name__}")


def _pause(sleep: Sleep | None) -> Sleep:
    """``sleep``, or the blocking adapters' pause: the core owns no clock and never waits."""
    if sleep is not None:
        return sleep
    from acnet_proto.adapters.default import pause

    return pause


def bound_backend(specs: Sequence[object]) -> Backend | None:
    """The backend the Devices in ``specs`` are bound to; None if none is bound.

    One call goes to one backend: mixing Devices bound to different backends,
    or bound Devices with unbound ones, raises ValueError before any I/O.
    """
    bound = [s.backend for s in specs if isinstance(s, Device) and s.backend is not None]
    if not bound:
        return None
    if len(bound) != len(specs) or any(b is not bound[0] for b in bound):
        raise ValueError(
            "all devices in one call must be bound to the same backend, or none of them"
        )
    return bound[0]
