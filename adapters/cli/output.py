"""How the tools print readings: ``text`` (for people), ``json`` (one object a line), ``csv``.

Units follow a value only when it is a number or an array of numbers: text,
bytes, status and alarm blocks have none. Bytes print as hex, arrays as
lists, dicts (status, alarm blocks) as ``key=value`` pairs. An error reading
prints ``ERROR`` and its status instead of a value; a :class:`Gap` (a stream
reconnected, or is reconnecting) prints as a line of its own, in order.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TextIO, TypeVar

import numpy as np

from acnet_proto.streams.reconnect import Gap
from acnet_proto.types import Reading, WriteResult

__all__ = [
    "Printer",
    "error_text",
    "is_numeric",
    "json_value",
    "reading_json",
    "reading_text",
    "units_of",
    "value_cell",
    "value_text",
    "when_text",
]

_T = TypeVar("_T")


def is_numeric(value: Any) -> bool:
    """True for a number or an array of numbers (what engineering units apply to)."""
    if isinstance(value, bool | np.bool_):
        return False
    if isinstance(value, int | float | np.number):
        return True
    return isinstance(value, np.ndarray) and value.dtype.kind in "iuf"


def value_text(value: Any) -> str:
    """A value for people: hex for bytes, a list for arrays, ``key=value`` for dicts.

    A float that is exactly a single-precision one (what most front ends hold:
    IEEE or DEC F_floating) prints as that float's shortest form, so a setting
    of -1.5e-3 shows as ``-0.0015``, not ``-0.001500000013038516``; JSON and CSV
    keep every digit.
    """
    if isinstance(value, bytes | bytearray):
        return value.hex()
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, list | tuple):
        return (
            "[" + ", ".join(repr(v) if isinstance(v, str) else value_text(v) for v in value) + "]"
        )
    if isinstance(value, Mapping):
        return " ".join(f"{key}={value_text(item)}" for key, item in value.items())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return _float_text(value)
    return str(value)


def _float_text(value: float) -> str:
    with np.errstate(over="ignore"):  # beyond float32 is inf: printed in full below
        single = np.float32(value)
    return str(single) if np.isfinite(single) and float(single) == value else str(value)


def json_value(value: Any) -> Any:
    """``value`` as JSON can hold it: lists for arrays, hex for bytes, null for NaN/inf."""
    if isinstance(value, bytes | bytearray):
        return value.hex()
    if isinstance(value, np.ndarray | np.generic):
        return json_value(value.tolist())
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): json_value(item) for key, item in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def when_text(moment: datetime | None) -> str:
    """A UTC time to the millisecond, or ``""``."""
    return moment.isoformat(timespec="milliseconds") if moment else ""


def error_text(outcome: Reading | WriteResult) -> str:
    """What went wrong: the message, else the status; ``""`` for a reading or setting that is ok."""
    if outcome.ok:
        return ""
    return outcome.message or str(outcome.status)


def value_cell(reading: Reading) -> str:
    """The value for a CSV cell (:func:`value_text`), or ``""`` for an error reading."""
    return value_text(reading.value) if reading.ok else ""


def units_of(reading: Reading) -> str:
    """The reading's units if its value is numeric, else ``""``."""
    return (reading.units or "") if reading.ok and is_numeric(reading.value) else ""


def reading_text(reading: Reading) -> str:
    """The value and its units, or ``ERROR`` and the status."""
    if not reading.ok:
        return f"ERROR {error_text(reading)}"
    units = units_of(reading)
    return value_text(reading.value) + (f" {units}" if units else "")


class Printer:
    """Writes readings (and gaps) to ``out`` in ``fmt``; ``timestamps`` adds them in text.

    ``flush`` after every line (for streams). CSV starts with a header row:
    ``drf,timestamp,value,units,error``.
    """

    CSV_COLUMNS = ("drf", "timestamp", "value", "units", "error")

    def __init__(
        self, fmt: str, *, timestamps: bool = False, flush: bool = False, out: TextIO | None = None
    ) -> None:
        self.fmt = fmt
        self.timestamps = timestamps
        self.flush = flush
        self.out = sys.stdout if out is None else out
        self._csv = csv.writer(self.out, lineterminator="\n") if fmt == "csv" else None
        self._header = False

    def _csv_row(self, row: Sequence[Any]) -> None:
        assert self._csv is not None
        if not self._header:  # written with the first row: other tools write other columns
            self._csv.writerow(self.CSV_COLUMNS)
            self._header = True
        self._csv.writerow(row)

    def reading(self, reading: Reading) -> None:
        """One reading, as one line (or row)."""
        drf = reading.drf
        if self.fmt == "json":
            self.json_line(reading_json(reading))
        elif self._csv is not None:
            value = value_cell(reading)
            row = [drf, when_text(reading.timestamp), value, units_of(reading), error_text(reading)]
            self._csv_row(row)
        else:
            stamp = f"{when_text(reading.timestamp) or '-'} " if self.timestamps else ""
            self.line(f"{drf} {stamp}{reading_text(reading)}")
        self._done()

    def gap(self, gap: Gap) -> None:
        """A gap in a stream, where it happened among the readings."""
        if self.fmt == "json":
            self.json_line({"gap": gap_json(gap)})
        elif self._csv is not None:
            self._csv_row([" ".join(gap.drfs), when_text(gap.since), "", "", f"gap: {gap}"])
        else:
            self.line(f"# {gap}")
        self._done()

    def line(self, text: str) -> None:
        print(text, file=self.out)

    def json_line(self, data: Mapping[str, Any]) -> None:
        print(json.dumps(data, allow_nan=False), file=self.out)

    def rows(self, rows: Sequence[Sequence[Any]]) -> None:
        """CSV rows, header included, for the tools whose columns are not a reading's."""
        csv.writer(self.out, lineterminator="\n").writerows(rows)

    def records(
        self,
        items: Iterable[_T],
        header: Sequence[str],
        *,
        text: Callable[[_T], Iterable[str]],
        json: Callable[[_T], Mapping[str, Any]],
        rows: Callable[[_T], Iterable[Sequence[Any]]],
    ) -> None:
        """Each of ``items`` as its ``text`` lines, its ``json`` object, or its CSV ``rows``
        (those all at the end, under ``header``), for the tools whose columns are their own."""
        table: list[Sequence[Any]] = [header]
        for item in items:
            if self.fmt == "json":
                self.json_line(json(item))
            elif self.fmt == "csv":
                table += rows(item)
            else:
                for line in text(item):
                    self.line(line)
        if self.fmt == "csv":
            self.rows(table)

    def _done(self) -> None:
        if self.flush:
            self.out.flush()


def reading_json(reading: Reading) -> dict[str, Any]:
    """A reading as a JSON object: drf, ok, value, units, timestamp, error."""
    return {
        "drf": reading.drf,
        "ok": reading.ok,
        "value": json_value(reading.value) if reading.ok else None,
        "units": units_of(reading) or None,
        "timestamp": reading.timestamp.isoformat() if reading.timestamp else None,
        "error": error_text(reading) or None,
    }


def gap_json(gap: Gap) -> dict[str, Any]:
    return {
        "drfs": list(gap.drfs),
        "since": gap.since.isoformat(),
        "until": gap.until.isoformat() if gap.until else None,
        "cause": gap.cause,
        "attempts": gap.attempts,
        "text": str(gap),
    }
