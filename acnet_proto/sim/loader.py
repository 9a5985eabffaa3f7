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
- ``status``: ``{on, ready, remote, positive, ramp}`` (bools: each bit's
  state, default on, ready, remote, positive set and ramp clear; gives the
  STATUS and CONTROL properties, STATUS served as the fields ON..RAMP, RAW,
  TEXT, BIT_VALUE, BIT_NAMES and BIT_VALUES). ``status_bits``: which bits
  the device has, each ``bit = mask`` or ``bit = {mask, name, devdb_name,
  long_name, true_text, false_text}`` (``name``: DPM's BIT_NAMES;
  ``devdb_name``: DevDB's short name, default ``name``; default: all five,
  :data:`STATUS_BITS`); a ``status`` key for a bit it lacks is an error.
  BIT_NAMES and BIT_VALUES are indexed by bit number. ``control``: the control
  table, an array of ``{value, name}`` (optionally ``long_name``,
  ``ordinal``) whose position is the ordinal (default: the standard ten
  commands). :mod:`acnet_proto.sim.control` says what each command does.
  ``analog``: ``{min, max, enable, abort, abort_inhibit, tries_needed,
  tries_now}``; ``digital``: ``{nominal, mask, enable, abort, abort_inhibit,
  tries_needed, tries_now}``.
- ``protection``: an integer bit mask, for the authorization layer to compare
  with a user's roles before it calls :meth:`DeviceModel.apply_setting`.
- Values (numeric devices): ``raw`` (``int16``, ``uint16``, ``int32``,
  ``uint32``, ``float32``, ``dec_f``), ``primary = {offset, scale, divisor}``
  and ``common = {c1, c2, c3}`` (:mod:`acnet_proto.sim.scaling`; any of the
  three makes values exactly what the raw data holds); ``min``/``max``, the
  device database's limits of a scaled setting; ``update_period`` (s), the
  READING sampled and held; ``ramp = {slots, points, update_rate}``
  (:mod:`acnet_proto.sim.ramps`). ``analog`` and ``digital`` also take
  ``ftd``; tries are 0..255.

Top level, ``builtin`` (bool) says whether the file extends the packaged
model (:func:`parse_model`). ``docs/simulator.md`` tables every key.

``[[family]]`` declares ``count`` scalar devices ``prefix`` + the index in
``digits`` digits, with dis from ``first_di``; ``description`` may contain
``{index}``; ``value + step*index`` is each one's setting; the other scalar
keys apply to all. Family devices are made on first use.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from acnet_proto import drf
from acnet_proto.drf.events import CANONICAL_DEVICE
from acnet_proto.errors import AcnetProtoError
from acnet_proto.sim.control import parse_control, parse_status_bits
from acnet_proto.sim.devices import (
    STATUS_BITS,
    AnalogAlarmBlock,
    BasicStatus,
    DeviceFamily,
    DigitalAlarmBlock,
    Kind,
    Motion,
    SimDevice,
)
from acnet_proto.sim.ramps import parse_ramp
from acnet_proto.sim.scaling import RawType, Scaling, ScalingError

if TYPE_CHECKING:
    from acnet_proto.sim.model import DeviceModel

__all__ = ["DeviceModelError", "parse_model"]

_MAX_DI = 2**31 - 1  # DeviceInfo_reply carries the di as an int32

# A TOML table as tomllib makes it: the loader checks each value's type as it reads it.
_Table = dict[str, Any]

# the tables of a device that :meth:`_Loader.block` reads
_Block = TypeVar("_Block", AnalogAlarmBlock, DigitalAlarmBlock)


def parse_model(
    cls: type[DeviceModel],
    text: str,
    source: str,
    *,
    builtin: bool = False,
    builtin_text: Callable[[], str] = str,
) -> DeviceModel:
    """Build a ``cls`` from TOML ``text``; :class:`DeviceModelError` names ``source``, the
    entry and the key for anything missing, misspelt, of the wrong type or duplicated.

    The file's top-level ``builtin`` (default ``builtin``) says whether it extends
    the model whose text ``builtin_text()`` returns: its devices (and families)
    replace those of the same name (prefix), its clock events those of the same
    number, and the rest is kept.
    """
    doc = _toml(text, source)
    loader = _Loader(source)
    if loader.get(doc, "builtin", bool, "top level", builtin):
        doc = loader.merged(_toml(builtin_text(), "the built-in model"), doc)
    doc.pop("builtin", None)
    return loader.model(cls, doc)


def _toml(text: str, source: str) -> _Table:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise DeviceModelError(f"{source}: not valid TOML: {e}") from None


class DeviceModelError(AcnetProtoError, ValueError):
    """A model file that cannot be used; the message names the file, entry and key."""


_COMMON_KEYS = (
    "units format_hint value step amplitude period motion settable default_event protection"
)


# a numeric device's raw type, scaling, limits, update period and ramp table
_VALUE_KEYS = "raw primary common min max update_period ramp"


_DEVICE_KEYS = frozenset(
    f"name di description long_name kind length phase status status_bits control analog digital "
    f"{_COMMON_KEYS} {_VALUE_KEYS}".split()
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

    def merged(self, base: _Table, doc: _Table) -> _Table:
        """``doc`` over ``base``: same-named devices and same-prefixed families replaced."""
        devices, families = self.tables(doc, "device"), self.tables(doc, "family")
        names = {t.get("name") for t in devices}
        prefixes = {t.get("prefix") for t in families}
        clock = doc.get("clock", {})
        if not isinstance(clock, dict) or not isinstance(clock.get("events", {}), dict):
            raise self.fail("clock", "must be a table ([clock]) with a table [clock.events]")
        base_clock = base.get("clock", {})
        return {
            **doc,
            "device": [t for t in base.get("device", []) if t["name"] not in names] + devices,
            "family": [t for t in base.get("family", []) if t["prefix"] not in prefixes] + families,
            "clock": {
                **base_clock,
                **clock,
                "events": {**base_clock.get("events", {}), **clock.get("events", {})},
            },
        }

    def model(self, cls: type[DeviceModel], doc: _Table) -> DeviceModel:
        self.check_keys(doc, {"builtin", "clock", "device", "family"}, "top level")
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
            "amplitude": self.finite(table, "amplitude", where, 0.0),
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
        device = SimDevice(
            name=name,
            di=self.within(self.get(table, "di", int, where), "di", where, 0, _MAX_DI),
            description=self.get(table, "description", str, where),
            kind=kind,
            setting=setting,
            long_name=self.get(table, "long_name", str, where, None),
            text_length=text_length,
            phase=self.finite(table, "phase", where, 0.0),
            status=self.status(table, where),
            analog=self.block(table, "analog", AnalogAlarmBlock, where),
            digital=self.block(table, "digital", DigitalAlarmBlock, where),
            **self.common(table, where),
            **self.values(table, kind, where),
        )
        self.hold(device, where)
        return device

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

    def status(self, table: _Table, where: str) -> BasicStatus | None:
        """The ``status``, ``status_bits`` and ``control`` keys, as a BasicStatus (or None)."""
        if "status" not in table:
            for key in ("status_bits", "control"):
                if key in table:
                    raise self.fail(where, f"{key!r} needs 'status' (the bits it describes)")
            return None
        states = self.get(table, "status", dict, where)
        bits = (
            parse_status_bits(table["status_bits"], where, self.fail)
            if "status_bits" in table
            else STATUS_BITS
        )
        self.check_keys(states, {bit.attribute for bit in bits}, f"{where}.status")
        values = {key: self.get(states, key, bool, f"{where}.status") for key in states}
        if "control" in table:
            values["commands"] = parse_control(table["control"], where, self.fail)
        return BasicStatus(bits=bits, **values)

    def values(self, table: _Table, kind: Kind, where: str) -> dict[str, Any]:
        """The value keys (raw type, scaling, limits, update period, ramp), as SimDevice
        keyword arguments; numeric devices only."""
        given = sorted(set(_VALUE_KEYS.split()) & set(table))
        if "analog" in table:  # its limits are scaled values
            given.append("analog")
        if given and kind not in (Kind.SCALAR, Kind.ARRAY):
            raise self.fail(where, f"{given} are for numeric devices, not kind = {kind.value!r}")
        out: dict[str, Any] = {"scaling": self.scaling(table, where)}
        raw = out["scaling"].raw
        if "ramp" in table and "raw" in table and raw is not RawType.INT16:
            raise self.fail(
                where, f"a ramp's value words are int16: give raw = 'int16', not {raw.value!r}"
            )
        for key, attribute in (("min", "minimum"), ("max", "maximum")):
            if key in table:
                out[attribute] = self.finite(table, key, where)
        if out.get("minimum", -math.inf) > out.get("maximum", math.inf):
            raise self.fail(where, f"'min' {out['minimum']} is above 'max' {out['maximum']}")
        period = self.get(table, "update_period", (int, float), where, 0.0)
        if not (period >= 0 and math.isfinite(period)):
            raise self.fail(where, f"'update_period' must be 0 or more seconds, got {period}")
        out["update_period"] = float(period)
        if "ramp" in table:
            out["ramp"] = parse_ramp(
                self.get(table, "ramp", dict, where), f"{where}.ramp", self.fail
            )
        return out

    def finite(self, table: _Table, key: str, where: str, default: Any = ...) -> float:
        value = float(self.get(table, key, (int, float), where, default))
        if not math.isfinite(value):
            raise self.fail(where, f"{key!r} must be a finite number, got {value}")
        return value

    def scaling(self, table: _Table, where: str) -> Scaling:
        """``raw``, ``primary`` and ``common``; a device with none of them keeps ``Scaling()``."""
        if not {"raw", "primary", "common"} & set(table):
            return Scaling()
        text = self.get(table, "raw", str, where, RawType.FLOAT32.value)
        try:
            raw = RawType(text)
        except ValueError:
            raise self.fail(
                where, f"raw {text!r} is not one of {[r.value for r in RawType]}"
            ) from None
        numbers: dict[str, float] = {}
        for key, names in (
            ("primary", ("offset", "scale", "divisor")),
            ("common", ("c1", "c2", "c3")),
        ):
            sub = self.get(table, key, dict, where, {})
            self.check_keys(sub, set(names), f"{where}.{key}")
            for name in names:
                if name in sub:
                    numbers[name] = self.finite(sub, name, f"{where}.{key}")
                    if name in ("scale", "divisor", "c1", "c2") and numbers[name] == 0:
                        raise self.fail(f"{where}.{key}", f"{name!r} must not be 0")
        return Scaling(raw=raw, exact=True, **numbers)

    def hold(self, device: SimDevice, where: str) -> None:
        """Quantise ``device``'s setting and analog limits to its raw type; check them and the
        alarm blocks' raw fields, naming the key that does not fit."""
        if device.numeric:
            device.setting = self.held(device, device.setting_numbers, "value", where)
            low = -math.inf if device.minimum is None else device.minimum
            high = math.inf if device.maximum is None else device.maximum
            if not all(low <= v <= high for v in device.setting_numbers):
                raise self.fail(where, f"'value' is outside 'min'..'max' ({low}..{high})")
        if device.analog is not None and device.numeric:
            a = device.analog
            a.minimum, a.maximum = self.held(device, [a.minimum, a.maximum], "analog", where)
        for key, block in (("analog", device.analog), ("digital", device.digital)):
            if block is not None:
                self.within(block.tries_needed, "tries_needed", f"{where}.{key}", 0, 0xFF)
                self.within(block.tries_now, "tries_now", f"{where}.{key}", 0, 0xFF)
                self.within(block.ftd, "ftd", f"{where}.{key}", 0, 0xFFFF)

    def held(self, device: SimDevice, values: list[float], key: str, where: str) -> list[float]:
        try:
            return [device.scaling.quantise(v) for v in values]
        except ScalingError as e:
            raise self.fail(where, f"{key!r}: {e}") from None

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
            if want is float and not math.isfinite(value):
                raise self.fail(where, f"{key_in_file!r} must be a finite number, got {value}")
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
            base=self.finite(table, "value", where, 0.0),
            step=self.finite(table, "step", where, 0.0),
            template=self.common(table, where),
        )

    def check_unique(self, devices: list[SimDevice], families: list[DeviceFamily]) -> None:
        names: set[str] = set()
        dis: set[int] = set()
        for d in devices:
            if d.name in names:
                raise self.fail(f"device {d.name}", "the name is used twice")
            if d.di in dis:
                other = next(o.name for o in devices if o.di == d.di)
                raise self.fail(f"device {d.name}", f"di {d.di} is used twice (also {other})")
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
