"""DRF event values: *when* a data request is answered.

Private home of the event classes; import them from :mod:`acnet_proto.drf`,
which also holds the parser (:func:`acnet_proto.drf.parse_event`).

Every event is an immutable value. ``str(event)`` and ``event.to_drf()`` give
its canonical DRF text without the leading ``@``:

- ``DefaultEvent()`` -> ``U``; ``ImmediateEvent()`` -> ``I``; ``NeverEvent()`` -> ``N``
- ``PeriodicEvent(1_000_000)`` -> ``p,1000``;
  ``PeriodicEvent(2_000_000, continuous=False)`` -> ``q,2000``;
  ``PeriodicEvent(1500, immediate=False)`` -> ``p,1500U,F``
- ``ClockEvent(0x8F)`` -> ``e,8f``;
  ``ClockEvent(0x8F, ClockType.HARDWARE, 100_000)`` -> ``e,8f,H,100``
- ``StateEvent("V:STATE", 5, 0, StateOp.EQ)`` -> ``s,V:STATE,5,0,=``

Times are held in integer microseconds and written in milliseconds (the DRF
default unit) when they are whole milliseconds, else with the ``U``
(microsecond) suffix, so that the text parses back to exactly the same value.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

__all__ = [
    "CANONICAL_DEVICE",
    "MAX_CLOCK_EVENT",
    "MAX_STATE_VALUE",
    "MAX_TIME_US",
    "ClockEvent",
    "ClockType",
    "DefaultEvent",
    "Event",
    "ImmediateEvent",
    "NeverEvent",
    "PeriodicEvent",
    "StateEvent",
    "StateOp",
    "format_time",
]

#: Longest period or delay: the Java reference keeps milliseconds in an
#: ``int``, so anything above 2**31-1 ms could not reach a server intact.
MAX_TIME_US = (2**31 - 1) * 1000
#: Clock event numbers: TCLK uses one byte, other clock systems up to 16 bits.
MAX_CLOCK_EVENT = 0xFFFF
#: State values travel as signed 32-bit integers; DRF has no sign syntax.
MAX_STATE_VALUE = 2**31 - 1
#: A device in canonical form: upper case, ``:`` as the second character, then
#: 1..62 name characters (the character set of the Java DRF3 device parser).
CANONICAL_DEVICE = re.compile(r"[A-Z0]:[A-Z0-9_:\-]{1,62}")


def format_time(us: int) -> str:
    """DRF text for a period or delay of ``us`` microseconds.

    Whole milliseconds are written bare (``1000``), anything else with the
    ``U`` suffix (``1500U``); either form parses back to ``us`` exactly.
    """
    if us % 1000 == 0:
        return str(us // 1000)
    return f"{us}U"


def _check_int(name: str, value: object, low: int, high: int) -> None:
    # bool is an int subclass, but PeriodicEvent(True) is always a mistake
    if type(value) is not int:
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in {low}..{high}, got {value}")


def _check_bool(name: str, value: object) -> None:
    if type(value) is not bool:
        raise TypeError(f"{name} must be a bool, not {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class Event:
    """Base of all DRF events; never instantiated itself."""

    def __post_init__(self) -> None:
        if type(self) is Event:
            raise TypeError("Event is abstract; use one of its subclasses")

    def to_drf(self) -> str:
        """The canonical DRF text of this event, without the ``@``."""
        raise NotImplementedError

    def __str__(self) -> str:
        return self.to_drf()


@dataclass(frozen=True, slots=True)
class DefaultEvent(Event):
    """``@U``: whatever the device's database entry says (usually a one-shot)."""

    def to_drf(self) -> str:
        return "U"


@dataclass(frozen=True, slots=True)
class ImmediateEvent(Event):
    """``@I``: answer once, now. What one-shot reads send."""

    def to_drf(self) -> str:
        return "I"


@dataclass(frozen=True, slots=True)
class NeverEvent(Event):
    """``@N``: never send data. What settings send (fire and confirm)."""

    def to_drf(self) -> str:
        return "N"


@dataclass(frozen=True, slots=True)
class PeriodicEvent(Event):
    """``@p,<period>[,<T|F>]`` or ``@q,...``: sample every ``period_us``.

    ``continuous`` is true for ``p`` (send every sample) and false for ``q``
    (send only when the value changed). ``immediate`` is the optional third
    item: also send one sample right away (default true, written ``F`` only
    when false).
    """

    period_us: int
    continuous: bool = True
    immediate: bool = True

    def __post_init__(self) -> None:
        _check_int("period_us", self.period_us, 1, MAX_TIME_US)
        _check_bool("continuous", self.continuous)
        _check_bool("immediate", self.immediate)

    @property
    def period_ms(self) -> float:
        """The period in milliseconds (what DPM works in)."""
        return self.period_us / 1000

    def to_drf(self) -> str:
        text = ("p," if self.continuous else "q,") + format_time(self.period_us)
        return text if self.immediate else text + ",F"


class ClockType(enum.Enum):
    """Which clock decoder a clock event may come from."""

    HARDWARE = "H"
    SOFTWARE = "S"
    EITHER = "E"


@dataclass(frozen=True, slots=True)
class ClockEvent(Event):
    """``@e,<hex>[,<H|S|E>[,<delay>]]``: sample ``delay_us`` after a clock event.

    Canonical text leaves out what is default: the type when it is
    ``EITHER`` and the delay is zero, the delay when it is zero.
    """

    event_number: int
    type: ClockType = ClockType.EITHER
    delay_us: int = 0

    def __post_init__(self) -> None:
        _check_int("event_number", self.event_number, 0, MAX_CLOCK_EVENT)
        if not isinstance(self.type, ClockType):
            raise TypeError(f"type must be a ClockType, not {type(self.type).__name__}")
        _check_int("delay_us", self.delay_us, 0, MAX_TIME_US)

    def to_drf(self) -> str:
        text = f"e,{self.event_number:x}"
        if self.delay_us:
            return f"{text},{self.type.value},{format_time(self.delay_us)}"
        if self.type is not ClockType.EITHER:
            return f"{text},{self.type.value}"
        return text


class StateOp(enum.Enum):
    """How a state event compares the state device's new value."""

    EQ = "="
    NE = "!="
    GT = ">"
    LT = "<"
    GE = ">="
    LE = "<="
    ANY = "*"


@dataclass(frozen=True, slots=True)
class StateEvent(Event):
    """``@s,<device>,<value>,<delay>,<op>``: sample when a state device changes.

    ``device`` is the canonical ``X:NAME`` of the state device; the event
    fires ``delay_us`` after its value compares to ``value`` with ``op``
    (``StateOp.ANY`` fires on every change).
    """

    device: str
    value: int
    delay_us: int
    op: StateOp

    def __post_init__(self) -> None:
        if type(self.device) is not str:
            raise TypeError(f"device must be a str, not {type(self.device).__name__}")
        if CANONICAL_DEVICE.fullmatch(self.device) is None:
            raise ValueError(f"device must be a canonical X:NAME device, got {self.device!r}")
        _check_int("value", self.value, 0, MAX_STATE_VALUE)
        _check_int("delay_us", self.delay_us, 0, MAX_TIME_US)
        if not isinstance(self.op, StateOp):
            raise TypeError(f"op must be a StateOp, not {type(self.op).__name__}")

    def to_drf(self) -> str:
        return f"s,{self.device},{self.value},{format_time(self.delay_us)},{self.op.value}"
