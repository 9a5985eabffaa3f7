"""Ramp tables: the slots of (value, time) points a ramp card plays, as its raw SETTING.

A device with a ``ramp`` table serves it as the raw data of its SETTING
property, the way the lab's ramp cards do: ``.SETTING{offset:length}.RAW``
reads and writes bytes of the table, whose layout is

- ``slots`` tables one after another (default 15), each of ``points``
  points (default 64), so slot *s* starts at byte ``s * points * 4``;
- a point is 4 bytes: the value, int16 little-endian, then the time,
  int16 little-endian;
- the value's raw int16 scales with the device's primary and common
  transforms (:class:`~acnet_proto.sim.scaling.Scaling`, raw type int16);
- the time counts ticks of the card's clock, ``update_rate`` Hz (default
  10 000), and is the time since the previous point: microseconds are
  ``ticks * 1e6 / update_rate``.

The table starts all zero. The scaled SETTING of a ramp device is still its
setting (the value between ramps); only the raw SETTING is the table.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from acnet_proto.sim.scaling import RawType, Scaling

__all__ = ["POINT_BYTES", "RampTable", "parse_ramp"]

#: Bytes per point: an int16 value, then an int16 time.
POINT_BYTES = 4

_POINT = struct.Struct("<hh")
_KEYS = {"slots": 15, "points": 64, "update_rate": 10_000.0}


@dataclass(slots=True, eq=False)
class RampTable:
    """A ramp card's tables: ``data`` holds every slot's points (changed in place)."""

    slots: int = 15
    points: int = 64
    update_rate: float = 10_000.0
    data: bytearray = field(default_factory=bytearray)

    def __post_init__(self) -> None:
        if not self.data:
            self.data = bytearray(self.size)

    @property
    def size(self) -> int:
        """Bytes in the whole table."""
        return self.slots * self.points * POINT_BYTES

    def offset(self, slot: int, point: int = 0) -> int:
        """The byte offset of ``point`` of ``slot``."""
        return (slot * self.points + point) * POINT_BYTES

    def point(self, slot: int, index: int, scaling: Scaling) -> tuple[float, float]:
        """Point ``index`` of ``slot`` as (scaled value, microseconds since the previous point)."""
        value, ticks = _POINT.unpack_from(self.data, self.offset(slot, index))
        as_int16 = replace(scaling, raw=RawType.INT16, exact=True)
        scaled = as_int16.decode(value.to_bytes(2, "little", signed=True))
        return scaled, ticks * 1e6 / self.update_rate

    def set_point(
        self, slot: int, index: int, value: float, micros: float, scaling: Scaling
    ) -> None:
        """Store a point from a scaled value and microseconds (:class:`ScalingError` if the value
        does not fit an int16; a time that does not fit is a ValueError)."""
        as_int16 = replace(scaling, raw=RawType.INT16, exact=True)
        raw = as_int16.encode(value)
        ticks = round(micros * self.update_rate / 1e6)
        if not -(2**15) <= ticks < 2**15:
            raise ValueError(f"{micros} us is {ticks} ticks, beyond an int16")
        at = self.offset(slot, index)
        self.data[at : at + POINT_BYTES] = raw + ticks.to_bytes(2, "little", signed=True)


def parse_ramp(
    table: dict[str, Any], where: str, fail: Callable[[str, str], Exception]
) -> RampTable:
    """A model file's ``ramp`` table ``{slots, points, update_rate}``; ``fail(where, problem)``
    makes the error to raise."""
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise fail(where, f"unknown key(s) {unknown}; allowed: {sorted(_KEYS)}")
    values: dict[str, Any] = {}
    for key, default in _KEYS.items():
        value = table.get(key, default)
        kinds = (int, float) if isinstance(default, float) else int
        if not isinstance(value, kinds) or isinstance(value, bool) or not 0 < value < math.inf:
            raise fail(where, f"{key!r} must be a positive number, got {value!r}")
        values[key] = type(default)(value)
    if values["slots"] * values["points"] * POINT_BYTES > 1 << 20:
        raise fail(where, "the table is over 1 MiB; give fewer slots or points")
    return RampTable(**values)
