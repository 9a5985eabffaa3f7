"""What a DRF asks for, parsed: :class:`DataRequest` and its parts, and :class:`DRFError`.

A :class:`DataRequest` is immutable and checks its parts when made;
``str(request)`` is its canonical text (the rules are in :mod:`acnet_proto.drf`).
The text is read by :mod:`acnet_proto.drf.parser`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NoReturn

from acnet_proto.drf.events import (
    CANONICAL_DEVICE,
    Event,
)
from acnet_proto.drf.sources import Source
from acnet_proto.errors import AcnetProtoError

__all__ = [
    "MAX_DRF_LENGTH",
    "MAX_INDEX",
    "ArrayRange",
    "ByteRange",
    "DRFError",
    "DataRequest",
    "Field",
    "Property",
    "Range",
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


def fail(text: str, position: int, problem: str, expected: str | None = None) -> NoReturn:
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
PROPERTY_BY_NAME = {p.value: p for p in Property} | {
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
PROPERTY_BY_QUALIFIER = {c: p for p, c in _QUALIFIER_CHAR.items()} | {"?": _P.READING}

FIELD_BY_NAME = {f.value: f for f in Field} | {
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
WRITE_PROPERTY = {
    _P.READING: _P.SETTING,
    _P.SETTING: _P.SETTING,
    _P.STATUS: _P.CONTROL,
    _P.CONTROL: _P.CONTROL,
    _P.ANALOG: _P.ANALOG,
    _P.DIGITAL: _P.DIGITAL,
}


def field_list(prop: Property) -> str:
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
    applies), unlike an explicit ``DefaultEvent()`` (``@U``). ``source`` is
    ``None`` for the live device, else a :class:`~acnet_proto.drf.LoggerSource`
    or :class:`~acnet_proto.drf.FTPSource` (the ``<-`` suffix).
    """

    device: str
    property: Property = Property.READING
    range: Range | None = None
    field: Field | None = None
    event: Event | None = None
    source: Source | None = None

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
                    f"expected {field_list(self.property)}"
                )
        if self.event is not None and not isinstance(self.event, Event):
            raise TypeError(f"event must be an Event or None, not {type(self.event).__name__}")
        if self.source is not None and not isinstance(self.source, Source):
            raise TypeError(
                f"source must be a LoggerSource, FTPSource or None, "
                f"not {type(self.source).__name__}"
            )

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
        if self.source is not None:
            parts.append("<-" + self.source.to_drf())
        return "".join(parts)

    def __str__(self) -> str:
        return self.to_drf()


# --- the scanner -------------------------------------------------------------
# Hand-written: one left-to-right pass, no backtracking, exact error positions.
