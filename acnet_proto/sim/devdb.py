"""The simulated DevDB's answers: a model device as the device database describes it.

What the simulated database says about a model device: its ``di`` and
``description``; numeric devices have READING (and, if settable, SETTING)
scaling with the device's units as primary and common units, the ACNET
primary and common transforms equivalent to its raw type and scaling (16 and
0, IEEE float and identity, for a device that states none) and its
``min``/``max`` limits (0 when it has none); devices with a ``status`` table
have their control table (each command's value and names, by ordinal) and
their status bits (mask, the bit's DevDB short name, long name and texts;
extended bit numbers from the masks),
the very ones the simulated DPM serves (:mod:`acnet_proto.sim.control`);
each alarm table is an alarm block whose text id is ``2*di`` (analog) or
``2*di + 1`` (digital), holding the flags word and limits of the raw block.
An unknown device gets an all-zero ``DeviceInfo``, as the real service
sends; a name that is not a device name gets an ``errMsg``.

The simulated service (:mod:`acnet_proto.adapters.sim.devdb`) asks
:func:`info_entry`, :func:`alarm_info_reply` and :func:`alarm_text_reply`.
Imports the generated protobuf modules, never grpc.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import TypedDict

from acnet_proto.drf.events import CANONICAL_DEVICE
from acnet_proto.protos.controls.service.DevDB.v1 import DevDB_pb2
from acnet_proto.sim.alarm_blocks import encode_analog, encode_digital
from acnet_proto.sim.devices import AnalogAlarmBlock, SimDevice
from acnet_proto.sim.model import DeviceModel

__all__ = ["alarm_info_reply", "alarm_text_reply", "info_entry"]

# ACNET property indices (the ``pi`` of an alarm block)
_PI_ANALOG = 16
_PI_DIGITAL = 17


class _Parts(TypedDict, total=False):
    """The parts of a ``DeviceInfo`` a device has, as its keyword arguments."""

    reading: DevDB_pb2.Property
    setting: DevDB_pb2.Property
    control: DevDB_pb2.DigitalControl
    status: DevDB_pb2.DigitalStatus


def _scaling(device: SimDevice, setting: bool) -> DevDB_pb2.Property:
    """READING or SETTING scaling: the ACNET transforms of the device's own
    (:meth:`~acnet_proto.sim.scaling.Scaling.acnet_indices`) and its ``min``/``max``."""
    p_index, c_index, constants = device.scaling.acnet_indices()
    return DevDB_pb2.Property(
        primary_units=device.units,
        common_units=device.units,
        min_val=device.minimum if device.minimum is not None else 0.0,
        max_val=device.maximum if device.maximum is not None else 0.0,
        p_index=p_index,
        c_index=c_index,
        coeff=constants,
        # a ramp card's setting is a table of points, not one knob
        is_knobbable=setting and device.size == 1 and device.ramp is None,
    )


def _definitions(device: SimDevice) -> _Parts:
    status = device.status
    if status is None:
        return {}
    commands = [
        DevDB_pb2.DigitalControlItem(value=c.value, short_name=c.name, long_name=c.long_name)
        for c in status.commands
    ]
    bits = [
        DevDB_pb2.DigitalStatusItem(
            mask_val=bit.mask,
            match_val=bit.mask,
            short_name=bit.devdb_name,
            long_name=bit.long_name,
            true_str=bit.true_text,
            false_str=bit.false_text,
        )
        for bit in status.bits
    ]
    ext = [
        DevDB_pb2.DigitalExtStatusItem(
            bit_no=bit.position,
            name0=bit.false_text,
            name1=bit.true_text,
            description=bit.long_name,
        )
        for bit in status.bits
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


def _alarm_block(device: SimDevice, analog: bool) -> DevDB_pb2.AlarmBlock:
    """An alarm block as DevDB stores it: the flags word and limits of the raw block
    (:mod:`acnet_proto.sim.alarm_blocks`), the limits read as little-endian int32."""
    block = device.analog if analog else device.digital
    assert block is not None  # the caller checked
    if isinstance(block, AnalogAlarmBlock):
        data = encode_analog(block, device.scaling)
    else:
        data = encode_digital(block)
    flags, minimum, maximum = struct.unpack_from("<Hii", data)
    return DevDB_pb2.AlarmBlock(
        di=device.di,
        pi=_PI_ANALOG if analog else _PI_DIGITAL,
        status=flags,
        min_or_nom=minimum,
        max_or_tol=maximum,
        tries_needed=block.tries_needed,
        tries_now=block.tries_now,
    )


def _alarm_infos(device: SimDevice) -> list[DevDB_pb2.AlarmInfo]:
    out = []
    analog, digital = device.analog, device.digital
    if analog is not None:
        analog_text = DevDB_pb2.DeviceAnalogAlarm(di=device.di, alarm_text_id=2 * device.di)
        out.append(
            DevDB_pb2.AlarmInfo(
                device_name=device.name,
                alarm_block=_alarm_block(device, analog=True),
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
                alarm_block=_alarm_block(device, analog=False),
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
