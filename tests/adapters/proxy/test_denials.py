"""A supervised proxy's denials reach every gRPC client as one error: PolicyDenied, naming the
policy and the devices, for reads, settings and streams.

Each test runs a real :class:`SupervisedServer` on loopback in front of a
FakeBackend, with each gRPC flavour (blocking, asyncio, trio) as the client.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import jwt
import pytest

from acnet_proto.adapters.dpm.threaded import DPMBackend
from acnet_proto.adapters.grpc.threaded import GRPCBackend
from acnet_proto.adapters.proxy.supervised import SupervisedServer
from acnet_proto.adapters.sim.dpm import SimServer
from acnet_proto.api.auth import JWTAuth
from acnet_proto.errors import AuthenticationError, PolicyDenied
from acnet_proto.proxy import (
    SERVER_RULES,
    DeviceAccessPolicy,
    Policy,
    RateLimitPolicy,
    ReadOnlyPolicy,
)
from acnet_proto.testing import FakeBackend
from tests.support.clients import GRPC_ADAPTERS, Client

pytestmark = pytest.mark.integration

TOKEN = jwt.encode({"sub": "operator@FNAL.GOV", "exp": 4102444800}, "k" * 32, algorithm="HS256")
WAIT = 5.0


def fake_backend() -> FakeBackend:
    fake = FakeBackend()
    for drf, value in [("M:OUTTMP", 72.5), ("Z:ACLTST", 45.0), ("G:AMANDA", 1.0)]:
        fake.set_reading(drf, value)
    return fake


@contextlib.contextmanager
def client_of(kind: str, policies: list[Policy], backend: Any = None) -> Iterator[Client]:
    """A ``kind`` gRPC client of a supervised server with ``policies`` (and the token)."""
    served = fake_backend() if backend is None else backend
    with SupervisedServer(served, port=0, host="127.0.0.1", policies=policies, token=TOKEN) as s:
        client = GRPC_ADAPTERS[kind]("127.0.0.1", s.port, auth=JWTAuth(TOKEN))
        try:
            yield client
        finally:
            client.close()


def denial(call: Any) -> PolicyDenied:
    with pytest.raises(PolicyDenied) as caught:
        call()
    return caught.value


def check(error: PolicyDenied, policy: str, drfs: list[str], action: str, reason: str) -> None:
    """The attributes, and a message that names the policy, what was refused and why."""
    assert (error.policy, error.drfs, error.action, error.reason) == (policy, drfs, action, reason)
    assert f"the supervised proxy's {policy} refused to {action} {drfs[0]}" in str(error)
    assert reason in str(error) and "ask its operator" in str(error)


@pytest.mark.parametrize("kind", list(GRPC_ADAPTERS))
def test_read_only_denies_settings_by_name(kind: str) -> None:
    with client_of(kind, [ReadOnlyPolicy()]) as client:
        error = denial(lambda: client.write("Z:ACLTST", 1.0))
        check(error, "ReadOnlyPolicy", ["Z:ACLTST"], "set", "Write operations disabled")
        error = denial(lambda: client.write_many([("Z:ACLTST", 1.0), ("M:OUTTMP", 2.0)]))
        assert error.drfs == ["Z:ACLTST", "M:OUTTMP"] and "Z:ACLTST and 1 more" in str(error)
        assert client.read("M:OUTTMP") == 72.5


@pytest.mark.parametrize("kind", list(GRPC_ADAPTERS))
def test_device_access_denies_reads_and_streams_by_name(kind: str) -> None:
    policies: list[Policy] = [DeviceAccessPolicy(["G:*"], mode="deny", action="read")]
    with client_of(kind, policies) as client:
        reason = "Device G:AMANDA is denied"
        error = denial(lambda: client.get_many(["Z:ACLTST", "G:AMANDA"]))
        check(error, "DeviceAccessPolicy", ["Z:ACLTST", "G:AMANDA"], "read", reason)
        assert not isinstance(error, AuthenticationError)
        error = denial(lambda: client.read("G:AMANDA"))
        check(error, "DeviceAccessPolicy", ["G:AMANDA"], "read", reason)
        # a stream it refuses ends with the same error, at once: no reconnection is tried
        error = denial(lambda: client.stream(["G:AMANDA@p,100"], 1, timeout=WAIT))
        check(error, "DeviceAccessPolicy", ["G:AMANDA@p,100"], "stream", reason)


@pytest.mark.parametrize("kind", list(GRPC_ADAPTERS))
def test_rate_limit_denies_by_name(kind: str) -> None:
    with client_of(kind, [RateLimitPolicy(1)]) as client:
        assert client.read("M:OUTTMP") == 72.5
        error = denial(lambda: client.read("M:OUTTMP"))
        check(error, "RateLimitPolicy", ["M:OUTTMP"], "read", "Rate limit exceeded (1 per 60.0s)")


def test_a_setting_no_policy_approves_names_the_server_or_the_approving_policy() -> None:
    with client_of("grpc", []) as client:
        error = denial(lambda: client.write("Z:ACLTST", 1.0))
        check(
            error, SERVER_RULES, ["Z:ACLTST"], "set", "No policy explicitly allows write operations"
        )
    with client_of("grpc", [DeviceAccessPolicy(["Z:*"], mode="allow", action="set")]) as client:
        assert client.write("Z:ACLTST", 1.0).ok
        error = denial(lambda: client.write("M:OUTTMP", 1.0))
        check(
            error, "DeviceAccessPolicy", ["M:OUTTMP"], "set", "No write policy approves: M:OUTTMP"
        )


def test_a_denial_passes_through_a_proxy_in_front_of_the_proxy() -> None:
    inner_policies: list[Policy] = [DeviceAccessPolicy(["G:*"], mode="deny", action="read")]
    with (
        SupervisedServer(
            fake_backend(), port=0, host="127.0.0.1", policies=inner_policies
        ) as inner,
        GRPCBackend("127.0.0.1", inner.port) as middle,
        client_of("grpc", [], backend=middle) as client,
    ):
        error = denial(lambda: client.read("G:AMANDA"))
        check(error, "DeviceAccessPolicy", ["G:AMANDA"], "read", "Device G:AMANDA is denied")


def test_a_refusal_that_is_no_policys_stays_an_authentication_error(sim: SimServer) -> None:
    # the proxy's backend has no credentials to write with: PERMISSION_DENIED, but no policy
    approve: list[Policy] = [DeviceAccessPolicy(["Z:*"], mode="allow", action="set")]
    with DPMBackend(sim.host, sim.port) as dpm, client_of("grpc", approve, backend=dpm) as client:
        with pytest.raises(AuthenticationError, match="the proxy's backend refused") as caught:
            client.write("Z:ACLTST", 1.0)
        assert not isinstance(caught.value, PolicyDenied)
