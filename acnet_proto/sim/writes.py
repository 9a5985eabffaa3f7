"""Settings applied to simulated devices: what each property takes, and the status it answers.

:func:`apply_setting` is what a simulated server calls once a setting is
authorized (:mod:`acnet_proto.sim.settings` decides that). SETTING changes
the setting (and so the reading); CONTROL takes a BasicControl command;
ANALOG and DIGITAL need a field.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from acnet_proto import drf
from acnet_proto.api.verify import CONTROL_READBACK
from acnet_proto.pc import daqdata
from acnet_proto.sim.binding import Entry
from acnet_proto.sim.codes import (
    DIO_INVDATA,
    DIO_RANGE,
    DIO_READONLY,
    DPM_BAD_LENGTH,
    DPM_NO_SUCH_FIELD,
)
from acnet_proto.sim.devices import FLOAT_BYTES, AnalogAlarmBlock, BasicStatus, Kind
from acnet_proto.types import BasicControl

__all__ = ["CONTROL_COMMANDS", "apply_setting", "numbers_of"]

_P = drf.Property
_F = drf.Field


def apply_setting(entry: Entry, value: object) -> int:
    """Set what ``entry`` addresses to ``value``; return the ACNET status (0: done).

    ``value`` is what an ``ApplySettings`` carries: ``bytes`` (a raw
    setting), a sequence of floats (scaled) or of strings (text); a bare
    number or ``str`` is taken as a sequence of one. SETTING changes the
    setting (and so the reading); CONTROL takes a BasicControl command,
    either its DAQData wire value (:class:`acnet_proto.pc.daqdata.
    BasicControl`) or its ordinal 0..6 as Java's BasicControlDefs number
    them (what DPM/TCP clients send); ANALOG and DIGITAL need a field.
    Authorization is not checked here: the caller compares
    ``entry.device.protection`` with the user's privileges first.
    """
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
    device.setting_numbers[lo:hi] = numbers
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
    atom = FLOAT_BYTES if device.numeric else 1
    if len(data) != (hi - lo) * atom:
        return DPM_BAD_LENGTH
    if device.numeric:
        device.setting_numbers[lo:hi] = struct.unpack(f"<{hi - lo}f", data)
    else:
        raw = device.setting_bytes
        device.setting = raw[:lo] + data + raw[hi:]
    return 0


#: The CONTROL commands served, by ordinal (what DPM/TCP clients send, and the device
#: database lists): RESET, ON, OFF, POSITIVE, NEGATIVE, RAMP, DC.
CONTROL_COMMANDS = tuple(daqdata.BasicControl)


# A command sets the very status bit a verified control write reads back for, so the
# simulator takes its effects from that table: (BasicStatus attribute, state).
_CONTROL_EFFECT = {
    command: (bit.lower(), state)
    for command in CONTROL_COMMANDS
    for bit, state in [CONTROL_READBACK[BasicControl[command.name]]]
}


def _control_command(value: object) -> daqdata.BasicControl | None:
    numbers = numbers_of(value)
    if numbers is None or len(numbers) != 1 or not numbers[0].is_integer():
        return None
    number = int(numbers[0])
    if 0 <= number < len(CONTROL_COMMANDS):
        return CONTROL_COMMANDS[number]
    try:
        return daqdata.BasicControl(number)
    except ValueError:
        return None


def _set_control(status: BasicStatus, value: object) -> int:
    command = _control_command(value)
    if command is None:
        return DIO_INVDATA
    attr, state = _CONTROL_EFFECT[command]
    setattr(status, attr, state)
    return 0


_ALARM_WRITABLE = {
    _F.ALARM_ENABLE: ("enable", bool),
    _F.ABORT_INHIBIT: ("abort_inhibit", bool),
    _F.TRIES_NEEDED: ("tries_needed", int),
}


_ANALOG_WRITABLE = {**_ALARM_WRITABLE, _F.MIN: ("minimum", float), _F.MAX: ("maximum", float)}


_DIGITAL_WRITABLE = {**_ALARM_WRITABLE, _F.NOM: ("nominal", int), _F.MASK: ("mask", int)}


def _set_alarm(entry: Entry, value: object) -> int:
    analog = entry.request.property is _P.ANALOG
    block = entry.device.analog if analog else entry.device.digital
    fld = entry.request.field
    if fld is None or fld is _F.ALL:
        return DPM_NO_SUCH_FIELD
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
        block.minimum, block.maximum = nom - tol, nom + tol
        return 0
    target = (_ANALOG_WRITABLE if analog else _DIGITAL_WRITABLE).get(fld)
    if target is None:
        return DIO_READONLY
    attr, kind = target
    if kind is not float and not number.is_integer():
        return DIO_INVDATA
    if kind is int and not -(2**31) <= number < 2**31:
        return DIO_RANGE  # the replies carry these as int32
    setattr(block, attr, kind(number))
    return 0
