"""Ramp tables: the slots of (value, time) points a ramp card plays, as its SETTING.

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

The table starts all zero. Its points are the device's SETTING, as the
lab's ramp cards serve it: element *i* (``i = s * points + p``) is point *p*
of slot *s*; ``.SETTING[i].RAW`` is its 4 bytes, the scaled
``.SETTING[i]`` (``B_HS23T[65]``) the scaled value word and ``.PRIMARY``
its primary value. The time words have no scaled form: they are read and
written as raw bytes only (a client scales them with ``update_rate``).
Writing a scaled element changes its value word and keeps its time word.
The READING of a ramp device is not the table: it is the device's
``value``, as any scalar's.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from acnet_proto.sim.scaling import RawType, Scaling

__all__ = ["POINT_BYTES", "RampTable", "parse_ramp", "value_scaling"]

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

    @property
    def elements(self) -> int:
        """Points in the whole table: the elements of the SETTING."""
        return self.slots * self.points

    def raw(self, lo: int, hi: int) -> bytes:
        """The bytes of points ``lo`` up to ``hi`` (elements of the whole table)."""
        return bytes(self.data[lo * POINT_BYTES : hi * POINT_BYTES])

    def store_raw(self, lo: int, data: bytes) -> None:
        """Whole points of bytes into the table from point ``lo`` (the caller checks the length)."""
        self.data[lo * POINT_BYTES : lo * POINT_BYTES + len(data)] = data

    def values(self, lo: int, hi: int, scaling: Scaling, *, primary: bool = False) -> list[float]:
        """The scaled (or ``primary``) values of points ``lo`` up to ``hi``."""
        words = value_scaling(scaling)
        points = _POINT.iter_unpack(self.data[lo * POINT_BYTES : hi * POINT_BYTES])
        primaries = [words.primary_of_raw(value) for value, _ in points]
        return primaries if primary else [words.common_of_primary(p) for p in primaries]

    def store_values(self, lo: int, values: list[float], scaling: Scaling) -> None:
        """Scaled values into the value words of points from ``lo``; the time words stay.
        All or nothing: :class:`ScalingError` if an int16 cannot hold one."""
        words = [value_scaling(scaling).encode(v) for v in values]
        for i, word in enumerate(words):
            at = (lo + i) * POINT_BYTES
            self.data[at : at + 2] = word


def value_scaling(scaling: Scaling) -> Scaling:
    """``scaling`` applied to a point's value word: int16, whatever the device's raw type."""
    return replace(scaling, raw=RawType.INT16, exact=True)


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
