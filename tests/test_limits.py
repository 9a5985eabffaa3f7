"""acnet_proto.limits: the limits' checks and burst logging."""

from __future__ import annotations

import pytest

from acnet_proto.limits import DEFAULT_LIMITS, Burst, ServerLimits


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_connections", 0),
        ("max_connections", 1.5),
        ("idle_timeout", 0),
        ("max_wait", float("nan")),
        ("handshake_timeout", True),
        ("max_streams", -1),
    ],
)
def test_a_bad_limit_is_refused_naming_it(name: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"ServerLimits.{name} must be"):
        ServerLimits(**{name: value})  # type: ignore[arg-type]


def test_the_defaults_are_valid_and_immutable() -> None:
    assert ServerLimits() == DEFAULT_LIMITS
    with pytest.raises(AttributeError):
        DEFAULT_LIMITS.max_connections = 1  # type: ignore[misc]


def test_a_burst_is_logged_once_and_summed_when_it_ends() -> None:
    burst = Burst(quiet_period=5.0)
    starts = [burst.refused(t) for t in (0.0, 1.0, 2.0, 6.0)]
    assert starts == [True, False, False, False]
    assert burst.ended(10.0) is None  # 4 s after the last refusal: still the same burst
    assert burst.ended(11.0) == 4
    assert burst.ended(30.0) is None  # nothing to report twice
    assert burst.refused(31.0) is True
