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
from acnet_proto.sim.control import (
    STANDARD_COMMANDS,
    STATUS_ATTRIBUTES,
    STATUS_BITS,
    BasicStatusBit,
    ControlCommand,
)
from acnet_proto.sim.ramps import RampTable
from acnet_proto.sim.scaling import Scaling

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


FLOAT_BYTES = 4  # bytes per element of a device without a raw type (its Scaling's float32)


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


@dataclass(slots=True)
class BasicStatus:
    """A device's basic status bits, its layout and its control table; CONTROL commands change it.

    ``bits`` is the layout (default: the standard five bits,
    :data:`STATUS_BITS`) and ``commands`` the control table by ordinal
    (default :data:`~acnet_proto.sim.control.STANDARD_COMMANDS`). A bit the
    layout lacks is None, whatever it was given as, and stays out of the
    status word, texts and replies; a bit it has is a bool.
    """

    on: bool | None = True
    ready: bool | None = True
    remote: bool | None = True
    positive: bool | None = True
    ramp: bool | None = False
    bits: tuple[BasicStatusBit, ...] = STATUS_BITS
    commands: tuple[ControlCommand, ...] = STANDARD_COMMANDS

    def __post_init__(self) -> None:
        present = {bit.attribute for bit in self.bits}
        for attribute in STATUS_ATTRIBUTES:
            if attribute not in present:
                setattr(self, attribute, None)
            elif getattr(self, attribute) is None:
                raise ValueError(f"status bit {attribute!r} is in the layout but has no state")

    def has(self, attribute: str) -> bool:
        """Whether the layout has the bit ``attribute`` (``"on"``, ``"remote"``...)."""
        return any(bit.attribute == attribute for bit in self.bits)

    @property
    def states(self) -> dict[str, bool]:
        """Each bit the layout has, by attribute, and whether it is set (a reading's dict)."""
        return {bit.attribute: bool(getattr(self, bit.attribute)) for bit in self.bits}

    @property
    def word(self) -> int:
        """The raw status word: the mask of every bit that is set."""
        return sum(bit.mask for bit in self.bits if getattr(self, bit.attribute))

    @property
    def texts(self) -> tuple[str, ...]:
        """Each bit's text now (``"On"``/``"Off"``, ...), in bit order."""
        return tuple(
            bit.true_text if getattr(self, bit.attribute) else bit.false_text for bit in self.bits
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
    tries_needed: int = 1  # 0..255, as the raw block holds them
    tries_now: int = 0
    ftd: int = 0  # the raw block's sampling word (0: the device's default)


@dataclass(slots=True)
class DigitalAlarmBlock:
    """A digital alarm block: ``status_word & mask`` must equal ``nominal & mask``."""

    nominal: int = 0
    mask: int = 0
    enable: bool = False
    abort: bool = False
    abort_inhibit: bool = False
    tries_needed: int = 1  # 0..255, as the raw block holds them
    tries_now: int = 0
    ftd: int = 0  # the raw block's sampling word (0: the device's default)


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
    scaling: Scaling = field(default_factory=Scaling)
    minimum: float | None = None  # the device database's limits of a scaled setting
    maximum: float | None = None
    update_period: float = 0.0  # seconds between samples of the READING; 0: continuous
    ramp: RampTable | None = None  # a ramp card's tables: the raw SETTING

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

    def sample_time(self, now: float) -> float:
        """When the READING served at ``now`` was sampled: the last multiple of
        ``update_period`` at or before ``now`` (``now`` itself if continuous).
        A sample time is its own sample time."""
        period = self.update_period
        if not period:
            return now
        k = math.floor(now / period)
        # now/period can round across an integer: settle k so k*period <= now < (k+1)*period
        if (k + 1) * period <= now:
            k += 1
        elif k * period > now:
            k -= 1
        return k * period

    def reading_numbers(self, now: float) -> list[float]:
        """The READING of a numeric device at ``now``: each element of the setting plus the wave
        at the sample time, as the raw type holds it (a front end's reading saturates)."""
        w = self.wave(self.sample_time(now))
        held = self.scaling.quantise
        return [held(v + w, saturate=True) for v in self.setting_numbers]

    def reading_number(self, now: float, index: int) -> float:
        """Element ``index`` of :meth:`reading_numbers` (without computing the others)."""
        w = self.wave(self.sample_time(now))
        return self.scaling.quantise(self.setting_numbers[index] + w, saturate=True)

    def alarm_status(self, now: float) -> tuple[bool, bool]:
        """(analog, digital) alarm states at ``now``; False where there is no such alarm."""
        analog = digital = False
        a = self.analog
        if a is not None and a.enable and self.numeric:
            value = self.reading_number(now, 0)
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
