"""ACNET status codes.

A status is one signed 16-bit integer: ``status = facility | (error << 8)``.
The low byte is the facility (0..255: 1 ACNET, 16 DBM, 17 DPM, ...), the high
byte the error number as a signed byte (-128..127). Error 0 is success,
positive errors are warnings, negative ones failures.

Names and meanings come from ``protos/acnet-status-codes.json``, read once,
on first use.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from dataclasses import dataclass
from pathlib import Path

from acnet_proto._text import shown
from acnet_proto.errors import AcnetProtoError

__all__ = [
    "Status",
    "UnknownStatusName",
    "facility_name",
    "known_statuses",
    "pack",
    "unpack",
]

_CODES_FILE = "acnet-status-codes.json"


def _check_int(name: str, value: object, low: int, high: int) -> int:
    # bool is an int subclass, but pack(True, 0) is always a mistake
    if type(value) is not int:
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in {low}..{high}, got {value}")
    return value


def pack(facility: int, error: int) -> int:
    """The signed 16-bit status for ``facility`` (0..255) and ``error`` (-128..127)."""
    _check_int("facility", facility, 0, 255)
    _check_int("error", error, -128, 127)
    unsigned = facility | ((error & 0xFF) << 8)
    return unsigned - 0x10000 if unsigned & 0x8000 else unsigned


def unpack(status: int) -> tuple[int, int]:
    """``(facility, error)`` of a signed 16-bit ``status`` (-32768..32767)."""
    _check_int("status", status, -0x8000, 0x7FFF)
    error = (status >> 8) & 0xFF
    return status & 0xFF, error - 0x100 if error & 0x80 else error


class UnknownStatusName(AcnetProtoError, KeyError):
    """No status has the name that was asked for (a :class:`LookupError`)."""

    def __str__(self) -> str:
        # KeyError would show the message in quotes, as if it were a key
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True, slots=True)
class Status:
    """An ACNET status: ``facility`` (0..255) and signed ``error`` (-128..127).

    ``str(Status(17, -17))`` is ``"DPM_PRIV [17 -17]: Insufficient privileges
    for setting"``.
    """

    facility: int
    error: int

    def __post_init__(self) -> None:
        _check_int("facility", self.facility, 0, 255)
        _check_int("error", self.error, -128, 127)

    @classmethod
    def from_int(cls, status: int) -> Status:
        """The status packed in ``status`` (see :func:`unpack`)."""
        return cls(*unpack(status))

    @classmethod
    def from_name(cls, name: str) -> Status:
        """The status called ``name`` (case-insensitive), e.g. ``"DPM_PRIV"``.

        Raises :class:`UnknownStatusName` (a :class:`KeyError`) for a name
        that is not in the table.
        """
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        entry = _table().by_name.get(name.upper())
        if entry is None:
            # the name may be a peer's text (ACL prints one): bounded and escaped
            raise UnknownStatusName(f"no ACNET status is named {shown(name)}")
        return entry[0]

    @property
    def status(self) -> int:
        """The packed signed 16-bit value, as it travels on the wire."""
        return pack(self.facility, self.error)

    @property
    def name(self) -> str | None:
        """The symbolic name such as ``"DPM_PRIV"``, or None if not in the table."""
        entry = _table().by_code.get((self.facility, self.error))
        return entry[1] if entry else None

    @property
    def text(self) -> str:
        """What the status means, in words."""
        entry = _table().by_code.get((self.facility, self.error))
        if entry:
            return entry[2]
        if self.error == 0:
            return "success"
        return "unknown warning" if self.error > 0 else "unknown error"

    @property
    def is_success(self) -> bool:
        """Error number 0."""
        return self.error == 0

    @property
    def is_warning(self) -> bool:
        """Positive error number: it worked, with something to note."""
        return self.error > 0

    @property
    def is_error(self) -> bool:
        """Negative error number: it failed."""
        return self.error < 0

    @property
    def label(self) -> str:
        """What ``str()`` shows before the text: the name (else the facility's, else
        ``STATUS``) and the codes, ``"DPM_PRIV [17 -17]"``."""
        name = self.name or facility_name(self.facility) or "STATUS"
        return f"{name} [{self.facility} {self.error}]"

    def __str__(self) -> str:
        return f"{self.label}: {self.text}"


def facility_name(facility: int) -> str | None:
    """The facility's name (``17`` -> ``"DPM"``), or None if no status uses it."""
    return _table().facilities.get(facility)


def known_statuses() -> tuple[Status, ...]:
    """Every status in the table, in file order."""
    return _table().statuses


@dataclass(frozen=True, slots=True)
class _Table:
    # name -> (status, name, text) and (facility, error) -> the same
    by_name: dict[str, tuple[Status, str, str]]
    by_code: dict[tuple[int, int], tuple[Status, str, str]]
    facilities: dict[int, str]
    statuses: tuple[Status, ...]


def _read_codes() -> bytes:
    try:
        resource = importlib.resources.files("acnet_proto.protos").joinpath(_CODES_FILE)
        return resource.read_bytes()
    except ModuleNotFoundError:
        # a source tree that was never `pip install`ed: protos/ is the
        # package's sibling, mapped to acnet_proto.protos only when installed
        return (Path(__file__).resolve().parent.parent / "protos" / _CODES_FILE).read_bytes()


@functools.cache
def _table() -> _Table:
    by_name: dict[str, tuple[Status, str, str]] = {}
    by_code: dict[tuple[int, int], tuple[Status, str, str]] = {}
    facilities: dict[int, str] = {}
    for item in json.loads(_read_codes())["codes"]:
        status = Status(item["facility"], item["error"])
        entry = (status, item["name"], item["text"])
        if item["name"].upper() in by_name or (status.facility, status.error) in by_code:
            # a broken data file must fail loudly, not shadow an entry
            raise RuntimeError(f"{_CODES_FILE}: duplicate status {item['name']}")
        by_name[item["name"].upper()] = entry
        by_code[status.facility, status.error] = entry
        # names are FACILITY_WHAT: ACNET_PEND, DPM_PRIV, ...
        facilities.setdefault(status.facility, item["name"].split("_", 1)[0])
    return _Table(by_name, by_code, facilities, tuple(e[0] for e in by_name.values()))
