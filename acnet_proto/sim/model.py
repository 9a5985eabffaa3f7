"""A simulated accelerator: devices, their values over time, and the DPM replies about them.

The embedded DPM server (:mod:`acnet_proto.adapters.sim.dpm`) asks this module
everything a real DPM would ask the database and the front ends. It is pure:
no sockets, no clock — every question about a value takes ``now``, the Unix
time in seconds, and the answer is a function of it.

>>> model = DeviceModel.default()
>>> reply, entry = model.add_to_list(list_id=7, ref_id=1, drf="M:OUTTMP@I")
>>> reply.status, entry.device_info(1).description
(0, 'Outdoor temperature')
>>> entry.reply(1, now=1763769600.015).timestamp
1763769600015
>>> model.add_to_list(7, 2, "Z:NOTFND@I")[0].status     # DPM_NO_SUCH_DEVICE
-6639

The model file (TOML)
---------------------
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

Statuses
--------
Every refusal is a real ACNET status (``acnet-status-codes.json``):

=====================================================  ======================
what is wrong                                          status
=====================================================  ======================
DRF text does not parse                                ``DPM_BAD_REQUEST``
... because of its event                               ``DPM_BAD_EVENT``
device not in the model (name or ``0:<di>``)           ``DPM_NO_SUCH_DEVICE``
property the device lacks (SETTING of a read-only      ``DBM_NOPROP``
device, STATUS/CONTROL/ANALOG/DIGITAL without that
table, ALARM_LIST_NAME)
field the simulator does not serve for the property    ``DPM_NO_SUCH_FIELD``
array or byte range past the end of the data           ``DPM_OUT_OF_BOUNDS``
range on data that has no elements (text, status,      ``DPM_BAD_RANGE``
alarms, description, ...)
byte range of doubles not on 4-byte boundaries         ``DPM_BAD_FRAMING``
SCALED/PRIMARY of a raw or text device                 ``DPM_NO_SCALE``
periodic event faster than 1 kHz                       ``DPM_ILLFTD``
state event (``@s``): no state devices are simulated   ``DPM_NOT_YET``
CONTROL read with an event that sends data             ``DIO_SETONLY``
setting a read-only property or field                  ``DIO_READONLY``
setting with the wrong number of values or bytes       ``DPM_BAD_LENGTH``
setting of the wrong type; unknown control command     ``DIO_INVDATA``
alarm count or mask outside int32                      ``DIO_RANGE``
setting a whole alarm block (no field)                 ``DPM_NO_SUCH_FIELD``
=====================================================  ======================

Raw data of numeric devices is IEEE float32, little-endian, 4 bytes per
element; PRIMARY and SCALED are the same (identity scaling).
"""

from __future__ import annotations

import enum
import functools
import math
import random
import struct
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from acnet_proto import drf
from acnet_proto.api.verify import CONTROL_READBACK
from acnet_proto.drf.events import CANONICAL_DEVICE
from acnet_proto.errors import AcnetProtoError
from acnet_proto.pc import daqdata, dpm
from acnet_proto.pc._message import Message
from acnet_proto.status import Status
from acnet_proto.types import BasicControl

__all__ = [
    "CONTROL_COMMANDS",
    "MIN_PERIOD_US",
    "STATUS_BITS",
    "AnalogAlarm",
    "BasicStatus",
    "BasicStatusBit",
    "Device",
    "DeviceModel",
    "DeviceModelError",
    "DigitalAlarm",
    "Entry",
    "Kind",
    "RequestRejected",
    "status_reply",
]


def _status(name: str) -> int:
    return Status.from_name(name).status


DPM_BAD_REQUEST = _status("DPM_BAD_REQUEST")
DPM_BAD_EVENT = _status("DPM_BAD_EVENT")
DPM_NO_SUCH_DEVICE = _status("DPM_NO_SUCH_DEVICE")
DBM_NOPROP = _status("DBM_NOPROP")
DPM_NO_SUCH_FIELD = _status("DPM_NO_SUCH_FIELD")
DPM_OUT_OF_BOUNDS = _status("DPM_OUT_OF_BOUNDS")
DPM_BAD_RANGE = _status("DPM_BAD_RANGE")
DPM_BAD_FRAMING = _status("DPM_BAD_FRAMING")
DPM_NO_SCALE = _status("DPM_NO_SCALE")
DPM_ILLFTD = _status("DPM_ILLFTD")
DPM_NOT_YET = _status("DPM_NOT_YET")
DIO_SETONLY = _status("DIO_SETONLY")
DIO_READONLY = _status("DIO_READONLY")
DPM_BAD_LENGTH = _status("DPM_BAD_LENGTH")
DIO_INVDATA = _status("DIO_INVDATA")
DIO_RANGE = _status("DIO_RANGE")

#: The fastest periodic event served (1 kHz); faster ones get ``DPM_ILLFTD``.
MIN_PERIOD_US = 1000

_P = drf.Property
_F = drf.Field
_TWO_PI = 2.0 * math.pi
_ATOM = 4  # bytes per element in raw data of numeric devices (float32)
_MAX_DI = 2**31 - 1  # DeviceInfo_reply carries the di as an int32


class DeviceModelError(AcnetProtoError, ValueError):
    """A model file that cannot be used; the message names the file, entry and key."""


class RequestRejected(AcnetProtoError, ValueError):
    """A DRF the model cannot serve; ``status`` is the ACNET status to answer with."""

    def __init__(self, drf_text: str, status: int, reason: str) -> None:
        self.drf = drf_text
        self.status = status
        self.reason = reason
        super().__init__(f"{drf_text!r}: {reason} ({Status.from_int(status).name})")


class Motion(enum.Enum):
    """How a numeric device's reading moves about its setting."""

    WAVE = "wave"
    WALK = "walk"


class Kind(enum.Enum):
    """What a device's reading is made of."""

    SCALAR = "scalar"
    ARRAY = "array"
    TEXT = "text"
    RAW = "raw"


@dataclass(frozen=True, slots=True)
class BasicStatusBit:
    """One basic status bit as the device database defines it: what it is called, and its text."""

    attribute: str  # of BasicStatus
    name: str
    long_name: str
    true_text: str
    false_text: str

    @property
    def mask(self) -> int:
        """The bit in :attr:`BasicStatus.word`."""
        return 1 << STATUS_BITS.index(self)


#: The basic status bits in bit order (bit 0 first): the raw status word, STATUS.TEXT,
#: STATUS.BIT_NAMES/BIT_VALUES and the device database's definitions all follow it.
STATUS_BITS = (
    BasicStatusBit("on", "On", "On/Off", "On", "Off"),
    BasicStatusBit("ready", "Ready", "Ready/Tripped", "Ready", "Tripped"),
    BasicStatusBit("remote", "Remote", "Remote/Local", "Remote", "Local"),
    BasicStatusBit("positive", "Polarity", "Positive/Negative", "Positive", "Negative"),
    BasicStatusBit("ramp", "Ramp", "Ramp/DC", "Ramp", "DC"),
)


@dataclass(slots=True)
class BasicStatus:
    """The five basic status bits; CONTROL commands change them."""

    on: bool = True
    ready: bool = True
    remote: bool = True
    positive: bool = True
    ramp: bool = False

    @property
    def word(self) -> int:
        """Bits 0..4: on, ready, remote, positive, ramp (the simulated raw status)."""
        return sum(1 << i for i, bit in enumerate(STATUS_BITS) if getattr(self, bit.attribute))

    @property
    def texts(self) -> tuple[str, ...]:
        """Each bit's text now (``"On"``/``"Off"``, ...), in bit order."""
        return tuple(
            bit.true_text if getattr(self, bit.attribute) else bit.false_text for bit in STATUS_BITS
        )

    @property
    def text(self) -> str:
        return " ".join(self.texts)


@dataclass(slots=True)
class AnalogAlarm:
    """An analog alarm block: the reading must stay within ``[minimum, maximum]``."""

    minimum: float = 0.0
    maximum: float = 0.0
    enable: bool = False
    abort: bool = False
    abort_inhibit: bool = False
    tries_needed: int = 1
    tries_now: int = 0


@dataclass(slots=True)
class DigitalAlarm:
    """A digital alarm block: ``status_word & mask`` must equal ``nominal & mask``."""

    nominal: int = 0
    mask: int = 0
    enable: bool = False
    abort: bool = False
    abort_inhibit: bool = False
    tries_needed: int = 1
    tries_now: int = 0


@dataclass(slots=True, eq=False)
class Device:
    """One simulated device and its current state (settings change it in place).

    ``setting`` is a list of floats for scalars (one element) and arrays, a
    ``str`` for text and ``bytes`` for raw devices.
    """

    name: str
    di: int
    description: str
    kind: Kind
    setting: list[float] | str | bytes
    units: str | None = None
    long_name: str | None = None
    format_hint: int | None = None
    text_length: int = 64
    amplitude: float = 0.0
    period: float = 60.0
    phase: float = 0.0
    motion: Motion = Motion.WAVE
    settable: bool = False
    default_event: drf.Event = field(default_factory=drf.ImmediateEvent)
    status: BasicStatus | None = None
    analog: AnalogAlarm | None = None
    digital: DigitalAlarm | None = None
    protection: int = 0

    @property
    def numeric(self) -> bool:
        return self.kind is Kind.SCALAR or self.kind is Kind.ARRAY

    @property
    def size(self) -> int:
        """Elements of a numeric device, bytes of a raw one, the character limit of text."""
        if self.kind is Kind.TEXT:
            return self.text_length
        return len(self.setting)

    def wave(self, now: float) -> float:
        """What the reading adds to the setting at ``now``."""
        if not self.amplitude:
            return 0.0
        if self.motion is Motion.WALK:
            terms = _walk_terms(self.name, self.amplitude, self.period)
            return sum(a * math.sin(w * now + p) for a, w, p in terms)
        return self.amplitude * math.sin(_TWO_PI * now / self.period + self.phase)

    def reading(self, now: float) -> list[float] | str | bytes:
        """The READING at ``now``: the setting plus the wave (text and raw: the setting)."""
        if not self.numeric:
            return self.setting
        w = self.wave(now)
        return [v + w for v in self.setting]

    def alarm_status(self, now: float) -> tuple[bool, bool]:
        """(analog, digital) alarm states at ``now``; False where there is no such alarm."""
        analog = digital = False
        a = self.analog
        if a is not None and a.enable and self.numeric:
            value = self.setting[0] + self.wave(now)
            analog = not a.minimum <= value <= a.maximum
        d = self.digital
        if d is not None and d.enable:
            word = self.status.word if self.status is not None else 0
            digital = (word & d.mask) != (d.nominal & d.mask)
        return analog, digital


_WALK_TERMS = 12


@functools.lru_cache(maxsize=1024)
def _walk_terms(seed: str, bound: float, period: float) -> tuple[tuple[float, float, float], ...]:
    """``(amplitude, angular frequency, phase)`` of sinusoids whose sum wanders like a walk.

    A random walk's power falls as 1/f², so each term's amplitude is 1/f. The
    frequencies rise by about sqrt(2) a term from 1/``period``, each nudged at
    random so that the sum does not visibly repeat; the amplitudes add up to
    ``bound``, which the sum therefore never exceeds. Seeded by ``seed`` (a
    string seed is hashed the same way in every run), so it is stateless and
    the same for every client.
    """
    rng = random.Random(seed)
    terms = []
    for i in range(_WALK_TERMS):
        f = 2 ** (i / 2) * (1.0 + 0.3 * rng.random()) / period
        terms.append((1.0 / f, _TWO_PI * f, rng.uniform(0.0, _TWO_PI)))
    scale = bound / sum(a for a, _, _ in terms)
    return tuple((a * scale, w, p) for a, w, p in terms)


def _raw_of(values: Sequence[float]) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


def _ms(now: float) -> int:
    return round(now * 1000)


def status_reply(ref_id: int, status: int, now: float) -> Message:
    """A ``Status_reply`` for ``ref_id`` stamped ``now`` (ref 0: the whole list)."""
    return dpm.StatusReply(ref_id=ref_id, timestamp=_ms(now), cycle=0, status=status)


_Build = Callable[[int, int, float], Message]  # (ref_id, timestamp_ms, now) -> reply


@dataclass(frozen=True, slots=True, eq=False)
class Entry:
    """A DRF checked against the model: which device, which part of it, and when.

    ``event`` is the event to serve (``@U`` or no event already replaced by
    the device's default). ``span`` is the half-open slice of the device's
    data the entry addresses: elements for numeric devices, bytes for raw
    ones, ``None`` for the rest.
    """

    drf: str
    request: drf.DataRequest
    device: Device
    event: drf.Event
    span: tuple[int, int] | None
    _build: _Build

    def device_info(self, ref_id: int) -> Message:
        """The ``DeviceInfo_reply`` sent for this entry when its list starts."""
        d = self.device
        return dpm.DeviceInfoReply(
            ref_id=ref_id,
            di=d.di,
            name=d.name,
            description=d.description,
            units=d.units,
            format_hint=d.format_hint,
        )

    def reply(self, ref_id: int, now: float) -> Message:
        """The data reply for this entry at ``now`` (Unix seconds)."""
        return self._build(ref_id, _ms(now), now)


@dataclass(frozen=True, slots=True)
class _Family:
    prefix: str
    count: int
    digits: int
    first_di: int
    description: str
    base: float
    step: float
    template: dict[str, Any]

    def index_of_name(self, name: str) -> int | None:
        rest = name[len(self.prefix) :]
        if name.startswith(self.prefix) and len(rest) == self.digits and rest.isdigit():
            index = int(rest)
            return index if index < self.count else None
        return None

    def index_of_di(self, di: int) -> int | None:
        index = di - self.first_di
        return index if 0 <= index < self.count else None

    def make(self, index: int) -> Device:
        return Device(
            name=f"{self.prefix}{index:0{self.digits}d}",
            di=self.first_di + index,
            description=self.description.replace("{index}", str(index)),
            kind=Kind.SCALAR,
            setting=[self.base + self.step * index],
            phase=_TWO_PI * index / self.count,
            **self.template,
        )


class DeviceModel:
    """The set of simulated devices, shared by every connection of one server.

    Settings change devices in place, so give each server its own model
    (:meth:`default` builds a fresh one on every call).
    """

    def __init__(
        self,
        devices: Sequence[Device],
        families: Sequence[_Family] = (),
        clock_periods: dict[int, float] | None = None,
        default_clock_period: float = 1.0,
    ) -> None:
        self._devices: dict[str, Device] = {}
        self._by_di: dict[int, Device] = {}
        for d in devices:
            self._remember(d)
        self._families = tuple(families)
        self.clock_periods = dict(clock_periods or {})
        self.default_clock_period = default_clock_period

    def _remember(self, device: Device) -> None:
        self._devices[device.name] = device
        self._by_di[device.di] = device

    # -- loading ------------------------------------------------------------

    @classmethod
    def from_toml(cls, text: str, source: str = "<devices>") -> DeviceModel:
        """Build a model from TOML ``text`` (see the module docstring for the keys).

        Raises :class:`DeviceModelError` naming ``source``, the entry and the
        key for anything missing, misspelt, of the wrong type or duplicated.
        """
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise DeviceModelError(f"{source}: not valid TOML: {e}") from None
        return _Loader(source).model(cls, doc)

    @classmethod
    def load(cls, path: str | Path) -> DeviceModel:
        """Read a model file (TOML)."""
        path = Path(path)
        return cls.from_toml(path.read_text(encoding="utf-8"), str(path))

    @classmethod
    def default(cls) -> DeviceModel:
        """A fresh copy of the packaged model (``acnet_proto/sim/devices.toml``)."""
        resource = resources.files("acnet_proto.sim").joinpath("devices.toml")
        return cls.from_toml(resource.read_text(encoding="utf-8"), "acnet_proto/sim/devices.toml")

    # -- devices ------------------------------------------------------------

    def device(self, name: str) -> Device | None:
        """The device called ``name`` (canonical ``X:NAME``, or ``0:<di>``), or None."""
        found = self._devices.get(name)
        if found is not None:
            return found
        if name.startswith("0:") and name[2:].isdigit():
            return self._device_by_di(int(name[2:]))
        for family in self._families:
            index = family.index_of_name(name)
            if index is not None:
                return self._made(family, index)
        return None

    def _device_by_di(self, di: int) -> Device | None:
        found = self._by_di.get(di)
        if found is not None:
            return found
        for family in self._families:
            index = family.index_of_di(di)
            if index is not None:
                return self._made(family, index)
        return None

    def _made(self, family: _Family, index: int) -> Device:
        name = f"{family.prefix}{index:0{family.digits}d}"
        device = self._devices.get(name)
        if device is None:
            device = family.make(index)
            self._remember(device)
        return device

    def clock_period(self, event_number: int) -> float:
        """Seconds between firings of clock event ``event_number``."""
        return self.clock_periods.get(event_number, self.default_clock_period)

    # -- requests -----------------------------------------------------------

    def resolve(self, drf_text: str) -> Entry:
        """Check ``drf_text`` against the model; raise :class:`RequestRejected` if it fails."""
        try:
            request = drf.parse(drf_text)
        except drf.DRFError as e:
            at = drf_text.find("@", 2)
            status = DPM_BAD_EVENT if 0 <= at < e.position else DPM_BAD_REQUEST
            raise RequestRejected(drf_text, status, e.problem) from None
        except TypeError as e:
            raise RequestRejected(str(drf_text), DPM_BAD_REQUEST, str(e)) from None
        device = self.device(request.device)
        if device is None:
            raise RequestRejected(drf_text, DPM_NO_SUCH_DEVICE, f"no device {request.device}")
        return _bind(drf_text, request, device)

    def add_to_list(self, list_id: int, ref_id: int, drf: str) -> tuple[Message, Entry | None]:
        """The ``AddToList_reply`` for one entry, and the entry if it was accepted."""
        try:
            entry = self.resolve(drf)
        except RequestRejected as e:
            return dpm.AddToListReply(list_id=list_id, ref_id=ref_id, status=e.status), None
        return dpm.AddToListReply(list_id=list_id, ref_id=ref_id, status=0), entry

    # -- settings -----------------------------------------------------------

    def apply_setting(self, entry: Entry, value: object) -> int:
        """Set what ``entry`` addresses to ``value``; return the ACNET status (0: done).

        ``value`` is what an ``ApplySettings`` carries: ``bytes`` (a raw
        setting), a sequence of floats (scaled) or of strings (text); a bare
        number or ``str`` is taken as a sequence of one. SETTING changes the
        setting (and so the reading); CONTROL takes a BasicControl command,
        either its DAQData wire value (:class:`acnet_proto.pc.daqdata.
        BasicControl`) or its ordinal 0..6 as Java's BasicControlDefs number
        them (what DPM/TCP clients send); ANALOG and DIGITAL need a field.
        Authorization is not checked here: the caller compares
        ``entry.device.protection`` with the user's privileges first.
        """
        prop = entry.request.property
        if prop is _P.SETTING:
            return _set_setting(entry, value)
        if prop is _P.CONTROL:
            assert entry.device.status is not None  # a CONTROL entry needs a status table
            return _set_control(entry.device.status, value)
        if prop is _P.ANALOG or prop is _P.DIGITAL:
            return _set_alarm(entry, value)
        return DIO_READONLY


# --- binding a parsed request to a device ------------------------------------


def _bind(text: str, request: drf.DataRequest, device: Device) -> Entry:
    def reject(status: int, reason: str) -> RequestRejected:
        return RequestRejected(text, status, reason)

    event = request.event
    if event is None or isinstance(event, drf.DefaultEvent):
        event = device.default_event
    if isinstance(event, drf.StateEvent):
        raise reject(DPM_NOT_YET, "the simulator has no state devices")
    if isinstance(event, drf.PeriodicEvent) and event.period_us < MIN_PERIOD_US:
        raise reject(DPM_ILLFTD, f"period {event.period_us} us is under {MIN_PERIOD_US} us")
    prop = request.property
    if prop is _P.READING or prop is _P.SETTING:
        if prop is _P.SETTING and not device.settable:
            raise reject(DBM_NOPROP, f"{device.name} has no SETTING property (read-only)")
        span, build = _value_builder(request, device, reject)
        return Entry(text, request, device, event, span, build)
    if request.range is not None:
        raise reject(DPM_BAD_RANGE, f"the {prop.name} property has no elements to range over")
    if prop is _P.STATUS or prop is _P.CONTROL:
        if device.status is None:
            raise reject(DBM_NOPROP, f"{device.name} has no {prop.name} property")
        if prop is _P.CONTROL:
            if not isinstance(event, drf.NeverEvent):
                raise reject(DIO_SETONLY, "CONTROL can only be set (use @N)")
            return Entry(text, request, device, event, None, _never_sent)
        return Entry(text, request, device, event, None, _status_builder(request, device, reject))
    if prop is _P.ANALOG or prop is _P.DIGITAL:
        if (device.analog if prop is _P.ANALOG else device.digital) is None:
            raise reject(DBM_NOPROP, f"{device.name} has no {prop.name} alarm")
        build = _alarm_builder(request, device, reject)
        return Entry(text, request, device, event, None, build)
    if prop is _P.ALARM_LIST_NAME:
        raise reject(DBM_NOPROP, "the simulator has no alarm lists")
    return Entry(text, request, device, event, None, _info_builder(prop, device))


def _never_sent(ref_id: int, ms: int, now: float) -> Message:
    # A CONTROL entry is bound to @N, so the scheduler never asks it for data.
    raise RuntimeError(f"a CONTROL entry (ref_id {ref_id}) has no data to send")


def _value_builder(
    request: drf.DataRequest, device: Device, reject: Callable[[int, str], Exception]
) -> tuple[tuple[int, int] | None, _Build]:
    """READING/SETTING: the span of data addressed, and how to make its reply."""
    fld = request.field
    rng = request.range
    reading = request.property is _P.READING
    want_raw = fld is _F.RAW
    if not device.numeric and fld in (_F.SCALED, _F.PRIMARY):
        raise reject(DPM_NO_SCALE, f"{device.name} is {device.kind.value} data; it has no scaling")
    if device.kind is Kind.TEXT:
        if rng is not None:
            raise reject(DPM_BAD_RANGE, f"{device.name} is text; it takes no range")
        if want_raw:
            return None, lambda ref, ms, now: dpm.RawReply(
                ref_id=ref, timestamp=ms, cycle=0, status=0, data=device.setting.encode("latin-1")
            )
        return None, lambda ref, ms, now: dpm.TextReply(
            ref_id=ref, timestamp=ms, cycle=0, status=0, data=device.setting
        )
    size = device.size
    if device.kind is Kind.RAW:
        lo, hi = _span(rng, size, 1, reject)
        return (lo, hi), lambda ref, ms, now: dpm.RawReply(
            ref_id=ref, timestamp=ms, cycle=0, status=0, data=device.setting[lo:hi]
        )
    lo, hi = _span(rng, size, _ATOM, reject)

    def source(now: float) -> list[float]:
        return device.reading(now) if reading else device.setting  # type: ignore[return-value]

    if want_raw:
        return (lo, hi), lambda ref, ms, now: dpm.RawReply(
            ref_id=ref, timestamp=ms, cycle=0, status=0, data=_raw_of(source(now)[lo:hi])
        )
    if rng is None:
        single = device.kind is Kind.SCALAR
    else:
        single = isinstance(rng, drf.ArrayRange) and rng.end == rng.start
    if single:
        if reading:
            return (lo, hi), lambda ref, ms, now: dpm.ScalarReply(
                ref_id=ref,
                timestamp=ms,
                cycle=0,
                status=0,
                data=device.setting[lo] + device.wave(now),
            )
        return (lo, hi), lambda ref, ms, now: dpm.ScalarReply(
            ref_id=ref, timestamp=ms, cycle=0, status=0, data=device.setting[lo]
        )
    return (lo, hi), lambda ref, ms, now: dpm.ScalarArrayReply(
        ref_id=ref, timestamp=ms, cycle=0, status=0, data=source(now)[lo:hi]
    )


def _span(
    rng: drf.Range | None, size: int, atom: int, reject: Callable[[int, str], Exception]
) -> tuple[int, int]:
    """The half-open slice of ``size`` elements (``atom`` bytes each) that ``rng`` selects."""
    if rng is None:
        return 0, size
    if isinstance(rng, drf.ArrayRange):
        lo = rng.start
        hi = size if rng.end is None else rng.end + 1
    else:
        length = size * atom - rng.offset if rng.length is None else rng.length
        if rng.offset % atom or length % atom:
            raise reject(DPM_BAD_FRAMING, f"byte range {rng} is not whole {atom}-byte elements")
        lo = rng.offset // atom
        hi = lo + length // atom
    if lo >= size or hi > size or hi <= lo:
        raise reject(DPM_OUT_OF_BOUNDS, f"range {rng} is outside the {size} elements")
    return lo, hi


_STATUS_FIELDS = {
    _F.ON: "on",
    _F.READY: "ready",
    _F.REMOTE: "remote",
    _F.POSITIVE: "positive",
    _F.RAMP: "ramp",
}


def _status_builder(
    request: drf.DataRequest, device: Device, reject: Callable[[int, str], Exception]
) -> _Build:
    st = device.status
    assert st is not None  # _bind checked
    fld = request.field
    if fld is None or fld is _F.ALL:
        return lambda ref, ms, now: dpm.BasicStatusReply(
            ref_id=ref,
            timestamp=ms,
            cycle=0,
            on=st.on,
            ready=st.ready,
            remote=st.remote,
            positive=st.positive,
            ramp=st.ramp,
        )
    if fld in _STATUS_FIELDS:
        attr = _STATUS_FIELDS[fld]
        return lambda ref, ms, now: dpm.ScalarReply(
            ref_id=ref, timestamp=ms, cycle=0, status=0, data=float(getattr(st, attr))
        )
    if fld is _F.RAW:
        return lambda ref, ms, now: dpm.RawReply(
            ref_id=ref, timestamp=ms, cycle=0, status=0, data=st.word.to_bytes(2, "little")
        )
    if fld is _F.TEXT:
        return lambda ref, ms, now: dpm.TextReply(
            ref_id=ref, timestamp=ms, cycle=0, status=0, data=st.text
        )
    if fld is _F.BIT_VALUE:
        return lambda ref, ms, now: dpm.ScalarReply(
            ref_id=ref, timestamp=ms, cycle=0, status=0, data=float(st.word)
        )
    if fld is _F.BIT_NAMES:
        names = [bit.name for bit in STATUS_BITS]
        return lambda ref, ms, now: dpm.TextArrayReply(
            ref_id=ref, timestamp=ms, cycle=0, status=0, data=names
        )
    if fld is _F.BIT_VALUES:
        return lambda ref, ms, now: dpm.TextArrayReply(
            ref_id=ref, timestamp=ms, cycle=0, status=0, data=list(st.texts)
        )
    raise reject(DPM_NO_SUCH_FIELD, f"the simulator does not serve STATUS.{fld.name}")


# Alarm fields read as scalars: field -> value of (alarm block, alarm state now).
_ALARM_SCALARS: dict[drf.Field, Callable[[Any, bool], float]] = {
    _F.ALARM_ENABLE: lambda a, on: float(a.enable),
    _F.ALARM_STATUS: lambda a, on: float(on),
    _F.ABORT: lambda a, on: float(a.abort),
    _F.ABORT_INHIBIT: lambda a, on: float(a.abort_inhibit),
    _F.TRIES_NEEDED: lambda a, on: float(a.tries_needed),
    _F.TRIES_NOW: lambda a, on: float(a.tries_now),
}
_ANALOG_SCALARS = {
    **_ALARM_SCALARS,
    _F.MIN: lambda a, on: a.minimum,
    _F.MAX: lambda a, on: a.maximum,
    _F.NOM: lambda a, on: (a.minimum + a.maximum) / 2,
    _F.TOL: lambda a, on: (a.maximum - a.minimum) / 2,
}
_DIGITAL_SCALARS = {
    **_ALARM_SCALARS,
    _F.NOM: lambda a, on: float(a.nominal),
    _F.MASK: lambda a, on: float(a.mask),
}


def _alarm_builder(
    request: drf.DataRequest, device: Device, reject: Callable[[int, str], Exception]
) -> _Build:
    analog = request.property is _P.ANALOG
    which = 0 if analog else 1  # index into Device.alarm_status()
    fld = request.field
    block = device.analog if analog else device.digital
    if fld is None or fld is _F.ALL:
        # the two replies differ only in the limits they carry first
        reply, limits = (
            (dpm.AnalogAlarmReply, ("minimum", "maximum"))
            if analog
            else (dpm.DigitalAlarmReply, ("nominal", "mask"))
        )
        return lambda ref, ms, now: reply(
            ref_id=ref,
            timestamp=ms,
            cycle=0,
            **{name: getattr(block, name) for name in limits},
            alarm_enable=block.enable,
            alarm_status=device.alarm_status(now)[which],
            abort=block.abort,
            abort_inhibit=block.abort_inhibit,
            tries_needed=block.tries_needed,
            tries_now=block.tries_now,
        )
    getter = (_ANALOG_SCALARS if analog else _DIGITAL_SCALARS).get(fld)
    if getter is None:
        raise reject(
            DPM_NO_SUCH_FIELD, f"the simulator does not serve {request.property.name}.{fld.name}"
        )
    return lambda ref, ms, now: dpm.ScalarReply(
        ref_id=ref,
        timestamp=ms,
        cycle=0,
        status=0,
        data=getter(block, device.alarm_status(now)[which]),
    )


def _info_builder(prop: drf.Property, device: Device) -> _Build:
    if prop is _P.INDEX:
        return lambda ref, ms, now: dpm.ScalarReply(
            ref_id=ref, timestamp=ms, cycle=0, status=0, data=float(device.di)
        )
    text = device.description if prop is _P.DESCRIPTION else device.long_name or device.description
    return lambda ref, ms, now: dpm.TextReply(
        ref_id=ref, timestamp=ms, cycle=0, status=0, data=text
    )


# --- settings ----------------------------------------------------------------


def _numbers(value: object) -> list[float] | None:
    """``value`` (a number or a sequence of numbers) as a list of floats, else None."""
    if isinstance(value, str | bytes | bytearray):
        return None
    if isinstance(value, int | float):
        return [float(value)]
    try:
        items = list(value)  # type: ignore[call-overload]
    except TypeError:
        return None
    if any(isinstance(v, str | bytes) for v in items):
        return None
    try:
        return [float(v) for v in items]
    except (TypeError, ValueError):
        return None


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence) and len(value) == 1 and isinstance(value[0], str):
        return value[0]
    return None


def _set_setting(entry: Entry, value: object) -> int:
    device = entry.device
    if isinstance(value, bytes | bytearray):
        return _set_raw(entry, bytes(value))
    if device.kind is Kind.TEXT:
        text = _text(value)
        if text is None:
            return DIO_INVDATA
        if len(text) > device.text_length:
            return DPM_BAD_LENGTH
        device.setting = text
        return 0
    numbers = _numbers(value)
    if numbers is None or not device.numeric:
        return DIO_INVDATA
    lo, hi = entry.span
    if len(numbers) != hi - lo:
        return DPM_BAD_LENGTH
    device.setting[lo:hi] = numbers
    return 0


def _set_raw(entry: Entry, data: bytes) -> int:
    device = entry.device
    if device.kind is Kind.TEXT:
        if len(data) > device.text_length:
            return DPM_BAD_LENGTH
        device.setting = data.decode("latin-1")
        return 0
    lo, hi = entry.span
    atom = _ATOM if device.numeric else 1
    if len(data) != (hi - lo) * atom:
        return DPM_BAD_LENGTH
    if device.numeric:
        device.setting[lo:hi] = struct.unpack(f"<{hi - lo}f", data)
    else:
        device.setting = device.setting[:lo] + data + device.setting[hi:]
    return 0


#: The CONTROL commands served, by ordinal (what DPM/TCP clients send, and the device
#: database lists): RESET, ON, OFF, POSITIVE, NEGATIVE, RAMP, DC.
CONTROL_COMMANDS = tuple(daqdata.BasicControl)
# A command sets the very status bit a verified control write reads back for, so the
# simulator takes its effects from that table: (BasicStatus attribute, state).
_CONTROL_EFFECT = {
    command: (bit.lower(), state)
    for command in CONTROL_COMMANDS
    for bit, state in [CONTROL_READBACK[BasicControl[command.name]]]
}


def _control_command(value: object) -> daqdata.BasicControl | None:
    numbers = _numbers(value)
    if numbers is None or len(numbers) != 1 or not numbers[0].is_integer():
        return None
    number = int(numbers[0])
    if 0 <= number < len(CONTROL_COMMANDS):
        return CONTROL_COMMANDS[number]
    try:
        return daqdata.BasicControl(number)
    except ValueError:
        return None


def _set_control(status: BasicStatus, value: object) -> int:
    command = _control_command(value)
    if command is None:
        return DIO_INVDATA
    attr, state = _CONTROL_EFFECT[command]
    setattr(status, attr, state)
    return 0


_ALARM_WRITABLE = {
    _F.ALARM_ENABLE: ("enable", bool),
    _F.ABORT_INHIBIT: ("abort_inhibit", bool),
    _F.TRIES_NEEDED: ("tries_needed", int),
}
_ANALOG_WRITABLE = {**_ALARM_WRITABLE, _F.MIN: ("minimum", float), _F.MAX: ("maximum", float)}
_DIGITAL_WRITABLE = {**_ALARM_WRITABLE, _F.NOM: ("nominal", int), _F.MASK: ("mask", int)}


def _set_alarm(entry: Entry, value: object) -> int:
    analog = entry.request.property is _P.ANALOG
    block = entry.device.analog if analog else entry.device.digital
    fld = entry.request.field
    if fld is None or fld is _F.ALL:
        return DPM_NO_SUCH_FIELD
    numbers = _numbers(value)
    if numbers is None:
        return DIO_INVDATA
    if len(numbers) != 1:
        return DPM_BAD_LENGTH
    number = numbers[0]
    if analog and fld in (_F.NOM, _F.TOL):
        nom = (block.minimum + block.maximum) / 2
        tol = (block.maximum - block.minimum) / 2
        nom, tol = (number, tol) if fld is _F.NOM else (nom, abs(number))
        block.minimum, block.maximum = nom - tol, nom + tol
        return 0
    target = (_ANALOG_WRITABLE if analog else _DIGITAL_WRITABLE).get(fld)
    if target is None:
        return DIO_READONLY
    attr, kind = target
    if kind is not float and not number.is_integer():
        return DIO_INVDATA
    if kind is int and not -(2**31) <= number < 2**31:
        return DIO_RANGE  # the replies carry these as int32
    setattr(block, attr, kind(number))
    return 0


# --- the model file ----------------------------------------------------------

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
        table: dict,
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

    def check_keys(self, table: dict, allowed: set[str] | frozenset[str], where: str) -> None:
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise self.fail(where, f"unknown key(s) {unknown}; allowed: {sorted(allowed)}")

    def model(self, cls: type[DeviceModel], doc: dict) -> DeviceModel:
        self.check_keys(doc, {"clock", "device", "family"}, "top level")
        periods, default_period = self.clock(doc.get("clock", {}))
        devices = [self.device(t, i) for i, t in enumerate(self.tables(doc, "device"))]
        families = [self.family(t, i) for i, t in enumerate(self.tables(doc, "family"))]
        self.check_unique(devices, families)
        return cls(devices, families, periods, default_period)

    def tables(self, doc: dict, key: str) -> list[dict]:
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

    def positive(self, table: dict, key: str, where: str, default: Any = ...) -> float:
        value = float(self.get(table, key, (int, float), where, default))
        if not (value > 0 and math.isfinite(value)):
            raise self.fail(where, f"{key!r} must be a positive number of seconds, got {value}")
        return value

    def name(self, text: str, where: str) -> str:
        if CANONICAL_DEVICE.fullmatch(text) is None or text.startswith("0:"):
            raise self.fail(where, f"{text!r} is not a device name in X:NAME form (upper case)")
        return text

    def event(self, table: dict, where: str) -> drf.Event:
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

    def motion(self, table: dict, where: str) -> Motion:
        text = self.get(table, "motion", str, where, "wave")
        try:
            return Motion(text)
        except ValueError:
            motions = [m.value for m in Motion]
            raise self.fail(where, f"motion {text!r} is not one of {motions}") from None

    def common(self, table: dict, where: str) -> dict[str, Any]:
        """Keys shared by devices and families, as Device keyword arguments."""
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

    def device(self, table: dict, index: int) -> Device:
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
        return Device(
            name=name,
            di=self.within(self.get(table, "di", int, where), "di", where, 0, _MAX_DI),
            description=self.get(table, "description", str, where),
            kind=kind,
            setting=setting,
            long_name=self.get(table, "long_name", str, where, None),
            text_length=text_length,
            phase=float(self.get(table, "phase", (int, float), where, 0.0)),
            status=self.block(table, "status", BasicStatus, where),
            analog=self.block(table, "analog", AnalogAlarm, where),
            digital=self.block(table, "digital", DigitalAlarm, where),
            **self.common(table, where),
        )

    def setting(self, table: dict, kind: Kind, where: str) -> tuple[list[float] | str | bytes, int]:
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

    def block(self, table: dict, key: str, cls: type, where: str) -> Any:
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

    def family(self, table: dict, index: int) -> _Family:
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
        return _Family(
            prefix=prefix,
            count=count,
            digits=digits,
            first_di=first_di,
            description=self.get(table, "description", str, where),
            base=float(self.get(table, "value", (int, float), where, 0.0)),
            step=float(self.get(table, "step", (int, float), where, 0.0)),
            template=self.common(table, where),
        )

    def check_unique(self, devices: list[Device], families: list[_Family]) -> None:
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
