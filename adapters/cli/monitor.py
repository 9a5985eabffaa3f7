"""``acmonitor DRF...`` (``acnet-proto monitor``): print readings as they stream (``camonitor``).

A DRF without an event streams at ``@p,1000``. The monitor ends after
``-n`` readings (error readings count), when ``--timeout`` seconds pass
with no reading (exit 1, saying so), when the stream is lost for good
(exit 3), or on Ctrl-C (the normal end: exit 0, or 1 if errors were seen).
Each gap the stream reports (its connection died; it reconnected) is printed
as a line where it happened, as it is reported: never silence.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from acnet_proto.adapters.cli.connect import connect
from acnet_proto.adapters.cli.drfs import for_streaming
from acnet_proto.adapters.cli.exits import DEVICE_ERROR, OK, report
from acnet_proto.adapters.cli.options import Parser, connection_options, require, whole_number
from acnet_proto.adapters.cli.output import Printer
from acnet_proto.api.backend import Subscription
from acnet_proto.streams.reconnect import Gap, Reconnect, summary

__all__ = ["acmonitor"]

DEFAULT_RECONNECT = 10


def _parser(prog: str) -> Parser:
    parser = Parser(prog=prog, description="Stream ACNET devices (like EPICS camonitor).")
    parser.add_argument("drfs", nargs="+", metavar="DRF", help="e.g. M:OUTTMP@p,1000")
    parser.add_argument(
        "-n", "--count", type=whole_number(1), help="stop after this many readings (errors count)"
    )
    parser.add_argument(
        "--reconnect",
        type=whole_number(0),
        default=DEFAULT_RECONNECT,
        metavar="N",
        help=f"reconnections to try before a dead stream ends (default {DEFAULT_RECONNECT})",
    )
    connection_options(parser)
    return parser


def acmonitor(argv: Sequence[str] | None, prog: str = "acmonitor") -> int:
    """Stream the DRFs and print each reading and gap as it arrives (flushed)."""
    args = _parser(prog).parse(argv)
    require(args.backend, "stream")
    checked = for_streaming(prog, args.drfs)
    if not checked.drfs:
        return checked.code
    with connect(args) as backend:
        policy = Reconnect(max_retries=args.reconnect)
        with backend.subscribe(checked.drfs, reconnect=policy) as stream:
            return max(checked.code, _follow(prog, args, stream))


def _follow(prog: str, args: argparse.Namespace, stream: Subscription) -> int:
    """Print what ``stream`` delivers until one of the ends; the exit status of what was seen."""
    printer = Printer(args.format, timestamps=True, flush=True)
    seen, errors = 0, False
    try:
        for item, _ in stream.readings(timeout=args.timeout):
            if isinstance(item, Gap):
                printer.gap(item)
                continue
            printer.reading(item)
            seen += 1
            errors = errors or not item.ok
            if args.count is not None and seen >= args.count:
                return DEVICE_ERROR if errors else OK
    except KeyboardInterrupt:  # Ctrl-C is how a monitor is ended
        return DEVICE_ERROR if errors else OK
    if args.timeout is not None:
        report(
            prog,
            f"no reading for {args.timeout:g} s from {summary(stream.drfs)} "
            f"({seen} reading(s) before); check the events, or raise --timeout",
        )
        return DEVICE_ERROR
    return DEVICE_ERROR if errors else OK
