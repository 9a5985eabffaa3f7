"""The supervised proxy's pure half: the policy chain, each policy's verdict, the records.

No server: a :class:`RequestContext` is made by hand and time is its ``now``.
(Every policy through a real server: ``tests/adapters/proxy/test_supervised.py``.)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from acnet_proto.proxy import (
    SERVER_RULES,
    DeviceAccessPolicy,
    Policy,
    PolicyDecision,
    RateLimitPolicy,
    ReadOnlyPolicy,
    RequestContext,
    SlewLimit,
    SlewRatePolicy,
    ValueRangePolicy,
    decide,
    evaluate_policies,
    proto_record,
)

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvcGVyYXRvciJ9.c2lnbmF0dXJl"  # any bearer token
WRITE_Z = DeviceAccessPolicy(["Z:*"], mode="allow", action="set")


def context(method: str, drfs: list[str], values: list[Any] | None = None, **kw: Any) -> Any:
    pairs = list(zip(drfs, values)) if values is not None else []
    return RequestContext.of_call(method, drfs, "ipv4:10.0.0.1:5000", values=pairs, **kw)


class Recorder(Policy):
    """Allows, and remembers the contexts it saw."""

    def __init__(self) -> None:
        self.seen: list[RequestContext] = []

    def check(self, ctx: RequestContext) -> PolicyDecision:
        self.seen.append(ctx)
        return PolicyDecision(True)


def test_the_first_denial_ends_the_chain() -> None:
    after = Recorder()
    decision = evaluate_policies([ReadOnlyPolicy(), after], context("Set", ["Z:ACLTST"], [1.0]))
    assert (decision.allowed, decision.reason) == (False, "Write operations disabled")
    assert after.seen == []


def test_each_policy_sees_the_context_the_one_before_allowed_with() -> None:
    after = Recorder()
    ctx = context("Set", ["Z:ACLTST", "M:OUTTMP"], [1.0, 2.0])
    decision = evaluate_policies([WRITE_Z, after], ctx)
    assert after.seen[0].allowed == frozenset({0}) and ctx.allowed == frozenset()
    assert decision.allowed and decision.ctx is after.seen[0]


def test_a_policy_may_not_change_the_request_it_checks() -> None:
    class Retarget(Policy):
        def check(self, ctx: RequestContext) -> PolicyDecision:
            return PolicyDecision(True, ctx=RequestContext.of_call("Read", ["G:AMANDA"], ctx.peer))

    with pytest.raises(ValueError, match="Retarget changed the request's DRFs"):
        evaluate_policies([Retarget()], context("Read", ["M:OUTTMP"]))


@pytest.mark.parametrize(
    ("method", "policies", "reason", "who"),
    [
        ("Set", [], "No policy explicitly allows write operations", SERVER_RULES),
        ("Set", [ReadOnlyPolicy()], "Write operations disabled", "ReadOnlyPolicy"),
        (
            "Set",
            [DeviceAccessPolicy(["G:*"])],
            "No write policy approves: Z:ACLTST, M:OUTTMP",
            "DeviceAccessPolicy",
        ),
        ("Set", [WRITE_Z], "No write policy approves: M:OUTTMP", "DeviceAccessPolicy"),
        (
            "Read",
            [DeviceAccessPolicy(["M:*"], mode="deny")],
            "Device M:OUTTMP is denied",
            "DeviceAccessPolicy",
        ),
        ("Read", [WRITE_Z], None, None),
        ("Set", [WRITE_Z, DeviceAccessPolicy(["M:OUTTMP"], action="set")], None, None),
    ],
)
def test_what_the_proxy_decides(
    method: str, policies: list[Policy], reason: str | None, who: str | None
) -> None:
    values = [1.0, 2.0] if method == "Set" else None
    decision = decide(policies, context(method, ["Z:ACLTST", "M:OUTTMP"], values))
    assert (decision.allowed, decision.reason, decision.policy) == (reason is None, reason, who)


def test_devices_named_by_an_index_the_server_cannot_resolve_are_refused() -> None:
    deny_m = [DeviceAccessPolicy(["M:*"], mode="deny")]
    ctx = context("Read", ["0:27235"])
    assert decide([], ctx).allowed
    decision = decide(deny_m, ctx)
    assert (decision.reason, decision.policy) == (
        "'0:27235' names its device by index, and this server has no resolver for index "
        "names; policies match device names: use the device's name (or give the server a "
        "name_of resolver)",
        SERVER_RULES,
    )
    unknown = context("Read", ["0:27235"], name_of=lambda index: None)
    assert decide(deny_m, unknown).reason == (
        "'0:27235' names its device by index, and the server's resolver does not know it; "
        "policies match device names: use the device's name"
    )


def test_an_index_the_server_resolves_is_judged_by_its_name() -> None:
    def name_of(index: str) -> str | None:
        return {"0:27235": "M:OUTTMP", "0:1234": "Z:ACLTST"}.get(index)

    deny_m = [DeviceAccessPolicy(["M:*"], mode="deny")]
    decision = decide(deny_m, context("Read", ["0:27235@I"], name_of=name_of))
    assert (decision.allowed, decision.reason) == (False, "Device M:OUTTMP is denied")
    assert decide(deny_m, context("Read", ["0:1234"], name_of=name_of)).allowed
    assert decide([WRITE_Z], context("Set", ["0:1234"], [1.0], name_of=name_of)).allowed


def test_a_denial_names_the_policy_unless_it_named_itself() -> None:
    class Curfew(Policy):
        def check(self, ctx: RequestContext) -> PolicyDecision:
            return PolicyDecision(False, "after hours")

    class Named(Policy):
        def check(self, ctx: RequestContext) -> PolicyDecision:
            return PolicyDecision(False, "no", policy="night shift rules")

    ctx = context("Read", ["M:OUTTMP"])
    assert evaluate_policies([Curfew()], ctx).policy == "Curfew"
    assert evaluate_policies([Named(), Curfew()], ctx).policy == "night shift rules"
    assert evaluate_policies([RateLimitPolicy(1)] * 2, ctx).policy == "RateLimitPolicy"


def test_the_context_never_holds_the_token() -> None:
    metadata = [("authorization", f"Bearer {TOKEN}"), ("x-client", "acnet-proto")]
    ctx = RequestContext.of_call("Set", ["Z:ACLTST"], "peer", metadata)
    assert ctx.metadata == {"x-client": "acnet-proto"}
    assert TOKEN not in repr(ctx)


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: DeviceAccessPolicy([]), "patterns must not be empty"),
        (lambda: DeviceAccessPolicy("M:*"), "must be a list of device name patterns"),  # type: ignore[arg-type]
        (lambda: DeviceAccessPolicy(["M:*"], mode="maybe"), "mode must be one of"),
        (lambda: DeviceAccessPolicy(["M:*"], action="write"), "action must be one of"),
        (lambda: DeviceAccessPolicy(["M:*"], action="read"), "has no effect"),
        (lambda: DeviceAccessPolicy(["M:("], syntax="regex"), "not a regular expression"),
        (lambda: RateLimitPolicy(0), "max_requests must be a positive integer"),
        (lambda: RateLimitPolicy(5, window_seconds=math.inf), "window_seconds must be positive"),
        (lambda: SlewLimit(), "needs max_step, max_rate or both"),
        (lambda: SlewLimit(max_step=-1.0), "max_step must be positive"),
        (lambda: SlewRatePolicy({"Z:*": 1.0}), "must be a SlewLimit"),  # type: ignore[dict-item]
        (lambda: ValueRangePolicy({}), "non-empty dict"),
        (lambda: ValueRangePolicy({"Z:*": (5, 1)}), "min > max"),
        (lambda: ValueRangePolicy({"Z:*": (0, "10")}), r"must be \(min, max\)"),
    ],
)
def test_policies_refuse_bad_arguments_at_construction(make: Callable[[], Any], error: str) -> None:
    with pytest.raises((ValueError, TypeError), match=error):
        make()


def test_the_rate_limit_is_per_address_not_per_connection() -> None:
    limit = RateLimitPolicy(1, window_seconds=10.0)
    for peer, now, allowed in [
        ("ipv4:10.0.0.1:5000", 0.0, True),
        ("ipv4:10.0.0.1:6000", 1.0, False),  # a new port, the same address
        ("ipv4:10.0.0.2:5000", 1.0, True),
        ("ipv6:[::1]:7000", 1.0, True),
        ("ipv4:10.0.0.1:6000", 10.0, True),  # the window slid past the first call
    ]:
        ctx = RequestContext.of_call("Read", ["M:OUTTMP"], peer, now=now)
        assert limit.check(ctx).allowed is allowed, (peer, now)


def test_capture_records_are_tag_varint_message() -> None:
    assert proto_record("Read", "in", b"") == b"\x00\x00"
    assert proto_record("Set", "out", b"x" * 300)[:3] == b"\x03\xac\x02"
