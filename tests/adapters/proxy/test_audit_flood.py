"""A flood of refused calls against a real supervised server leaves a small audit log.

Seen before: the audit log grew 528 MB in 4.8 s past a 3-per-minute rate limit,
one full record per refused call. Here a real :class:`SupervisedServer` on
loopback (real grpcio, our gRPC backend as the client, the raw DAQ stub for
calls our client would never send) takes thousands of refused calls, rate-limited
and malformed, and the log keeps a bounded number of bounded records, a summary
counting the rest, and every allowed call in full. The server and the log share a
:class:`Clock` the test moves: nothing sleeps to let time pass.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest

from acnet_proto.adapters.grpc.stubs.DAQ_pb2_grpc import DAQStub
from acnet_proto.adapters.grpc.threaded import GRPCBackend
from acnet_proto.adapters.proxy.audit_log import AuditLog
from acnet_proto.adapters.proxy.supervised import SupervisedServer
from acnet_proto.api.auth import JWTAuth
from acnet_proto.errors import ConfigurationError, PolicyDenied
from acnet_proto.protos.controls.service.DAQ.v1 import DAQ_pb2
from acnet_proto.proxy import DeviceAccessPolicy, PolicyDecision, RateLimitPolicy, RequestContext
from acnet_proto.proxy.audit import REFUSED
from acnet_proto.testing import FakeBackend

pytestmark = pytest.mark.integration

TOKEN = jwt.encode({"sub": "operator@FNAL.GOV", "exp": 4102444800}, "k" * 32, algorithm="HS256")
WAIT = 5.0
PER_MINUTE = 60  # the audit log's default budget of refused records per peer address
RATE_LIMITED, MALFORMED = 1500, 300  # refused calls per round; two rounds
JUNK = ["Z:" + "\x01" * 1022] * 50  # 50 one-kilobyte DRFs no parser takes


class Clock:
    """The monotonic clock of the server's policies and of the audit log; the test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextlib.contextmanager
def flooded_server(path: Path, clock: Clock) -> Iterator[tuple[GRPCBackend, DAQStub]]:
    fake = FakeBackend()
    fake.set_reading("M:OUTTMP", 72.5)
    fake.set_reading("Z:ACLTST", 45.0)
    fake.set_reading("Z:ACLTS1", [1.0, 2.5, 4.0])
    policies = [RateLimitPolicy(3, 60), DeviceAccessPolicy(["Z:*"], mode="allow", action="set")]
    audit = AuditLog(path, capture_raw=True, clock=clock)
    with (
        SupervisedServer(fake, 0, "127.0.0.1", policies, TOKEN, audit, clock=clock) as server,
        GRPCBackend("127.0.0.1", server.port, auth=JWTAuth(TOKEN)) as client,
        grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        yield client, DAQStub(channel)


def flood(client: GRPCBackend, stub: DAQStub) -> int:
    """Rate-limited reads and malformed ones, interleaved; how many were refused."""
    refused = 0
    for index in range(RATE_LIMITED + MALFORMED):
        if index % 6 == 5 and index // 6 < MALFORMED:
            with pytest.raises(grpc.RpcError) as error:
                list(stub.Read(DAQ_pb2.ReadingList(drf=JUNK), timeout=WAIT))
            assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        else:
            with pytest.raises(PolicyDenied):
                client.get_many(["M:OUTTMP@I"], WAIT)
        refused += 1
    return refused


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="ascii").splitlines()]


def test_a_flood_of_refused_calls_leaves_a_small_log_and_every_setting_in_full(
    tmp_path: Path,
) -> None:
    path, clock = tmp_path / "audit.jsonl", Clock()
    with flooded_server(path, clock) as (client, stub):
        for _ in range(3):
            assert client.get_many(["M:OUTTMP@I"], WAIT)[0].value == 72.5
        refused = flood(client, stub)
        clock.now += 61.0  # the rate limit's window, and the log's budget, are renewed
        settings = [("Z:ACLTST", 12.5), ("Z:ACLTS1[0:1]", [1.0, 2.0])]
        assert all(r.ok for r in client.write_many(settings, WAIT))
        for _ in range(2):  # the rest of the window's three
            assert client.get_many(["M:OUTTMP@I"], WAIT)[0].value == 72.5
        refused += flood(client, stub)
    entries = records(path)  # the server's stop closed the log: its last summary is written
    size = path.stat().st_size
    assert size < 200_000, f"{size} bytes of audit log for {refused} refused calls"

    calls = [e for e in entries if e["dir"] == "in"]
    denied = [e for e in calls if not e["allowed"]]
    summaries = [e for e in entries if e["dir"] == "summary"]
    # refused calls: at most the budget written each minute, every other one counted
    assert len(denied) == 2 * PER_MINUTE
    assert all(len(json.dumps(e)) <= REFUSED.record_chars for e in denied)  # type: ignore[operator]
    assert sum(s["unwritten"] for s in summaries) + len(denied) == refused
    assert all(list(s["peers"]) == ["ipv4:127.0.0.1"] for s in summaries)  # port left out
    assert {e["policy"] for e in denied} == {"RateLimitPolicy", None}  # None: malformed
    junk = next(e for e in denied if e["policy"] is None)
    assert junk["truncated"] and len(junk["drfs"]) == REFUSED.drfs
    assert junk["drfs_omitted"] == len(JUNK) - len(junk["drfs"])
    assert junk["raw_bytes"] > 50_000 and "raw" not in junk

    # the allowed calls, every one written, the setting in full
    allowed = [e for e in calls if e["allowed"]]
    assert [e["method"] for e in allowed] == ["Read"] * 3 + ["Set", "Read", "Read"]
    setting = allowed[3]
    assert setting["values"] == [
        {"drf": "Z:ACLTST.SETTING@N", "value": 12.5},
        {"drf": "Z:ACLTS1.SETTING[0:1]@N", "value": [1.0, 2.0]},
    ]
    assert "truncated" not in setting
    request = DAQ_pb2.SettingList.FromString(base64.b64decode(setting["raw"]))
    assert [s.device for s in request.setting] == [e["drf"] for e in setting["values"]]
    # the first round's summary came before the setting's record
    assert summaries[0]["seq"] < setting["seq"] < summaries[-1]["seq"]


def test_a_burst_that_stops_gets_its_summary_without_another_call(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    audit = AuditLog(path, max_refusals_per_minute=2, quiet_period=0.2)  # the real clock
    denial = PolicyDecision(False, "Write operations disabled", policy="ReadOnlyPolicy")
    try:
        for port in range(5000, 5010):
            ctx = RequestContext.of_call("Set", ["Z:ACLTST"], f"ipv4:10.0.0.1:{port}")
            audit.log_request(ctx, denial)
        deadline = time.monotonic() + 10.0  # generous: the machine may be loaded
        while len(path.read_text().splitlines()) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        *written, summary = records(path)
    finally:
        audit.close()
    assert [e["policy"] for e in written] == ["ReadOnlyPolicy"] * 2
    assert (summary["dir"], summary["unwritten"], summary["peers"]) == (
        "summary",
        8,
        {"ipv4:10.0.0.1": 8},
    )
    assert len(records(path)) == 3  # closing found nothing more to report


@pytest.mark.parametrize(
    ("option", "value"),
    [("max_refusals_per_minute", 0), ("max_refusals_per_minute_total", 2.5), ("quiet_period", -1)],
)
def test_the_log_refuses_bad_limits(tmp_path: Path, option: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=f"{option} must be a positive"):
        AuditLog(tmp_path / "audit.jsonl", **{option: value})
