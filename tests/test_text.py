"""acnet_proto._text: wording and peer-text numbers shared across the core."""

from __future__ import annotations

import pytest

from acnet_proto._text import decimal, shown, summary


@pytest.mark.parametrize(
    ("text", "number"),
    [("503", 503), ("0", 0), ("007", 7), ("", None), ("²", None), ("5²", None), ("-1", None)],
)
def test_decimal_takes_ascii_digits_only(text: str, number: int | None) -> None:
    assert decimal(text) == number


def test_summary_names_the_first_and_counts_the_rest() -> None:
    assert summary(["A", "B", "C"]) == "A and 2 more"
    assert summary(["A", "B", "C"], shown=3) == "A, B, C"
    assert summary(["A"]) == "A"


def test_shown_escapes_a_peers_text_and_bounds_it() -> None:
    forged = "ok\nERROR forged line \x1b[31m"
    assert "\n" not in shown(forged) and "\x1b" not in shown(forged)
    assert shown(b"\x00\xff") == "b'\\x00\\xff'"
    long = shown("x" * 1_000_000, limit=50)
    assert len(long) < 80 and long.endswith("(+999950 more)")
    assert shown("\x00" * 100, limit=20) == ascii("\x00" * 20)[:20] + "... (+80 more)"
