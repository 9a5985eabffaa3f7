"""Command-line tools: ``acnet-proto`` (decode, sim, demo) and the EPICS-style ``ac*`` commands.

This is an entry point, not part of the pure core: it imports adapters.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from acnet_proto._message import Message
from acnet_proto._state import Role
from acnet_proto.errors import ProtocolError
from acnet_proto.framing import HANDSHAKE
from acnet_proto.status import Status
from acnet_proto.transcript import ReplayError, load, messages_of, replay

__all__ = ["main"]

_TIME_FIELDS = frozenset({"timestamp"})
_STATUS_FIELDS = frozenset({"status"})


def _field_text(name: str, value: Any) -> str:
    if name in _TIME_FIELDS and isinstance(value, int) and value:
        when = datetime.fromtimestamp(value / 1000, UTC).isoformat(timespec="milliseconds")
        return f"{name}={when}"
    if name in _STATUS_FIELDS and isinstance(value, int):
        return f"{name}={value}" if value == 0 else f"{name}={value} {Status.from_int(value)}"
    if isinstance(value, Message):
        return f"{name}={describe(value)}"
    if isinstance(value, tuple) and value and isinstance(value[0], Message):
        return f"{name}=[{', '.join(describe(v) for v in value)}]"
    return f"{name}={value!r}"


def describe(message: Message) -> str:
    """One message, readably: its class, fields, UTC times and status names."""
    fields = message.to_dict() if hasattr(message, "to_dict") else {}
    parts = [
        _field_text(name, getattr(message, name))
        for name in fields
        if getattr(message, name) is not None
    ]
    return f"{type(message).__name__}({', '.join(parts)})"


def decode(path: str, check: bool, out: Any = sys.stdout) -> int:
    """Print a transcript's conversation; with ``check``, find the first broken frame."""
    try:
        lines = load(path)
    except (OSError, ValueError) as exc:
        print(f"acnet-proto decode: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    arrows = {"c2s": "client -> server", "s2c": "server -> client"}
    number = 0
    try:
        for number, (line, items) in enumerate(messages_of(lines), 1):
            note = f"   # {line.note}" if line.note else ""
            print(f"[{number}] {arrows[line.direction]}{note}", file=out)
            for item in items:
                text = "handshake " + repr(HANDSHAKE) if item is HANDSHAKE else describe(item)
                print(f"      {text}", file=out)
    except ProtocolError as exc:
        print(f"acnet-proto decode: line {number + 1} does not decode: {exc}", file=sys.stderr)
        return 1
    if not check:
        return 0
    try:
        for _ in replay(lines, Role.CLIENT):
            pass
    except ReplayError as exc:
        print(
            f"BROKEN at line {exc.number}: the {exc.culprit.value} broke the protocol: {exc.cause}",
            file=out,
        )
        return 1
    print("OK: every frame follows the DPM state machine", file=out)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="acnet-proto", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    dec = commands.add_parser("decode", help="print a JSONL transcript readably")
    dec.add_argument("file")
    dec.add_argument(
        "--check", action="store_true", help="report the first frame that breaks the state machine"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``acnet-proto``: see ``acnet-proto --help``."""
    args = _parser().parse_args(argv)
    if args.command == "decode":
        return decode(args.file, args.check)
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
