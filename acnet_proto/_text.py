"""Wording shared by messages across the core."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["SHOWN_CHARS", "decimal", "shown", "summary"]

#: How much of a peer's text or bytes :func:`shown` keeps.
SHOWN_CHARS = 200


def summary(names: Sequence[str], shown: int = 1) -> str:
    """``names`` named briefly for a message: the first ``shown`` of them, comma-separated,
    then ``and N more`` for the rest (``"M:OUTTMP and 2 more"``); empty for no names."""
    named = ", ".join(names[:shown])
    return named if len(names) <= shown else f"{named} and {len(names) - shown} more"


def decimal(text: str) -> int | None:
    """``text`` as a whole number if it is ASCII digits only, else None.

    ``str.isdigit()`` also accepts digits ``int()`` refuses (``"²"``), so a
    peer's text checked with it alone could still raise a bare ValueError.
    """
    return int(text) if text.isascii() and text.isdigit() else None


def shown(data: str | bytes | bytearray | memoryview, limit: int = SHOWN_CHARS) -> str:
    """A peer's ``data`` made safe for a log line or a message: printable ASCII (``repr``
    escapes), at most about ``limit`` characters, then how much was left out.

    Peer text goes through this before any log or error shows it, so a hostile
    peer can neither forge log lines (newlines, terminal escapes) nor make one
    record megabytes long.
    """
    size = len(data)
    head = bytes(data[:limit]) if not isinstance(data, str) else data[:limit]
    text = ascii(head)
    if len(text) > limit + 3:  # escapes lengthen it: keep the limit on what is written
        text = text[:limit] + "..."
    return text if size <= limit else f"{text} (+{size - limit} more)"
