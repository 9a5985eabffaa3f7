"""``acget DRF...`` (``acnet-proto get``): read devices once, a line each (like EPICS ``caget``)."""

from __future__ import annotations

from collections.abc import Sequence

from acnet_proto.adapters.cli.connect import connect
from acnet_proto.adapters.cli.drfs import for_reading
from acnet_proto.adapters.cli.exits import DEVICE_ERROR, OK, get_readings, reported
from acnet_proto.adapters.cli.options import Parser, connection_options
from acnet_proto.adapters.cli.output import Printer

__all__ = ["acget"]


def acget(argv: Sequence[str] | None, prog: str = "acget") -> int:
    """Read each DRF once and print it; a bad DRF is reported and the others still read.

    Exit 1 if a device answered an error or the read timed out (what did
    arrive is printed), 2 for a bad DRF, 3 without a connection.
    """
    parser = Parser(prog=prog, description="Read ACNET devices once (like EPICS caget).")
    parser.add_argument("drfs", nargs="+", metavar="DRF", help="e.g. M:OUTTMP, Z:ACLTS1[0:3]")
    parser.add_argument("-t", "--timestamp", action="store_true", help="print the timestamp")
    connection_options(parser)
    args = parser.parse(argv)
    checked = for_reading(prog, args.drfs)
    if not checked.drfs:
        return checked.code
    printer = Printer(args.format, timestamps=args.timestamp)
    with connect(args) as backend:
        readings, failure = get_readings(backend, checked.drfs)
    for reading in readings:
        printer.reading(reading)
    errors = DEVICE_ERROR if any(not r.ok for r in readings) else OK
    return reported(prog, max(checked.code, errors), failure)
