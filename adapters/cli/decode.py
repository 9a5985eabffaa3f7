"""``acnet-proto decode FILE [--check]``: a transcript, readably, and where it breaks protocol."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

from acnet_proto.engine._state import Role
from acnet_proto.engine.framing import HANDSHAKE
from acnet_proto.engine.transcript import ReplayError, load, messages_of, replay
from acnet_proto.errors import ProtocolError
from acnet_proto.pc._message import Message
from acnet_proto.status import Status

__all__ = ["decode", "describe"]

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


def decode(path: str, check: bool, out: Any = None) -> int:
    """Print a transcript's conversation; with ``check``, find the first broken frame."""
    out = sys.stdout if out is None else out
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
        # the engine's message already names whose fault it is; say it once
        blame = f"the {exc.culprit.value} broke the protocol"
        detail = str(exc.cause).removeprefix(blame + ": ").removeprefix("cannot send: ")
        print(f"BROKEN at line {exc.number}: {blame}: {detail}", file=out)
        return 1
    print("OK: every frame follows the DPM state machine", file=out)
    return 0
