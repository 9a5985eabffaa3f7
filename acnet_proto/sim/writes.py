"""Settings applied to simulated devices: what each property takes, and the status it answers.

:func:`apply_setting` is what a simulated server calls once a setting is
authorized (:mod:`acnet_proto.sim.settings` decides that). SETTING changes
the setting (and so the reading); CONTROL takes a BasicControl command;
ANALOG and DIGITAL need a field.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from acnet_proto import drf
from acnet_proto.sim.alarm_blocks import (
    AlarmBlockError,
    block_bytes,
    decode_digital,
    rewrite_analog,
)
from acnet_proto.sim.binding import Entry
from acnet_proto.sim.codes import (
    DIO_INVDATA,
    DIO_RANGE,
    DIO_READONLY,
    DIO_SCALEFAIL,
    DPM_BAD_LENGTH,
    DPM_NO_SUCH_FIELD,
)
from acnet_proto.sim.control import STANDARD_COMMANDS, apply_command, command_at
from acnet_proto.sim.devices import AnalogAlarmBlock, BasicStatus, Kind, SimDevice
from acnet_proto.sim.ramps import POINT_BYTES, value_scaling
from acnet_proto.sim.scaling import ScalingError

__all__ = ["CONTROL_COMMANDS", "apply_setting", "numbers_of"]

_P = drf.Property
_F = drf.Field


def apply_setting(entry: Entry, value: object) -> int:
    """Set what ``entry`` addresses to ``value``; return the ACNET status (0: done).

    ``value`` is what an ``ApplySettings`` carries: ``bytes`` (a raw
    setting), a sequence of floats (scaled) or of strings (text); a bare
    number or ``str`` is taken as a sequence of one. SETTING changes the
    setting (and so the reading); CONTROL takes the ordinal of a command
    in the device's control table (what DPM/TCP and gRPC clients send) or a
    DAQData ``BasicControl`` wire value, and answers ``DIO_SCALEFAIL`` for
    one beyond the table (:mod:`acnet_proto.sim.control` says what each
    command does); ANALOG and DIGITAL need a field.
    Authorization is not checked here: the caller compares
    ``entry.device.protection`` with the user's privileges first.
    An entry with a ``<-LOGGER`` or ``<-FTP`` source names recorded data, not
    the device: it answers ``DIO_READONLY`` and the device is left alone.
    """
    if entry.request.source is not None:
        return DIO_READONLY
    prop = entry.request.property
    if prop is _P.SETTING:
        return _set_setting(entry, value)
    if prop is _P.CONTROL:
        assert entry.device.status is not None  # a CONTROL entry needs a status table
        return _set_control(entry.device.status, value)
    if prop is _P.ANALOG or prop is _P.DIGITAL:
        return _set_alarm(entry, value)
    return DIO_READONLY


def numbers_of(value: object) -> list[float] | None:
    """``value`` (a number or a sequence of numbers) as a list of floats, else None."""
    if isinstance(value, str | bytes | bytearray):
        return None
    if isinstance(value, int | float):
        return [float(value)]
    try:
        items = list(value)  # type: ignore[call-overload]  # any iterable; TypeError if not
    except TypeError:
        return None
    if any(isinstance(v, str | bytes) for v in items):
        return None
    try:
        return [float(v) for v in items]
    except (TypeError, ValueError):
        return None


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence) and len(value) == 1 and isinstance(value[0], str):
        return value[0]
    return None


def _set_setting(entry: Entry, value: object) -> int:
    device = entry.device
    if isinstance(value, bytes | bytearray):
        return _set_raw(entry, bytes(value))
    if device.kind is Kind.TEXT:
        text = _text(value)
        if text is None:
            return DIO_INVDATA
        if len(text) > device.text_length:
            return DPM_BAD_LENGTH
        device.setting = text
        return 0
    numbers = numbers_of(value)
    if numbers is None or not device.numeric:
        return DIO_INVDATA
    assert entry.span is not None  # bind gives numeric data a span
    lo, hi = entry.span
    if len(numbers) != hi - lo:
        return DPM_BAD_LENGTH
    if entry.request.field is _F.PRIMARY:
        numbers = [device.scaling.common_of_primary(v) for v in numbers]
    return _store_scaled(device, lo, numbers)


def _store_scaled(device: SimDevice, lo: int, numbers: list[float]) -> int:
    """Scaled values into the setting from element ``lo``, each as the raw type holds it; all
    or nothing: DIO_SCALEFAIL if one cannot be held, DIO_RANGE if one is outside the limits.
    A ramp card's elements are the value words of its points."""
    ramp = device.ramp
    scaling = device.scaling if ramp is None else value_scaling(device.scaling)
    try:
        held = [scaling.quantise(v) for v in numbers]
    except ScalingError:
        return DIO_SCALEFAIL
    low = -math.inf if device.minimum is None else device.minimum
    high = math.inf if device.maximum is None else device.maximum
    if not all(low <= v <= high for v in numbers):
        return DIO_RANGE
    if ramp is not None:
        ramp.store_values(lo, held, device.scaling)
    else:
        device.setting_numbers[lo : lo + len(held)] = held
    return 0


def _set_raw(entry: Entry, data: bytes) -> int:
    device = entry.device
    if device.kind is Kind.TEXT:
        if len(data) > device.text_length:
            return DPM_BAD_LENGTH
        device.setting = data.decode("latin-1")
        return 0
    assert entry.span is not None  # bind gives numeric and raw data a span
    lo, hi = entry.span
    # bind made a ramp card's SETTING its table's points, 4 raw bytes each
    if device.ramp is not None:
        if len(data) != (hi - lo) * POINT_BYTES:
            return DPM_BAD_LENGTH
        device.ramp.store_raw(lo, data)
        return 0
    atom = device.scaling.raw.size if device.numeric else 1
    if len(data) != (hi - lo) * atom:
        return DPM_BAD_LENGTH
    if device.numeric:
        # raw data bypasses scaling, and so the limits of the scaled setting
        try:
            device.setting_numbers[lo:hi] = device.scaling.decode_all(data)
        except ScalingError:
            return DIO_SCALEFAIL
    else:
        raw = device.setting_bytes
        device.setting = raw[:lo] + data + raw[hi:]
    return 0


#: The standard control table, by ordinal (a device's own is ``BasicStatus.commands``).
CONTROL_COMMANDS = STANDARD_COMMANDS


def _set_control(status: BasicStatus, value: object) -> int:
    numbers = numbers_of(value)
    if numbers is None or len(numbers) != 1 or not numbers[0].is_integer():
        return DIO_INVDATA
    command = command_at(status.commands, int(numbers[0]))
    if command is None:
        return DIO_SCALEFAIL
    apply_command(status, command)
    return 0


_ALARM_WRITABLE = {
    _F.ALARM_ENABLE: ("enable", bool),
    _F.ABORT_INHIBIT: ("abort_inhibit", bool),
    _F.TRIES_NEEDED: ("tries_needed", int),
    _F.ALARM_FTD: ("ftd", int),
}


# what the raw block's fields hold: (low, high)
_ALARM_FIELD_RANGE = {"tries_needed": (0, 0xFF), "ftd": (0, 0xFFFF)}


_ANALOG_WRITABLE = {**_ALARM_WRITABLE, _F.MIN: ("minimum", float), _F.MAX: ("maximum", float)}


_DIGITAL_WRITABLE = {**_ALARM_WRITABLE, _F.NOM: ("nominal", int), _F.MASK: ("mask", int)}


def _set_alarm(entry: Entry, value: object) -> int:
    if entry.span is not None:
        return _set_alarm_bytes(entry, value)
    analog = entry.request.property is _P.ANALOG
    block = entry.device.analog if analog else entry.device.digital
    fld = entry.request.field
    if fld is None or fld is _F.ALL:
        return DPM_NO_SUCH_FIELD
    writable = _ANALOG_WRITABLE if analog else _DIGITAL_WRITABLE
    if fld not in writable and not (analog and fld in (_F.NOM, _F.TOL)):
        return DIO_READONLY
    numbers = numbers_of(value)
    if numbers is None:
        return DIO_INVDATA
    if len(numbers) != 1:
        return DPM_BAD_LENGTH
    number = numbers[0]
    assert block is not None  # bind refuses an alarm property the device lacks
    if analog and fld in (_F.NOM, _F.TOL):
        assert isinstance(block, AnalogAlarmBlock)
        nom = (block.minimum + block.maximum) / 2
        tol = (block.maximum - block.minimum) / 2
        nom, tol = (number, tol) if fld is _F.NOM else (nom, abs(number))
        return _set_limits(entry.device, block, nom - tol, nom + tol)
    if analog and fld in (_F.MIN, _F.MAX):
        assert isinstance(block, AnalogAlarmBlock)
        low, high = (number, block.maximum) if fld is _F.MIN else (block.minimum, number)
        return _set_limits(entry.device, block, low, high)
    attr, kind = writable[fld]
    if kind is not float and not number.is_integer():
        return DIO_INVDATA
    low, high = _ALARM_FIELD_RANGE.get(attr, (-(2**31), 2**31 - 1))  # replies carry int32
    if kind is int and not low <= number <= high:
        return DIO_RANGE
    setattr(block, attr, kind(number))
    return 0


def _set_limits(device: SimDevice, block: AnalogAlarmBlock, low: float, high: float) -> int:
    """Analog limits, as the raw block holds them (DIO_SCALEFAIL if it cannot)."""
    try:
        block.minimum, block.maximum = device.scaling.quantise(low), device.scaling.quantise(high)
    except ScalingError:
        return DIO_SCALEFAIL
    return 0


def _set_alarm_bytes(entry: Entry, value: object) -> int:
    """Bytes into the raw alarm block at the entry's span; the structured view follows."""
    if not isinstance(value, bytes | bytearray):
        return DIO_INVDATA
    assert entry.span is not None
    lo, hi = entry.span
    if len(value) != hi - lo:
        return DPM_BAD_LENGTH
    device, analog = entry.device, entry.request.property is _P.ANALOG
    old = block_bytes(device, analog, 0.0)
    data = old[:lo] + bytes(value) + old[hi:]
    target = device.analog if analog else device.digital
    assert target is not None  # bind refuses an alarm property the device lacks
    try:
        new = (
            rewrite_analog(target, device.scaling, old, data)
            if isinstance(target, AnalogAlarmBlock)
            else decode_digital(data)
        )
    except AlarmBlockError:
        return DIO_INVDATA
    except ScalingError:
        return DIO_SCALEFAIL
    # in place: entries bound earlier hold this very block
    for name in type(new).__dataclass_fields__:
        setattr(target, name, getattr(new, name))
    return 0
