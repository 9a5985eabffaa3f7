"""Binding a DRF to a simulated device, and the DPM replies about it.

:func:`bind` checks a parsed request against a device and returns an
:class:`Entry`: which device, which part of it, when, and how to make its
reply at any moment.

Statuses, in the order they are decided
---------------------------------------
Every refusal is a real ACNET status (``acnet-status-codes.json``). A
request is checked in this order, and gets the first status that applies
(``docs/simulator.md`` has the same table with an example of each, and a
test holds the two and the code together):

===  ======================  =====================================================
#    status                  what is wrong
===  ======================  =====================================================
1    ``DPM_BAD_REQUEST``     the DRF text does not parse
1    ``DPM_BAD_EVENT``       ... because of its event
2    ``DPM_PEND``            the device is not in the model (name or ``0:<di>``):
                             the real DPM's warning, with no data
3    ``DBM_NOPROP``          a property the device lacks (SETTING of a read-only
                             device, STATUS/CONTROL/ANALOG/DIGITAL without that
                             table, ALARM_LIST_NAME), before any field or range
4    ``DPM_NO_SUCH_FIELD``   a field the simulator does not serve for the property
4    ``DPM_NO_SCALE``        SCALED/PRIMARY of a raw or text device
5    ``DPM_BAD_RANGE``       a range on data without elements (text, status,
                             description...), or an array range on an alarm block
5    ``DPM_OUT_OF_BOUNDS``   an array or byte range past the end of the data
5    ``DPM_BAD_FRAMING``     a byte range not on whole raw elements
6    ``DPM_ILLFTD``          a periodic event faster than 1 kHz
6    ``DPM_NOT_YET``         a state event (``@s``): no state devices are simulated
6    ``DIO_SETONLY``         CONTROL read with an event that sends data
===  ======================  =====================================================

The event of a ``<-LOGGER`` request is not checked (row 6): the lab's DPM
ignores it, as the window says what is sent.

A setting that reaches the model (:mod:`acnet_proto.sim.writes`) is then
refused, in this order:

===  ======================  =====================================================
#    status                  what is wrong
===  ======================  =====================================================
7    ``DIO_READONLY``        a property or field that cannot be set; any DRF with
                             a ``<-LOGGER`` or ``<-FTP`` source (recorded data)
8    ``DPM_NO_SUCH_FIELD``   a whole alarm block (give a field, or its raw bytes)
9    ``DIO_INVDATA``         a value of the wrong type; raw alarm-block bytes with a
                             limit type other than minimum/maximum
10   ``DPM_BAD_LENGTH``      the wrong number of values or bytes
11   ``DIO_SCALEFAIL``       a value the raw type cannot hold (beyond an int16,
                             NaN or infinity on any device, raw bytes that are
                             no finite value); a control ordinal beyond the
                             device's table
12   ``DIO_RANGE``           a scaled setting outside the device database's
                             ``min``/``max``; alarm tries beyond 0..255, FTD
                             beyond 0..65535, a digital nominal or mask beyond
                             int32
===  ======================  =====================================================

Values
------
A numeric device's READING and SETTING are scaled values; ``.RAW`` is
their raw data in the device's raw type and ``.PRIMARY`` their primary
units (:mod:`acnet_proto.sim.scaling`). Reading ``.RAW`` and scaling it
gives the scaled value read at the same moment; a READING is sampled at
multiples of the device's ``update_period`` and stamped with that time.
The SETTING of a ramp card is its table's points, one element a point of 4
raw bytes, scaled by its value word (:mod:`acnet_proto.sim.ramps`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from acnet_proto import drf
from acnet_proto.drf import DataRequest, Event
from acnet_proto.engine.events import DataReply
from acnet_proto.errors import AcnetProtoError
from acnet_proto.pc import dpm
from acnet_proto.sim.alarm_blocks import BLOCK_SIZE, block_bytes, block_flags
from acnet_proto.sim.codes import (
    DBM_NOPROP,
    DIO_SCALEFAIL,
    DIO_SETONLY,
    DPM_BAD_FRAMING,
    DPM_BAD_RANGE,
    DPM_ILLFTD,
    DPM_NO_SCALE,
    DPM_NO_SUCH_FIELD,
    DPM_NOT_YET,
    DPM_OUT_OF_BOUNDS,
)
from acnet_proto.sim.control import STATUS_ATTRIBUTES, by_position
from acnet_proto.sim.devices import Kind, SimDevice
from acnet_proto.sim.ramps import POINT_BYTES
from acnet_proto.sim.scaling import ScalingError
from acnet_proto.status import Status

__all__ = [
    "MIN_PERIOD_US",
    "Entry",
    "RequestRejected",
    "bind",
    "millis",
    "status_reply",
]

_P = drf.Property
_F = drf.Field


#: The fastest periodic event served (1 kHz); faster ones get ``DPM_ILLFTD``.
MIN_PERIOD_US = 1000


class RequestRejected(AcnetProtoError, ValueError):
    """A DRF the model cannot serve; ``status`` is the ACNET status to answer with."""

    def __init__(self, drf_text: str, status: int, reason: str) -> None:
        self.drf = drf_text
        self.status = status
        self.reason = reason
        super().__init__(f"{drf_text!r}: {reason} ({Status.from_int(status).name})")


def millis(now: float) -> int:
    return round(now * 1000)


def status_reply(ref_id: int, status: int, now: float) -> dpm.StatusReply:
    """A ``Status_reply`` for ``ref_id`` stamped ``now`` (ref 0: the whole list)."""
    return dpm.StatusReply(ref_id=ref_id, timestamp=millis(now), cycle=0, status=status)


_Build = Callable[[int, int, float], DataReply]  # (ref_id, timestamp_ms, now) -> reply


@dataclass(frozen=True, slots=True, eq=False)
class Entry:
    """A DRF checked against the model: which device, which part of it, and when.

    ``event`` is the event to serve (``@U`` or no event already replaced by
    the device's default). ``span`` is the half-open slice of the device's
    data the entry addresses: elements for numeric devices, bytes for raw
    ones and alarm blocks, ``None`` for the rest. ``sampled``: the entry is a
    READING, stamped with the time its value was sampled
    (:meth:`~acnet_proto.sim.devices.SimDevice.sample_time`).
    """

    drf: str
    # DataRequest and Event by name: in this class body, ``drf`` is the field above
    request: DataRequest
    device: SimDevice
    event: Event
    span: tuple[int, int] | None
    _build: _Build
    sampled: bool = False

    def device_info(self, ref_id: int) -> dpm.DeviceInfoReply:
        """The ``DeviceInfo_reply`` sent for this entry when its list starts."""
        d = self.device
        return dpm.DeviceInfoReply(
            ref_id=ref_id,
            di=d.di,
            name=d.name,
            description=d.description,
            units=d.units,
            format_hint=d.format_hint,
        )

    def reply(self, ref_id: int, now: float) -> DataReply | dpm.StatusReply:
        """The data reply for this entry at ``now`` (Unix seconds), or a ``Status_reply`` of
        ``DIO_SCALEFAIL`` for a value that cannot be encoded.

        Settings and the loader refuse values a device cannot hold, so the
        status reply is defense in depth: one entry's bad value spoils that
        entry's data, never the list, the connection or other clients.
        """
        stamp = self.device.sample_time(now) if self.sampled else now
        try:
            return self._build(ref_id, millis(stamp), now)
        except ScalingError:
            return status_reply(ref_id, DIO_SCALEFAIL, now)


def bind(text: str, request: drf.DataRequest, device: SimDevice) -> Entry:
    """Check ``request`` against ``device`` in the order of the module's table (property,
    field, range, event); :class:`RequestRejected` with the first status that applies."""

    def reject(status: int, reason: str) -> RequestRejected:
        return RequestRejected(text, status, reason)

    prop = request.property
    lacking = _lacking_property(prop, device)
    if lacking is not None:
        raise reject(DBM_NOPROP, lacking)
    span, build = _builder(request, device, reject)
    event = request.event
    if event is None or isinstance(event, drf.DefaultEvent):
        event = device.default_event
    if not isinstance(request.source, drf.LoggerSource):  # the window, not the event, says
        _check_event(prop, event, reject)
    sampled = prop is _P.READING and device.numeric
    return Entry(text, request, device, event, span, build, sampled)


def _lacking_property(prop: drf.Property, device: SimDevice) -> str | None:
    """Why ``device`` has no ``prop`` (DBM_NOPROP), or None if it has it."""
    if prop is _P.SETTING and not device.settable:
        return f"{device.name} has no SETTING property (read-only)"
    if (prop is _P.STATUS or prop is _P.CONTROL) and device.status is None:
        return f"{device.name} has no {prop.name} property"
    if prop is _P.ANALOG and device.analog is None:
        return f"{device.name} has no ANALOG alarm"
    if prop is _P.DIGITAL and device.digital is None:
        return f"{device.name} has no DIGITAL alarm"
    if prop is _P.ALARM_LIST_NAME:
        return "the simulator has no alarm lists"
    return None


def _builder(
    request: drf.DataRequest, device: SimDevice, reject: Callable[[int, str], Exception]
) -> tuple[tuple[int, int] | None, _Build]:
    """The span and reply maker of a property the device has: its field checked, then its range."""
    prop = request.property
    if prop is _P.READING or prop is _P.SETTING:
        return _value_builder(request, device, reject)
    if prop is _P.ANALOG or prop is _P.DIGITAL:
        return _alarm_builder(request, device, reject)
    if prop is _P.STATUS:
        build = _status_builder(request, device, reject)
    elif prop is _P.CONTROL:
        build = _never_sent
    else:
        build = _info_builder(prop, device)
    if request.range is not None:
        raise reject(DPM_BAD_RANGE, f"the {prop.name} property has no elements to range over")
    return None, build


def _check_event(prop: drf.Property, event: Event, reject: Callable[[int, str], Exception]) -> None:
    if isinstance(event, drf.PeriodicEvent) and event.period_us < MIN_PERIOD_US:
        raise reject(DPM_ILLFTD, f"period {event.period_us} us is under {MIN_PERIOD_US} us")
    if isinstance(event, drf.StateEvent):
        raise reject(DPM_NOT_YET, "the simulator has no state devices")
    if prop is _P.CONTROL and not isinstance(event, drf.NeverEvent):
        raise reject(DIO_SETONLY, "CONTROL can only be set (use @N)")


def _never_sent(ref_id: int, ms: int, now: float) -> NoReturn:
    # A CONTROL entry is bound to @N, so the scheduler never asks it for data.
    raise RuntimeError(f"a CONTROL entry (ref_id {ref_id}) has no data to send")


def _value_builder(
    request: drf.DataRequest, device: SimDevice, reject: Callable[[int, str], Exception]
) -> tuple[tuple[int, int] | None, _Build]:
    """READING/SETTING: the span of data addressed, and how to make its reply."""
    fld = request.field
    rng = request.range
    want_raw = fld is _F.RAW
    if not device.numeric and fld in (_F.SCALED, _F.PRIMARY):
        raise reject(DPM_NO_SCALE, f"{device.name} is {device.kind.value} data; it has no scaling")
    if device.kind is Kind.TEXT:
        if rng is not None:
            raise reject(DPM_BAD_RANGE, f"{device.name} is text; it takes no range")
        if want_raw:
            return None, lambda ref, ms, now: dpm.RawReply(
                ref_id=ref,
                timestamp=ms,
                cycle=0,
                status=0,
                data=device.setting_text.encode("latin-1"),
            )
        return None, lambda ref, ms, now: dpm.TextReply(
            ref_id=ref, timestamp=ms, cycle=0, status=0, data=device.setting_text
        )
    if device.kind is Kind.RAW:
        lo, hi = _span(rng, device.size, 1, reject)
        return (lo, hi), lambda ref, ms, now: dpm.RawReply(
            ref_id=ref, timestamp=ms, cycle=0, status=0, data=device.setting_bytes[lo:hi]
        )
    if device.ramp is not None and request.property is _P.SETTING:
        return _ramp_builder(request, device, reject)
    return _numbers_builder(request, device, reject)


def _ramp_builder(
    request: drf.DataRequest, device: SimDevice, reject: Callable[[int, str], Exception]
) -> tuple[tuple[int, int], _Build]:
    """The SETTING of a ramp card: its points, 4 raw bytes each, scaled by their value words
    (:mod:`acnet_proto.sim.ramps`); the span counts points."""
    ramp, scaling, rng = device.ramp, device.scaling, request.range
    assert ramp is not None  # _value_builder checked
    lo, hi = _span(rng, ramp.elements, POINT_BYTES, reject)
    if request.field is _F.RAW:
        return (lo, hi), lambda ref, ms, now: dpm.RawReply(
            ref_id=ref, timestamp=ms, cycle=0, status=0, data=ramp.raw(lo, hi)
        )
    primary = request.field is _F.PRIMARY
    if _single(rng, whole=False):
        return (lo, hi), lambda ref, ms, now: dpm.ScalarReply(
            ref_id=ref,
            timestamp=ms,
            cycle=0,
            status=0,
            data=ramp.values(lo, hi, scaling, primary=primary)[0],
        )
    return (lo, hi), lambda ref, ms, now: dpm.ScalarArrayReply(
        ref_id=ref,
        timestamp=ms,
        cycle=0,
        status=0,
        data=ramp.values(lo, hi, scaling, primary=primary),
    )


def _single(rng: drf.Range | None, *, whole: bool) -> bool:
    """Whether a numeric reply is one number: one element's range, or no range and ``whole``
    (the data is a scalar)."""
    if rng is None:
        return whole
    return isinstance(rng, drf.ArrayRange) and rng.end == rng.start


def _numbers_builder(
    request: drf.DataRequest, device: SimDevice, reject: Callable[[int, str], Exception]
) -> tuple[tuple[int, int], _Build]:
    """READING/SETTING of a numeric device: scaled, PRIMARY or RAW (its raw type's bytes)."""
    rng, scaling = request.range, device.scaling
    reading = request.property is _P.READING
    lo, hi = _span(rng, device.size, scaling.raw.size, reject)

    def value(now: float, index: int) -> float:
        return device.reading_number(now, index) if reading else device.setting_numbers[index]

    if request.field is _F.RAW:
        return (lo, hi), lambda ref, ms, now: dpm.RawReply(
            ref_id=ref,
            timestamp=ms,
            cycle=0,
            status=0,
            data=scaling.encode_all([value(now, i) for i in range(lo, hi)], saturate=True),
        )
    unit = scaling.primary_value if request.field is _F.PRIMARY else float
    if _single(rng, whole=device.kind is Kind.SCALAR):
        return (lo, hi), lambda ref, ms, now: dpm.ScalarReply(
            ref_id=ref, timestamp=ms, cycle=0, status=0, data=unit(value(now, lo))
        )

    def values(now: float) -> list[float]:
        numbers = device.reading_numbers(now) if reading else device.setting_numbers
        return [unit(v) for v in numbers[lo:hi]]

    return (lo, hi), lambda ref, ms, now: dpm.ScalarArrayReply(
        ref_id=ref, timestamp=ms, cycle=0, status=0, data=values(now)
    )


def _span(
    rng: drf.Range | None, size: int, atom: int, reject: Callable[[int, str], Exception]
) -> tuple[int, int]:
    """The half-open slice of ``size`` elements (``atom`` bytes each) that ``rng`` selects."""
    if rng is None:
        return 0, size
    if isinstance(rng, drf.ArrayRange):
        lo = rng.start
        hi = size if rng.end is None else rng.end + 1
    else:
        assert isinstance(rng, drf.ByteRange)  # a Range is an ArrayRange or a ByteRange
        length = size * atom - rng.offset if rng.length is None else rng.length
        if rng.offset % atom or length % atom:
            raise reject(DPM_BAD_FRAMING, f"byte range {rng} is not whole {atom}-byte elements")
        lo = rng.offset // atom
        hi = lo + length // atom
    if lo >= size or hi > size or hi <= lo:
        raise reject(DPM_OUT_OF_BOUNDS, f"range {rng} is outside the {size} elements")
    return lo, hi


_STATUS_FIELDS = {
    _F.ON: "on",
    _F.READY: "ready",
    _F.REMOTE: "remote",
    _F.POSITIVE: "positive",
    _F.RAMP: "ramp",
}


def _status_builder(
    request: drf.DataRequest, device: SimDevice, reject: Callable[[int, str], Exception]
) -> _Build:
    """STATUS, following the device's layout: a bit it lacks is absent, or DPM_NO_SUCH_FIELD."""
    st = device.status
    assert st is not None  # bind checked
    fld = request.field
    if fld is None or fld is _F.ALL:
        return lambda ref, ms, now: dpm.BasicStatusReply(
            ref_id=ref,
            timestamp=ms,
            cycle=0,
            **{attribute: getattr(st, attribute) for attribute in STATUS_ATTRIBUTES},
        )
    if fld in _STATUS_FIELDS:
        attr = _STATUS_FIELDS[fld]
        if not st.has(attr):
            raise reject(DPM_NO_SUCH_FIELD, f"{device.name} has no {attr} status bit")
        return lambda ref, ms, now: dpm.ScalarReply(
            ref_id=ref, timestamp=ms, cycle=0, status=0, data=float(getattr(st, attr))
        )
    if fld is _F.RAW:
        return lambda ref, ms, now: dpm.RawReply(
            ref_id=ref, timestamp=ms, cycle=0, status=0, data=st.word.to_bytes(2, "little")
        )
    if fld is _F.TEXT:
        return lambda ref, ms, now: dpm.TextReply(
            ref_id=ref, timestamp=ms, cycle=0, status=0, data=st.text
        )
    if fld is _F.BIT_VALUE:
        return lambda ref, ms, now: dpm.ScalarReply(
            ref_id=ref, timestamp=ms, cycle=0, status=0, data=float(st.word)
        )
    if fld is _F.BIT_NAMES:
        names = by_position(st.bits, [bit.name for bit in st.bits])
        return lambda ref, ms, now: dpm.TextArrayReply(
            ref_id=ref, timestamp=ms, cycle=0, status=0, data=names
        )
    if fld is _F.BIT_VALUES:
        return lambda ref, ms, now: dpm.TextArrayReply(
            ref_id=ref, timestamp=ms, cycle=0, status=0, data=by_position(st.bits, st.texts)
        )
    raise reject(DPM_NO_SUCH_FIELD, f"the simulator does not serve STATUS.{fld.name}")


# Alarm fields read as scalars: field -> value of (alarm block, alarm state now).
_ALARM_SCALARS: dict[drf.Field, Callable[[Any, bool], float]] = {
    _F.ALARM_ENABLE: lambda a, on: float(a.enable),
    _F.ALARM_STATUS: lambda a, on: float(on),
    _F.ABORT: lambda a, on: float(a.abort),
    _F.ABORT_INHIBIT: lambda a, on: float(a.abort_inhibit),
    _F.TRIES_NEEDED: lambda a, on: float(a.tries_needed),
    _F.TRIES_NOW: lambda a, on: float(a.tries_now),
    _F.ALARM_FTD: lambda a, on: float(a.ftd),
}


_ANALOG_SCALARS = {
    **_ALARM_SCALARS,
    _F.MIN: lambda a, on: a.minimum,
    _F.MAX: lambda a, on: a.maximum,
    _F.NOM: lambda a, on: (a.minimum + a.maximum) / 2,
    _F.TOL: lambda a, on: (a.maximum - a.minimum) / 2,
}


_DIGITAL_SCALARS = {
    **_ALARM_SCALARS,
    _F.NOM: lambda a, on: float(a.nominal),
    _F.MASK: lambda a, on: float(a.mask),
}


def _alarm_builder(
    request: drf.DataRequest, device: SimDevice, reject: Callable[[int, str], Exception]
) -> tuple[tuple[int, int] | None, _Build]:
    """ANALOG/DIGITAL: the structured block, one of its fields, or its raw bytes (a byte
    range, with RAW or no field: :mod:`acnet_proto.sim.alarm_blocks`)."""
    analog = request.property is _P.ANALOG
    fld, rng = request.field, request.range
    if fld is _F.RAW or (rng is not None and fld is None):
        if isinstance(rng, drf.ArrayRange):
            raise reject(
                DPM_BAD_RANGE, "an alarm block is bytes: give a byte range {offset:length}"
            )
        lo, hi = _span(rng, BLOCK_SIZE, 1, reject)
        return (lo, hi), lambda ref, ms, now: dpm.RawReply(
            ref_id=ref,
            timestamp=ms,
            cycle=0,
            status=0,
            data=block_bytes(device, analog, now)[lo:hi],
        )
    build = _alarm_fields_builder(request, device, reject)
    if rng is not None:
        raise reject(DPM_BAD_RANGE, f"{request.property.name}.{fld} has no bytes to range over")
    return None, build


def _alarm_fields_builder(
    request: drf.DataRequest, device: SimDevice, reject: Callable[[int, str], Exception]
) -> _Build:
    analog = request.property is _P.ANALOG
    which = 0 if analog else 1  # index into SimDevice.alarm_status()
    fld = request.field
    block = device.analog if analog else device.digital
    assert block is not None  # bind checked
    if fld is None or fld is _F.ALL:
        # the two replies differ only in the limits they carry first
        reply, limits = (
            (dpm.AnalogAlarmReply, ("minimum", "maximum"))
            if analog
            else (dpm.DigitalAlarmReply, ("nominal", "mask"))
        )
        return lambda ref, ms, now: reply(
            ref_id=ref,
            timestamp=ms,
            cycle=0,
            **{name: getattr(block, name) for name in limits},
            alarm_enable=block.enable,
            alarm_status=device.alarm_status(now)[which],
            abort=block.abort,
            abort_inhibit=block.abort_inhibit,
            tries_needed=block.tries_needed,
            tries_now=block.tries_now,
        )
    if fld is _F.FLAGS:
        return lambda ref, ms, now: dpm.ScalarReply(
            ref_id=ref,
            timestamp=ms,
            cycle=0,
            status=0,
            data=float(block_flags(device, analog, now)),
        )
    getter = (_ANALOG_SCALARS if analog else _DIGITAL_SCALARS).get(fld)
    if getter is None:
        raise reject(
            DPM_NO_SUCH_FIELD, f"the simulator does not serve {request.property.name}.{fld.name}"
        )
    return lambda ref, ms, now: dpm.ScalarReply(
        ref_id=ref,
        timestamp=ms,
        cycle=0,
        status=0,
        data=getter(block, device.alarm_status(now)[which]),
    )


def _info_builder(prop: drf.Property, device: SimDevice) -> _Build:
    if prop is _P.INDEX:
        return lambda ref, ms, now: dpm.ScalarReply(
            ref_id=ref, timestamp=ms, cycle=0, status=0, data=float(device.di)
        )
    text = device.description if prop is _P.DESCRIPTION else device.long_name or device.description
    return lambda ref, ms, now: dpm.TextReply(
        ref_id=ref, timestamp=ms, cycle=0, status=0, data=text
    )
