"""No anonymous client can starve the supervised proxy, over real grpcio on loopback: streaming
``Read`` calls beyond ``max_streams_per_peer`` are refused ``RESOURCE_EXHAUSTED`` at once,
before any policy or backend sees them (and audited), and while the allowed ones run, a
``Set`` with a valid token and a one-shot read are answered within their timeouts. Seen at the
lab: 64 anonymous streaming reads made the proxy refuse a valid token's ``Set`` with
``DEADLINE_EXCEEDED``.

The backends are real: the threaded gRPC client of the simulated DAQ service (which takes
settings with a JWT), and the threaded DPM client of the simulated DPM.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
import jwt
import pytest

from acnet_proto.adapters.dpm.threaded import DPMBackend
from acnet_proto.adapters.grpc.stubs.DAQ_pb2_grpc import DAQStub
from acnet_proto.adapters.grpc.threaded import GRPCBackend
from acnet_proto.adapters.proxy.supervised import AuditLog, SupervisedServer
from acnet_proto.adapters.sim.daq import DAQSimServer
from acnet_proto.adapters.sim.dpm import SimServer
from acnet_proto.api.auth import JWTAuth
from acnet_proto.drf import MAX_DRF_LENGTH
from acnet_proto.limits import DEFAULT_LIMITS, ServerLimits
from acnet_proto.protos.controls.service.DAQ.v1 import DAQ_pb2
from acnet_proto.proxy import DeviceAccessPolicy
from acnet_proto.services.daq import SettingBatch
from acnet_proto.sim import SettingsPolicy
from acnet_proto.testing import FakeBackend
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

KEY = "acnet-proto tests: the HS256 key of the simulated DAQ"
SIM_TOKEN = jwt.encode({"sub": "proxy@FNAL.GOV", "exp": 4102444800}, KEY, algorithm="HS256")
PROXY_TOKEN = "the proxy's bearer token"
SIM_POLICY = SettingsPolicy.from_toml(
    '[roles.operators]\nallow = ["Z:*"]\n[principals."proxy@FNAL.GOV"]\nroles = ["operators"]\n'
)
WRITE_Z = DeviceAccessPolicy(["Z:*"], mode="allow", action="set")
WAIT = 10.0
SLACK = 5.0  # the longest a refusal or an answer may take on a loaded machine
STREAM = "M:OUTTMP@p,100"


@dataclass(frozen=True)
class Outcome:
    """How a streaming call began: its first reply (``code`` None) or its error."""

    code: grpc.StatusCode | None
    details: str
    seconds: float  # from when every call was opened


def first_outcomes(
    stub: DAQStub, drfs: Sequence[str], count: int
) -> tuple[list[grpc.Call], list[Outcome]]:
    """Open ``count`` anonymous streaming Reads of ``drfs`` at once; each call and how it
    began. The caller cancels the calls."""
    request = DAQ_pb2.ReadingList(drf=list(drfs))
    calls = [stub.Read(request, timeout=WAIT) for _ in range(count)]
    start, outcomes = time.monotonic(), []
    for call in calls:
        try:
            next(call)
            outcome = Outcome(None, "", time.monotonic() - start)
        except grpc.RpcError as e:
            outcome = Outcome(e.code(), e.details() or "", time.monotonic() - start)
        outcomes.append(outcome)
    return calls, outcomes


@contextlib.contextmanager
def cancelling(calls: list[grpc.Call]) -> Iterator[None]:
    try:
        yield
    finally:
        for call in calls:
            call.cancel()


@pytest.fixture
def daq() -> Iterator[DAQSimServer]:
    # the proxy is one client address to it: room for all the proxy's streams
    limits = ServerLimits(max_streams_per_peer=DEFAULT_LIMITS.max_streams)
    with DAQSimServer(jwt_key=KEY, policy=SIM_POLICY, limits=limits) as server:
        yield server


def test_sixty_four_anonymous_streams_leave_a_valid_tokens_set_answered(
    daq: DAQSimServer, tmp_path: Path
) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    with (
        GRPCBackend(daq.host, daq.port, auth=JWTAuth(SIM_TOKEN)) as backend,
        SupervisedServer(
            backend, 0, "127.0.0.1", [WRITE_Z], PROXY_TOKEN, audit, limits=DEFAULT_LIMITS
        ) as proxy,
        grpc.insecure_channel(f"127.0.0.1:{proxy.port}") as channel,
    ):
        stub = DAQStub(channel)
        calls, outcomes = first_outcomes(stub, [STREAM], 64)
        with cancelling(calls):
            per_peer = DEFAULT_LIMITS.max_streams_per_peer
            codes = [o.code for o in outcomes]
            assert codes.count(None) == per_peer, codes
            assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 64 - per_peer, codes
            refused = [o for o in outcomes if o.code is not None]
            assert all(
                f"{per_peer} streams open (max_streams_per_peer)" in o.details for o in refused
            )
            assert max(o.seconds for o in outcomes) < SLACK
            start = time.monotonic()  # on the streams' own connection
            reply = stub.Set(
                SettingBatch([("Z:ACLTST", 21.5)]).request(),
                metadata=(("authorization", f"Bearer {PROXY_TOKEN}"),),
                timeout=SLACK,
            )
            assert [s.status_code for s in reply.status] == [0]
            with GRPCBackend(proxy.host, proxy.port) as client:  # and on another
                assert client.read("Z:ACLTST.SETTING", timeout=SLACK) == 21.5
            assert time.monotonic() - start < SLACK
    records = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    exhausted = [r for r in records if "max_streams_per_peer" in json.dumps(r)]
    assert len(exhausted) == 64 - per_peer  # each refusal is audited


def test_a_one_shot_read_through_the_dpm_backend_is_answered_while_streams_hold_their_slots(
    start_sim: Callable[..., SimServer],
) -> None:
    dpm_sim = start_sim()
    limits = ServerLimits(max_streams_per_peer=3, max_streams=5)
    with (
        DPMBackend(dpm_sim.host, dpm_sim.port) as backend,
        SupervisedServer(backend, 0, "127.0.0.1", limits=limits) as proxy,
        grpc.insecure_channel(f"127.0.0.1:{proxy.port}") as channel,
    ):
        calls, outcomes = first_outcomes(DAQStub(channel), [STREAM], 3 + 4)
        with cancelling(calls):
            assert [o.code for o in outcomes].count(None) == 3
            assert proxy.streams.open() == 3
            with GRPCBackend(proxy.host, proxy.port) as client:
                start = time.monotonic()
                assert client.read("M:OUTTMP", timeout=SLACK) > 0
                assert time.monotonic() - start < SLACK
        wait_until(lambda: proxy.streams.open() == 0, "each cancelled stream's slot", WAIT)


def test_a_stream_gives_its_slot_back_when_denied_when_its_backend_fails_and_at_stop() -> None:
    backend = FakeBackend()
    deny_g = DeviceAccessPolicy(["G:*"], mode="deny", action="read")
    with (
        SupervisedServer(backend, 0, "127.0.0.1", [deny_g]) as proxy,
        grpc.insecure_channel(f"127.0.0.1:{proxy.port}") as channel,
    ):
        stub = DAQStub(channel)
        with pytest.raises(grpc.RpcError) as denied:  # the slot is taken before the policies
            next(stub.Read(DAQ_pb2.ReadingList(drf=["G:AMANDA@p,100"]), timeout=WAIT))
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        wait_until(lambda: proxy.streams.open() == 0, "proxy.streams.open() == 0", WAIT)
        failing = stub.Read(DAQ_pb2.ReadingList(drf=[STREAM]), timeout=WAIT)
        wait_until(lambda: backend.emit_reading(STREAM, 1.0) == 1, "the subscription", WAIT)
        next(failing)
        backend.emit_error()
        with pytest.raises(grpc.RpcError) as failed:
            next(failing)
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
        wait_until(lambda: proxy.streams.open() == 0, "proxy.streams.open() == 0", WAIT)
        open_at_stop = stub.Read(DAQ_pb2.ReadingList(drf=[STREAM]), timeout=WAIT)
        wait_until(lambda: proxy.streams.open() == 1, "proxy.streams.open() == 1", WAIT)
    with pytest.raises(grpc.RpcError):
        next(open_at_stop)
    wait_until(lambda: proxy.streams.open() == 0, "the stopped stream's slot", WAIT)


def test_a_drf_over_the_limit_is_refused_before_the_policies_and_audited_in_short(
    daq: DAQSimServer, tmp_path: Path
) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    huge = "M:OUTTMP" + "x" * 1_000_000
    with (
        GRPCBackend(daq.host, daq.port, auth=JWTAuth(SIM_TOKEN)) as backend,
        SupervisedServer(backend, 0, "127.0.0.1", [WRITE_Z], PROXY_TOKEN, audit) as proxy,
        grpc.insecure_channel(f"127.0.0.1:{proxy.port}") as channel,
        pytest.raises(grpc.RpcError) as info,
    ):
        list(DAQStub(channel).Read(DAQ_pb2.ReadingList(drf=[huge]), timeout=WAIT))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"1000008 characters long; the limit is {MAX_DRF_LENGTH}" in (info.value.details() or "")
    size = (tmp_path / "audit.jsonl").stat().st_size
    assert 0 < size < 4096, f"the audit record of one refusal takes {size} bytes"
