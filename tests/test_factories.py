"""acnet_proto.grpc() / dmq() / acl(): the seeds' factories, configured like dpm()."""

from __future__ import annotations

import pytest

import acnet_proto
from acnet_proto.api.config import resolve_endpoint
from acnet_proto.errors import ConfigurationError

pytest.importorskip("grpc")


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"ACNET_GRPC_HOST": "a", "PACSYS_GRPC_HOST": "b"}, ("a", 50051)),
        ({"PACSYS_GRPC_HOST": "b", "PACSYS_GRPC_PORT": "7"}, ("b", 7)),
        ({"ACNET_GRPC_HOST": "a", "ACNET_GRPC_PORT": " 9 ", "PACSYS_GRPC_PORT": "7"}, ("a", 9)),
    ],
)
def test_endpoint_precedence(environ: dict[str, str], expected: tuple[str, int]) -> None:
    assert resolve_endpoint("GRPC", None, None, 50051, "--grpc-port", environ) == expected
    assert resolve_endpoint("GRPC", "x", 1, 50051, "--grpc-port", environ) == ("x", 1)


@pytest.mark.parametrize(
    ("environ", "words"),
    [
        ({}, ("ACNET_DMQ_HOST", "acnet-proto sim --dmq-url")),
        ({"ACNET_DMQ_HOST": "h", "ACNET_DMQ_PORT": "many"}, ("ACNET_DMQ_PORT", "'many'")),
        ({"ACNET_DMQ_HOST": "h", "ACNET_DMQ_PORT": "70000"}, ("ACNET_DMQ_PORT",)),
    ],
)
def test_endpoint_errors_name_the_variable(environ: dict[str, str], words: tuple[str, ...]) -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_endpoint("DMQ", None, None, 5672, "--dmq-url amqp://...", environ)
    assert all(w in str(info.value) for w in words), str(info.value)


def test_grpc_factory_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from acnet_proto.adapters.sim.daq import DAQSimServer

    with DAQSimServer() as sim:
        monkeypatch.setenv("ACNET_GRPC_HOST", sim.host)
        monkeypatch.setenv("ACNET_GRPC_PORT", str(sim.port))
        with acnet_proto.grpc() as backend:
            assert isinstance(backend.read("M:OUTTMP"), float)


def test_dmq_factory_insists_on_kerberos(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pika")
    monkeypatch.setenv("ACNET_DMQ_HOST", "127.0.0.1")
    with pytest.raises(acnet_proto.AuthenticationError, match="KerberosAuth"):
        acnet_proto.dmq()
