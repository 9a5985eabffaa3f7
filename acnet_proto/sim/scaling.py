"""Raw data and its scaling: what a front end holds, and what DPM makes of it.

A numeric device's raw data is one :class:`RawType` per element. Its scaled
(common, engineering) value is ``common(primary(raw))``, with

- the primary transform ``(raw - offset) * scale / divisor`` (identity by
  default; ``divisor = 3276.8`` is ACNET's ``raw / 3276.8`` for a ±10 V
  16-bit ADC; with a float raw type the float itself is the primary value,
  which is ACNET's "IEEE float in" and "DEC float in, native float out");
- the common transform ``c1 * X / c2 + c3`` (identity by default).

Byte order, type by type:

- ``int16``, ``uint16``, ``int32``, ``uint32``: little-endian, as ACNET
  carries every 16- and 32-bit quantity (its PDP-11/VAX heritage);
- ``float32``: IEEE single precision, little-endian (the raw bytes of
  G:AMANDA are the value);
- ``dec_f``: DEC F_floating as a VAX stores it: two little-endian 16-bit
  words, the one holding sign and exponent first. Value
  ``(-1)**s * 0.1f * 2**(e - 128)``: excess-128 exponent, a hidden leading
  bit after the binary point, no infinities, NaNs or denormals; ``e = 0``
  is zero when the sign is clear and a "reserved operand" when it is set.

Decoding is exact, and refuses bytes that are no finite value (a float32
NaN or infinity, a DEC reserved operand): a device holds finite values only.
Encoding takes the nearest value the raw type holds
(integers round half to even; DEC rounds its 24-bit mantissa half to even
and flushes what is nearer zero than its smallest value to zero); a value
the type cannot hold at all (beyond its range, NaN, infinite) raises
:class:`ScalingError`, which settings answer with ``DIO_SCALEFAIL``.
"""

from __future__ import annotations

import enum
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from acnet_proto.errors import AcnetProtoError

__all__ = [
    "DEC_F_MAX",
    "DEC_F_MIN",
    "RawType",
    "Scaling",
    "ScalingError",
    "dec_f_decode",
    "dec_f_encode",
]


class ScalingError(AcnetProtoError, ValueError):
    """A value the raw type cannot hold, or raw bytes that are no value (a DEC reserved operand)."""


#: The smallest positive DEC F_floating value, 0.5 * 2**-127.
DEC_F_MIN = math.ldexp(1.0, -128)
#: The largest DEC F_floating value, (1 - 2**-24) * 2**127.
DEC_F_MAX = math.ldexp(float(2**24 - 1), 103)

_DEC_HIDDEN = 1 << 23  # the leading mantissa bit DEC does not store
_DEC_BIAS = 128 + 24  # exponent bias plus the 24 mantissa bits, for ldexp of an integer


def dec_f_decode(data: bytes) -> float:
    """The value of 4 bytes of DEC F_floating, exactly.

    :class:`ScalingError` for a reserved operand (exponent 0, sign set)."""
    high, low = struct.unpack("<HH", data)
    sign, exponent = high >> 15, (high >> 7) & 0xFF
    if exponent == 0:
        if sign:
            raise ScalingError(f"raw {data.hex()} is a DEC reserved operand, not a number")
        return 0.0  # DEC's zero: any fraction, sign clear
    mantissa = _DEC_HIDDEN | (high & 0x7F) << 16 | low
    value = math.ldexp(float(mantissa), exponent - _DEC_BIAS)
    return -value if sign else value


def dec_f_encode(value: float) -> bytes:
    """``value`` as the nearest DEC F_floating, 4 bytes.

    :class:`ScalingError` if it is beyond DEC's range, NaN or infinite."""
    if not math.isfinite(value):
        raise ScalingError(f"{value} has no DEC F_floating form")
    magnitude = abs(value)
    if magnitude <= DEC_F_MIN / 2:
        return bytes(4)
    fraction, exponent = math.frexp(max(magnitude, DEC_F_MIN))  # fraction in [0.5, 1)
    mantissa = round(fraction * 2**24)  # exact product; round() is half to even
    if mantissa == 2**24:
        mantissa, exponent = _DEC_HIDDEN, exponent + 1
    biased = exponent + 128
    if biased > 0xFF:
        raise ScalingError(f"{value} is beyond DEC F_floating's ±{DEC_F_MAX:.7g}")
    high = (value < 0) << 15 | biased << 7 | (mantissa >> 16) & 0x7F
    return struct.pack("<HH", high, mantissa & 0xFFFF)


class RawType(enum.Enum):
    """The type of one element of a device's raw data (byte orders: the module docstring)."""

    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    FLOAT32 = "float32"
    DEC_F = "dec_f"

    @property
    def size(self) -> int:
        """Bytes per element."""
        return 2 if self in (RawType.INT16, RawType.UINT16) else 4

    @property
    def integer(self) -> bool:
        return self not in (RawType.FLOAT32, RawType.DEC_F)

    @property
    def signed(self) -> bool:
        return self in (RawType.INT16, RawType.INT32)

    def bounds(self) -> tuple[int, int]:
        """The smallest and largest integer an integer type holds."""
        bits = 8 * self.size
        return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if self.signed else (0, 2**bits - 1)

    def pack(self, number: float) -> bytes:
        """``number`` (in the type's raw units) as its nearest raw bytes; :class:`ScalingError`
        if the type cannot hold it."""
        if self is RawType.DEC_F:
            return dec_f_encode(number)
        if not math.isfinite(number):
            raise ScalingError(f"{number} has no {self.value} form")
        if self is RawType.FLOAT32:
            try:
                return struct.pack("<f", number)
            except OverflowError:
                raise ScalingError(f"{number} is beyond float32's range") from None
        whole = round(number)
        low, high = self.bounds()
        if not low <= whole <= high:
            raise ScalingError(f"{number} is outside {self.value}'s {low}..{high}")
        return whole.to_bytes(self.size, "little", signed=self.signed)

    def unpack(self, data: bytes) -> float:
        """The number (in raw units) that ``data`` (:attr:`size` bytes) holds.

        :class:`ScalingError` for the wrong number of bytes, or bytes that are no
        number: a DEC reserved operand, a float32 NaN or infinity (a device holds
        finite values only, so that every reading of it can be served)."""
        if len(data) != self.size:
            raise ScalingError(f"{self.value} is {self.size} bytes, got {len(data)}")
        if self is RawType.DEC_F:
            return dec_f_decode(data)
        if self is RawType.FLOAT32:
            number: float = struct.unpack("<f", data)[0]
            if not math.isfinite(number):
                raise ScalingError(f"raw {data.hex()} is a float32 {number}, not a finite value")
            return number
        return float(int.from_bytes(data, "little", signed=self.signed))

    def saturate(self, number: float) -> float:
        """``number`` held to what the type can represent (a front end's reading saturates)."""
        if self.integer:
            low, high = self.bounds()
            return min(max(number, low), high)
        limit = DEC_F_MAX if self is RawType.DEC_F else _FLOAT32_MAX
        return min(max(number, -limit), limit)


_FLOAT32_MAX = struct.unpack("<f", b"\xff\xff\x7f\x7f")[0]


# ACNET's primary transform indices (as the device database numbers them) for the
# primaries this model can state exactly: (raw type, divisor) -> p_index.
_ACNET_PRIMARY = {
    (RawType.FLOAT32, 1.0): 16,
    (RawType.DEC_F, 1.0): 22,
    (RawType.INT16, 3200.0): 0,
    (RawType.INT16, 3276.8): 2,
    (RawType.INT16, 6553.6): 4,
    (RawType.INT16, 13107.2): 6,
    (RawType.INT16, 320.0): 12,
    (RawType.INT16, 1.0): 10,
    (RawType.INT32, 1.0): 10,
    (RawType.UINT16, 1.0): 20,
    (RawType.UINT32, 1.0): 10,  # ACNET has no unsigned 32-bit primary: exact below 2**31
}
_ACNET_COMMON_IDENTITY = 0
_ACNET_COMMON_LINEAR = 2  # C1*X/C2 + C3


@dataclass(frozen=True, slots=True)
class Scaling:
    """How a numeric device's raw data becomes its scaled values, and back.

    ``exact`` says that scaled values are exactly what the raw data holds
    (every value is quantised to the raw type). A device that states no raw
    type gets ``Scaling()``: float32 raw, identity transforms and doubles
    that are not quantised (``.RAW`` is their nearest float32), the
    simulator's behaviour before raw types existed.
    """

    raw: RawType = RawType.FLOAT32
    offset: float = 0.0
    scale: float = 1.0
    divisor: float = 1.0
    c1: float = 1.0
    c2: float = 1.0
    c3: float = 0.0
    exact: bool = False

    def primary_of_raw(self, number: float) -> float:
        """The primary transform: raw units to primary units."""
        return (number - self.offset) * self.scale / self.divisor

    def common_of_primary(self, primary: float) -> float:
        """The common transform: primary units to scaled (common) units."""
        return self.c1 * primary / self.c2 + self.c3

    def primary_of(self, scaled: float) -> float:
        """The inverse common transform: the primary value of a scaled one."""
        return (scaled - self.c3) * self.c2 / self.c1

    def primary_value(self, scaled: float) -> float:
        """The PRIMARY value of a scaled one: for an :attr:`exact` scaling, the primary
        transform of the raw data it is held as."""
        if not self.exact:
            return self.primary_of(scaled)
        return self.primary_of_raw(self.raw.unpack(self.encode(scaled, saturate=True)))

    def raw_number(self, scaled: float) -> float:
        """The raw-unit number of a scaled value, before it is quantised to the raw type."""
        return self.primary_of(scaled) * self.divisor / self.scale + self.offset

    def encode(self, scaled: float, *, saturate: bool = False) -> bytes:
        """A scaled value as raw bytes; :class:`ScalingError` if the raw type cannot hold it,
        unless ``saturate`` (a reading) holds it to the type's range instead."""
        number = self.raw_number(scaled)
        if saturate and not math.isnan(number):
            number = self.raw.saturate(number)
        return self.raw.pack(number)

    def decode(self, data: bytes) -> float:
        """The scaled value of one element of raw data (:class:`ScalingError`: no value, or a
        value the transforms carry beyond a finite float)."""
        scaled = self.common_of_primary(self.primary_of_raw(self.raw.unpack(data)))
        if not math.isfinite(scaled):
            raise ScalingError(f"raw {data.hex()} scales to {scaled}, not a finite value")
        return scaled

    def quantise(self, scaled: float, *, saturate: bool = False) -> float:
        """What the device holds when told ``scaled``: the value its raw form scales to
        (``scaled`` itself if not :attr:`exact`).

        This is the one check every value a device holds passes through:
        :class:`ScalingError` for a value that is not finite (whatever the
        scaling; ``saturate`` does not make NaN or infinity a reading) or that
        the raw type cannot hold."""
        if not math.isfinite(scaled):
            raise ScalingError(f"{scaled} is not a finite value; a device holds finite values only")
        if not self.exact:
            return scaled
        return self.decode(self.encode(scaled, saturate=saturate))

    def encode_all(self, values: Sequence[float], *, saturate: bool = False) -> bytes:
        """Scaled values as raw bytes, one element each (:meth:`encode`; all or nothing)."""
        return b"".join(self.encode(v, saturate=saturate) for v in values)

    def decode_all(self, data: bytes) -> list[float]:
        """The scaled values of whole raw elements; :class:`ScalingError` if ``data`` is not a
        whole number of elements or one of them is no value (:meth:`RawType.unpack`)."""
        size = self.raw.size
        if len(data) % size:
            raise ScalingError(
                f"{len(data)} bytes are not whole {size}-byte {self.raw.value} elements"
            )
        return [self.decode(data[i : i + size]) for i in range(0, len(data), size)]

    def acnet_indices(self) -> tuple[int, int, tuple[float, ...]]:
        """``(p_index, c_index, constants)`` as the device database states this scaling.

        A primary ACNET numbers is stated as itself, with the common transform
        as index 2 (``C1*X/C2 + C3``) or 0 (identity); any other linear primary
        is folded into an equivalent index-2 common transform over the raw
        type's plain primary (10: the integer as a float, 20: unsigned 16-bit,
        16: IEEE float, 22: DEC float), which scales the same raw to the same value.
        """
        plain = self.offset == 0.0 and self.scale == 1.0
        p_index = _ACNET_PRIMARY.get((self.raw, self.divisor)) if plain else None
        constants = (self.c1, self.c2, self.c3)
        if p_index is None:
            # C1*((X - offset)*scale/divisor)/C2 + C3, regrouped as C1'*X/C2 + C3'
            p_index = _ACNET_PRIMARY[(self.raw, 1.0)]
            gain = self.c1 * self.scale / self.divisor
            constants = (gain, self.c2, self.c3 - gain * self.offset / self.c2)
        if constants == (1.0, 1.0, 0.0):
            return p_index, _ACNET_COMMON_IDENTITY, ()
        return p_index, _ACNET_COMMON_LINEAR, constants
