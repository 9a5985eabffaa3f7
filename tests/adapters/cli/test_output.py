"""How the tools print values for people (text format)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from acnet_proto.adapters.cli.output import json_value, value_text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (float(np.float32(-1.5e-3)), "-0.0015"),  # a single-precision setting, read back
        (float(np.float32(45.04)), "45.04"),
        (np.float32(0.1), "0.1"),
        (41.7, "41.7"),  # a double that is no float32 prints in full
        (0.1 + 0.2, "0.30000000000000004"),
        (1e300, "1e+300"),  # beyond float32
        (np.float32([1.5, 0.1]).astype(np.float64), "[1.5, 0.1]"),
        (("a", "b"), "['a', 'b']"),
        ({"on": True, "ready": False}, "on=True ready=False"),
        (b"\x00\x11", "0011"),
    ],
)
def test_value_text(value: Any, text: str) -> None:
    assert value_text(value) == text


def test_json_keeps_every_digit() -> None:
    held = float(np.float32(-1.5e-3))
    assert json_value(held) == held != -1.5e-3
