"""What reads and writes return: :class:`Reading`, :class:`WriteResult` and their parts.

These are the seeds' (pacsys's) types with the same names, attributes and
status semantics, so code written against pacsys reads them unchanged:
``facility_code`` is the ACNET facility (1 ACNET, 16 DBM, 17 DPM) and
``error_code`` is 0 for success, positive for a warning, negative for an
error. Both classes are immutable and compare by value (numpy arrays
included).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from acnet_proto.errors import RemoteProtocolError
from acnet_proto.status import Status

__all__ = [
    "BasicControl",
    "DeviceMeta",
    "History",
    "Reading",
    "SubscriptionHandle",
    "ValueType",
    "WriteResult",
    "utc_of_millis",
]

if TYPE_CHECKING:
    from acnet_proto.api.backend import SubscriptionHandle
else:
    # the seeds' path (pacsys.types.SubscriptionHandle), bound on first use: importing it
    # here would be circular (acnet_proto.api.backend imports this module)

    def __getattr__(name: str) -> Any:
        if name == "SubscriptionHandle":
            from acnet_proto.api.backend import SubscriptionHandle

            globals()[name] = SubscriptionHandle
            return SubscriptionHandle
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class ValueType(enum.Enum):
    """The shape of :attr:`Reading.value` (the strings are pacsys's)."""

    SCALAR = "scalar"
    SCALAR_ARRAY = "scalarArr"
    TIMED_SCALAR_ARRAY = "timedScalarArr"
    RAW = "raw"
    TEXT = "text"
    TEXT_ARRAY = "textArr"
    ANALOG_ALARM = "anaAlarm"
    DIGITAL_ALARM = "digAlarm"
    BASIC_STATUS = "basicStatus"


class BasicControl(enum.IntEnum):
    """Commands for a device's CONTROL property (the seeds' ``BasicControl``).

    The numbers are Java's ``BasicControlDefs`` ordinals, as in pacsys.
    """

    RESET = 0
    ON = 1
    OFF = 2
    POSITIVE = 3
    NEGATIVE = 4
    RAMP = 5
    DC = 6
    LOCAL = 7
    REMOTE = 8
    TRIP = 9


@dataclass(frozen=True, slots=True)
class DeviceMeta:
    """A device's metadata, as the server's ``DeviceInfo`` reply gives it."""

    device_index: int
    name: str
    description: str
    units: str | None = None
    format_hint: int | None = None


class History:
    """Timestamped values of one device: a logger window, or one chunk of a fast time plot.

    ``values`` is a read-only float64 array and ``micros`` a read-only int64
    array of the same length: each value's time in microseconds since the
    Unix epoch (UTC). :attr:`times` is the same times as ``datetime64[us]``
    (a view: no copy). An empty window is an empty History. For code written
    against pacsys, which returns ``{"data": ..., "micros": ...}``,
    ``history["data"]`` and ``history["micros"]`` work too.
    """

    __slots__ = ("micros", "values")
    values: np.ndarray
    micros: np.ndarray

    def __init__(self, values: Any = (), micros: Any = ()) -> None:
        data = np.array(values, dtype=np.float64)
        stamps = np.array(micros, dtype=np.int64)
        if data.ndim != 1 or data.shape != stamps.shape:
            raise ValueError(
                f"History needs one time per value: {data.shape} values, {stamps.shape} times"
            )
        data.flags.writeable = stamps.flags.writeable = False
        object.__setattr__(self, "values", data)
        object.__setattr__(self, "micros", stamps)

    @classmethod
    def adopt(cls, values: np.ndarray, micros: np.ndarray) -> History:
        """A History of arrays the caller hands over (no copy): they are made read-only."""
        self = cls.__new__(cls)
        values.flags.writeable = micros.flags.writeable = False
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "micros", micros)
        return self

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("History is immutable")

    @property
    def times(self) -> np.ndarray:
        """Each value's time as ``datetime64[us]`` (UTC)."""
        return self.micros.view("datetime64[us]")

    def __len__(self) -> int:
        return int(self.values.size)

    def __getitem__(self, key: str) -> np.ndarray:
        if key == "data":
            return self.values
        if key == "micros":
            return self.micros
        raise KeyError(f"{key!r}: a History has 'data' (values) and 'micros'")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, History):
            return NotImplemented
        return bool(
            np.array_equal(self.micros, other.micros)
            and np.array_equal(self.values, other.values, equal_nan=True)
        )

    def __hash__(self) -> int:
        return hash((len(self), int(self.micros[0]) if len(self) else 0))

    def __repr__(self) -> str:
        if not len(self):
            return "History(0 points)"
        first, last = self.times[0], self.times[-1]
        return f"History({len(self)} points, {first}Z .. {last}Z)"


def utc_of_millis(millis: int) -> datetime | None:
    """Milliseconds since the Unix epoch as a UTC datetime; 0 means "not stamped".

    A peer's stamp no date can hold (past the year 9999) raises
    :class:`~acnet_proto.errors.RemoteProtocolError`.
    """
    if not millis:
        return None
    try:
        return datetime.fromtimestamp(millis / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        raise RemoteProtocolError(
            f"a reply is stamped {millis} ms after 1970, which is no date"
        ) from None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.shape == b.shape
            and bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True  # two NaN readings are the same reading
    return bool(a == b)


# values no reading needs to copy or convert: most readings are one of these
_IMMUTABLE = frozenset({float, int, str, bytes, bool, tuple, type(None)})


def _typed_value(drf: str, value: Any, value_type: ValueType | None) -> Any:
    """A reading's ``value`` as it keeps it (frozen); a value needs its ``value_type``."""
    if value is not None and value_type is None:
        raise ValueError(f"Reading({drf!r}): value_type is required when value is set")
    return _freeze(value)


def _freeze(value: Any) -> Any:
    if type(value) in _IMMUTABLE:
        return value
    if isinstance(value, np.ndarray) and value.flags.writeable:
        value = value.copy()
        value.flags.writeable = False
    elif isinstance(value, list):
        value = tuple(value)
    elif isinstance(value, dict):
        # timed arrays are a dict of arrays: those must be read-only too
        value = {k: _freeze(v) for k, v in value.items()}
    return value


class _Status:
    """Status predicates shared by readings and write results."""

    __slots__ = ()
    facility_code: int
    error_code: int

    @property
    def status(self) -> Status:
        """The ACNET status as an object with ``name`` and ``text``."""
        return Status(self.facility_code, self.error_code)

    @property
    def is_success(self) -> bool:
        """True if the status is success (``error_code == 0``)."""
        return self.error_code == 0

    @property
    def is_warning(self) -> bool:
        """True if the status is a warning (``error_code > 0``)."""
        return self.error_code > 0

    @property
    def is_error(self) -> bool:
        """True if the status is an error (``error_code < 0``)."""
        return self.error_code < 0


@dataclass(frozen=True, slots=True, eq=False)
class Reading(_Status):
    """One device reading: a value, or an error status, with its metadata.

    ``value`` is a float (SCALAR), a read-only float64 numpy array
    (SCALAR_ARRAY), bytes (RAW), str (TEXT), a tuple of str (TEXT_ARRAY), or a
    dict (alarms, basic status, timed arrays). A historical read
    (``<-LOGGER``) or a fast time plot chunk (``<-FTP``) is a
    :class:`History` (TIMED_SCALAR_ARRAY). ``timestamp`` is a UTC-aware
    datetime. An error reading has ``value is None`` and a negative
    ``error_code``; ``message`` says what the status means.
    """

    drf: str
    value_type: ValueType | None = None
    facility_code: int = 0
    error_code: int = 0
    value: Any = None
    message: str | None = None
    timestamp: datetime | None = None
    cycle: int | None = None
    meta: DeviceMeta | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _typed_value(self.drf, self.value, self.value_type))

    @classmethod
    def of_reply(
        cls,
        drf: str,
        value_type: ValueType | None,
        facility_code: int,
        error_code: int,
        value: Any,
        message: str | None,
        millis: int,
        cycle: int | None,
        meta: DeviceMeta | None,
    ) -> Reading:
        """The reading a reply makes: the fields in order, the stamp as the reply's Unix ``millis``.

        Equal to ``Reading(..., timestamp=utc_of_millis(millis), ...)``, and raises
        as that does (a stamp no date can hold is a
        :class:`~acnet_proto.errors.RemoteProtocolError`), in half the time: the
        fields are set directly, with no keyword arguments to match.
        """
        value = _typed_value(drf, value, value_type)
        stamp = utc_of_millis(millis)  # before any field: a stamp that is no date makes none
        self = _new_reading(cls)
        _SET_DRF(self, drf)
        _SET_VALUE_TYPE(self, value_type)
        _SET_FACILITY(self, facility_code)
        _SET_ERROR(self, error_code)
        _SET_VALUE(self, value)
        _SET_MESSAGE(self, message)
        _SET_STAMP(self, stamp)
        _SET_CYCLE(self, cycle)
        _SET_META(self, meta)
        return self

    @property
    def ok(self) -> bool:
        """True if the value is usable: success or warning, with a value.

        A warning with no value is not ok, though not :attr:`is_error` either: the
        lab's DPM answers a device it does not have so (``DPM_PEND``, 17/+1).
        """
        return self.error_code >= 0 and self.value is not None

    @property
    def name(self) -> str:
        """The device name: from the metadata, else from the DRF."""
        if self.meta is not None:
            return self.meta.name
        return _device_of(self.drf)

    @property
    def units(self) -> str | None:
        """Engineering units from the metadata, or None."""
        return self.meta.units if self.meta is not None else None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Reading):
            return NotImplemented
        return (
            self.drf == other.drf
            and self.value_type == other.value_type
            and self.facility_code == other.facility_code
            and self.error_code == other.error_code
            and self.message == other.message
            and self.timestamp == other.timestamp
            and self.cycle == other.cycle
            and self.meta == other.meta
            and _same(self.value, other.value)
        )

    def __hash__(self) -> int:
        # the value is left out: arrays and dicts do not hash, and equal
        # readings still hash equal
        return hash((self.drf, self.facility_code, self.error_code, self.timestamp, self.cycle))

    def __repr__(self) -> str:
        if self.value is None:
            return f"Reading({self.drf!r}, {self.status})"
        value = self.value
        if isinstance(value, np.ndarray) and value.size > 8:
            shown = f"array(len={value.size}, first={value.ravel()[:4].tolist()})"
        else:
            shown = repr(value)
        return f"Reading({self.drf!r}, {shown}, units={self.units!r}, at={self.timestamp})"


def _setter(name: str) -> Any:
    # a slot's own setter: what the frozen dataclass's __init__ does, minus a lookup by name
    return Reading.__dict__[name].__set__


_new_reading = object.__new__
_SET_DRF = _setter("drf")
_SET_VALUE_TYPE = _setter("value_type")
_SET_FACILITY = _setter("facility_code")
_SET_ERROR = _setter("error_code")
_SET_VALUE = _setter("value")
_SET_MESSAGE = _setter("message")
_SET_STAMP = _setter("timestamp")
_SET_CYCLE = _setter("cycle")
_SET_META = _setter("meta")


@dataclass(frozen=True, slots=True, eq=False)
class WriteResult(_Status):
    """The outcome of one setting, with verification if it was asked for.

    ``verified`` is True when a readback matched, False when it did not,
    None when no verification was asked for; ``readback`` is the last value
    read back.
    """

    drf: str
    facility_code: int = 0
    error_code: int = 0
    message: str | None = None
    verified: bool | None = None
    readback: Any = None
    skipped: bool = False
    attempts: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "readback", _freeze(self.readback))

    @property
    def ok(self) -> bool:
        """True if the setting succeeded (``error_code == 0``)."""
        return self.error_code == 0

    @property
    def success(self) -> bool:
        """Alias of :attr:`ok`, as in the seeds."""
        return self.ok

    @property
    def confirmed(self) -> bool:
        """True if the setting succeeded and verification, if asked, did not fail."""
        return self.ok and self.verified is not False

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WriteResult):
            return NotImplemented
        return (
            self.drf == other.drf
            and self.facility_code == other.facility_code
            and self.error_code == other.error_code
            and self.message == other.message
            and self.verified == other.verified
            and self.skipped == other.skipped
            and self.attempts == other.attempts
            and _same(self.readback, other.readback)
        )

    def __hash__(self) -> int:
        return hash((self.drf, self.facility_code, self.error_code, self.verified))


def _device_of(drf: str) -> str:
    # Cheap and total: a Reading may carry a DRF the parser would reject
    # (an error reading for bad input), and its name must still print.
    end = len(drf)
    for stop in ".[{@<":
        at = drf.find(stop, 2)
        if at != -1:
            end = min(end, at)
    # names are case-insensitive; the server (and DeviceInfo) spell them upper case
    name = drf[:end].upper()
    return name[0] + ":" + name[2:] if len(name) > 2 else name
