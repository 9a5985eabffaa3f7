"""Canonical targets: every spelling of the same data is one target; different data is not."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from acnet_proto import drf
from acnet_proto.proxy import Policy, PolicyDecision, RequestContext, evaluate_policies
from acnet_proto.proxy.targets import Target, device_name, target_of, targets_of

F, P = drf.Field, drf.Property
SCALED_SETTING = Target("Z:ACLTST", P.SETTING, F.SCALED)
NAMES = {"0:140012": "z_acltst", "0:1234": "G:AMANDA", "0:666": "0:1234", "0:7": "not a name"}


@pytest.mark.parametrize(
    "spelling",
    [
        "Z:ACLTST",
        "Z:ACLTST.SETTING",
        "Z:ACLTST.SETTING.SCALED",
        "Z_ACLTST",
        "z:acltst.setting[:]",
        "Z:ACLTST[0:]",
        "z_acltst.common@p,1000",
        "Z:ACLTST.READ",
    ],
)
def test_spellings_of_the_scaled_setting_are_one_target(spelling: str) -> None:
    assert target_of(spelling, write=True) == SCALED_SETTING


@pytest.mark.parametrize(
    ("spelling", "different"),
    [
        ("Z:ACLTST.SETTING.RAW", replace(SCALED_SETTING, field=F.RAW)),
        ("Z:ACLTST.PRIMARY", replace(SCALED_SETTING, field=F.PRIMARY)),
        ("Z:ACLTST[0]", replace(SCALED_SETTING, range=drf.ArrayRange(0, 0))),
        ("Z:ACLTST{0:4}", replace(SCALED_SETTING, range=drf.ByteRange(0, 4))),
        ("z|acltst", Target("Z:ACLTST", P.CONTROL, F.SCALED)),
        ("Z@ACLTST.MAXIMUM", Target("Z:ACLTST", P.ANALOG, F.MAX)),
        ("Z$ACLTST", Target("Z:ACLTST", P.DIGITAL, F.ALL)),
    ],
)
def test_other_data_is_another_target(spelling: str, different: Target) -> None:
    assert target_of(spelling, write=True) == different != SCALED_SETTING


def test_a_read_is_judged_as_read_and_a_write_as_written() -> None:
    assert target_of("Z|ACLTST") == Target("Z:ACLTST", P.STATUS, F.ALL)
    assert target_of("Z|ACLTST", write=True).property is P.CONTROL
    assert target_of("Z:ACLTST.DESCRIPTION") == Target("Z:ACLTST", P.DESCRIPTION, None)
    with pytest.raises(drf.DRFError, match="read-only"):
        target_of("Z:ACLTST.DESCRIPTION", write=True)


@pytest.mark.parametrize(
    ("spelling", "raw"),
    [
        ("Z:ACLTST", False),
        ("Z:ACLTST.SETTING.RAW", True),
        ("Z:ACLTST.PRIMARY", True),
        ("Z:ACLTST{0:4}", True),
        ("Z@ACLTST.RAW_MAX", True),
        ("Z@ACLTST.MAX", False),
    ],
)
def test_device_units_and_bytes_are_raw(spelling: str, raw: bool) -> None:
    assert target_of(spelling, write=True).raw is raw


@pytest.mark.parametrize(
    ("spelling", "count", "elements"),
    [
        ("Z:ACLTS1", 3, range(3)),
        ("Z:ACLTS1[0]", 1, range(1)),
        ("Z:ACLTS1[2:4]", 3, range(2, 5)),
        ("Z:ACLTS1[2:]", 2, range(2, 4)),
        ("Z:ACLTS1[2:4]", 2, None),  # whose value is which? the policy cannot tell
        ("Z:ACLTS1[2:4]", 4, None),
    ],
)
def test_the_elements_a_setting_sets(spelling: str, count: int, elements: range | None) -> None:
    assert target_of(spelling, write=True).elements(count) == elements


@pytest.mark.parametrize(
    ("drf_text", "device", "resolved"),
    [
        ("0:140012", "Z:ACLTST", True),  # the resolver's answer is canonicalised too
        ("0_1234.SETTING[0]", "G:AMANDA", True),
        ("0:99", "0:99", False),  # unknown to the resolver
        ("0:666", "0:666", False),  # the resolver answered with another index
        ("0:7", "0:7", False),  # ... or with what is not a name
    ],
)
def test_index_names_are_resolved_by_the_servers_resolver(
    drf_text: str, device: str, resolved: bool
) -> None:
    target = target_of(drf_text, write=True, name_of=NAMES.get)
    assert (target.device, target.resolved) == (device, resolved)
    if resolved:  # the same target as the name's spelling: one history, one verdict
        named = re.sub(r"^0(.)\d+", lambda m: device[0] + m[1] + device[2:], drf_text)
        assert target == target_of(named, write=True)
    assert not target_of(drf_text).resolved  # no resolver: the index stays an index


def test_invalid_drfs_have_no_target() -> None:
    assert targets_of(["M:OUTTMP", "M:", "Z:ACLTST.DESCRIPTION"], write=True) == (
        Target("M:OUTTMP", P.SETTING, F.SCALED),
        None,
        None,
    )


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("g_amanda", "G:AMANDA"),
        ("G:AMANDA.SETTING[0]@N", "G:AMANDA"),
        ("g@amanda.max", "G:AMANDA"),
        ("0:1234", None),
        ("G:", None),
        ("", None),
    ],
)
def test_device_name(text: str, name: str | None) -> None:
    assert device_name(text) == name


def test_a_context_carries_targets_computed_once_with_the_resolver() -> None:
    ctx = RequestContext.of_call(
        "Set",
        ["0:140012", "m:outtmp"],
        "peer",
        values=[("0:140012", 1.0), ("m:outtmp", 2.0)],
        name_of=NAMES.get,
    )
    assert [t.device for t in ctx.targets if t is not None] == ["Z:ACLTST", "M:OUTTMP"]
    assert ctx.resolves_indices
    made = RequestContext(["z_acltst"], "Read", "peer", {}, [])  # made by hand: no resolver
    assert made.targets == (Target("Z:ACLTST", P.SETTING, F.SCALED),)
    assert not made.resolves_indices


def test_a_policy_may_not_change_the_targets() -> None:
    class Retarget(Policy):
        def check(self, ctx: RequestContext) -> PolicyDecision:
            return PolicyDecision(True, ctx=replace(ctx, targets=(SCALED_SETTING,)))

    ctx = RequestContext.of_call("Read", ["G:AMANDA"], "peer")
    with pytest.raises(ValueError, match="Retarget changed the request's DRFs"):
        evaluate_policies([Retarget()], ctx)
