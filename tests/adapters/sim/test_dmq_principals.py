"""The simulated DMQ accepts a ticket for any service principal its keytab holds, and no other.

Real tickets from the session KDC, whose keytab holds ``daeset/bd``,
``daeset/bd/localhost`` (our client's DMQ name) and ``daeset/bd/dmq.fnal.gov``
(pacsys's); :meth:`KDC.keytab_with` makes keytabs holding fewer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from acnet_proto.errors import AuthenticationError
from tests.support.servers.kdc import KDC
from tests.support.servers.rabbitmq import RabbitMQ

pytest.importorskip("pika")
pytest.importorskip("gssapi")
from acnet_proto.adapters.dmq import DMQBackend
from acnet_proto.adapters.kerberos import KerberosAcceptor, KerberosAuth
from acnet_proto.adapters.sim.dmq import DMQSimServer

pytestmark = pytest.mark.integration

OURS = "daeset/bd/localhost@FNAL.GOV"
LABS = "daeset/bd/dmq.fnal.gov@FNAL.GOV"  # what pacsys asks for, whatever host it reaches
T = 5.0  # generous per-call timeout: a failure must fail, never hang


def accept(acceptor: KerberosAcceptor, service: str) -> str | None:
    """Have ``acceptor`` take the session ticket holder's first token for ``service``."""
    context = KerberosAuth().context(service, mutual=False)
    acceptor.step(context.step(None) or b"")
    return acceptor.initiator


@pytest.mark.parametrize("service", ["daeset/bd@FNAL.GOV", OURS, LABS])
def test_an_acceptor_with_no_name_takes_any_principal_in_its_keytab(kdc: KDC, service: str) -> None:
    assert service in kdc.services.values()
    assert accept(KerberosAcceptor(None, kdc.keytab), service) == "operator@FNAL.GOV"


def test_a_principal_missing_from_the_keytab_is_refused_naming_it(kdc: KDC) -> None:
    only_ours = kdc.keytab_with("daeset/bd/localhost")
    assert accept(KerberosAcceptor(None, only_ours), OURS) == "operator@FNAL.GOV"
    with pytest.raises(AuthenticationError, match="refused") as caught:
        accept(KerberosAcceptor(None, only_ours), LABS)
    assert "daeset/bd/dmq.fnal.gov" in str(caught.value)  # libkrb5 names what it lacked


def test_an_acceptor_with_a_name_takes_that_principal_only(kdc: KDC) -> None:
    assert accept(KerberosAcceptor(OURS, kdc.keytab), OURS) == "operator@FNAL.GOV"
    with pytest.raises(AuthenticationError, match="refused"):
        accept(KerberosAcceptor(OURS, kdc.keytab), LABS)  # in the keytab, but not the name


def test_a_keytab_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no.keytab"
    with pytest.raises(AuthenticationError) as caught:
        accept(KerberosAcceptor(None, missing), OURS)
    assert f"cannot accept Kerberos tickets with {missing}" in str(caught.value)
    assert "holds the service principals" in str(caught.value)


# ---------------------------------------------------------------- through the sim


@pytest.fixture
def start_sim(rabbitmq: RabbitMQ, kdc: KDC) -> Iterator[Callable[..., DMQSimServer]]:
    """Starts simulated DMQs on the session broker, stopped after the test (one at a time:
    two on one broker would both answer every INIT)."""
    started: list[DMQSimServer] = []

    def start(**options: Any) -> DMQSimServer:
        started.append(DMQSimServer(rabbitmq.url, **options).start())
        return started[-1]

    yield start
    for sim in started:
        sim.stop()


def backend(rabbitmq: RabbitMQ, service: str) -> DMQBackend:
    return DMQBackend(rabbitmq.host, rabbitmq.port, auth=KerberosAuth(), service=service, timeout=T)


def test_a_keytab_holding_both_names_lets_both_clients_in(
    start_sim: Callable[..., DMQSimServer], rabbitmq: RabbitMQ, kdc: KDC
) -> None:
    sim = start_sim(keytab=kdc.keytab_with("daeset/bd/localhost", "daeset/bd/dmq.fnal.gov"))
    assert sim.service_name is None
    for service in (OURS, LABS):
        with backend(rabbitmq, service) as client:
            assert isinstance(client.read("M:OUTTMP"), float)
            assert client.write("Z:ACLTST", 47.0).ok
    assert sim.refusals() == []


def test_a_ticket_for_a_principal_not_in_the_keytab_is_a_security_violation_and_logged(
    start_sim: Callable[..., DMQSimServer],
    rabbitmq: RabbitMQ,
    kdc: KDC,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="acnet_proto.adapters.sim.dmq")
    sim = start_sim(keytab=kdc.keytab_with("daeset/bd/localhost"))
    with backend(rabbitmq, LABS) as client, pytest.raises(AuthenticationError) as caught:
        client.get("M:OUTTMP")
    assert "DMQ_SECURITY_VIOLATION" in str(caught.value)
    [line] = [r.getMessage() for r in caplog.records if "gss-token refused" in r.getMessage()]
    assert "DMQ_SECURITY_VIOLATION -99" in line and "daeset/bd/dmq.fnal.gov" in line
    with backend(rabbitmq, OURS) as client:
        assert client.get("M:OUTTMP").ok  # the keytab's own principal still gets in
    assert len(sim.refusals()) == 1
