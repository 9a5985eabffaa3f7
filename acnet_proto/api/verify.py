"""Readback verification of a setting: read it back until it matches, or give up.

::

    dev = Device("Z:ACLTST", backend=backend)
    result = dev.write(45.0, verify=Verify(tolerance=0.1))
    result.verified, result.readback, result.attempts     # True, 45.0, 1

A :class:`Verify` says how hard to look: ``attempts`` readbacks, each
after ``delay`` seconds (the first one too: a front end needs a moment to
take a setting), and how close counts as equal (``tolerance``, for
numbers). :func:`confirm` runs that loop over a ``read`` and a ``sleep``
it is given, so this module does no I/O and keeps no time of its own;
:class:`~acnet_proto.api.device.Device` passes the backend's read and
``time.sleep``. :func:`values_match` is the comparison.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from acnet_proto.errors import DeviceError, ReadError
from acnet_proto.types import BasicControl, WriteResult

__all__ = ["CONTROL_READBACK", "Verify", "confirm", "resolve_verify", "values_match"]

#: What a control command should make the basic status say: (STATUS field, expected value).
CONTROL_READBACK: dict[BasicControl, tuple[str, bool]] = {
    BasicControl.ON: ("ON", True),
    BasicControl.OFF: ("ON", False),
    BasicControl.RESET: ("READY", True),
    BasicControl.TRIP: ("READY", False),
    BasicControl.POSITIVE: ("POSITIVE", True),
    BasicControl.NEGATIVE: ("POSITIVE", False),
    BasicControl.RAMP: ("RAMP", True),
    BasicControl.DC: ("RAMP", False),
    BasicControl.REMOTE: ("REMOTE", True),
    BasicControl.LOCAL: ("REMOTE", False),
}


def _non_negative(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"Verify {name} must be a number of seconds or units, not {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"Verify {name} must be finite and >= 0, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class Verify:
    """How to check a setting by reading it back.

    ``tolerance``: the most a number read back may differ from the one
    written (0: exactly); a number the device holds as the same single-precision
    float also matches (see :func:`values_match`); text, bytes and booleans must
    be equal.
    ``attempts``: readbacks before giving up (at least 1). ``delay``:
    seconds to wait before each readback. Bad values raise TypeError or
    ValueError naming the argument.
    """

    tolerance: float = 0.0
    attempts: int = 3
    delay: float = 0.3

    def __post_init__(self) -> None:
        object.__setattr__(self, "tolerance", _non_negative("tolerance", self.tolerance))
        object.__setattr__(self, "delay", _non_negative("delay", self.delay))
        attempts: object = self.attempts  # as given: the annotation does not check it
        if isinstance(attempts, bool) or not isinstance(attempts, numbers.Integral):
            raise TypeError(f"Verify attempts must be an int, not {self.attempts!r}")
        if self.attempts < 1:
            raise ValueError(f"Verify attempts must be at least 1, got {self.attempts}")


def resolve_verify(verify: Verify | bool | None) -> Verify | None:
    """``verify=`` as given to a write: a :class:`Verify`, True (the defaults), or None/False."""
    if verify is None or verify is False:
        return None
    if verify is True:
        return Verify()
    if isinstance(verify, Verify):
        return verify
    raise TypeError(f"verify must be a Verify, True, False or None, not {type(verify).__name__}")


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def values_match(readback: Any, expected: Any, tolerance: float = 0.0) -> bool:
    """True if ``readback`` is ``expected``: numbers within ``tolerance``, the rest equal.

    Numbers (ints, floats, numpy scalars) match when ``|a - b| <= tolerance``,
    or when both round to the same finite single-precision float: most front
    ends hold a setting as a 32-bit float (IEEE or DEC F_floating), so 45.04
    comes back as 45.040000915527344, which is the setting made exactly.
    NaN matches nothing. Booleans match only booleans. Lists, tuples and
    arrays match element by element and must have the same shape. Text and
    bytes must be equal. Anything else compares with ``==``.
    """
    if isinstance(readback, np.generic):
        readback = readback.item()
    if isinstance(expected, np.generic):
        expected = expected.item()
    if isinstance(readback, bool) or isinstance(expected, bool):
        return isinstance(readback, bool) and isinstance(expected, bool) and readback == expected
    if _is_number(readback) and _is_number(expected):
        return abs(readback - expected) <= tolerance or bool(_same_float32(readback, expected))
    if isinstance(readback, list | tuple | np.ndarray) or isinstance(
        expected, list | tuple | np.ndarray
    ):
        return _arrays_match(readback, expected, tolerance)
    if isinstance(readback, str | bytes) or isinstance(expected, str | bytes):
        return type(readback) is type(expected) and readback == expected
    try:
        return bool(readback == expected)
    except (TypeError, ValueError):  # e.g. objects whose == is ambiguous
        return False


def _same_float32(a: Any, b: Any) -> Any:
    """Whether ``a`` and ``b`` are the same finite float32 (elementwise for arrays)."""
    with np.errstate(over="ignore"):  # beyond float32 is inf, which matches nothing here
        x, y = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    return np.isfinite(x) & (x == y)


def _arrays_match(readback: Any, expected: Any, tolerance: float) -> bool:
    if not isinstance(readback, list | tuple | np.ndarray) or not isinstance(
        expected, list | tuple | np.ndarray
    ):
        return False
    got, want = np.asarray(readback), np.asarray(expected)
    if got.shape != want.shape:
        return False
    if got.dtype.kind in "iuf" and want.dtype.kind in "iuf":
        a, b = got.astype(np.float64), want.astype(np.float64)
        return bool(np.all((np.abs(a - b) <= tolerance) | _same_float32(a, b)))
    pairs = zip(got.tolist(), want.tolist(), strict=True)
    return all(values_match(a, b, tolerance) for a, b in pairs)


def confirm(
    result: WriteResult,
    read: Callable[[], Any],
    expected: Any,
    verify: Verify,
    sleep: Callable[[float], object],
) -> WriteResult:
    """``result`` with the verdict of reading back until ``expected`` shows.

    A failed setting is returned as it is: there is nothing to read back.
    Otherwise up to ``verify.attempts`` times: ``sleep(verify.delay)``,
    then ``read()``; a :class:`DeviceError` or :class:`ReadError` counts as a
    failed attempt. The result gets ``verified`` (True at the first match),
    ``readback`` (the last value read) and ``attempts`` (how many were
    made); when nothing matched, ``message`` says what was read instead.
    """
    if not result.ok:
        return result
    readback: Any = None
    failure: Exception | None = None
    for attempt in range(1, verify.attempts + 1):
        sleep(verify.delay)
        try:
            readback = read()
        except (DeviceError, ReadError) as exc:
            failure = exc
            continue
        failure = None
        if values_match(readback, expected, verify.tolerance):
            return replace(result, verified=True, readback=readback, attempts=attempt)
    tries = f"{verify.attempts} attempt{'s' if verify.attempts > 1 else ''}"
    if failure is not None:
        message = f"the readback failed after {tries}: {failure}"
    else:
        within = f" within {verify.tolerance:g}" if verify.tolerance else ""
        message = f"read back {readback!r}, not {expected!r}{within}, after {tries}"
    return replace(
        result, verified=False, readback=readback, attempts=verify.attempts, message=message
    )
