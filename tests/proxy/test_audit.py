"""The audit log's records, pure: every record bounded and escaped, refusals rate-limited.

A refused call comes from anyone who can reach the proxy, so its record has a
fixed ceiling whatever was sent; an allowed call's record is the audit trail and
keeps every DRF and setting. (Through a real server, flooded:
``tests/adapters/proxy/test_audit_flood.py``.)
"""

from __future__ import annotations

import base64
import itertools
import json
from typing import Any

import numpy as np
import pytest

from acnet_proto.errors import ConfigurationError
from acnet_proto.protos.controls.service.DAQ.v1 import DAQ_pb2
from acnet_proto.proxy import PolicyDecision, RequestContext
from acnet_proto.proxy.audit import (
    ALLOWED,
    REFUSED,
    SUMMARY_PEERS,
    RecordBounds,
    RefusalBudget,
    Unwritten,
    audit_entry,
    audit_line,
    captured,
    clipped,
    summary_entry,
)

PEER = "ipv4:10.0.0.1:5000"
DENIED = PolicyDecision(False, "Rate limit exceeded (3 per 60.0s)", policy="RateLimitPolicy")
ALLOW = PolicyDecision(True)


def call(method: str, drfs: list[str], values: list[Any] | None = None, **kw: Any) -> Any:
    pairs = list(zip(drfs, values)) if values is not None else []
    return RequestContext.of_call(method, drfs, kw.pop("peer", PEER), values=pairs, **kw)


def line_of(ctx: RequestContext, decision: PolicyDecision, **kw: Any) -> str:
    return audit_line(audit_entry(7, "2030-01-01T00:00:00+00:00", ctx, decision, **kw))


def test_short_text_is_kept_as_is_and_long_text_says_how_much_was_left_out() -> None:
    assert clipped("M:OUTTMP@I", 200) == ("M:OUTTMP@I", False)
    text, cut = clipped("Z:" + "A" * 1022, 200)
    assert cut and text == "Z:" + "A" * 198 + "... (+824 more chars)"
    # the limit is on what JSON writes: escapes count six each
    text, cut = clipped("\x00" * 100, 60)
    assert cut and text == "\x00" * 10 + "... (+90 more chars)"


# --- a refused call: at most 4 KiB, whatever was sent ---------------------------------------


def test_ten_thousand_one_kilobyte_drfs_make_a_record_of_a_few_kilobytes() -> None:
    drfs = [f"Z:{i:05d}" + "X" * 1017 for i in range(10_000)]
    request = DAQ_pb2.ReadingList(drf=drfs)
    line = line_of(call("Read", drfs, raw_request=request), DENIED, raw=True)
    assert len(line) <= REFUSED.record_chars  # type: ignore[operator]
    entry = json.loads(line)
    assert len(entry["drfs"]) == REFUSED.drfs and entry["drfs_omitted"] == 10_000 - 8
    assert entry["drfs"][3].startswith("Z:00003XXX") and entry["drfs"][3].endswith(" more chars)")
    assert (entry["policy"], entry["truncated"]) == ("RateLimitPolicy", True)
    # of the request only its head, and how long it was
    size = request.ByteSize()
    assert "raw" not in entry and entry["raw_bytes"] == size
    head = base64.b64decode(entry["raw_head"])
    assert head == request.SerializeToString()[: REFUSED.raw_bytes]


def test_a_one_megabyte_drf_in_a_malformed_calls_reason_is_cut() -> None:
    drf = "Z:" + "\x01" * 1_000_000
    why = f"DRF 0 ({drf!r}) is empty, padded or not printable ASCII"
    line = line_of(call("Read", [drf]), PolicyDecision(False, why))
    entry = json.loads(line)
    assert len(line) < 2048 and entry["policy"] is None  # the proxy's own check, no policy's
    assert entry["reason"].startswith("DRF 0 ('Z:\\x01") and "more chars)" in entry["reason"]
    assert entry["drfs"][0].startswith("Z:\x01") and entry["drfs"][0].endswith("more chars)")


def test_a_refused_setting_of_huge_values_stays_within_the_record_bound() -> None:
    drfs = [f"Z:ACLTS{i}" for i in range(20)]
    values: list[Any] = [np.arange(100_000.0), "x" * 100_000, b"\xff" * 100_000]
    values += [["\n" * 1000] * 50] * 17
    entry = json.loads(line_of(call("Set", drfs, values), DENIED))
    assert len(audit_line(entry)) <= REFUSED.record_chars  # type: ignore[operator]
    assert entry["truncated"] is True
    if "values" in entry:  # kept if they fit, else named as left out
        assert len(entry["values"]) == REFUSED.drfs
        assert entry["values"][0]["value"] == [0.0, 1.0, 2.0, 3.0]
        assert entry["values"][0]["items"] == 100_000
    else:
        assert entry["values_omitted"] == 20


def test_a_refused_record_names_its_policy() -> None:
    entry = audit_entry(1, "t", call("Set", ["G:AMANDA"], [1.0]), DENIED)
    assert (entry["allowed"], entry["policy"], entry["reason"]) == (
        False,
        "RateLimitPolicy",
        DENIED.reason,
    )
    assert entry["values"] == [{"drf": "G:AMANDA", "value": 1.0}] and "truncated" not in entry
    assert "policy" not in audit_entry(2, "t", call("Read", ["M:OUTTMP"]), ALLOW)


# --- an allowed call: the audit trail ---------------------------------------------------------


def test_an_allowed_call_lists_every_drf_and_setting_in_full() -> None:
    drfs = [f"Z:DEV{i:03d}.SETTING[0:9]@N" for i in range(300)]
    values = [np.arange(10.0) + i for i in range(300)]
    request = DAQ_pb2.ReadingList(drf=drfs)
    entry = json.loads(line_of(call("Set", drfs, values, raw_request=request), ALLOW, raw=True))
    assert entry["drfs"] == drfs and "truncated" not in entry
    assert entry["values"][299] == {"drf": drfs[299], "value": [299.0 + i for i in range(10)]}
    assert base64.b64decode(entry["raw"]) == request.SerializeToString()


def test_an_allowed_array_beyond_the_bound_is_summarised_and_says_so() -> None:
    values = [np.arange(5000.0), 2.5]
    entry = audit_entry(1, "t", call("Set", ["Z:ACLTS1", "Z:ACLTST"], values), ALLOW)
    big, small = entry["values"]
    assert big["value"] == list(np.arange(ALLOWED.value_items, dtype=float))
    assert (big["truncated"], big["items"]) == (True, 5000)
    assert small == {"drf": "Z:ACLTST", "value": 2.5}
    assert entry["truncated"] is True


def test_a_refused_requests_bytes_are_captured_only_if_they_fit() -> None:
    small, big = DAQ_pb2.ReadingList(drf=["M:OUTTMP"]), DAQ_pb2.ReadingList(drf=["Z:" + "A" * 300])
    assert captured(small, False) == small.SerializeToString()
    assert captured(big, False) is None  # a cut message could not be read back
    assert captured(big, True) == big.SerializeToString()


# --- escaping ---------------------------------------------------------------------------------

HOSTILE = ["line\n{\"dir\":\"in\",\"forged\":true}", "\x1b[31mred\x1b[0m", "del\x7f", "\u2028sep",
           "\r\x00\t", "caf\u00e9 \U0001f600", "back\\slash \"quote\""]  # fmt: skip


@pytest.mark.parametrize("text", HOSTILE)
def test_a_peers_text_is_one_line_of_printable_ascii_and_reads_back_as_sent(text: str) -> None:
    ctx = call("Read", [text, "M:OUTTMP"], peer=text, metadata=[("x-note", text)])
    line = line_of(ctx, PolicyDecision(False, f"bad {text}", policy=text))
    assert line.endswith("\n") and "\n" not in line[:-1]
    assert all(" " <= c < "\x7f" for c in line[:-1])
    entry = json.loads(line)
    assert (entry["peer"], entry["drfs"][0], entry["policy"]) == (text, text, text)
    assert entry["reason"] == f"bad {text}"
    assert "x-note" not in line  # metadata is never recorded


# --- the rate of refused records --------------------------------------------------------------


def test_refusals_beyond_the_budget_of_a_peer_address_are_counted_not_written() -> None:
    budget = RefusalBudget(per_peer=5, total=100)
    written = [budget.admit(f"ipv4:10.0.0.1:{5000 + i}", 0.0) for i in range(20)]  # any port
    assert written == [True] * 5 + [False] * 15
    assert budget.admit("ipv4:10.0.0.2:5000", 0.0)  # another address has its own budget
    assert budget.admit("ipv4:10.0.0.1:1", 12.0)  # one more every 60/5 s
    assert not budget.admit("ipv4:10.0.0.1:1", 12.5)


def test_the_total_budget_bounds_many_peers() -> None:
    budget = RefusalBudget(per_peer=5, total=12)
    written = sum(budget.admit(f"ipv6:[::{i}]:1", 0.0) for i in range(100))
    assert written == 12


def test_a_summary_is_due_when_the_burst_is_quiet_or_once_an_interval() -> None:
    budget = RefusalBudget(per_peer=1, total=100, interval=60.0, quiet_period=10.0)
    for now in (0.0, 1.0, 2.0):
        budget.admit("ipv4:10.0.0.1:1", now)
    assert budget.unwritten(11.0) is None  # quiet only 9 s
    counted = budget.unwritten(12.0)
    assert counted is not None and (counted.peers, counted.first, counted.last) == (
        {"ipv4:10.0.0.1": 2},
        1.0,
        2.0,
    )
    assert budget.unwritten(100.0) is None and not budget.pending
    # a flood that never pauses still gets a summary each interval, and loses no count
    now, calls, written, summaries = 100.0, 0, 0, []
    while now < 300.0:
        written += budget.admit("ipv4:10.0.0.1:1", now)
        calls += 1
        if (due := budget.unwritten(now)) is not None:
            summaries.append((now, due.total))
        now += 0.5
    times = [100.0] + [at for at, _ in summaries]
    assert len(summaries) == 3 and all(b - a <= 61.0 for a, b in itertools.pairwise(times))
    assert written == 4  # one a minute, and the first
    rest = budget.unwritten(now, final=True)
    assert rest is not None
    assert sum(total for _, total in summaries) + rest.total == calls - written


def test_a_closing_log_gets_the_summary_at_once() -> None:
    budget = RefusalBudget(per_peer=1, total=100)
    budget.admit(PEER, 0.0)
    budget.admit(PEER, 0.0)
    assert budget.unwritten(0.0) is None
    final = budget.unwritten(0.0, final=True)
    assert final is not None and final.total == 1


def test_the_peers_tracked_are_bounded() -> None:
    budget = RefusalBudget(per_peer=1, total=1, max_peers=3)
    for i in range(10):
        budget.admit(f"ipv4:10.0.0.{i}:1", 0.0)
    counted = budget.unwritten(0.0, final=True)
    assert counted is not None and (len(counted.peers), counted.others) == (3, 6)


def test_the_summary_names_the_peers_with_the_most_unwritten_calls() -> None:
    peers = {f"ipv4:10.0.{i // 256}.{i % 256}": i + 1 for i in range(40)}
    unwritten = Unwritten(peers, others=7, first=1.0, last=4.25)
    entry = summary_entry(9, "t", unwritten, RefusalBudget().rule)
    assert (entry["dir"], entry["unwritten"], entry["seconds"]) == ("summary", 827, 3.25)
    assert list(entry["peers"].values()) == list(range(40, 40 - SUMMARY_PEERS, -1))
    assert (entry["peers_omitted"], entry["untracked"]) == (40 - SUMMARY_PEERS, 7)
    assert "beyond 60 per 60s from one peer address (600 in all)" in entry["rule"]


@pytest.mark.parametrize(
    "make",
    [
        lambda: RecordBounds(drfs=0, text_chars=1, value_items=1, raw_bytes=1, record_chars=1),
        lambda: RecordBounds(drfs=1, text_chars=None, value_items=1, raw_bytes=1, record_chars=1),  # type: ignore[arg-type]
        lambda: RefusalBudget(per_peer=0),
        lambda: RefusalBudget(total=1.5),  # type: ignore[arg-type]
        lambda: RefusalBudget(quiet_period=float("nan")),
    ],
)
def test_bad_bounds_are_refused_at_construction(make: Any) -> None:
    with pytest.raises(ConfigurationError, match="must be a positive"):
        make()
