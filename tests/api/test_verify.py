"""Readback verification without a server: Verify's checks, values_match, and confirm's loop."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from acnet_proto.api.verify import Verify, confirm, resolve_verify, values_match
from acnet_proto.errors import DeviceError, ReadError
from acnet_proto.types import WriteResult

OK = WriteResult("Z:ACLTST.SETTING")


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"tolerance": -0.1}, ValueError, "tolerance must be finite and >= 0"),
        ({"tolerance": math.inf}, ValueError, "tolerance"),
        ({"tolerance": "0.1"}, TypeError, "tolerance must be a number"),
        ({"tolerance": True}, TypeError, "tolerance"),
        ({"delay": math.nan}, ValueError, "delay"),
        ({"attempts": 0}, ValueError, "attempts must be at least 1"),
        ({"attempts": 2.0}, TypeError, "attempts must be an int"),
        ({"attempts": True}, TypeError, "attempts"),
    ],
)
def test_bad_verify_arguments_are_named(kwargs: dict, error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        Verify(**kwargs)


def test_verify_defaults_and_resolution() -> None:
    default = Verify()
    assert (default.tolerance, default.attempts, default.delay) == (0.0, 3, 0.3)
    assert resolve_verify(True) == default
    assert resolve_verify(None) is None and resolve_verify(False) is None
    mine = Verify(tolerance=1, attempts=1, delay=0)
    assert resolve_verify(mine) is mine and mine.tolerance == 1.0
    with pytest.raises(TypeError, match="verify must be a Verify"):
        resolve_verify(0.1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("readback", "expected", "tolerance", "match"),
    [
        (45.0, 45, 0.0, True),
        (45.05, 45.0, 0.1, True),
        (45.2, 45.0, 0.1, False),
        (np.float64(3.0), 3, 0.0, True),
        (math.nan, math.nan, 1.0, False),
        (True, True, 0.0, True),
        (1.0, True, 0.0, False),  # a number is not a boolean, however close
        (np.bool_(False), False, 0.0, True),
        ("hello", "hello", 0.0, True),
        ("hello", b"hello", 0.0, False),
        (b"\x00\x01", b"\x00\x01", 0.0, True),
        (np.array([1.0, 2.0, 3.0]), [1, 2, 3], 0.0, True),
        (np.array([1.0, 2.0, 3.05]), np.array([1.0, 2.0, 3.0]), 0.1, True),
        (np.array([1.0, 2.0]), [1.0, 2.0, 3.0], 1.0, False),
        (np.array([1.0, 2.5]), [1.0, 2.0], 0.1, False),
        (("a", "b"), ["a", "b"], 0.0, True),
        (45.0, [45.0], 0.0, False),
        ({"on": True}, {"on": True}, 0.0, True),
        (None, 45.0, 0.0, False),
    ],
)
def test_values_match(readback: Any, expected: Any, tolerance: float, match: bool) -> None:
    assert values_match(readback, expected, tolerance) is match


def scripted(*answers: Any) -> tuple[Callable[[], Any], list[str]]:
    """A read() giving ``answers`` in turn (an exception is raised), and its log."""
    log: list[str] = []
    queue = list(answers)

    def read() -> Any:
        log.append("read")
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return read, log


def test_confirm_sleeps_before_each_readback_and_stops_at_the_first_match() -> None:
    read, log = scripted(44.0, 45.0, 99.0)

    def sleep(seconds: float) -> None:
        log.append(f"sleep {seconds}")

    result = confirm(OK, read, 45.0, Verify(attempts=3, delay=0.25), sleep)
    assert log == ["sleep 0.25", "read", "sleep 0.25", "read"]
    assert (result.verified, result.readback, result.attempts) == (True, 45.0, 2)
    assert result.ok and result.confirmed and result.message is None


def test_confirm_reports_the_last_readback_when_nothing_matched() -> None:
    read, log = scripted(44.0, 44.5)
    result = confirm(OK, read, 45.0, Verify(tolerance=0.1, attempts=2, delay=0), lambda s: None)
    assert log == ["read", "read"]
    assert (result.verified, result.readback, result.attempts) == (False, 44.5, 2)
    assert result.ok and not result.confirmed  # the setting went through; it did not hold
    assert result.message == "read back 44.5, not 45.0 within 0.1, after 2 attempts"


def test_read_errors_count_as_failed_attempts() -> None:
    refused = DeviceError("Z:ACLTST.SETTING@I", 17, -17, "DPM_PRIV")
    read, _ = scripted(ReadError([], "timed out"), refused)
    result = confirm(OK, read, 45.0, Verify(attempts=2, delay=0), lambda s: None)
    assert (result.verified, result.readback, result.attempts) == (False, None, 2)
    assert result.message is not None and "readback failed after 2 attempts" in result.message
    assert "DPM_PRIV" in result.message
    read, _ = scripted(ReadError([], "timed out"), 45.0)
    assert confirm(OK, read, 45.0, Verify(attempts=2, delay=0), lambda s: None).verified


def test_a_failed_setting_is_not_read_back() -> None:
    refused = WriteResult("G:AMANDA", 17, -17, "DPM_PRIV")
    read, log = scripted()
    assert confirm(refused, read, 1.0, Verify(), log.append) is refused
    assert log == []


@pytest.mark.parametrize(
    ("readback", "expected", "match"),
    [
        (float(np.float32(45.04)), 45.04, True),  # a front end's single-precision setting
        (float(np.float32(-1.5e-3)), -1.5e-3, True),
        (np.float32([45.04, 0.1]).astype(np.float64), [45.04, 0.1], True),
        (45.04001, 45.04, False),  # a different float32: a different setting
        (1e39, 2e39, False),  # beyond float32 both round to inf: not taken as equal
    ],
)
def test_a_number_held_as_the_same_float32_matches(
    readback: Any, expected: Any, match: bool
) -> None:
    assert values_match(readback, expected) is match
