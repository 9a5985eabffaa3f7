"""Raw alarm blocks: the 20 bytes behind ``.ANALOG{0:20}.RAW`` and ``.DIGITAL{0:20}.RAW``.

An alarm block is one 20-byte structure in the front end; the structured
properties (``N@H801``, ``.ANALOG.MIN``, ``.DIGITAL.MASK``...) are DPM's view
of the same bytes, so the simulator keeps one block (an
:class:`~acnet_proto.sim.devices.AnalogAlarmBlock` or
:class:`~acnet_proto.sim.devices.DigitalAlarmBlock`) and makes the bytes
from it, or it from the bytes. Layout (every word little-endian):

======  =====  ===============================================================
bytes   size   meaning
======  =====  ===============================================================
0-1     u16    flags: bit 0 enable (1: active), 1 bad (in alarm now), 2 abort,
               3 abort inhibit, 5-6 Q: the alarmed value's length (0: 1 byte,
               1: 2 bytes, 2: 4 bytes), 7 digital, 8-9 K (analog: limit
               type; 2 = minimum/maximum), 11 reading low, 12 reading high
2-5     4 B    analog: the minimum, digital: the nominal bits
6-9     4 B    analog: the maximum, digital: the mask
10      u8     tries now
11      u8     tries needed
12-13   u16    FTD: 0 the device's default; bit 15 clear: a period in 60 Hz
               ticks; set: clock event in bits 0-7, delay (10 ms) in 8-14
14-19   6 B    front-end data; byte 16's bits 0-1 are the analog value's type
               (0 unknown, 1 signed, 2 unsigned, 3 IEEE float)
======  =====  ===============================================================

Analog limits are in the device's raw type (:mod:`acnet_proto.sim.scaling`),
its first ``size`` bytes of the 4, a 2-byte signed value sign-extended;
``Q`` is the raw type's length. A DEC F_floating device's type byte is 0
(unknown): its limits are not IEEE floats. Digital nominal and mask are
4-byte unsigned words (Q = 2).

Written bytes set enable, abort, abort inhibit, the limits, the tries and
the FTD; a limit whose bytes a write leaves as they were keeps its value
exactly (:func:`rewrite_analog`). Bad, low and high are the front end's verdict, and Q, the digital
bit and the type byte follow the device: what a write says of them is not
kept. A written analog block must keep K = 2 (minimum/maximum), the only
limit type the simulator holds; :class:`AlarmBlockError` otherwise.
"""

from __future__ import annotations

import struct

from acnet_proto.errors import AcnetProtoError
from acnet_proto.sim.devices import AnalogAlarmBlock, DigitalAlarmBlock, SimDevice
from acnet_proto.sim.scaling import RawType, Scaling

__all__ = [
    "BLOCK_SIZE",
    "AlarmBlockError",
    "block_bytes",
    "block_flags",
    "decode_analog",
    "decode_digital",
    "encode_analog",
    "encode_digital",
    "rewrite_analog",
]

#: Bytes in one alarm block.
BLOCK_SIZE = 20

_ENABLE, _BAD, _ABORT, _ABORT_INHIBIT = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_DIGITAL, _LOW, _HIGH = 1 << 7, 1 << 11, 1 << 12
_Q_SHIFT, _K_SHIFT, _K_MASK = 5, 8, 0x300
_MIN_MAX = 2
_LENGTH_CODE = {1: 0, 2: 1, 4: 2}
_TYPE_CODE = {
    RawType.INT16: 1,
    RawType.INT32: 1,
    RawType.UINT16: 2,
    RawType.UINT32: 2,
    RawType.FLOAT32: 3,
    RawType.DEC_F: 0,
}
_LAYOUT = struct.Struct("<H4s4sBBH6s")


class AlarmBlockError(AcnetProtoError, ValueError):
    """Raw alarm-block bytes the simulator cannot hold."""


def _common_flags(block: AnalogAlarmBlock | DigitalAlarmBlock, bad: bool, length: int) -> int:
    return (
        (_ENABLE if block.enable else 0)
        | (_BAD if bad else 0)
        | (_ABORT if block.abort else 0)
        | (_ABORT_INHIBIT if block.abort_inhibit else 0)
        | _LENGTH_CODE[length] << _Q_SHIFT
    )


def _limit(scaling: Scaling, value: float) -> bytes:
    held = scaling.encode(value, saturate=True)
    fill = b"\xff" if scaling.raw.signed and held[-1] & 0x80 else b"\x00"
    return held.ljust(4, fill)


def encode_analog(
    block: AnalogAlarmBlock, scaling: Scaling, *, low: bool = False, high: bool = False
) -> bytes:
    """The 20 raw bytes of an analog block; ``low``/``high``: the reading is outside its limits
    now (and the alarm is enabled), which makes the block bad."""
    bad = low or high
    flags = _common_flags(block, bad, scaling.raw.size) | _MIN_MAX << _K_SHIFT
    flags |= (_LOW if low else 0) | (_HIGH if high else 0)
    fe_data = bytes([0, 0, _TYPE_CODE[scaling.raw], 0, 0, 0])
    return _LAYOUT.pack(
        flags,
        _limit(scaling, block.minimum),
        _limit(scaling, block.maximum),
        block.tries_now,
        block.tries_needed,
        block.ftd,
        fe_data,
    )


def encode_digital(block: DigitalAlarmBlock, *, bad: bool = False) -> bytes:
    """The 20 raw bytes of a digital block; ``bad``: it is in alarm now."""
    return _LAYOUT.pack(
        _common_flags(block, bad, 4) | _DIGITAL,
        (block.nominal & 0xFFFFFFFF).to_bytes(4, "little"),
        (block.mask & 0xFFFFFFFF).to_bytes(4, "little"),
        block.tries_now,
        block.tries_needed,
        block.ftd,
        bytes(6),
    )


def _fields(data: bytes) -> tuple[int, bytes, bytes, tuple[bool, bool, bool, int, int, int]]:
    """(flags, first limit, second limit, (enable, abort, abort_inhibit, tries_needed,
    tries_now, ftd)) of a whole block."""
    if len(data) != BLOCK_SIZE:
        raise AlarmBlockError(f"an alarm block is {BLOCK_SIZE} bytes, got {len(data)}")
    flags, first, second, tries_now, tries_needed, ftd, _ = _LAYOUT.unpack(data)
    common = (
        bool(flags & _ENABLE),
        bool(flags & _ABORT),
        bool(flags & _ABORT_INHIBIT),
        tries_needed,
        tries_now,
        ftd,
    )
    return flags, first, second, common


def decode_analog(data: bytes, scaling: Scaling) -> AnalogAlarmBlock:
    """The analog block 20 raw bytes hold, limits scaled as the device scales its data.

    :class:`AlarmBlockError` for a limit type other than minimum/maximum;
    :class:`~acnet_proto.sim.scaling.ScalingError` for a limit that is no value.
    """
    flags, first, second, common = _fields(data)
    if (flags & _K_MASK) >> _K_SHIFT != _MIN_MAX:
        raise AlarmBlockError(f"flags 0x{flags:04X}: limit type K must be 2 (minimum/maximum)")
    size = scaling.raw.size
    return AnalogAlarmBlock(scaling.decode(first[:size]), scaling.decode(second[:size]), *common)


_MINIMUM_BYTES, _MAXIMUM_BYTES = slice(2, 6), slice(6, 10)


def rewrite_analog(
    block: AnalogAlarmBlock, scaling: Scaling, old: bytes, data: bytes
) -> AnalogAlarmBlock:
    """The analog block after ``data`` is written over its raw bytes ``old``: decoded from
    ``data`` (:func:`decode_analog`, and its errors), except that a limit whose 4 bytes did
    not change keeps ``block``'s value.

    The bytes of a limit are its nearest raw value (a float32 for a device with
    no raw type), so decoding untouched bytes would move a limit no one wrote.
    """
    new = decode_analog(data, scaling)
    if data[_MINIMUM_BYTES] == old[_MINIMUM_BYTES]:
        new.minimum = block.minimum
    if data[_MAXIMUM_BYTES] == old[_MAXIMUM_BYTES]:
        new.maximum = block.maximum
    return new


def decode_digital(data: bytes) -> DigitalAlarmBlock:
    """The digital block 20 raw bytes hold (nominal and mask kept as int32)."""
    _, first, second, common = _fields(data)
    nominal = int.from_bytes(first, "little", signed=True)
    return DigitalAlarmBlock(nominal, int.from_bytes(second, "little", signed=True), *common)


def block_bytes(device: SimDevice, analog: bool, now: float) -> bytes:
    """The raw bytes of ``device``'s analog (or digital) block at ``now``, its state included."""
    in_alarm = device.alarm_status(now)
    if analog:
        block = device.analog
        assert block is not None  # the caller checked the device has it
        value = device.reading_number(now, 0) if in_alarm[0] else 0.0
        low, high = in_alarm[0] and value < block.minimum, in_alarm[0] and value > block.maximum
        return encode_analog(block, device.scaling, low=low, high=high)
    digital = device.digital
    assert digital is not None
    return encode_digital(digital, bad=in_alarm[1])


def block_flags(device: SimDevice, analog: bool, now: float) -> int:
    """The flags word of :func:`block_bytes` (the FLAGS field)."""
    return int.from_bytes(block_bytes(device, analog, now)[:2], "little")
