"""A device's digital status: its status word and what each bit of it means.

:meth:`Device.digital_status() <acnet_proto.api.device.Device.digital_status>`
builds one; it does no I/O itself::

    status = Device("Z:ACLTST").digital_status()
    print(status)            # Z:ACLTST status=0x0F, then one "name: value" line per bit
    status.on                # True, False, or None if no bit is the on/off bit
    status["Ready"].is_set   # by name (any case) ...
    status[1].value          # ... or by position: "Ready" / "Tripped"

Two sources, as in the seeds: :meth:`DigitalStatus.from_devdb_bits` (the
word, ``STATUS.BIT_VALUE``, and DevDB's bit definitions, each active when
``((~raw if invert else raw) & mask) == match``) and
:meth:`DigitalStatus.from_bit_arrays` (the word with ``STATUS.BIT_NAMES``
and ``STATUS.BIT_VALUES``, indexed by bit). The five basic attributes
(``on``, ``ready``, ``remote``, ``positive``, ``ramp``) are found by the
bits' names.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only their attributes are used: no protobuf needed here
    from acnet_proto.services.devdb import ExtStatusBitDef, StatusBitDef

__all__ = ["DigitalStatus", "StatusBit"]

# the names a basic attribute's bit goes by (compared lower case, letters and digits only)
_ATTRIBUTE_NAMES = {
    "on": {"on", "onoff", "pwr", "power"},
    "ready": {"ready", "readytripped", "sts", "status"},
    "remote": {"remote", "remotelocal", "ctrl", "control"},
    "positive": {"positive", "polarity", "pol", "positivenegative"},
    "ramp": {"ramp", "rampdc", "ref", "reference"},
}


def _plain(name: str) -> str:
    return "".join(c for c in name.lower() if c.isalnum())


@dataclass(frozen=True, slots=True)
class StatusBit:
    """One bit (or attribute) of a status: where, what it is called, its text now, and whether
    it is in its true state."""

    position: int
    name: str
    value: str
    is_set: bool

    def __bool__(self) -> bool:
        return self.is_set


@dataclass(frozen=True, slots=True)
class DigitalStatus:
    """A status word and its bits, in position order (see the module docstring)."""

    device: str
    raw_value: int
    bits: tuple[StatusBit, ...]
    on: bool | None = None
    ready: bool | None = None
    remote: bool | None = None
    positive: bool | None = None
    ramp: bool | None = None

    @classmethod
    def _of(cls, device: str, raw_value: int, bits: list[StatusBit]) -> DigitalStatus:
        bits.sort(key=lambda b: b.position)
        attributes: dict[str, bool | None] = dict.fromkeys(_ATTRIBUTE_NAMES)
        for bit in bits:
            plain = _plain(bit.name)
            for attribute, names in _ATTRIBUTE_NAMES.items():
                if plain in names and attributes[attribute] is None:
                    attributes[attribute] = bit.is_set
        return cls(device, raw_value, tuple(bits), **attributes)

    @classmethod
    def from_devdb_bits(
        cls,
        device: str,
        raw_value: int,
        bit_defs: Sequence[StatusBitDef],
        ext_bit_defs: Sequence[ExtStatusBitDef] | None = None,
    ) -> DigitalStatus:
        """From the status word and DevDB's definitions.

        A definition's position is its mask's lowest bit (its index for a
        zero mask). Extended bits at positions no definition covers follow,
        set when their bit of the word is.
        """
        bits = []
        for index, definition in enumerate(bit_defs):
            active = definition.is_active(raw_value)
            mask = definition.mask
            position = (mask & -mask).bit_length() - 1 if mask > 0 else index
            text = definition.true_str if active else definition.false_str
            bits.append(StatusBit(position, definition.short_name, text, active))
        covered = {b.position for b in bits}
        for ext in ext_bit_defs or ():
            if ext.bit_no not in covered:
                on = bool(raw_value >> ext.bit_no & 1)
                name = ext.description or f"bit {ext.bit_no}"
                bits.append(StatusBit(ext.bit_no, name, ext.name1 if on else ext.name0, on))
        return cls._of(device, raw_value, bits)

    @classmethod
    def from_bit_arrays(
        cls, device: str, raw_value: int, bit_names: Sequence[str], bit_values: Sequence[str]
    ) -> DigitalStatus:
        """From the status word and the per-bit names and texts (``BIT_NAMES``, ``BIT_VALUES``).

        Positions where both are empty are left out.
        """
        bits = []
        for position in range(max(len(bit_names), len(bit_values))):
            name = bit_names[position] if position < len(bit_names) else ""
            value = bit_values[position] if position < len(bit_values) else ""
            if name or value:
                bits.append(StatusBit(position, name, value, bool(raw_value >> position & 1)))
        return cls._of(device, raw_value, bits)

    def __getitem__(self, key: str | int) -> StatusBit:
        """The bit named ``key`` (any case; KeyError) or at position ``key`` (IndexError)."""
        if isinstance(key, str):
            found = next((b for b in self.bits if b.name.lower() == key.lower()), None)
            if found is None:
                names = ", ".join(b.name for b in self.bits)
                raise KeyError(f"{self.device} has no status bit named {key!r} (it has {names})")
            return found
        if isinstance(key, int) and not isinstance(key, bool):
            found = next((b for b in self.bits if b.position == key), None)
            if found is None:
                raise IndexError(f"{self.device} has no status bit at position {key}")
            return found
        raise TypeError(f"a status bit is looked up by name or position, not {key!r}")

    def get(self, key: str | int, default: StatusBit | None = None) -> StatusBit | None:
        try:
            return self[key]
        except (KeyError, IndexError):
            return default

    def __contains__(self, key: object) -> bool:
        return isinstance(key, (str, int)) and self.get(key) is not None

    def __iter__(self) -> Iterator[StatusBit]:
        return iter(self.bits)

    def __len__(self) -> int:
        return len(self.bits)

    def to_dict(self) -> dict[str, str]:
        """``{name: text now}`` for every bit."""
        return {b.name: b.value for b in self.bits}

    def __str__(self) -> str:
        width = max((len(b.name) for b in self.bits), default=0) + 1
        digits = max(2, (abs(self.raw_value).bit_length() + 3) // 4)
        sign = "-" if self.raw_value < 0 else ""
        lines = [f"{self.device} status={sign}0x{abs(self.raw_value):0{digits}X}"]
        lines += [f"  {b.name + ':':<{width}} {b.value}" for b in self.bits]
        return "\n".join(lines)
