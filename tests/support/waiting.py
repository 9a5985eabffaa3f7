"""Waiting in a test for something another thread or process makes true."""

from __future__ import annotations

import time
from collections.abc import Callable

#: How long a wait may take before the test calls it a hang: generous, the machine is shared.
PATIENCE = 10.0


def wait_until(condition: Callable[[], bool], what: str, limit: float = PATIENCE) -> float:
    """Poll ``condition`` until it holds; the seconds that took. Fails the test, naming
    ``what`` was awaited, if it does not hold within ``limit`` seconds."""
    start = time.monotonic()
    while not condition():
        waited = time.monotonic() - start
        assert waited < limit, f"still waiting, after {limit} s, for {what}"
        time.sleep(0.01)
    return time.monotonic() - start
