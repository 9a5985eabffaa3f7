"""The proxy's policies decide on canonical targets, element by element; no server here.

(The same attacks through a real ``SupervisedServer`` and the simulator:
``tests/adapters/proxy/test_spellings.py``.)
"""

from __future__ import annotations

from typing import Any

import pytest

from acnet_proto.proxy import (
    DeviceAccessPolicy,
    Policy,
    RateLimitPolicy,
    RequestContext,
    SlewLimit,
    SlewRatePolicy,
    ValueRangePolicy,
    decide,
    evaluate_policies,
)

WRITE_Z = DeviceAccessPolicy(["Z:*"], mode="allow", action="set")
ACLTST = ["Z:ACLTST", "Z:ACLTST[0]", "Z:ACLTST.SETTING.SCALED", "Z:ACLTST.SETTING[:]", "z_acltst"]
NAMES = {"0:140012": "Z:ACLTST", "0:1234": "G:AMANDA"}


def setting(settings: list[tuple[str, Any]], now: float = 0.0) -> RequestContext:
    drfs = [d for d, _ in settings]
    return RequestContext.of_call("Set", drfs, "ipv4:10.0.0.1:5000", values=settings, now=now)


def verdict(policies: list[Policy], settings: list[tuple[str, Any]], now: float = 0.0) -> Any:
    """None if ``settings`` are allowed; else the denial's reason."""
    decision = decide(policies, setting(settings, now))
    return None if decision.allowed else decision.reason


@pytest.mark.parametrize("first", ACLTST)
@pytest.mark.parametrize("then", ACLTST)
def test_every_spelling_shares_one_slew_history(first: str, then: str) -> None:
    policies: list[Policy] = [WRITE_Z, SlewRatePolicy({"Z:ACLTST": SlewLimit(max_step=5)})]
    assert verdict(policies, [(first, 50.0)]) is None
    assert verdict(policies, [(then, 95.0)]).startswith("Step 45.0 for Z:ACLTST exceeds")
    assert verdict(policies, [(then, 53.0)]) is None


def test_an_array_write_compares_each_element_with_its_own_history() -> None:
    slew = SlewRatePolicy({"Z:ACLTS1": SlewLimit(max_step=2, max_rate=1.0)})
    policies: list[Policy] = [WRITE_Z, slew]
    assert verdict(policies, [("Z:ACLTS1", [0.0, 1.0, 2.0, 3.0, 4.0])]) is None
    # element 4 was 4.0: a 3-unit step there, however small the others
    assert verdict(policies, [("Z:ACLTS1[2:4]", [2.0, 3.0, 7.0])], now=10.0) == (
        "Step 3.0 for Z:ACLTS1 exceeds max_step 2 (element 4)"
    )
    assert verdict(policies, [("Z:ACLTS1[4]", 5.0)], now=10.0) is None
    # the rate is per element too: element 3 was last set at 0, element 4 at 10
    assert verdict(policies, [("z_acltS1[3]", [4.5])], now=11.0) is None  # 1.5 in 11 s
    assert verdict(policies, [("Z:ACLTS1.SETTING[4]", 6.5)], now=11.0) == (
        "Rate 1.5/s for Z:ACLTS1 exceeds max_rate 1.0/s (element 4)"
    )
    assert verdict(policies, [("Z:ACLTS1[7]", 100.0)], now=11.0) is None  # never set: no history


def test_a_call_denied_after_the_slew_check_leaves_the_history_as_it_was() -> None:
    # Seen: each call refused later in the chain (beside an unapproved device, past a rate
    # limit) still moved the history by max_step, so one allowed call then jumped 50 units.
    slew = SlewRatePolicy({"Z:ACLTST": SlewLimit(max_step=5)})
    policies: list[Policy] = [WRITE_Z, slew, RateLimitPolicy(2, window_seconds=60)]
    assert verdict(policies, [("Z:ACLTST", 50.0)]) is None
    unapproved = verdict(policies, [("Z:ACLTST", 55.0), ("G:AMANDA", 1.0)])
    assert unapproved.startswith("No write policy approves: G:AMANDA")
    assert verdict(policies, [("Z:ACLTST", 55.0)], now=1.0).startswith("Rate limit exceeded")
    # still 50 in the history, not 55: a 10-unit step
    assert verdict(policies, [("Z:ACLTST", 60.0)], now=61.0) == (
        "Step 10.0 for Z:ACLTST exceeds max_step 5"
    )
    assert verdict(policies, [("Z:ACLTST", 55.0)], now=122.0) is None


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Z:ACLTS1", "Z:ACLTS1[0]"),
        ("Z:ACLTS1[0:2]", "z_acltS1[2]"),
        ("Z:ACLTS1.SETTING.SCALED", "Z:ACLTS1.SETTING[:]"),
    ],
)
def test_one_element_set_twice_in_a_call_is_denied_in_any_spellings(
    first: str, second: str
) -> None:
    policies: list[Policy] = [WRITE_Z, SlewRatePolicy({"Z:*": SlewLimit(max_step=1)})]
    values = [1.0, 1.0, 1.0]
    reason = verdict(policies, [(first, values), (second, [1.0])])
    assert "is set twice in one call" in reason and "slew limits allow one setting" in reason


def test_different_elements_and_units_are_different_settings() -> None:
    slew = SlewRatePolicy({"Z:*": SlewLimit(max_step=1)}, allow_raw=["Z:*"])
    policies: list[Policy] = [WRITE_Z, slew]
    assert verdict(policies, [("Z:ACLTS1[0]", 1.0), ("Z:ACLTS1[1]", 9.0)]) is None
    assert verdict(policies, [("Z:ACLTST", 1.0), ("Z:ACLTST.SETTING.RAW", b"\0\0\0\0")]) is None


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        (
            [("Z:ACLTS1[2:4]", [1.0, 2.0, 3.5])],
            "Value 3.5 for Z:ACLTS1 outside range [0, 3] (element 4)",
        ),
        ([("Z:ACLTST.SETTING[:]", 4.0)], "Value 4.0 for Z:ACLTST outside range [0, 3]"),
        ([("Z@ACLTST.MAX", 9.0)], "Value 9.0 for Z:ACLTST.ANALOG.MAX outside range [0, 3]"),
        ([("Z:ACLTS1[2:4]", [1.0, 2.0])], "2 values for Z:ACLTS1[2:4]: a limited setting"),
        ([("Z:ACLTST{0:4}", [1.0])], "Byte range write to limited device Z:ACLTST"),
        ([("Z@ACLTST.RAW_MAX", 1.0)], "RAW_MAX field write to limited device Z:ACLTST"),
        ([("Z:ACLTST", "x" * 10_000)], "Non-numeric value 'xxxx"),
        ([("Z:ACLTS1[2:4]", [1.0, 2.0, 3.0])], None),
        ([("Z:RAWTST{0:4}", b"\x01\x02\x03\x04")], None),  # allow_raw exempts it
    ],
)
def test_value_ranges_apply_to_each_element(
    settings: list[tuple[str, Any]], reason: str | None
) -> None:
    limits = ValueRangePolicy({"Z:ACL*": (0, 3), "Z:RAWTST": (0, 1)}, allow_raw=["Z:RAW*"])
    got = verdict([WRITE_Z, limits], settings)
    assert got == reason if reason is None else got.startswith(reason)
    assert got is None or len(got) < 400  # a peer's value is shown bounded


@pytest.mark.parametrize(
    "spelling", ["g:amanda", "g_amanda", "G|AMANDA", "g@amanda.max", "G:AMANDA[0]", "0:1234"]
)
@pytest.mark.parametrize("syntax", ["glob", "regex"])
def test_a_deny_list_matches_the_device_in_any_spelling(spelling: str, syntax: str) -> None:
    pattern = "G:*" if syntax == "glob" else "G:.*"
    policies = [DeviceAccessPolicy([pattern], mode="deny", syntax=syntax)]
    ctx = RequestContext.of_call("Read", [spelling], "peer", name_of=NAMES.get)
    decision = decide(policies, ctx)
    assert (decision.allowed, decision.reason) == (False, "Device G:AMANDA is denied")


def test_an_allow_list_approves_the_resolved_name() -> None:
    ctx = RequestContext.of_call(
        "Set",
        ["0:140012", "0:1234"],
        "peer",
        values=[("0:140012", 1), ("0:1234", 1)],
        name_of=NAMES.get,
    )
    decision = decide([WRITE_Z], ctx)
    assert decision.reason == "No write policy approves: G:AMANDA"


@pytest.mark.parametrize(
    "policy",
    [
        DeviceAccessPolicy(["G:*"], mode="deny"),
        ValueRangePolicy({"*": (0, 1)}),
        SlewRatePolicy({"*": SlewLimit(max_step=1)}),
    ],
)
def test_a_policy_run_on_its_own_refuses_an_index_it_cannot_resolve(policy: Policy) -> None:
    # decide() refuses first; a policy used without it must not match "*" against "0:1234"
    decision = evaluate_policies([policy], setting([("0:1234", 0.5)]))
    assert not decision.allowed and "names its device by index" in (decision.reason or "")
