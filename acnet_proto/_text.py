"""Wording shared by messages across the core."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["decimal", "summary"]


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
