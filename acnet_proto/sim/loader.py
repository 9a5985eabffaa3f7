"""The model file (TOML): reading it, checking it, and naming the place of every problem.

``[clock]``: ``default_period`` (seconds) and ``[clock.events]``, a table of
clock event number in hex to seconds between firings.

``[[device]]``, one per device:

- ``name`` (``X:NAME``), ``di`` (int), ``description``; optional ``units``,
  ``long_name`` (default: the description), ``format_hint`` (int).
- ``kind``: ``"scalar"`` (default), ``"array"`` (``length`` doubles),
  ``"text"`` (at most ``length`` characters, default 64) or ``"raw"`` (bytes).
- ``value``: the initial setting. A number for a scalar; for an array a list,
  or a number with ``step`` (element *i* is ``value + step*i``); a string for
  text; hex digits for raw.
- ``amplitude``, ``period`` (s), ``phase`` (rad): the reading is
  ``setting + amplitude*sin(2*pi*now/period + phase)``; it follows the setting.
  With ``motion = "walk"`` (default ``"wave"``) it wanders instead, like a
  slow random walk, never further than ``amplitude`` from the setting, over
  time scales from ``period`` down to about ``period/45``; the path is a fixed
  function of the device name and time, so every client sees the same one.
- ``settable`` (bool): whether the SETTING property exists.
- ``default_event``: what ``@U`` (or no event) means, default ``"I"``.
- ``status``: ``{on, ready, remote, positive, ramp}`` (all bools; gives the
  STATUS and CONTROL properties; the bits are :data:`STATUS_BITS`, served as
  the fields ON..RAMP, RAW, TEXT, BIT_VALUE, BIT_NAMES and BIT_VALUES);
  ``analog``: ``{min, max, enable, abort, abort_inhibit, tries_needed,
  tries_now}``; ``digital``: ``{nominal, mask, enable, abort, abort_inhibit,
  tries_needed, tries_now}``.
- ``protection``: an integer bit mask, for the authorization layer to compare
  with a user's roles before it calls :meth:`DeviceModel.apply_setting`.

``[[family]]`` declares ``count`` scalar devices ``prefix`` + the index in
``digits`` digits, with dis from ``first_di``; ``description`` may contain
``{index}``; ``value + step*index`` is each one's setting; the other scalar
keys apply to all. Family devices are made on first use.
"""

from __future__ import annotations

import math
import tomllib
from typing import TYPE_CHECKING, Any, TypeVar

from acnet_proto import drf
from acnet_proto.drf.events import CANONICAL_DEVICE
from acnet_proto.errors import AcnetProtoError
from acnet_proto.sim.devices import (
    AnalogAlarmBlock,
    BasicStatus,
    DeviceFamily,
    DigitalAlarmBlock,
    Kind,
    Motion,
    SimDevice,
)

if TYPE_CHECKING:
    from acnet_proto.sim.model import DeviceModel

__all__ = ["DeviceModelError", "parse_model"]

_MAX_DI = 2**31 - 1  # DeviceInfo_reply carries the di as an int32

# A TOML table as tomllib makes it: the loader checks each value's type as it reads it.
_Table = dict[str, Any]

# the tables of a device that :meth:`_Loader.block` reads
_Block = TypeVar("_Block", BasicStatus, AnalogAlarmBlock, DigitalAlarmBlock)


def parse_model(cls: type[DeviceModel], text: str, source: str) -> DeviceModel:
    """Build a ``cls`` from TOML ``text``; :class:`DeviceModelError` names ``source``, the
    entry and the key for anything missing, misspelt, of the wrong type or duplicated."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise DeviceModelError(f"{source}: not valid TOML: {e}") from None
    return _Loader(source).model(cls, doc)


class DeviceModelError(AcnetProtoError, ValueError):
    """A model file that cannot be used; the message names the file, entry and key."""


_COMMON_KEYS = (
    "units format_hint value step amplitude period motion settable default_event protection"
)


_DEVICE_KEYS = frozenset(
    f"name di description long_name kind length phase status analog digital {_COMMON_KEYS}".split()
)


_FAMILY_KEYS = frozenset(f"prefix count digits first_di description {_COMMON_KEYS}".split())


# analog alarm tables say min/max for the minimum/maximum attributes
_ATTRIBUTE = {"min": "minimum", "max": "maximum"}


_FILE_KEY = {v: k for k, v in _ATTRIBUTE.items()}


class _Loader:
    """Reads and checks the TOML document, naming the place of every problem."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> DeviceModelError:
        return DeviceModelError(f"{self.source}: {where}: {problem}")

    def get(
        self,
        table: _Table,
        key: str,
        kinds: type | tuple[type, ...],
        where: str,
        default: Any = ...,
    ) -> Any:
        if key not in table:
            if default is ...:
                raise self.fail(where, f"missing required key {key!r}")
            return default
        value = table[key]
        # bool is an int, but `di = true` is always a mistake
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _tuple(kinds)):
            names = " or ".join(k.__name__ for k in _tuple(kinds))
            raise self.fail(where, f"{key!r} must be {names}, got {value!r}")
        return value

    def check_keys(self, table: _Table, allowed: set[str] | frozenset[str], where: str) -> None:
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise self.fail(where, f"unknown key(s) {unknown}; allowed: {sorted(allowed)}")

    def model(self, cls: type[DeviceModel], doc: _Table) -> DeviceModel:
        self.check_keys(doc, {"clock", "device", "family"}, "top level")
        periods, default_period = self.clock(doc.get("clock", {}))
        devices = [self.device(t, i) for i, t in enumerate(self.tables(doc, "device"))]
        families = [self.family(t, i) for i, t in enumerate(self.tables(doc, "family"))]
        self.check_unique(devices, families)
        return cls(devices, families, periods, default_period)

    def tables(self, doc: _Table, key: str) -> list[_Table]:
        items = doc.get(key, [])
        if not isinstance(items, list) or not all(isinstance(t, dict) for t in items):
            raise self.fail(key, f"must be an array of tables ([[{key}]])")
        return items

    def clock(self, table: Any) -> tuple[dict[int, float], float]:
        if not isinstance(table, dict):
            raise self.fail("clock", "must be a table ([clock])")
        self.check_keys(table, {"default_period", "events"}, "clock")
        default = self.positive(table, "default_period", "clock", 1.0)
        events = self.get(table, "events", dict, "clock", {})
        periods = {}
        for key in events:
            where = f"clock.events.{key}"
            try:
                number = int(key, 16)
            except ValueError:
                raise self.fail(where, "the key must be a clock event number in hex") from None
            if not 0 <= number <= 0xFFFF:
                raise self.fail(where, "clock event numbers are 0..ffff")
            periods[number] = self.positive(events, key, where)
        return periods, default

    def within(self, value: int, key: str, where: str, low: int, high: int) -> int:
        if not low <= value <= high:
            raise self.fail(where, f"{key!r} must be in {low}..{high}, got {value}")
        return value

    def positive(self, table: _Table, key: str, where: str, default: Any = ...) -> float:
        value = float(self.get(table, key, (int, float), where, default))
        if not (value > 0 and math.isfinite(value)):
            raise self.fail(where, f"{key!r} must be a positive number of seconds, got {value}")
        return value

    def name(self, text: str, where: str) -> str:
        if CANONICAL_DEVICE.fullmatch(text) is None or text.startswith("0:"):
            raise self.fail(where, f"{text!r} is not a device name in X:NAME form (upper case)")
        return text

    def event(self, table: _Table, where: str) -> drf.Event:
        text = self.get(table, "default_event", str, where, "I")
        try:
            event = drf.parse_event(text)
        except drf.DRFError as e:
            raise self.fail(
                where, f"default_event {text!r} is not a DRF event: {e.problem}"
            ) from None
        if isinstance(event, drf.DefaultEvent | drf.StateEvent):
            raise self.fail(where, f"default_event {text!r} must be I, N, periodic or clock")
        return event

    def motion(self, table: _Table, where: str) -> Motion:
        text = self.get(table, "motion", str, where, "wave")
        try:
            return Motion(text)
        except ValueError:
            motions = [m.value for m in Motion]
            raise self.fail(where, f"motion {text!r} is not one of {motions}") from None

    def common(self, table: _Table, where: str) -> dict[str, Any]:
        """Keys shared by devices and families, as SimDevice keyword arguments."""
        fmt = self.get(table, "format_hint", int, where, None)
        if fmt is not None:
            self.within(fmt, "format_hint", where, -(2**15), 2**15 - 1)
        period = self.positive(table, "period", where, 60.0)
        return {
            "units": self.get(table, "units", str, where, None),
            "format_hint": fmt,
            "amplitude": float(self.get(table, "amplitude", (int, float), where, 0.0)),
            "period": period,
            "motion": self.motion(table, where),
            "settable": self.get(table, "settable", bool, where, False),
            "default_event": self.event(table, where),
            "protection": self.get(table, "protection", int, where, 0),
        }

    def device(self, table: _Table, index: int) -> SimDevice:
        where = f"device #{index + 1}"
        name = self.name(self.get(table, "name", str, where), where)
        where = f"device {name}"
        self.check_keys(table, _DEVICE_KEYS, where)
        kind_text = self.get(table, "kind", str, where, "scalar")
        try:
            kind = Kind(kind_text)
        except ValueError:
            kinds = [k.value for k in Kind]
            raise self.fail(where, f"kind {kind_text!r} is not one of {kinds}") from None
        setting, text_length = self.setting(table, kind, where)
        return SimDevice(
            name=name,
            di=self.within(self.get(table, "di", int, where), "di", where, 0, _MAX_DI),
            description=self.get(table, "description", str, where),
            kind=kind,
            setting=setting,
            long_name=self.get(table, "long_name", str, where, None),
            text_length=text_length,
            phase=float(self.get(table, "phase", (int, float), where, 0.0)),
            status=self.block(table, "status", BasicStatus, where),
            analog=self.block(table, "analog", AnalogAlarmBlock, where),
            digital=self.block(table, "digital", DigitalAlarmBlock, where),
            **self.common(table, where),
        )

    def setting(
        self, table: _Table, kind: Kind, where: str
    ) -> tuple[list[float] | str | bytes, int]:
        length = self.get(table, "length", int, where, None)
        if length is not None and length < 1:
            raise self.fail(where, f"'length' must be at least 1, got {length}")
        if "step" in table and kind is not Kind.ARRAY:
            raise self.fail(where, "'step' is only for kind = \"array\"")
        if kind is Kind.TEXT:
            text = self.get(table, "value", str, where, "")
            limit = length or 64
            if len(text) > limit:
                raise self.fail(where, f"'value' is longer than 'length' ({limit})")
            return text, limit
        if kind is Kind.RAW:
            digits = self.get(table, "value", str, where, "00" * (length or 0))
            try:
                data = bytes.fromhex(digits)
            except ValueError:
                raise self.fail(where, f"'value' {digits!r} is not hex digits") from None
            if not data or (length is not None and len(data) != length):
                raise self.fail(where, "a raw device needs 'value' (hex) or 'length' bytes")
            return data, 64
        if kind is Kind.SCALAR:
            if length not in (None, 1):
                raise self.fail(where, 'a scalar has length 1; use kind = "array"')
            return [float(self.get(table, "value", (int, float), where, 0.0))], 64
        value = self.get(table, "value", (int, float, list), where, 0.0)
        if isinstance(value, list):
            if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
                raise self.fail(where, "'value' must be a list of numbers")
            if not value or (length is not None and len(value) != length):
                raise self.fail(where, "'value' must have 'length' numbers")
            return [float(v) for v in value], 64
        if length is None:
            raise self.fail(where, "an array needs 'length' (or a list 'value')")
        step = float(self.get(table, "step", (int, float), where, 0.0))
        return [float(value) + step * i for i in range(length)], 64

    def block(self, table: _Table, key: str, cls: type[_Block], where: str) -> _Block | None:
        """An optional status or alarm table, as a ``cls`` instance (None if absent)."""
        if key not in table:
            return None
        sub = self.get(table, key, dict, where)
        where = f"{where}.{key}"
        self.check_keys(sub, {_FILE_KEY.get(a, a) for a in cls.__dataclass_fields__}, where)
        defaults = cls()
        values = {}
        for key_in_file in sub:
            attr = _ATTRIBUTE.get(key_in_file, key_in_file)
            want = type(getattr(defaults, attr))
            kinds = (int, float) if want is float else want
            value = want(self.get(sub, key_in_file, kinds, where))
            if want is int:
                self.within(value, key_in_file, where, -(2**31), 2**31 - 1)
            values[attr] = value
        return cls(**values)

    def family(self, table: _Table, index: int) -> DeviceFamily:
        where = f"family #{index + 1}"
        self.check_keys(table, _FAMILY_KEYS, where)
        prefix = self.get(table, "prefix", str, where)
        count = self.get(table, "count", int, where)
        if count < 1:
            raise self.fail(where, f"'count' must be at least 1, got {count}")
        first_di = self.get(table, "first_di", int, where)
        self.within(first_di, "first_di", where, 0, _MAX_DI - count + 1)
        digits = self.get(table, "digits", int, where, len(str(count - 1)))
        if len(str(count - 1)) > digits:
            raise self.fail(where, f"{count} devices need more than {digits} digits")
        self.name(prefix + "0" * digits, where)
        where = f"family {prefix}"
        return DeviceFamily(
            prefix=prefix,
            count=count,
            digits=digits,
            first_di=first_di,
            description=self.get(table, "description", str, where),
            base=float(self.get(table, "value", (int, float), where, 0.0)),
            step=float(self.get(table, "step", (int, float), where, 0.0)),
            template=self.common(table, where),
        )

    def check_unique(self, devices: list[SimDevice], families: list[DeviceFamily]) -> None:
        names: set[str] = set()
        dis: set[int] = set()
        for d in devices:
            if d.name in names:
                raise self.fail(f"device {d.name}", "the name is used twice")
            if d.di in dis:
                raise self.fail(f"device {d.name}", f"di {d.di} is used twice")
            names.add(d.name)
            dis.add(d.di)
        spans = [(f.first_di, f.first_di + f.count, f) for f in families]
        for lo, hi, f in spans:
            where = f"family {f.prefix}"
            clash = next((d for d in devices if lo <= d.di < hi), None)
            if clash is not None:
                raise self.fail(where, f"its dis {lo}..{hi - 1} include {clash.name}'s {clash.di}")
            clash_name = next((d for d in devices if f.index_of_name(d.name) is not None), None)
            if clash_name is not None:
                raise self.fail(where, f"its names include the device {clash_name.name}")
            for lo2, hi2, g in spans:
                if g is not f and lo < hi2 and lo2 < hi:
                    raise self.fail(where, f"its dis overlap those of family {g.prefix}")


def _tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)
