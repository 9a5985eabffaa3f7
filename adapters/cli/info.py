"""``acinfo DEVICE...`` (``acnet-proto info``): what the server says about each device.

Its description, index and units, then each property it has: reading,
setting, basic status, analog and digital alarm blocks. ``-v`` also lists
the properties it lacks (``DBM_NOPROP``; over ACL ``DIO_NOATT``, or what ACL
cannot read) and the DRF and time of each read.
All devices are read in one batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from acnet_proto import drf as _drf
from acnet_proto.adapters.cli.connect import connect
from acnet_proto.adapters.cli.drfs import for_devices
from acnet_proto.adapters.cli.exits import DEVICE_ERROR, OK, get_readings, reported
from acnet_proto.adapters.cli.options import Parser, connection_options
from acnet_proto.adapters.cli.output import (
    Printer,
    error_text,
    reading_json,
    reading_text,
    units_of,
    value_cell,
    when_text,
)
from acnet_proto.status import Status
from acnet_proto.types import DeviceMeta, Reading

__all__ = ["acinfo"]

_P = _drf.Property
#: what is shown of a device, in order: (label, property)
PROPERTIES = (
    ("reading", _P.READING),
    ("setting", _P.SETTING),
    ("status", _P.STATUS),
    ("analog alarm", _P.ANALOG),
    ("digital alarm", _P.DIGITAL),
)
#: what a property the device lacks reads as: over DPM, over ACL, and what ACL cannot read
_ABSENT = frozenset(Status.from_name(n) for n in ("DBM_NOPROP", "DIO_NOATT", "DIO_NOT_SUPPORTED"))


@dataclass
class _Device:
    """One device: its DESCRIPTION reading, and one reading per :data:`PROPERTIES`."""

    name: str
    description: Reading
    readings: list[Reading]

    @property
    def meta(self) -> DeviceMeta | None:
        every = [self.description, *self.readings]
        return next((r.meta for r in every if r.meta is not None), None)

    @property
    def found(self) -> bool:
        """False if no property answered (no such device, or no connection)."""
        return any(r.ok or r.status in _ABSENT for r in self.readings)

    @property
    def problem(self) -> str:
        """Why the device was not found: the first error that is not a missing property."""
        wrong = next((r for r in self.readings if r.status not in _ABSENT), self.readings[0])
        return error_text(wrong) or str(wrong.status)

    @property
    def failed(self) -> bool:
        return not self.found or any(not r.ok and r.status not in _ABSENT for r in self.readings)

    def about(self) -> list[tuple[str, Any]]:
        """(label, value) of what is known about it: description, index, units."""
        meta = self.meta
        text = self.description.value if self.description.ok else None
        facts: list[tuple[str, Any]] = []
        if text is not None or meta is not None:
            shown = text if text is not None else (meta.description if meta else None)
            facts.append(("description", shown))
        if meta is not None:
            facts += [("device index", meta.device_index), ("units", meta.units)]
        return facts

    def shown(self, verbose: bool) -> list[tuple[str, Reading]]:
        """The (label, reading) pairs to show: all with ``verbose``, else those it has."""
        pairs = zip((label for label, _ in PROPERTIES), self.readings, strict=True)
        return [(label, r) for label, r in pairs if verbose or r.status not in _ABSENT]


def acinfo(argv: Sequence[str] | None, prog: str = "acinfo") -> int:
    """Describe each device; exit 1 if one is unknown or a property it has answered an error."""
    parser = Parser(prog=prog, description="Describe ACNET devices.")
    parser.add_argument("devices", nargs="+", metavar="DEVICE", help="a name, or a DRF")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also the properties a device lacks"
    )
    connection_options(parser)
    args = parser.parse(argv)
    checked = for_devices(prog, args.devices)
    if not checked.drfs:
        return checked.code
    per_device = [_P.DESCRIPTION, *(prop for _, prop in PROPERTIES)]
    requests = [f"{name}.{prop.value}@I" for name in checked.drfs for prop in per_device]
    with connect(args) as backend:
        readings, failure = get_readings(backend, requests)
    size = len(per_device)
    devices = [
        _Device(name, readings[i * size], readings[i * size + 1 : (i + 1) * size])
        for i, name in enumerate(checked.drfs)
    ]
    Printer(args.format).records(
        devices,
        ["device", "property", "value", "units", "error"],
        text=lambda device: _text(device, args.verbose),
        json=lambda device: _json(device, args.verbose),
        rows=lambda device: _rows(device, args.verbose),
    )
    code = max(checked.code, DEVICE_ERROR if any(d.failed for d in devices) else OK)
    return reported(prog, code, failure)


def _text(device: _Device, verbose: bool) -> list[str]:
    if not device.found:
        return [f"{device.name}: {device.problem}"]
    lines = [device.name]
    lines += [f"  {label}: {'-' if value is None else value}" for label, value in device.about()]
    for label, reading in device.shown(verbose):
        where = f"  [{reading.drf} at {when_text(reading.timestamp) or '-'}]" if verbose else ""
        lines.append(f"  {label}: {reading_text(reading)}{where}")
    return lines


def _json(device: _Device, verbose: bool) -> dict[str, Any]:
    data: dict[str, Any] = {"device": device.name}
    if not device.found:
        return {**data, "error": device.problem}
    data.update((label.replace(" ", "_"), value) for label, value in device.about())
    for label, reading in device.shown(verbose):
        shown = reading_json(reading)
        data[label.replace(" ", "_")] = {key: shown[key] for key in ("value", "units", "error")}
    return data


def _rows(device: _Device, verbose: bool) -> list[list[Any]]:
    if not device.found:
        return [[device.name, "", "", "", device.problem]]
    rows = [[device.name, label, value, "", ""] for label, value in device.about()]
    for label, reading in device.shown(verbose):
        row = [device.name, label, value_cell(reading), units_of(reading), error_text(reading)]
        rows.append(row)
    return rows
