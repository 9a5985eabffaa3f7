"""The simulated DevDB's answers: a model device as the device database describes it.

What the simulated database says about a model device: its ``di`` and
``description``; numeric devices have READING (and, if settable, SETTING)
scaling with the device's units as primary and common units, primary
transform 16 (the raw data is IEEE float32) and common transform 0
(identity); devices with a ``status`` table have the CONTROL commands of
:data:`~acnet_proto.sim.writes.CONTROL_COMMANDS` (value = ordinal) and the
five bits of :data:`~acnet_proto.sim.devices.STATUS_BITS`; each alarm table is
an alarm block whose text id is ``2*di`` (analog) or ``2*di + 1``
(digital). An unknown device gets an all-zero ``DeviceInfo``, as the real
service sends; a name that is not a device name gets an ``errMsg``.

The simulated service (:mod:`acnet_proto.adapters.sim.devdb`) asks
:func:`info_entry`, :func:`alarm_info_reply` and :func:`alarm_text_reply`.
Imports the generated protobuf modules, never grpc.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable
from typing import TypedDict

from acnet_proto.drf.events import CANONICAL_DEVICE
from acnet_proto.protos.controls.service.DevDB.v1 import DevDB_pb2
from acnet_proto.sim.devices import STATUS_BITS, AnalogAlarmBlock, DigitalAlarmBlock, SimDevice
from acnet_proto.sim.model import DeviceModel
from acnet_proto.sim.writes import CONTROL_COMMANDS

__all__ = ["alarm_info_reply", "alarm_text_reply", "info_entry"]

# ACNET property indices (the ``pi`` of an alarm block)
_PI_ANALOG = 16
_PI_DIGITAL = 17
# alarm block flag bits (ACNET's layout, as pacsys.alarm_block.AlarmFlags)
_ENABLE, _ABORT, _ABORT_INHIBIT, _DIGITAL = 1 << 0, 1 << 2, 1 << 3, 1 << 7
_FOUR_BYTES = 2 << 5  # Q: the alarmed value is 4 bytes (a float32)
_MIN_MAX = 2 << 8  # K: the analog limits are a minimum and a maximum
_FLOAT32_TRANSFORM = 16  # primary transform: the raw data is an IEEE float
_IDENTITY_TRANSFORM = 0  # common transform: primary units are engineering units
_CONTROL_NAMES = {
    "RESET": "Reset",
    "ON": "Turn on",
    "OFF": "Turn off",
    "POSITIVE": "Set polarity positive",
    "NEGATIVE": "Set polarity negative",
    "RAMP": "Ramp mode",
    "DC": "DC mode",
}


class _Parts(TypedDict, total=False):
    """The parts of a ``DeviceInfo`` a device has, as its keyword arguments."""

    reading: DevDB_pb2.Property
    setting: DevDB_pb2.Property
    control: DevDB_pb2.DigitalControl
    status: DevDB_pb2.DigitalStatus


def _scaling(device: SimDevice, setting: bool) -> DevDB_pb2.Property:
    return DevDB_pb2.Property(
        primary_units=device.units,
        common_units=device.units,
        p_index=_FLOAT32_TRANSFORM,
        c_index=_IDENTITY_TRANSFORM,
        is_knobbable=setting and device.size == 1,
    )


def _definitions(device: SimDevice) -> _Parts:
    if device.status is None:
        return {}
    commands = [
        DevDB_pb2.DigitalControlItem(
            value=ordinal, short_name=command.name, long_name=_CONTROL_NAMES[command.name]
        )
        for ordinal, command in enumerate(CONTROL_COMMANDS)
    ]
    bits = [
        DevDB_pb2.DigitalStatusItem(
            mask_val=bit.mask,
            match_val=bit.mask,
            short_name=bit.name,
            long_name=bit.long_name,
            true_str=bit.true_text,
            false_str=bit.false_text,
        )
        for bit in STATUS_BITS
    ]
    ext = [
        DevDB_pb2.DigitalExtStatusItem(
            bit_no=number, name0=bit.false_text, name1=bit.true_text, description=bit.long_name
        )
        for number, bit in enumerate(STATUS_BITS)
    ]
    return {
        "control": DevDB_pb2.DigitalControl(cmds=commands),
        "status": DevDB_pb2.DigitalStatus(bits=bits, ext_bits=ext),
    }


def info_entry(model: DeviceModel, name: str) -> DevDB_pb2.InfoEntry:
    """The ``getDeviceInfo`` entry for ``name`` (any case), from ``model``."""
    canonical = name.strip().upper()
    if CANONICAL_DEVICE.fullmatch(canonical) is None or canonical.startswith("0:"):
        return DevDB_pb2.InfoEntry(name=name, errMsg=f"{name!r} is not a device name (X:NAME)")
    device = model.device(canonical)
    if device is None:
        return DevDB_pb2.InfoEntry(name=name, device=DevDB_pb2.DeviceInfo())
    parts: _Parts = {}
    if device.numeric:
        parts["reading"] = _scaling(device, setting=False)
        if device.settable:
            parts["setting"] = _scaling(device, setting=True)
    parts.update(_definitions(device))
    info = DevDB_pb2.DeviceInfo(device_index=device.di, description=device.description, **parts)
    return DevDB_pb2.InfoEntry(name=name, device=info)


def _float_bits(value: float) -> int:
    # the raw limit is the float32 the front end compares, read as an int32
    try:
        packed = struct.pack("<f", value)
    except OverflowError:  # beyond float32: the front end holds an infinity
        packed = struct.pack("<f", math.copysign(math.inf, value))
    bits: int = struct.unpack("<i", packed)[0]
    return bits


def _alarm_block(di: int, alarm: AnalogAlarmBlock | DigitalAlarmBlock) -> DevDB_pb2.AlarmBlock:
    """``alarm`` as DevDB stores it: limits raw, flags packed as ACNET packs them."""
    if isinstance(alarm, AnalogAlarmBlock):
        pi, kind = _PI_ANALOG, _MIN_MAX
        limits = _float_bits(alarm.minimum), _float_bits(alarm.maximum)
    else:
        pi, kind = _PI_DIGITAL, _DIGITAL
        limits = alarm.nominal, alarm.mask
    flags = (
        (_ENABLE if alarm.enable else 0)
        | (_ABORT if alarm.abort else 0)
        | (_ABORT_INHIBIT if alarm.abort_inhibit else 0)
        | _FOUR_BYTES
    )
    return DevDB_pb2.AlarmBlock(
        di=di,
        pi=pi,
        status=flags | kind,
        min_or_nom=limits[0],
        max_or_tol=limits[1],
        tries_needed=alarm.tries_needed,
        tries_now=alarm.tries_now,
    )


def _alarm_infos(device: SimDevice) -> list[DevDB_pb2.AlarmInfo]:
    out = []
    analog, digital = device.analog, device.digital
    if analog is not None:
        analog_text = DevDB_pb2.DeviceAnalogAlarm(di=device.di, alarm_text_id=2 * device.di)
        out.append(
            DevDB_pb2.AlarmInfo(
                device_name=device.name,
                alarm_block=_alarm_block(device.di, analog),
                device_analog_alarm=analog_text,
            )
        )
    if digital is not None:
        digital_text = DevDB_pb2.DeviceDigitalAlarm(
            di=device.di,
            condition=digital.nominal,
            mask=digital.mask,
            alarm_text_id=2 * device.di + 1,
        )
        out.append(
            DevDB_pb2.AlarmInfo(
                device_name=device.name,
                alarm_block=_alarm_block(device.di, digital),
                device_digital_alarm=digital_text,
            )
        )
    return out


def alarm_info_reply(model: DeviceModel, names: Iterable[str]) -> DevDB_pb2.AlarmInfoReply:
    """The ``getAllAlarmInfo`` reply: each named device's alarm blocks (none for unknown ones)."""
    infos = []
    for name in names:
        device = model.device(name.strip().upper())
        if device is not None:
            infos.extend(_alarm_infos(device))
    return DevDB_pb2.AlarmInfoReply(alarm_info=infos)


def _alarm_text(model: DeviceModel, text_id: int) -> DevDB_pb2.DeviceAlarmText | None:
    di, digital = divmod(text_id, 2)
    device = model.device(f"0:{di}")
    if device is None or (device.digital if digital else device.analog) is None:
        return None
    what = "status is not nominal" if digital else "reading is outside its limits"
    text = f"{device.name} {device.description}: {what}"
    return DevDB_pb2.DeviceAlarmText(alarm_text_id=text_id, length=len(text), text=text)


def alarm_text_reply(model: DeviceModel, ids: Iterable[int]) -> DevDB_pb2.DeviceAlarmTextList:
    """The ``getAlarmText`` reply: the texts of the ids that name an alarm of ``model``."""
    texts = [t for t in (_alarm_text(model, i) for i in ids) if t is not None]
    return DevDB_pb2.DeviceAlarmTextList(device_alarm_text=texts)
