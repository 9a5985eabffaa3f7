"""One behavioural suite over every backend of the seeds' comparison table.

DPM/TCP (threaded, asyncio, trio), DPM/gRPC (sync, asyncio, trio), DMQ and
ACL each talk to their own simulated service, all answering from the same
kind of device model, so the same calls must give the same Readings. A test
runs on a backend only where the table (docs/backends.md) says it supports
the feature: ACL has no streaming and no settings.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from acnet_proto.errors import ReadError
from acnet_proto.sim import SettingsPolicy
from acnet_proto.types import ValueType
from tests.adapters._watch import free_port
from tests.support.clients import ADAPTERS, GRPC_ADAPTERS, BlockingClient, Client

POLICY = SettingsPolicy.from_toml('default_roles = ["testing"]\n[roles.testing]\nallow = ["Z:*"]\n')
JWT_KEY = "parity-suite-signing-key-of-32-bytes-or-more"

BACKENDS = ["dpm-threaded", "dpm-asyncio", "dpm-trio", "grpc", "grpc-asyncio", "grpc-trio",
            "dmq", "acl"]  # fmt: skip
STREAMING = [b for b in BACKENDS if b != "acl"]
SETTING = [b for b in BACKENDS if b != "acl"]


def _token() -> Any:
    jwt = pytest.importorskip("jwt")
    from acnet_proto.api.auth import JWTAuth

    claims = {"sub": "operator@FNAL.GOV", "exp": int(time.time()) + 600,
              "realm_access": {"roles": ["testing"]}}  # fmt: skip
    return JWTAuth(jwt.encode(claims, JWT_KEY, algorithm="HS256"))


@contextlib.contextmanager
def _dpm(kind: str, request: pytest.FixtureRequest) -> Iterator[Client]:
    pytest.importorskip("gssapi")
    from acnet_proto.adapters.kerberos import KerberosAuth
    from acnet_proto.adapters.sim.dpm import SimServer

    kdc = request.getfixturevalue("kdc")
    with SimServer.in_thread(keytab=kdc.keytab, policy=POLICY) as sim:
        client = ADAPTERS[kind](sim.host, sim.port, auth=KerberosAuth(), role="testing")
        try:
            yield client
        finally:
            client.close()


@contextlib.contextmanager
def _grpc(kind: str, request: pytest.FixtureRequest) -> Iterator[Client]:
    pytest.importorskip("grpc")
    from acnet_proto.adapters.sim.daq import DAQSimServer

    with DAQSimServer(jwt_key=JWT_KEY, policy=POLICY) as sim:
        client = GRPC_ADAPTERS[kind](sim.host, sim.port, auth=_token())
        try:
            yield client
        finally:
            client.close()


@contextlib.contextmanager
def _dmq(request: pytest.FixtureRequest) -> Iterator[Client]:
    pytest.importorskip("pika")
    pytest.importorskip("gssapi")
    from acnet_proto.adapters.dmq import DMQBackend
    from acnet_proto.adapters.kerberos import KerberosAuth
    from acnet_proto.adapters.sim.dmq import DMQSimServer

    broker = request.getfixturevalue("rabbitmq")
    kdc = request.getfixturevalue("kdc")
    with DMQSimServer(broker.url, keytab=kdc.keytab, policy=POLICY):
        backend = DMQBackend(
            broker.host, broker.port, KerberosAuth(), service="daeset/bd/localhost@FNAL.GOV"
        )
        client = BlockingClient(backend)
        try:
            yield client
        finally:
            client.close()


@contextlib.contextmanager
def _acl(request: pytest.FixtureRequest) -> Iterator[Client]:
    from acnet_proto.adapters.acl import ACLBackend
    from acnet_proto.adapters.sim.acl import ACLSimServer

    with ACLSimServer() as sim:
        client = BlockingClient(ACLBackend(sim.base_url))
        try:
            yield client
        finally:
            client.close()


def _open(name: str, request: pytest.FixtureRequest) -> contextlib.AbstractContextManager[Client]:
    openers: dict[str, Callable[[], contextlib.AbstractContextManager[Client]]] = {
        "dmq": lambda: _dmq(request),
        "acl": lambda: _acl(request),
    }
    if name.startswith("dpm-"):
        return _dpm(name.removeprefix("dpm-"), request)
    if name.startswith("grpc"):
        return _grpc(name, request)
    return openers[name]()


@pytest.fixture
def client(request: pytest.FixtureRequest) -> Iterator[Client]:
    with _open(request.param, request) as opened:
        yield opened


def _near_outtmp(value: Any) -> bool:
    # the model's M:OUTTMP: 41.7 with a small slow wave
    return isinstance(value, float) and abs(value - 41.7) <= 0.5


@pytest.mark.integration
@pytest.mark.parametrize("client", BACKENDS, indirect=True)
def test_read_and_get_many_give_the_same_readings(client: Client) -> None:
    assert _near_outtmp(client.read("M:OUTTMP", timeout=5))
    drfs = ["M:OUTTMP", "Z:ACLTS1[0:3]", "Z:STRINGTEST", "Z:NOTFND"]
    outtmp, array, text, missing = client.get_many(drfs, timeout=5)
    assert [r.drf for r in (outtmp, array, text, missing)] == drfs
    assert outtmp.value_type is ValueType.SCALAR and _near_outtmp(outtmp.value)
    assert isinstance(array.value, np.ndarray) and array.value.shape == (4,)
    assert array.value.dtype == np.float64 and not array.value.flags.writeable
    assert (text.value_type, text.value) == (ValueType.TEXT, "hello")
    # DPM_PEND (a warning) over DPM, gRPC and DMQ, DBM_NOREC over ACL: not ok either way
    assert not missing.ok and missing.value is None and missing.message


@pytest.mark.integration
@pytest.mark.parametrize("client", BACKENDS, indirect=True)
def test_read_many_fails_with_every_reading(client: Client) -> None:
    with pytest.raises(ReadError) as info:
        client.read_many(["M:OUTTMP", "Z:NOTFND"], timeout=5)
    assert [r.ok for r in info.value.readings] == [True, False]


@pytest.mark.integration
@pytest.mark.parametrize("client", STREAMING, indirect=True)
def test_subscribe_streams(client: Client) -> None:
    readings = client.stream(["M:OUTTMP@p,100"], 3, timeout=10)
    assert len(readings) == 3 and all(_near_outtmp(r.value) for r in readings)
    stamps = [r.timestamp for r in readings]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3


@pytest.mark.integration
@pytest.mark.parametrize("client", SETTING, indirect=True)
def test_settings_apply_and_refuse_alike(client: Client) -> None:
    assert client.write("Z:ACLTST", 47.25, timeout=10).ok
    assert client.read("Z:ACLTST.SETTING", timeout=5) == pytest.approx(47.25)
    results = client.write_many([("Z:ACLTST", 46.5), ("G:AMANDA", 2.0)], timeout=10)
    assert [r.drf for r in results] == ["Z:ACLTST", "G:AMANDA"]
    assert results[0].ok and not results[1].ok and results[1].error_code < 0
    assert client.read("G:AMANDA.SETTING", timeout=5) == pytest.approx(1.0)


# --- subscribing to a server that cannot be reached: one contract for every backend ---------


def _unreachable(name: str, request: pytest.FixtureRequest) -> Client:
    """A client of backend ``name`` aimed at a port where nothing listens."""
    port = free_port()
    if name.startswith("dpm-"):
        return ADAPTERS[name.removeprefix("dpm-")]("127.0.0.1", port, timeout=2)
    if name.startswith("grpc"):
        pytest.importorskip("grpc")
        return GRPC_ADAPTERS[name]("127.0.0.1", port)
    pytest.importorskip("pika")
    pytest.importorskip("gssapi")
    from acnet_proto.adapters.dmq import DMQBackend
    from acnet_proto.adapters.kerberos import KerberosAuth

    request.getfixturevalue("kdc")  # a ticket: Kerberos works, the broker is what is missing
    auth = KerberosAuth()
    return BlockingClient(DMQBackend("127.0.0.1", port, auth, service=_SERVICE, timeout=2))


_SERVICE = "daeset/bd/localhost@FNAL.GOV"


@pytest.mark.integration
@pytest.mark.parametrize("name", STREAMING)
def test_an_unreachable_server_is_the_streams_first_outage(
    name: str, request: pytest.FixtureRequest
) -> None:
    # subscribe() returns a handle; the stream says at once that it has no connection (an
    # open Gap), tries as its policy says, then ends with ConnectionLost: never a builtin
    # or library error, from subscribe() or from readings()
    from acnet_proto.errors import ConnectionLost
    from acnet_proto.streams.reconnect import Gap, Reconnect

    policy = Reconnect(max_retries=1, initial_backoff=0.05, jitter=0.0)
    client = _unreachable(name, request)
    try:
        [opened] = client.stream(["M:OUTTMP@p,100"], 1, timeout=10, reconnect=policy)
        assert isinstance(opened, Gap) and opened.open and opened.cause
        with pytest.raises(ConnectionLost, match="gave up after 1 reconnection") as retried:
            client.stream(["M:OUTTMP@p,100"], 10, timeout=10, reconnect=policy)
        with pytest.raises(ConnectionLost, match=r"M:OUTTMP@p,100 is lost") as at_once:
            client.stream(["M:OUTTMP@p,100"], 10, timeout=10, reconnect=False)
    finally:
        client.close()
    assert retried.value.__cause__ is not None  # the transport failure, chained
    assert "reconnection" not in str(at_once.value)
