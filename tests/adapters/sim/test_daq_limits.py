"""Stream exhaustion on the simulated DAQ service, over real grpcio on loopback: streaming ``Read``
calls beyond ``max_streams_per_peer`` (per client address) or ``max_streams`` (per server) are
refused ``RESOURCE_EXHAUSTED`` at once, and while the allowed ones run, a ``Set`` with a valid
token and a one-shot read are still answered within their timeouts."""

from __future__ import annotations

import time

import grpc
import jwt
import pytest

from acnet_proto.adapters.grpc.stubs.DAQ_pb2_grpc import DAQStub
from acnet_proto.adapters.grpc.threaded import GRPCBackend
from acnet_proto.adapters.sim.daq import DAQSimServer
from acnet_proto.api.auth import JWTAuth
from acnet_proto.limits import DEFAULT_LIMITS, ServerLimits
from acnet_proto.services.daq import SettingBatch
from acnet_proto.sim import SettingsPolicy
from tests.adapters.proxy.test_starvation import Outcome, first_outcomes, wait_until

pytestmark = pytest.mark.integration

KEY = "acnet-proto tests: the HS256 key of the simulated DAQ"
TOKEN = jwt.encode({"sub": "operator@FNAL.GOV", "exp": 4102444800}, KEY, algorithm="HS256")
POLICY = SettingsPolicy.from_toml(
    '[roles.operators]\nallow = ["Z:*"]\n[principals."operator@FNAL.GOV"]\nroles = ["operators"]\n'
)
WAIT = 10.0
SLACK = 5.0  # the longest a refusal or an answer may take on a loaded machine
STREAM = "M:OUTTMP@p,100"


def sim(limits: ServerLimits) -> DAQSimServer:
    return DAQSimServer(jwt_key=KEY, policy=POLICY, limits=limits)


def test_streams_beyond_the_peers_limit_are_refused_and_settings_still_go_through() -> None:
    limits = ServerLimits(max_streams_per_peer=4, max_streams=32)
    with sim(limits) as server, grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = DAQStub(channel)
        calls, outcomes = first_outcomes(stub, [STREAM], 4 + 6)
        try:
            _assert_refused(outcomes, 4, 6, "4 streams open (max_streams_per_peer)")
            assert server.streams.open() == 4
            start = time.monotonic()  # the same connection as the streams, then another one
            reply = stub.Set(
                SettingBatch([("Z:ACLTST", 12.5)]).request(),
                metadata=(("authorization", f"Bearer {TOKEN}"),),
                timeout=SLACK,
            )
            assert [s.status_code for s in reply.status] == [0]
            with GRPCBackend(server.host, server.port, auth=JWTAuth(TOKEN)) as backend:
                assert backend.read("Z:ACLTST.SETTING", timeout=SLACK) == 12.5
            assert time.monotonic() - start < SLACK
        finally:
            for call in calls:
                call.cancel()


def test_streams_beyond_the_servers_limit_are_refused_and_a_closed_one_frees_its_slot() -> None:
    limits = ServerLimits(max_streams_per_peer=16, max_streams=3)
    with sim(limits) as server, grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = DAQStub(channel)
        calls, outcomes = first_outcomes(stub, [STREAM], 5)
        try:
            _assert_refused(outcomes, 3, 2, "already serves 3 streams (max_streams)")
            next(c for c, o in zip(calls, outcomes, strict=True) if o.code is None).cancel()
            wait_until(lambda: server.streams.open() == 2, WAIT)
            more, again = first_outcomes(stub, [STREAM], 1)
            calls += more
            assert again[0].code is None
        finally:
            for call in calls:
                call.cancel()
    assert server.streams.open() == 0


def test_sixty_four_anonymous_streams_leave_the_default_server_answering_settings() -> None:
    """The lab's attack, on the default limits: 64 streaming reads from one address."""
    with sim(DEFAULT_LIMITS) as server, grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        calls, outcomes = first_outcomes(DAQStub(ch), [STREAM], 64)
        try:
            per_peer = DEFAULT_LIMITS.max_streams_per_peer
            _assert_refused(outcomes, per_peer, 64 - per_peer, "(max_streams_per_peer)")
            with GRPCBackend(server.host, server.port, auth=JWTAuth(TOKEN)) as backend:
                assert backend.write("Z:ACLTST", 7.0, timeout=SLACK).ok
                assert backend.read("Z:ACLTST.SETTING@I", timeout=SLACK) == 7.0
        finally:
            for call in calls:
                call.cancel()


def _assert_refused(outcomes: list[Outcome], served: int, refused: int, limit: str) -> None:
    codes = [o.code for o in outcomes]
    assert codes.count(None) == served, codes
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == refused, codes
    assert all(limit in o.details for o in outcomes if o.code is not None)
    assert max(o.seconds for o in outcomes) < SLACK
