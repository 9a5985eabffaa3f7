"""Binding a DRF to a simulated device, and the DPM replies about it.

:func:`bind` checks a parsed request against a device and returns an
:class:`Entry`: which device, which part of it, when, and how to make its
reply at any moment.

Statuses
--------
Every refusal is a real ACNET status (``acnet-status-codes.json``):

=====================================================  ======================
what is wrong                                          status
=====================================================  ======================
DRF text does not parse                                ``DPM_BAD_REQUEST``
... because of its event                               ``DPM_BAD_EVENT``
device not in the model (name or ``0:<di>``)           ``DPM_NO_SUCH_DEVICE``
property the device lacks (SETTING of a read-only      ``DBM_NOPROP``
device, STATUS/CONTROL/ANALOG/DIGITAL without that
table, ALARM_LIST_NAME)
field the simulator does not serve for the property    ``DPM_NO_SUCH_FIELD``
array or byte range past the end of the data           ``DPM_OUT_OF_BOUNDS``
range on data that has no elements (text, status,      ``DPM_BAD_RANGE``
alarms, description, ...)
byte range of doubles not on 4-byte boundaries         ``DPM_BAD_FRAMING``
SCALED/PRIMARY of a raw or text device                 ``DPM_NO_SCALE``
periodic event faster than 1 kHz                       ``DPM_ILLFTD``
state event (``@s``): no state devices are simulated   ``DPM_NOT_YET``
CONTROL read with an event that sends data             ``DIO_SETONLY``
setting a read-only property or field                  ``DIO_READONLY``
setting with the wrong number of values or bytes       ``DPM_BAD_LENGTH``
setting of the wrong type; unknown control command     ``DIO_INVDATA``
alarm count or mask outside int32                      ``DIO_RANGE``
setting a whole alarm block (no field)                 ``DPM_NO_SUCH_FIELD``
=====================================================  ======================

Raw data of numeric devices is IEEE float32, little-endian, 4 bytes per
element; PRIMARY and SCALED are the same (identity scaling).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from acnet_proto import drf
from acnet_proto.drf import DataRequest, Event
from acnet_proto.engine.events import DataReply
from acnet_proto.errors import AcnetProtoError
from acnet_proto.pc import dpm
from acnet_proto.sim.codes import (
    DBM_NOPROP,
    DIO_SETONLY,
    DPM_BAD_FRAMING,
    DPM_BAD_RANGE,
    DPM_ILLFTD,
    DPM_NO_SCALE,
    DPM_NO_SUCH_FIELD,
    DPM_NOT_YET,
    DPM_OUT_OF_BOUNDS,
)
from acnet_proto.sim.devices import FLOAT_BYTES, STATUS_BITS, Kind, SimDevice
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


def _raw_of(values: Sequence[float]) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


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
    ones, ``None`` for the rest.
    """

    drf: str
    # DataRequest and Event by name: in this class body, ``drf`` is the field above
    request: DataRequest
    device: SimDevice
    event: Event
    span: tuple[int, int] | None
    _build: _Build

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

    def reply(self, ref_id: int, now: float) -> DataReply:
        """The data reply for this entry at ``now`` (Unix seconds)."""
        return self._build(ref_id, millis(now), now)


def bind(text: str, request: drf.DataRequest, device: SimDevice) -> Entry:
    def reject(status: int, reason: str) -> RequestRejected:
        return RequestRejected(text, status, reason)

    event = request.event
    if event is None or isinstance(event, drf.DefaultEvent):
        event = device.default_event
    if isinstance(event, drf.StateEvent):
        raise reject(DPM_NOT_YET, "the simulator has no state devices")
    if isinstance(event, drf.PeriodicEvent) and event.period_us < MIN_PERIOD_US:
        raise reject(DPM_ILLFTD, f"period {event.period_us} us is under {MIN_PERIOD_US} us")
    prop = request.property
    if prop is _P.READING or prop is _P.SETTING:
        if prop is _P.SETTING and not device.settable:
            raise reject(DBM_NOPROP, f"{device.name} has no SETTING property (read-only)")
        span, build = _value_builder(request, device, reject)
        return Entry(text, request, device, event, span, build)
    if request.range is not None:
        raise reject(DPM_BAD_RANGE, f"the {prop.name} property has no elements to range over")
    if prop is _P.STATUS or prop is _P.CONTROL:
        if device.status is None:
            raise reject(DBM_NOPROP, f"{device.name} has no {prop.name} property")
        if prop is _P.CONTROL:
            if not isinstance(event, drf.NeverEvent):
                raise reject(DIO_SETONLY, "CONTROL can only be set (use @N)")
            return Entry(text, request, device, event, None, _never_sent)
        return Entry(text, request, device, event, None, _status_builder(request, device, reject))
    if prop is _P.ANALOG or prop is _P.DIGITAL:
        if (device.analog if prop is _P.ANALOG else device.digital) is None:
            raise reject(DBM_NOPROP, f"{device.name} has no {prop.name} alarm")
        build = _alarm_builder(request, device, reject)
        return Entry(text, request, device, event, None, build)
    if prop is _P.ALARM_LIST_NAME:
        raise reject(DBM_NOPROP, "the simulator has no alarm lists")
    return Entry(text, request, device, event, None, _info_builder(prop, device))


def _never_sent(ref_id: int, ms: int, now: float) -> NoReturn:
    # A CONTROL entry is bound to @N, so the scheduler never asks it for data.
    raise RuntimeError(f"a CONTROL entry (ref_id {ref_id}) has no data to send")


def _value_builder(
    request: drf.DataRequest, device: SimDevice, reject: Callable[[int, str], Exception]
) -> tuple[tuple[int, int] | None, _Build]:
    """READING/SETTING: the span of data addressed, and how to make its reply."""
    fld = request.field
    rng = request.range
    reading = request.property is _P.READING
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
    size = device.size
    if device.kind is Kind.RAW:
        lo, hi = _span(rng, size, 1, reject)
        return (lo, hi), lambda ref, ms, now: dpm.RawReply(
            ref_id=ref, timestamp=ms, cycle=0, status=0, data=device.setting_bytes[lo:hi]
        )
    lo, hi = _span(rng, size, FLOAT_BYTES, reject)

    def source(now: float) -> list[float]:
        return device.reading_numbers(now) if reading else device.setting_numbers

    if want_raw:
        return (lo, hi), lambda ref, ms, now: dpm.RawReply(
            ref_id=ref, timestamp=ms, cycle=0, status=0, data=_raw_of(source(now)[lo:hi])
        )
    if rng is None:
        single = device.kind is Kind.SCALAR
    else:
        single = isinstance(rng, drf.ArrayRange) and rng.end == rng.start
    if single:
        if reading:
            return (lo, hi), lambda ref, ms, now: dpm.ScalarReply(
                ref_id=ref,
                timestamp=ms,
                cycle=0,
                status=0,
                data=device.setting_numbers[lo] + device.wave(now),
            )
        return (lo, hi), lambda ref, ms, now: dpm.ScalarReply(
            ref_id=ref, timestamp=ms, cycle=0, status=0, data=device.setting_numbers[lo]
        )
    return (lo, hi), lambda ref, ms, now: dpm.ScalarArrayReply(
        ref_id=ref, timestamp=ms, cycle=0, status=0, data=source(now)[lo:hi]
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
    st = device.status
    assert st is not None  # bind checked
    fld = request.field
    if fld is None or fld is _F.ALL:
        return lambda ref, ms, now: dpm.BasicStatusReply(
            ref_id=ref,
            timestamp=ms,
            cycle=0,
            on=st.on,
            ready=st.ready,
            remote=st.remote,
            positive=st.positive,
            ramp=st.ramp,
        )
    if fld in _STATUS_FIELDS:
        attr = _STATUS_FIELDS[fld]
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
        names = [bit.name for bit in STATUS_BITS]
        return lambda ref, ms, now: dpm.TextArrayReply(
            ref_id=ref, timestamp=ms, cycle=0, status=0, data=names
        )
    if fld is _F.BIT_VALUES:
        return lambda ref, ms, now: dpm.TextArrayReply(
            ref_id=ref, timestamp=ms, cycle=0, status=0, data=list(st.texts)
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
