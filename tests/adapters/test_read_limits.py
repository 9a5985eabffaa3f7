"""Two one-shot read contracts, on every backend: a read of ``@N`` is refused before any I/O,
and a read that times out says the timeout the caller set.

``@N`` never sends data, so each backend is pointed at a port nobody listens
on: a refusal that came after trying to connect would be a ReadError, not the
DRFError asked for. Timeouts come from a server that accepts the connection
and never answers (DPM, gRPC, ACL), or from a broker with no DMQ server
behind it.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from acnet_proto.drf import DRFError
from acnet_proto.errors import ReadError
from acnet_proto.testing import FakeBackend
from tests.support.clients import ADAPTERS, GRPC_ADAPTERS, READ_ADAPTERS, BlockingClient, Client
from tests.support.servers import free_port

pytestmark = pytest.mark.integration

SERVICE = "daeset/bd/localhost@FNAL.GOV"
TIMEOUT = 0.3


def _dmq(host: str, port: int, request: pytest.FixtureRequest) -> Client:
    pytest.importorskip("pika")
    pytest.importorskip("gssapi")
    from acnet_proto.adapters.dmq import DMQBackend
    from acnet_proto.adapters.kerberos import KerberosAuth

    request.getfixturevalue("kdc")
    return BlockingClient(DMQBackend(host, port, auth=KerberosAuth(), service=SERVICE))


def _open(kind: str, host: str, port: int, request: pytest.FixtureRequest) -> Client:
    if kind == "dmq":
        return _dmq(host, port, request)
    if kind == "fake":
        return BlockingClient(FakeBackend())
    return {**READ_ADAPTERS, **GRPC_ADAPTERS}[kind](host, port)


@contextlib.contextmanager
def opened(kind: str, host: str, port: int, request: pytest.FixtureRequest) -> Iterator[Client]:
    client = _open(kind, host, port, request)
    try:
        yield client
    finally:
        client.close()


@contextlib.contextmanager
def silent_server() -> Iterator[tuple[str, int]]:
    """A TCP server whose backlog accepts connections that nobody ever answers."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield "127.0.0.1", listener.getsockname()[1]


NEVER_KINDS = [*ADAPTERS, *GRPC_ADAPTERS, "acl", "dmq", "fake"]


@pytest.mark.parametrize("kind", NEVER_KINDS)
def test_reading_at_n_is_refused_before_any_io(kind: str, request: pytest.FixtureRequest) -> None:
    with opened(kind, "127.0.0.1", free_port(), request) as client:
        for read in (
            lambda: client.get_many(["M:OUTTMP", "Z:ACLTST@N"]),
            lambda: client.read("m:outtmp@n"),
        ):
            with pytest.raises(DRFError) as caught:
                read()
            message = str(caught.value)
            assert message.startswith("cannot read") and "@N never sends data" in message
            assert "@I" in message and "@p,1000" in message  # what to use instead


READS: dict[str, Callable[[Client], Any]] = {
    "get_many": lambda client: client.get_many(["M:OUTTMP", "Z:ACLTST"], timeout=TIMEOUT),
    "read": lambda client: client.read("M:OUTTMP", timeout=TIMEOUT),
}


def check_timed_out(error: ReadError, drfs: list[str]) -> None:
    """The message names the DRFs and the caller's timeout; so does each reading's."""
    within = f"within {TIMEOUT} s (timeout={TIMEOUT})"
    assert f"no reading of {', '.join(drfs)} {within}" in error.message
    assert f"0 of {len(drfs)} readings arrived" in error.message
    assert [r.status.name for r in error.readings] == ["ACNET_REQTMO"] * len(drfs)
    for reading in error.readings:
        assert reading.message == f"ACNET_REQTMO [1 -6]: no reading {within}"
    assert "6.5 min" not in str(error)


@pytest.mark.parametrize("call", list(READS))
@pytest.mark.parametrize("kind", [*ADAPTERS, *GRPC_ADAPTERS, "acl"])
def test_a_timed_out_read_says_the_timeout_that_was_set(
    kind: str, call: str, request: pytest.FixtureRequest
) -> None:
    with (
        silent_server() as (host, port),
        opened(kind, host, port, request) as client,
        pytest.raises(ReadError) as caught,
    ):
        READS[call](client)
    drfs = ["M:OUTTMP", "Z:ACLTST"] if call == "get_many" else ["M:OUTTMP"]
    check_timed_out(caught.value, drfs)


def test_a_timed_out_dmq_read_says_the_timeout_that_was_set(
    request: pytest.FixtureRequest,
) -> None:
    broker = request.getfixturevalue("rabbitmq")  # and no DMQ server consuming the jobs
    with (
        opened("dmq", broker.host, broker.port, request) as client,
        pytest.raises(ReadError) as caught,
    ):
        READS["get_many"](client)
    assert caught.value.message.startswith("DMQ read timed out")
    check_timed_out(caught.value, ["M:OUTTMP", "Z:ACLTST"])
