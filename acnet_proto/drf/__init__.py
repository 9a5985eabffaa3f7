"""DRF3 data requests: parse, check, format.

A DRF names one piece of data and when to send it::

    DEVICE{.PROPERTY}[range]{.FIELD}{@EVENT}
    M:OUTTMP   Z_ACLTST   M:OUTTMP.READING[0:9].RAW@p,1000   Z@ACLTST.MAX@e,8f,H,100

:func:`parse` turns text into an immutable :class:`DataRequest`;
``str(request)`` (or ``request.to_drf()``) turns it back into canonical text,
and ``parse(str(r)) == r`` for every valid request ``r``. Invalid text raises
:class:`DRFError` (a :class:`ValueError`) and nothing else; non-``str`` input
raises :class:`TypeError`. Nothing here does I/O.

Canonical form
--------------
- The device is upper case with ``:`` as its second character; a property
  qualifier (``Z_ACLTST``, ``Z|ACLTST``, ...) becomes the property.
- Property and field aliases become their DRF3 names (``.READ`` ->
  ``.READING``, ``.VOLTS`` -> ``.PRIMARY``, ``.MINIMUM`` -> ``.MIN``).
- ``.READING`` is left out, because it is the default, *unless* a field
  follows: ``M:OUTTMP.READING.RAW`` rather than ``M:OUTTMP.RAW``, so that every
  DRF parser reads the name after the dot as a field without having to guess.
- A field appears only when one was given; no default field is added or
  removed (``.READING.SCALED`` stays as written).
- Ranges: ``[n]`` is ``[n:n]`` and is written ``[n]``; ``[]``, ``[:]`` and
  ``[0:]`` are the whole array, written ``[:]``; ``[:n]`` is ``[0:n]``. Byte
  ranges are ``{offset:length}``; ``{n}`` is one byte, ``{n:1}``, written ``{n}``.
- The event appears only when one was given, so an explicit ``@U`` is kept
  and ``request.event is None`` tells that none was given. Events are
  written as described in :mod:`acnet_proto.drf.events` (``I``, ``N``,
  ``U``, ``p,1000``, ``q,500U``, ``e,8f,H,100``, ``s,V:STATE,5,0,=``).
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, replace
from typing import NoReturn

from acnet_proto.drf.events import (
    CANONICAL_DEVICE,
    MAX_CLOCK_EVENT,
    MAX_STATE_VALUE,
    MAX_TIME_US,
    ClockEvent,
    ClockType,
    DefaultEvent,
    Event,
    ImmediateEvent,
    NeverEvent,
    PeriodicEvent,
    StateEvent,
    StateOp,
)
from acnet_proto.errors import AcnetProtoError

__all__ = [
    "MAX_DRF_LENGTH",
    "ArrayRange",
    "ByteRange",
    "ClockEvent",
    "ClockType",
    "DRFError",
    "DataRequest",
    "DefaultEvent",
    "Event",
    "Field",
    "ImmediateEvent",
    "NeverEvent",
    "PeriodicEvent",
    "Property",
    "Range",
    "StateEvent",
    "StateOp",
    "canonical",
    "parse",
    "parse_event",
    "to_write_drf",
    "with_default_event",
    "with_event",
]

#: Longest DRF accepted. Real ones are under 100 characters; the limit keeps
#: error messages and the parse cache bounded.
MAX_DRF_LENGTH = 1024
#: Array indices and byte offsets are Java ints in the reference parser.
MAX_INDEX = 2**31 - 1


class DRFError(AcnetProtoError, ValueError):
    """Text that is not a valid DRF, or a request that cannot be used as asked.

    ``text`` is the text that was examined and ``position`` the index of the
    offending character in it (``len(text)`` when the text ended too soon).
    The message shows the text with a caret under that character and says
    what was expected there.
    """

    def __init__(
        self,
        text: str,
        position: int,
        problem: str,
        expected: str | None = None,
        *,
        subject: str = "invalid DRF",
    ) -> None:
        self.text = text
        self.position = position
        self.problem = problem
        self.expected = expected
        self.subject = subject
        super().__init__(_explain(text, position, problem, expected, subject))

    def __reduce__(self) -> tuple[object, ...]:
        # the default would call DRFError(message) and fail on unpickling
        return (
            _rebuild_error,
            (self.text, self.position, self.problem, self.expected, self.subject),
        )


def _rebuild_error(
    text: str, position: int, problem: str, expected: str | None, subject: str
) -> DRFError:
    return DRFError(text, position, problem, expected, subject=subject)


_WINDOW = 76


def _explain(text: str, position: int, problem: str, expected: str | None, subject: str) -> str:
    shown = repr(text) if len(text) <= 60 else f"{text[:57]!r}... ({len(text)} characters)"
    start = 0
    if len(text) > _WINDOW:
        start = max(0, min(position - _WINDOW // 2, len(text) - _WINDOW))
    # one display column per character, so the caret lines up
    window = "".join(c if " " <= c <= "~" else "?" for c in text[start : start + _WINDOW])
    prefix = "..." if start else ""
    suffix = "..." if start + _WINDOW < len(text) else ""
    lines = [
        f"{subject} {shown} at position {position}: {problem}",
        f"    {prefix}{window}{suffix}",
        "    " + " " * (len(prefix) + position - start) + "^",
    ]
    if expected:
        lines.append(f"expected {expected}")
    return "\n".join(lines)


def _fail(text: str, position: int, problem: str, expected: str | None = None) -> NoReturn:
    raise DRFError(text, position, problem, expected)


class Property(enum.Enum):
    """What of a device to read or set."""

    READING = "READING"
    SETTING = "SETTING"
    STATUS = "STATUS"
    CONTROL = "CONTROL"
    ANALOG = "ANALOG"
    DIGITAL = "DIGITAL"
    DESCRIPTION = "DESCRIPTION"
    INDEX = "INDEX"
    LONG_NAME = "LONG_NAME"
    ALARM_LIST_NAME = "ALARM_LIST_NAME"

    @property
    def qualifier(self) -> str:
        """The character that selects this property in ``X?NAME`` form."""
        return _QUALIFIER_CHAR[self]

    @property
    def fields(self) -> frozenset[Field]:
        """The fields this property accepts (empty: none)."""
        return _FIELDS[self]


class Field(enum.Enum):
    """Which part or flavour of a property's data."""

    RAW = "RAW"
    PRIMARY = "PRIMARY"
    SCALED = "SCALED"
    ALL = "ALL"
    TEXT = "TEXT"
    EXTENDED_TEXT = "EXTENDED_TEXT"
    ON = "ON"
    READY = "READY"
    REMOTE = "REMOTE"
    POSITIVE = "POSITIVE"
    RAMP = "RAMP"
    BIT_VALUE = "BIT_VALUE"
    BIT_NAMES = "BIT_NAMES"
    BIT_VALUES = "BIT_VALUES"
    MIN = "MIN"
    MAX = "MAX"
    NOM = "NOM"
    TOL = "TOL"
    RAW_MIN = "RAW_MIN"
    RAW_MAX = "RAW_MAX"
    RAW_NOM = "RAW_NOM"
    RAW_TOL = "RAW_TOL"
    MASK = "MASK"
    ALARM_ENABLE = "ALARM_ENABLE"
    ALARM_STATUS = "ALARM_STATUS"
    TRIES_NEEDED = "TRIES_NEEDED"
    TRIES_NOW = "TRIES_NOW"
    ALARM_FTD = "ALARM_FTD"
    ABORT = "ABORT"
    ABORT_INHIBIT = "ABORT_INHIBIT"
    FLAGS = "FLAGS"


_P = Property

_PROPERTY_ALIASES: dict[Property, tuple[str, ...]] = {
    _P.READING: ("READ", "PRREAD"),
    _P.SETTING: ("SET", "PRSET"),
    _P.STATUS: ("BASIC_STATUS", "STS", "PRBSTS"),
    _P.CONTROL: ("BASIC_CONTROL", "CTRL", "PRBCTL"),
    _P.ANALOG: ("ANALOG_ALARM", "AA", "PRANAB"),
    _P.DIGITAL: ("DIGITAL_ALARM", "DA", "PRDABL"),
    _P.DESCRIPTION: ("DESC", "PRDESC"),
    _P.INDEX: ("IDX", "PRIDX"),
    _P.LONG_NAME: ("LNGNAM", "PRLNAM"),
    _P.ALARM_LIST_NAME: ("LSTNAM", "PRALNM"),
}
_PROPERTY_BY_NAME = {p.value: p for p in Property} | {
    alias: p for p, aliases in _PROPERTY_ALIASES.items() for alias in aliases
}

_QUALIFIER_CHAR = {
    _P.READING: ":",
    _P.SETTING: "_",
    _P.STATUS: "|",
    _P.CONTROL: "&",
    _P.ANALOG: "@",
    _P.DIGITAL: "$",
    _P.DESCRIPTION: "~",
    _P.INDEX: "^",
    _P.LONG_NAME: "#",
    _P.ALARM_LIST_NAME: "!",
}
# "?" is DRF2's explicit READING qualifier; ":" means "no qualifier"
_PROPERTY_BY_QUALIFIER = {c: p for p, c in _QUALIFIER_CHAR.items()} | {"?": _P.READING}

_FIELD_BY_NAME = {f.value: f for f in Field} | {
    "VOLTS": Field.PRIMARY,
    "COMMON": Field.SCALED,
    "MINIMUM": Field.MIN,
    "MAXIMUM": Field.MAX,
    "NOMINAL": Field.NOM,
    "TOLERANCE": Field.TOL,
}


def _fields(names: str) -> frozenset[Field]:
    return frozenset(Field[name] for name in names.split())


_ALARM_FIELDS = "RAW ALL TEXT ALARM_ENABLE ALARM_STATUS TRIES_NEEDED TRIES_NOW ALARM_FTD ABORT "
_ALARM_FIELDS += "ABORT_INHIBIT FLAGS"
_FIELDS: dict[Property, frozenset[Field]] = {
    _P.READING: _fields("RAW PRIMARY SCALED"),
    _P.SETTING: _fields("RAW PRIMARY SCALED"),
    _P.STATUS: _fields(
        "ALL TEXT EXTENDED_TEXT ON READY REMOTE POSITIVE RAMP RAW BIT_VALUE BIT_NAMES BIT_VALUES"
    ),
    _P.CONTROL: _fields("RAW SCALED"),
    _P.ANALOG: _fields(_ALARM_FIELDS + " MIN MAX NOM TOL RAW_MIN RAW_MAX RAW_NOM RAW_TOL"),
    _P.DIGITAL: _fields(_ALARM_FIELDS + " NOM MASK"),
    _P.DESCRIPTION: frozenset(),
    _P.INDEX: frozenset(),
    _P.LONG_NAME: frozenset(),
    _P.ALARM_LIST_NAME: frozenset(),
}

# Settings go to the writable twin of what was read.
_WRITE_PROPERTY = {
    _P.READING: _P.SETTING,
    _P.SETTING: _P.SETTING,
    _P.STATUS: _P.CONTROL,
    _P.CONTROL: _P.CONTROL,
    _P.ANALOG: _P.ANALOG,
    _P.DIGITAL: _P.DIGITAL,
}


def _field_list(prop: Property) -> str:
    if not prop.fields:
        return f"no field ({prop.name} has none)"
    return "one of " + ", ".join(f.name for f in Field if f in prop.fields)


@dataclass(frozen=True, slots=True)
class Range:
    """Base of :class:`ArrayRange` and :class:`ByteRange`; never instantiated."""

    def __post_init__(self) -> None:
        if type(self) is Range:
            raise TypeError("Range is abstract; use ArrayRange or ByteRange")

    def to_drf(self) -> str:
        """The canonical DRF text of this range, brackets included."""
        raise NotImplementedError

    def __str__(self) -> str:
        return self.to_drf()


def _check_index(name: str, value: object, low: int) -> None:
    if type(value) is not int:
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not low <= value <= MAX_INDEX:
        raise ValueError(f"{name} must be in {low}..{MAX_INDEX}, got {value}")


@dataclass(frozen=True, slots=True)
class ArrayRange(Range):
    """``[start:end]``: array elements ``start`` to ``end``, both included.

    ``end=None`` runs to the last element.
    """

    start: int = 0
    end: int | None = None

    def __post_init__(self) -> None:
        _check_index("start", self.start, 0)
        if self.end is not None:
            _check_index("end", self.end, self.start)

    def to_drf(self) -> str:
        if self.end is None:
            return "[:]" if self.start == 0 else f"[{self.start}:]"
        if self.end == self.start:
            return f"[{self.start}]"
        return f"[{self.start}:{self.end}]"


@dataclass(frozen=True, slots=True)
class ByteRange(Range):
    """``{offset:length}``: ``length`` raw bytes from byte ``offset``.

    ``length=None`` runs to the end of the data.
    """

    offset: int = 0
    length: int | None = None

    def __post_init__(self) -> None:
        _check_index("offset", self.offset, 0)
        if self.length is not None:
            _check_index("length", self.length, 1)
            if self.offset + self.length > MAX_INDEX + 1:
                raise ValueError(f"offset + length must not exceed {MAX_INDEX + 1}")

    def to_drf(self) -> str:
        if self.length is None:
            return "{:}" if self.offset == 0 else f"{{{self.offset}:}}"
        if self.length == 1:
            return f"{{{self.offset}}}"
        return f"{{{self.offset}:{self.length}}}"


@dataclass(frozen=True, slots=True)
class DataRequest:
    """One parsed DRF: which data of which device, and when.

    ``device`` is canonical ``X:NAME`` (upper case, ``:`` second);
    ``event is None`` means the text gave no event (the server's default
    applies), unlike an explicit ``DefaultEvent()`` (``@U``).
    """

    device: str
    property: Property = Property.READING
    range: Range | None = None
    field: Field | None = None
    event: Event | None = None

    def __post_init__(self) -> None:
        if type(self.device) is not str:
            raise TypeError(f"device must be a str, not {type(self.device).__name__}")
        if CANONICAL_DEVICE.fullmatch(self.device) is None:
            raise ValueError(
                f"device must be in canonical X:NAME form, got {self.device!r}; "
                "use drf.parse() to read a device written any other way"
            )
        if not isinstance(self.property, Property):
            raise TypeError(f"property must be a Property, not {type(self.property).__name__}")
        if self.range is not None and not isinstance(self.range, Range):
            raise TypeError(f"range must be a Range or None, not {type(self.range).__name__}")
        if self.field is not None:
            if not isinstance(self.field, Field):
                raise TypeError(f"field must be a Field or None, not {type(self.field).__name__}")
            if self.field not in self.property.fields:
                raise ValueError(
                    f"field {self.field.name} is not valid for {self.property.name}; "
                    f"expected {_field_list(self.property)}"
                )
        if self.event is not None and not isinstance(self.event, Event):
            raise TypeError(f"event must be an Event or None, not {type(self.event).__name__}")

    def to_drf(self) -> str:
        """The canonical DRF text (see the module docstring for the rules)."""
        parts = [self.device]
        if self.property is not Property.READING or self.field is not None:
            parts.append("." + self.property.value)
        if self.range is not None:
            parts.append(self.range.to_drf())
        if self.field is not None:
            parts.append("." + self.field.value)
        if self.event is not None:
            parts.append("@" + self.event.to_drf())
        return "".join(parts)

    def __str__(self) -> str:
        return self.to_drf()


# --- the scanner -------------------------------------------------------------
# Hand-written: one left-to-right pass, no backtracking, exact error positions.

_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_LETTERS = _UPPER | frozenset("abcdefghijklmnopqrstuvwxyz")
_DIGITS = frozenset("0123456789")
_HEX = _DIGITS | frozenset("abcdefABCDEF")
_NAME_CHARS = _LETTERS | _DIGITS | frozenset("_:-")
_WORD_CHARS = _LETTERS | _DIGITS | frozenset("_")
_MAX_NAME = 62  # characters after the qualifier; 64 in all

_EVENT_FORMS = (
    "an event: U, I, N, p,<period>, q,<period>, e,<hex>, or s,<device>,<value>,<delay>,<op>"
)
_TIME_FORM = "digits, then optionally a unit S, M (the default), U, H or K"
_DEVICE_FORM = "a device name such as M:OUTTMP"

_TIME_UNITS_US = {"S": 1_000_000, "M": 1000, "U": 1}
_FREQUENCY_UNITS_US = {"H": 1_000_000, "K": 1000}  # period = unit / n
_STATE_OPS = {op.value: op for op in StateOp}
_CLOCK_TYPES = {t.value: t for t in ClockType}


def _check_characters(text: str) -> None:
    if text.isascii() and text.isprintable() and " " not in text:
        return
    for i, c in enumerate(text):
        if c.isspace():
            _fail(text, i, "whitespace is not allowed in a DRF", "no spaces, tabs or line breaks")
        if not (c.isascii() and c.isprintable()):
            _fail(text, i, f"character {c!r} is not allowed in a DRF", "printable ASCII only")


def _check_length(text: str, what: str) -> None:
    if not text:
        _fail(text, 0, f"empty {what}", _DEVICE_FORM if what == "DRF" else _EVENT_FORMS)
    if len(text) > MAX_DRF_LENGTH:
        _fail(
            text,
            MAX_DRF_LENGTH,
            f"{what} is {len(text)} characters long; the limit is {MAX_DRF_LENGTH}",
        )


def _scan_device(text: str, i: int, end: int) -> tuple[str, str, int]:
    """Read ``X?NAME`` at ``i``; return (canonical device, qualifier, next index)."""
    if i >= end:
        _fail(text, i, "missing device name", _DEVICE_FORM)
    if text[i] not in _LETTERS and text[i] != "0":
        _fail(text, i, f"a device name cannot start with {text[i]!r}", "a letter (or 0)")
    if i + 1 >= end:
        _fail(text, i + 1, "device name ends after one character", "':' and the rest of the name")
    qualifier = text[i + 1]
    if qualifier not in _PROPERTY_BY_QUALIFIER:
        _fail(
            text,
            i + 1,
            f"{qualifier!r} is not a property qualifier",
            "one of : ? _ | & @ $ ~ ^ # !",
        )
    j = i + 2
    while j < end and text[j] in _NAME_CHARS:
        j += 1
    if j == i + 2:
        _fail(
            text, j, "missing device name after the qualifier", "letters, digits, '_', ':' or '-'"
        )
    if j - (i + 2) > _MAX_NAME:
        _fail(text, i + 2 + _MAX_NAME, "device name is longer than 64 characters")
    return (text[i] + ":" + text[i + 2 : j]).upper(), qualifier, j


def _scan_word(text: str, i: int) -> tuple[str, int]:
    j = i
    while j < len(text) and text[j] in _WORD_CHARS:
        j += 1
    return text[i:j].upper(), j


def _scan_number(text: str, i: int, end: int, what: str, limit: int) -> tuple[int | None, int]:
    """Read optional decimal digits at ``i``; return (value or None, next index)."""
    j = i
    while j < end and text[j] in _DIGITS:
        j += 1
    if j == i:
        return None, j
    # bound the digit count before int() so huge inputs stay cheap
    if j - i > len(str(limit)) or int(text[i:j]) > limit:
        _fail(text, i, f"{what} {text[i:j]} is too large", f"at most {limit}")
    return int(text[i:j]), j


def _scan_range(text: str, i: int) -> tuple[Range, int]:
    closer = "]" if text[i] == "[" else "}"
    array = closer == "]"
    first, j = _scan_number(text, i + 1, len(text), "index" if array else "offset", MAX_INDEX)
    second: int | None = None
    colon_at = -1
    if j < len(text) and text[j] == ":":
        colon_at = j
        second, j = _scan_number(text, j + 1, len(text), "index" if array else "length", MAX_INDEX)
    if j >= len(text) or text[j] != closer:
        found = "end of text" if j >= len(text) else repr(text[j])
        _fail(text, j, f"unexpected {found} in a range", f"digits, ':' or {closer!r}")
    start = first or 0
    if array:
        if colon_at < 0:
            return ArrayRange(start, first), j + 1  # [n] is [n:n]; [] is [:]
        if second is not None and second < start:
            _fail(text, colon_at + 1, f"range end {second} is before its start {start}")
        return ArrayRange(start, second), j + 1
    length = 1 if colon_at < 0 and first is not None else second
    if length == 0:
        _fail(text, colon_at + 1, "a byte range needs at least 1 byte", "a length of 1 or more")
    if length is not None and start + length > MAX_INDEX + 1:
        _fail(
            text,
            i + 1,
            "byte range ends past the largest offset",
            f"offset + length <= {MAX_INDEX + 1}",
        )
    return ByteRange(start, length), j + 1


def _scan_field(text: str, i: int, prop: Property) -> tuple[Field, int]:
    name, j = _scan_word(text, i)
    field = _FIELD_BY_NAME.get(name)
    if field is None:
        if not name:
            _fail(text, i, "missing field name after '.'", _field_list(prop))
        if name in _PROPERTY_BY_NAME:
            _fail(text, i, f"{name} is a property; only one may be given, before any range")
        _fail(text, i, f"unknown field {text[i:j]!r}", _field_list(prop))
    if field not in prop.fields:
        _fail(
            text,
            i,
            f"field {field.name} is not valid for the {prop.name} property",
            _field_list(prop),
        )
    return field, j


def _parse_request(text: str) -> DataRequest:
    _check_length(text, "DRF")
    _check_characters(text)
    end = len(text)
    device, qualifier, i = _scan_device(text, 0, end)
    prop = _PROPERTY_BY_QUALIFIER[qualifier]
    rng: Range | None = None
    field: Field | None = None
    if i < end and text[i] == ".":
        name, j = _scan_word(text, i + 1)
        given = _PROPERTY_BY_NAME.get(name)
        if given is not None:
            if qualifier != ":" and given is not prop:
                _fail(
                    text,
                    i + 1,
                    f"property {given.name} contradicts the {qualifier!r} qualifier ({prop.name})",
                    f"{prop.name}, or ':' in the device name",
                )
            prop, i = given, j
        elif name in _FIELD_BY_NAME:
            # DEVICE.FIELD: a field of the qualifier's (or default) property
            field, i = _scan_field(text, i + 1, prop)
        elif not name:
            _fail(
                text,
                i + 1,
                "missing property or field name after '.'",
                "a property or a field name",
            )
        else:
            props = ", ".join(p.name for p in Property)
            _fail(
                text,
                i + 1,
                f"unknown property or field {text[i + 1 : j]!r}",
                f"a property ({props}) or a field: {_field_list(prop)}",
            )
    if field is None and i < end and text[i] in "[{":
        rng, i = _scan_range(text, i)
    if field is None and i < end and text[i] == ".":
        field, i = _scan_field(text, i + 1, prop)
    event: Event | None = None
    if i < end and text[i] == "@":
        event = _scan_event(text, i + 1)
        i = end
    if i < end:
        c = text[i]
        if c in "[{" and rng is not None:
            _fail(text, i, "only one range may be given")
        if c in "[{":
            _fail(text, i, "a range must come before the field", "'@' and an event, or the end")
        if c == "." and field is not None:
            _fail(text, i, "only one field may be given", "'@' and an event, or the end")
        nexts = [] if field is not None else ["'.' and a field"]
        if rng is None and field is None:
            nexts.insert(0, "a range")
        _fail(text, i, f"unexpected {c!r}", ", ".join([*nexts, "'@' and an event", "the end"]))
    return DataRequest(device, prop, rng, field, event)


def _split_items(text: str, i: int) -> list[tuple[int, str]]:
    """Split ``text[i:]`` at commas into (position, item) pairs."""
    items = []
    for item in text[i:].split(","):
        items.append((i, item))
        i += len(item) + 1
    return items


def _scan_time(text: str, at: int, item: str, what: str, minimum: int) -> int:
    """Read a period or delay item such as ``1000``, ``1S`` or ``5H``; return µs."""
    k = 0
    while k < len(item) and item[k] in _DIGITS:
        k += 1
    if k == 0:
        _fail(
            text,
            at,
            f"missing {what}" if not item else f"{what} must start with digits",
            _TIME_FORM,
        )
    if k > 15:
        _fail(text, at, f"{what} {item[:k]} is too large", f"at most {MAX_TIME_US // 1000} ms")
    number = int(item[:k])
    unit = item[k:].upper() or "M"
    if len(unit) > 1 or (unit not in _TIME_UNITS_US and unit not in _FREQUENCY_UNITS_US):
        bad = k if item[k].upper() not in "SMUHK" else k + 1
        _fail(text, at + bad, f"unexpected {item[bad]!r} in a {what}", _TIME_FORM)
    if unit in _TIME_UNITS_US:
        us = number * _TIME_UNITS_US[unit]
    elif number == 0:
        _fail(text, at, f"a frequency of 0 gives no {what}", "a frequency of 1 or more")
    else:
        scale = _FREQUENCY_UNITS_US[unit]
        us = (scale + number // 2) // number  # round half up, like Java's Math.round
    if us < minimum:
        problem = (
            f"{what} must be positive" if number == 0 else f"{what} {item} is under 1 microsecond"
        )
        _fail(text, at, problem, f"at least {minimum} microsecond")
    if us > MAX_TIME_US:
        _fail(
            text,
            at,
            f"{what} {item} is too long",
            f"at most {MAX_TIME_US // 1000} ms (about 24.8 days)",
        )
    return us


def _scan_event(text: str, i: int) -> Event:
    """Read the event that starts at ``i`` and runs to the end of ``text``."""
    items = _split_items(text, i)
    at, kind = items[0]
    if not kind:
        _fail(text, at, "missing event", _EVENT_FORMS)
    letter = kind[0].upper()
    if letter not in "UINPQES":
        _fail(text, at, f"unknown event type {kind[0]!r}", _EVENT_FORMS)
    if len(kind) > 1:
        _fail(text, at + 1, f"unexpected {kind[1]!r} after event type {letter}", "',' or the end")
    args = items[1:]
    if letter in "UIN":
        if args:
            _fail(text, args[0][0] - 1, f"event {letter} takes no arguments", "the end")
        return {"U": DefaultEvent, "I": ImmediateEvent, "N": NeverEvent}[letter]()
    if letter in "PQ":
        return _periodic(text, letter, args)
    if letter == "E":
        return _clock(text, args)
    return _state(text, args)


def _too_many(text: str, args: list[tuple[int, str]], allowed: int, what: str) -> None:
    if len(args) > allowed:
        _fail(text, args[allowed][0] - 1, f"too many items in a {what} event", "the end")


def _periodic(text: str, letter: str, args: list[tuple[int, str]]) -> PeriodicEvent:
    _too_many(text, args, 2, "periodic")
    if not args:
        # bare "p": the Java reference's default of once a second
        return PeriodicEvent(1_000_000, continuous=letter == "P")
    period = _scan_time(text, *args[0], "period", 1)
    immediate = True
    if len(args) == 2:
        at, flag = args[1]
        if flag.upper() not in ("T", "TRUE", "F", "FALSE"):
            _fail(text, at, f"bad immediate flag {flag!r}", "T or F (TRUE or FALSE)")
        immediate = flag.upper()[0] == "T"
    return PeriodicEvent(period, continuous=letter == "P", immediate=immediate)


def _clock(text: str, args: list[tuple[int, str]]) -> ClockEvent:
    _too_many(text, args, 3, "clock")
    if not args:
        _fail(
            text,
            len(text),
            "a clock event needs an event number",
            "',' and a hex number such as 8f",
        )
    at, number = args[0]
    if not number or any(c not in _HEX for c in number):
        bad = next((k for k, c in enumerate(number) if c not in _HEX), 0)
        _fail(text, at + bad, "clock event number must be hexadecimal", "hex digits such as 8f")
    if len(number) > 8 or int(number, 16) > MAX_CLOCK_EVENT:
        _fail(text, at, f"clock event number {number} is too large", f"at most {MAX_CLOCK_EVENT:x}")
    clock_type = ClockType.EITHER
    if len(args) > 1:
        at, kind = args[1]
        if kind.upper() not in _CLOCK_TYPES:
            _fail(
                text,
                at,
                f"bad clock event type {kind!r}",
                "H (hardware), S (software) or E (either)",
            )
        clock_type = _CLOCK_TYPES[kind.upper()]
    delay = _scan_time(text, *args[2], "delay", 0) if len(args) > 2 else 0
    return ClockEvent(int(number, 16), clock_type, delay)


def _state(text: str, args: list[tuple[int, str]]) -> StateEvent:
    _too_many(text, args, 4, "state")
    if len(args) < 4:
        missing = ("a device", "a value", "a delay", "an operator")[len(args)]
        _fail(
            text,
            len(text),
            "a state event needs a device, value, delay and operator",
            f"',' and {missing}",
        )
    (at, device_text), (value_at, value_text), delay_item, (op_at, op_text) = args
    end = at + len(device_text)
    device, qualifier, j = _scan_device(text, at, end)
    if j < end:
        _fail(text, j, f"unexpected {text[j]!r} in the state device name", "',' and a value")
    if qualifier != ":":
        _fail(text, at + 1, "a state device takes no property qualifier", "':'")
    value, j = _scan_number(
        text, value_at, value_at + len(value_text), "state value", MAX_STATE_VALUE
    )
    if value is None or j != value_at + len(value_text):
        _fail(text, j, "state value must be a whole number", "digits")
    delay = _scan_time(text, *delay_item, "delay", 0)
    op = _STATE_OPS.get(op_text)
    if op is None:
        _fail(text, op_at, f"bad state operator {op_text!r}", "one of = != > < >= <= *")
    return StateEvent(device, value, delay, op)


# --- public functions --------------------------------------------------------


def _as_str(text: object, what: str = "DRF") -> str:
    if type(text) is str:
        return text
    if isinstance(text, str):
        # a subclass could override __eq__/__hash__ and poison the cache
        return str.__str__(text)
    raise TypeError(f"a {what} must be a str, not {type(text).__name__}")


@functools.lru_cache(maxsize=4096)
def _parse_cached(text: str) -> DataRequest:
    return _parse_request(text)


def parse(text: str) -> DataRequest:
    """Parse DRF ``text`` into a :class:`DataRequest`.

    Names are case-insensitive. Raises :class:`DRFError` for any invalid text
    (with the position of the first problem), :class:`TypeError` for a
    non-``str``. Results are cached: the same text parses once.
    """
    return _parse_cached(_as_str(text))


@functools.lru_cache(maxsize=256)
def _parse_event_cached(text: str) -> Event:
    _check_length(text, "event")
    _check_characters(text)
    return _scan_event(text, 1 if text.startswith("@") else 0)


def parse_event(text: str) -> Event:
    """Parse event text such as ``"I"``, ``"p,1000"`` or ``"@e,8f,H,100"``.

    The leading ``@`` is optional. Raises :class:`DRFError` or
    :class:`TypeError` like :func:`parse`.
    """
    return _parse_event_cached(_as_str(text, "DRF event"))


def canonical(text: str) -> str:
    """The canonical form of DRF ``text``: ``str(parse(text))``."""
    return parse(text).to_drf()


def _as_request(drf: object) -> tuple[DataRequest, str | None]:
    if isinstance(drf, DataRequest):
        return drf, None
    text = _as_str(drf, "DRF (str or DataRequest)")
    return parse(text), text


def _as_event(event: object) -> Event:
    if isinstance(event, Event):
        return event
    return parse_event(_as_str(event, "DRF event (str or Event)"))


def _event_at(text: str) -> int:
    # In a valid DRF the first "@" after the qualifier starts the event:
    # names, properties, ranges and fields never contain one.
    return text.find("@", 2)


def with_event(drf: str | DataRequest, event: Event | str) -> str:
    """``drf`` with its event set to ``event`` (replacing any it had).

    Text keeps every character the caller wrote before the event; only the
    event is rewritten. A :class:`DataRequest` comes back in canonical form.
    """
    request, text = _as_request(drf)
    new = _as_event(event)
    if text is None:
        return replace(request, event=new).to_drf()
    at = _event_at(text)
    return f"{text if at < 0 else text[:at]}@{new.to_drf()}"


def with_default_event(drf: str | DataRequest, event: Event | str) -> str:
    """``drf`` with ``event`` appended if it has none; otherwise unchanged.

    This is how one-shot reads get ``@I``: ``with_default_event("M:OUTTMP",
    "I") == "M:OUTTMP@I"``, while ``"M:OUTTMP@p,1000"`` (or an explicit
    ``@U``) comes back as given. Text is validated but kept byte for byte.
    """
    request, text = _as_request(drf)
    new = _as_event(event)
    written = request.to_drf() if text is None else text
    return written if request.event is not None else f"{written}@{new.to_drf()}"


def to_write_drf(drf: str | DataRequest) -> str:
    """The DRF a setting of ``drf`` is sent as.

    READING becomes SETTING and STATUS becomes CONTROL; SETTING, CONTROL,
    ANALOG and DIGITAL stay; range and field stay; the event is forced to
    ``@N``. ``"Z:ACLTST"`` -> ``"Z:ACLTST.SETTING@N"``, ``"Z|ACLTST"`` ->
    ``"Z:ACLTST.CONTROL@N"``, ``"Z@ACLTST.MAX"`` -> ``"Z:ACLTST.ANALOG.MAX@N"``.
    Raises :class:`DRFError` for a property that cannot be written
    (DESCRIPTION, INDEX, LONG_NAME, ALARM_LIST_NAME) or a field that has no
    writable counterpart (e.g. ``STATUS.ON``).
    """
    request, text = _as_request(drf)
    shown = request.to_drf()
    # name what the caller passed; the caret points into the canonical form
    subject = "cannot write" if text in (None, shown) else f"cannot write {text!r}, read as"
    target = _WRITE_PROPERTY.get(request.property)
    if target is None:
        raise DRFError(
            shown,
            len(request.device) + 1,
            f"the {request.property.name} property is read-only",
            "a READING, SETTING, STATUS, CONTROL, ANALOG or DIGITAL request",
            subject=subject,
        )
    if request.field is not None and request.field not in target.fields:
        at = _event_at(shown)
        raise DRFError(
            shown,
            (shown if at < 0 else shown[:at]).rfind(".") + 1,
            f"field {request.field.name} cannot be written as {target.name}",
            _field_list(target),
            subject=subject,
        )
    return DataRequest(request.device, target, request.range, request.field, NeverEvent()).to_drf()
