"""What plans cache between reads: bounded, shared only when equal, and never wrong.

A program reads the same DRFs again and again, so plans keep their parses and
requests; a long-running one must not grow without limit, and what one read
cached must not change what another reads.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest

from acnet_proto.pc import dpm
from acnet_proto.plans import lists
from acnet_proto.plans.lists import ListPlan, ReadBatch

LIST_ID = 48813
MILLIS = 1_715_000_000_123


def answered(batch: ReadBatch) -> ReadBatch:
    """``batch`` answered as the simulator would: added, started, described, read."""
    refs = range(1, len(batch) + 1)
    for ref in refs:
        batch.feed(dpm.AddToListReply(list_id=LIST_ID, ref_id=ref, status=0))
    batch.feed(dpm.StartListReply(list_id=LIST_ID, status=0))
    for ref in refs:
        name = batch.requests[ref - 1].device
        batch.feed(dpm.DeviceInfoReply(ref_id=ref, di=ref, name=name, description="d", units="U"))
        batch.feed(
            dpm.ScalarReply(ref_id=ref, timestamp=MILLIS, cycle=1, status=0, data=float(ref))
        )
    return batch


@pytest.mark.parametrize(
    "cache",
    [lists._parsed, lists._add, lists._start, lists._stop, lists._clear],
    ids=lambda cache: cache.__wrapped__.__name__,
)
def test_every_cache_is_bounded(cache: Any) -> None:
    assert isinstance(cache, functools._lru_cache_wrapper)
    maxsize = cache.cache_info().maxsize
    assert maxsize is not None and maxsize <= lists._CACHED


def test_a_str_subclass_cannot_poison_the_cache_for_other_drfs() -> None:
    class EqualToAll(str):
        def __eq__(self, other: object) -> bool:
            return True

        def __hash__(self) -> int:
            return hash("Z:ACLTST")

    odd = ListPlan([EqualToAll("M:OUTTMP")], default_event="I")
    assert odd.wire == ["M:OUTTMP@I"]
    assert type(odd.drfs[0]) is EqualToAll  # kept as given
    assert ListPlan(["Z:ACLTST"], default_event="I").wire == ["Z:ACLTST@I"]


def test_the_same_drf_with_and_without_a_default_event_is_sent_as_each_says() -> None:
    assert ListPlan(["M:OUTTMP"], default_event="I").wire == ["M:OUTTMP@I"]
    assert ListPlan(["M:OUTTMP"], default_event=None).wire == ["M:OUTTMP"]
    assert ListPlan(["M:OUTTMP"], default_event="p,1000").wire == ["M:OUTTMP@p,1000"]


def test_reads_again_send_the_same_requests_made_once() -> None:
    first, again = ReadBatch(["M:OUTTMP"]), ReadBatch(["M:OUTTMP"])
    assert first.commands(LIST_ID) == [
        dpm.AddToListRequest(list_id=LIST_ID, ref_id=1, drf_request="M:OUTTMP@I"),
        dpm.StartListRequest(list_id=LIST_ID),
    ]
    assert all(a is b for a, b in zip(first.commands(LIST_ID), again.commands(LIST_ID)))
    other_list = dpm.AddToListRequest(list_id=LIST_ID + 1, ref_id=1, drf_request="M:OUTTMP@I")
    assert first.commands(LIST_ID + 1)[0] == other_list
    assert first.teardown(LIST_ID) == [
        dpm.StopListRequest(list_id=LIST_ID),
        dpm.ClearListRequest(list_id=LIST_ID),
    ]


def test_a_plan_longer_than_the_caches_reads_the_same_and_leaves_them_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    drfs = ["M:OUTTMP", "Z:ACLTST", "G:AMANDA"]
    expected = answered(ReadBatch(drfs)).readings()
    commands = ReadBatch(drfs).commands(LIST_ID)
    lists._parsed.cache_clear()
    lists._add.cache_clear()
    monkeypatch.setattr(lists, "_CACHED", len(drfs) - 1)
    batch = answered(ReadBatch(drfs))
    assert batch.readings() == expected
    assert batch.commands(LIST_ID) == commands
    for cache in (lists._parsed, lists._add):
        assert cache.cache_info().currsize == 0
