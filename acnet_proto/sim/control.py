"""A device's CONTROL command table and STATUS bit layout: what they hold, and what a command does.

A device with basic status has a *layout*, the bits it has (each a mask in
the raw status word, a name as DPM serves it, a short name as the device
database lists it, and two texts), and a *control table*, the
commands its CONTROL property takes, by ordinal: each is a command value
and a name, as the device database lists them. Clients send the ordinal
(DPM/TCP, gRPC and pacsys send Java's ``BasicControlDefs`` ordinal, i.e.
:class:`~acnet_proto.types.BasicControl`; DMQ may send the DAQData
``BasicControl`` wire value, which stands for the ordinal of the same name).

What a command does is decided by its **value**, through
:data:`COMMAND_MEANINGS`, and only to a bit the device has:

=====  ==========  =========================
value  meaning     effect
=====  ==========  =========================
1      ON          sets ``on``
2      OFF         clears ``on``
3      RESET       sets ``ready``
4      POSITIVE    sets ``positive``
16     NEGATIVE    clears ``positive``
5      RAMP        sets ``ramp``
6      DC          clears ``ramp``
7      TRIP        clears ``ready``
9      LOCAL       clears ``remote``
10     REMOTE      sets ``remote``
=====  ==========  =========================

The first seven are the values of the lab's Z:ACLTST; TRIP, LOCAL and
REMOTE are the simulator's own (no lab device seen uses them). Any other
value (the lab's TEST=8, TEST2=256, ...) is accepted and changes nothing.
An ordinal beyond the table is refused ``DIO_SCALEFAIL``, as the real DPM
refuses it; a value that is not a whole number ``DIO_INVDATA``.

A device whose model gives no table gets :data:`STANDARD_COMMANDS`
(:class:`~acnet_proto.types.BasicControl` order, so ``BasicControl.LOCAL``
is LOCAL), and no layout :data:`STATUS_BITS` (on, ready, remote, positive,
ramp at bits 0..4). :func:`parse_control` and :func:`parse_status_bits`
read the model file's ``control`` and ``status_bits`` keys;
:func:`by_position` lays a layout's names or texts out by bit number, as
DPM's ``STATUS.BIT_NAMES`` and ``BIT_VALUES`` carry them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from acnet_proto.api.verify import CONTROL_READBACK
from acnet_proto.pc import daqdata
from acnet_proto.types import BasicControl

if TYPE_CHECKING:
    from acnet_proto.sim.devices import BasicStatus

__all__ = [
    "COMMAND_MEANINGS",
    "STANDARD_COMMANDS",
    "STATUS_ATTRIBUTES",
    "STATUS_BITS",
    "BasicStatusBit",
    "ControlCommand",
    "apply_command",
    "by_position",
    "command_at",
    "parse_control",
    "parse_status_bits",
]

#: The bits a status word may carry (a device has only those in its layout).
_WORD_BITS = 16


@dataclass(frozen=True, slots=True)
class BasicStatusBit:
    """One basic status bit as the device database defines it.

    ``attribute`` is which of :class:`~acnet_proto.sim.devices.BasicStatus`'s
    bits it is; ``mask`` the single bit it sets in the raw status word;
    ``name`` the bit's name in DPM's ``STATUS.BIT_NAMES`` and ``devdb_name``
    its short name in the device database (the lab's Z:ACLTST: ``On`` and
    ``OnOff``).
    """

    attribute: str
    mask: int
    name: str
    long_name: str
    true_text: str
    false_text: str
    devdb_name: str

    @property
    def position(self) -> int:
        """The bit's number in the status word (0 for mask 0x1)."""
        return self.mask.bit_length() - 1


def _standard(attribute: str, mask: int, name: str, long_name: str) -> BasicStatusBit:
    # a standard bit's long name is its two texts ("On/Off"), its DevDB name its name
    true_text, false_text = long_name.split("/")
    return BasicStatusBit(attribute, mask, name, long_name, true_text, false_text, name)


#: The standard layout, in bit order: a device with ``status`` and no ``status_bits``.
STATUS_BITS = (
    _standard("on", 0x1, "On", "On/Off"),
    _standard("ready", 0x2, "Ready", "Ready/Tripped"),
    _standard("remote", 0x4, "Remote", "Remote/Local"),
    _standard("positive", 0x8, "Polarity", "Positive/Negative"),
    _standard("ramp", 0x10, "Ramp", "Ramp/DC"),
)

#: The bits a basic status can have, by attribute (the fields of a ``BasicStatus_reply``).
STATUS_ATTRIBUTES = tuple(bit.attribute for bit in STATUS_BITS)

_STANDARD_BIT = {bit.attribute: bit for bit in STATUS_BITS}


@dataclass(frozen=True, slots=True)
class ControlCommand:
    """One entry of a control table: the command ``value`` sent to the device, and its names."""

    value: int
    name: str
    long_name: str


#: What each command value does: the BasicControl it stands for (any other value: nothing).
COMMAND_MEANINGS: Mapping[int, BasicControl] = {
    1: BasicControl.ON,
    2: BasicControl.OFF,
    3: BasicControl.RESET,
    4: BasicControl.POSITIVE,
    16: BasicControl.NEGATIVE,
    5: BasicControl.RAMP,
    6: BasicControl.DC,
    7: BasicControl.TRIP,
    9: BasicControl.LOCAL,
    10: BasicControl.REMOTE,
}

_VALUE_OF = {meaning: value for value, meaning in COMMAND_MEANINGS.items()}

_LONG_NAMES = {
    BasicControl.RESET: "Reset",
    BasicControl.ON: "Turn on",
    BasicControl.OFF: "Turn off",
    BasicControl.POSITIVE: "Set polarity positive",
    BasicControl.NEGATIVE: "Set polarity negative",
    BasicControl.RAMP: "Ramp mode",
    BasicControl.DC: "DC mode",
    BasicControl.LOCAL: "Local control",
    BasicControl.REMOTE: "Remote control",
    BasicControl.TRIP: "Trip",
}

#: The control table of a device with ``status`` and no ``control``: ordinal = BasicControl.
STANDARD_COMMANDS = tuple(
    ControlCommand(_VALUE_OF[command], command.name, _LONG_NAMES[command])
    for command in BasicControl
)


def command_at(commands: Sequence[ControlCommand], number: int) -> ControlCommand | None:
    """The command a client's ``number`` selects from ``commands``, or None (DIO_SCALEFAIL).

    ``number`` is an ordinal, or a DAQData ``BasicControl`` wire value, which
    selects the first command whose value means that BasicControl
    (:data:`COMMAND_MEANINGS`), wherever a device's own table puts it.
    """
    if 0 <= number < len(commands):
        return commands[number]
    try:
        wire = daqdata.BasicControl(number)
    except ValueError:
        return None
    meaning = BasicControl[wire.name]
    return next((c for c in commands if COMMAND_MEANINGS.get(c.value) is meaning), None)


def by_position(bits: Sequence[BasicStatusBit], entries: Sequence[str]) -> list[str]:
    """``entries`` (one per bit of ``bits``) placed at their bits' numbers, ``""`` between.

    DPM's ``STATUS.BIT_NAMES`` and ``BIT_VALUES`` are indexed by bit number,
    so a client finds bit *n* at index *n*; the list ends at the layout's
    highest bit (the lab's Z:ACLTST: ``["On", "Ready", "", "Polarity", ...]``).
    """
    out = [""] * (max((bit.position for bit in bits), default=-1) + 1)
    for bit, entry in zip(bits, entries, strict=True):
        out[bit.position] = entry
    return out


def apply_command(status: BasicStatus, command: ControlCommand) -> None:
    """Do to ``status`` what ``command``'s value means, if ``status`` has that bit."""
    meaning = COMMAND_MEANINGS.get(command.value)
    if meaning is None:
        return
    # a command sets the very bit a verified control write reads back, so take it from there
    field, state = CONTROL_READBACK[meaning]
    attribute = field.lower()
    if status.has(attribute):
        setattr(status, attribute, state)


# -- the model file ----------------------------------------------------------------

Fail = Callable[[str, str], Exception]  # (where, problem) -> the error to raise

_COMMAND_KEYS = frozenset({"ordinal", "value", "name", "long_name"})
_BIT_KEYS = frozenset({"mask", "name", "devdb_name", "long_name", "true_text", "false_text"})


def parse_control(items: object, where: str, fail: Fail) -> tuple[ControlCommand, ...]:
    """The ``control`` key: an array of ``{value, name}`` tables, the ordinal being the position.

    Each table may also give ``long_name`` (default: the standard one for
    the value's meaning, else ``name``) and ``ordinal`` (which must then be
    its position: it is there for the reader). Raises ``fail(where, ...)``
    naming the entry and key of any problem.
    """
    where = f"{where}.control"
    if not isinstance(items, list) or not items:
        raise fail(where, 'must be a non-empty array of tables ({ value = 1, name = "ON" })')
    return tuple(_command(item, i, f"{where}[{i}]", fail) for i, item in enumerate(items))


def _command(item: object, ordinal: int, where: str, fail: Fail) -> ControlCommand:
    if not isinstance(item, dict):
        raise fail(where, f'must be a table ({{ value = 1, name = "ON" }}), got {item!r}')
    _check_keys(item, _COMMAND_KEYS, where, fail)
    if "ordinal" in item and _integer(item, "ordinal", where, fail) != ordinal:
        raise fail(where, f"'ordinal' is {item['ordinal']!r} but the entry is number {ordinal}")
    value = _integer(item, "value", where, fail)
    if not 0 <= value <= 0xFFFF:
        raise fail(where, f"'value' must be in 0..65535 (a 16-bit command), got {value}")
    name = _text(item, "name", where, fail)
    meaning = COMMAND_MEANINGS.get(value)
    default_long = _LONG_NAMES[meaning] if meaning is not None else name
    return ControlCommand(value, name, _text(item, "long_name", where, fail, default_long))


def parse_status_bits(table: object, where: str, fail: Fail) -> tuple[BasicStatusBit, ...]:
    """The ``status_bits`` key: the bits a device has, in bit order.

    A table from bit (``on``, ``ready``, ``remote``, ``positive``, ``ramp``)
    to its mask, or to ``{mask, name, devdb_name, long_name, true_text,
    false_text}``: ``name`` is what DPM's ``BIT_NAMES`` says, ``devdb_name``
    the device database's short name (default: ``name``); the other names
    and texts default to the standard bit's. Each mask is one bit of the
    16-bit status word, no two the same. Raises ``fail(where, ...)`` naming
    the bit and key of any problem.
    """
    where = f"{where}.status_bits"
    if not isinstance(table, dict) or not table:
        raise fail(where, "must be a non-empty table of bit = mask ({ on = 0x1, ready = 0x2 })")
    _check_keys(table, frozenset(STATUS_ATTRIBUTES), where, fail)
    bits = [
        _bit(attribute, spec, f"{where}.{attribute}", fail) for attribute, spec in table.items()
    ]
    seen: dict[int, str] = {}
    for bit in bits:
        if bit.mask in seen:
            raise fail(where, f"{seen[bit.mask]} and {bit.attribute} share mask {bit.mask:#x}")
        seen[bit.mask] = bit.attribute
    return tuple(sorted(bits, key=lambda bit: bit.mask))


def _bit(attribute: str, spec: object, where: str, fail: Fail) -> BasicStatusBit:
    standard = _STANDARD_BIT[attribute]
    if isinstance(spec, int) and not isinstance(spec, bool):
        spec = {"mask": spec}
    if not isinstance(spec, dict):
        raise fail(where, f"must be a mask (0x1) or a table {{ mask = 0x1, ... }}, got {spec!r}")
    _check_keys(spec, _BIT_KEYS, where, fail)
    mask = _integer(spec, "mask", where, fail)
    if mask <= 0 or mask & (mask - 1) or mask >> _WORD_BITS:
        raise fail(where, f"'mask' must be one bit of a 16-bit word (0x1..0x8000), got {mask:#x}")
    name = _text(spec, "name", where, fail, standard.name)
    return BasicStatusBit(
        attribute,
        mask,
        name,
        _text(spec, "long_name", where, fail, standard.long_name),
        _text(spec, "true_text", where, fail, standard.true_text),
        _text(spec, "false_text", where, fail, standard.false_text),
        _text(spec, "devdb_name", where, fail, name),
    )


def _check_keys(table: Mapping[str, Any], allowed: frozenset[str], where: str, fail: Fail) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise fail(where, f"unknown key(s) {unknown}; allowed: {sorted(allowed)}")


def _integer(table: Mapping[str, Any], key: str, where: str, fail: Fail) -> int:
    if key not in table:
        raise fail(where, f"missing required key {key!r}")
    value = table[key]
    if not isinstance(value, int) or isinstance(value, bool):
        raise fail(where, f"{key!r} must be int, got {value!r}")
    return value


def _text(
    table: Mapping[str, Any], key: str, where: str, fail: Fail, default: str | None = None
) -> str:
    if key not in table:
        if default is None:
            raise fail(where, f"missing required key {key!r}")
        return default
    value = table[key]
    if not isinstance(value, str) or not value:
        raise fail(where, f"{key!r} must be a non-empty str, got {value!r}")
    return value
