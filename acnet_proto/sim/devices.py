"""A simulated device and its parts: kind, motion, basic status, alarm blocks, families.

Devices are plain state: settings change them in place, and every question
about a reading takes ``now`` (Unix seconds), so the answer is a function of
it. :class:`~acnet_proto.sim.model.DeviceModel` holds them;
:mod:`~acnet_proto.sim.loader` makes them from the model file.
"""

from __future__ import annotations

import enum
import functools
import math
import random
from dataclasses import dataclass, field
from typing import Any

from acnet_proto import drf
from acnet_proto._text import decimal

__all__ = [
    "FLOAT_BYTES",
    "STATUS_BITS",
    "AnalogAlarmBlock",
    "BasicStatus",
    "BasicStatusBit",
    "DeviceFamily",
    "DigitalAlarmBlock",
    "Kind",
    "Motion",
    "SimDevice",
]

TWO_PI = 2.0 * math.pi


FLOAT_BYTES = 4  # bytes per element in raw data of numeric devices (float32)


_MAX_DI = 2**31 - 1  # DeviceInfo_reply carries the di as an int32


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
class AnalogAlarmBlock:
    """An analog alarm block: the reading must stay within ``[minimum, maximum]``."""

    minimum: float = 0.0
    maximum: float = 0.0
    enable: bool = False
    abort: bool = False
    abort_inhibit: bool = False
    tries_needed: int = 1
    tries_now: int = 0


@dataclass(slots=True)
class DigitalAlarmBlock:
    """A digital alarm block: ``status_word & mask`` must equal ``nominal & mask``."""

    nominal: int = 0
    mask: int = 0
    enable: bool = False
    abort: bool = False
    abort_inhibit: bool = False
    tries_needed: int = 1
    tries_now: int = 0


@dataclass(slots=True, eq=False)
class SimDevice:
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
    analog: AnalogAlarmBlock | None = None
    digital: DigitalAlarmBlock | None = None
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

    # What ``setting`` holds follows ``kind``, which a type checker cannot see: these
    # narrow it for code that has checked the kind, and fail loudly if the two disagree.

    @property
    def setting_numbers(self) -> list[float]:
        """The setting of a numeric device (the list itself: changing it changes the device)."""
        assert isinstance(self.setting, list), f"{self.name} is {self.kind.value} data"
        return self.setting

    @property
    def setting_text(self) -> str:
        """The setting of a text device."""
        assert isinstance(self.setting, str), f"{self.name} is {self.kind.value} data"
        return self.setting

    @property
    def setting_bytes(self) -> bytes:
        """The setting of a raw device."""
        assert isinstance(self.setting, bytes), f"{self.name} is {self.kind.value} data"
        return self.setting

    def wave(self, now: float) -> float:
        """What the reading adds to the setting at ``now``."""
        if not self.amplitude:
            return 0.0
        if self.motion is Motion.WALK:
            terms = _walk_terms(self.name, self.amplitude, self.period)
            return sum(a * math.sin(w * now + p) for a, w, p in terms)
        return self.amplitude * math.sin(TWO_PI * now / self.period + self.phase)

    def reading(self, now: float) -> list[float] | str | bytes:
        """The READING at ``now``: the setting plus the wave (text and raw: the setting)."""
        if not self.numeric:
            return self.setting
        return self.reading_numbers(now)

    def reading_numbers(self, now: float) -> list[float]:
        """The READING of a numeric device at ``now``: each element of the setting plus the wave."""
        w = self.wave(now)
        return [v + w for v in self.setting_numbers]

    def alarm_status(self, now: float) -> tuple[bool, bool]:
        """(analog, digital) alarm states at ``now``; False where there is no such alarm."""
        analog = digital = False
        a = self.analog
        if a is not None and a.enable and self.numeric:
            value = self.setting_numbers[0] + self.wave(now)
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
        terms.append((1.0 / f, TWO_PI * f, rng.uniform(0.0, TWO_PI)))
    scale = bound / sum(a for a, _, _ in terms)
    return tuple((a * scale, w, p) for a, w, p in terms)


@dataclass(frozen=True, slots=True)
class DeviceFamily:
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
        index = decimal(rest) if name.startswith(self.prefix) and len(rest) == self.digits else None
        return index if index is not None and index < self.count else None

    def index_of_di(self, di: int) -> int | None:
        index = di - self.first_di
        return index if 0 <= index < self.count else None

    def make(self, index: int) -> SimDevice:
        return SimDevice(
            name=f"{self.prefix}{index:0{self.digits}d}",
            di=self.first_di + index,
            description=self.description.replace("{index}", str(index)),
            kind=Kind.SCALAR,
            setting=[self.base + self.step * index],
            phase=TWO_PI * index / self.count,
            **self.template,
        )
