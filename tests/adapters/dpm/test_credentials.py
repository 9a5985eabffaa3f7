"""Kerberos credentials that fail at any moment, on every DPM flavour, against the real KDC.

A ticket that is missing when a backend is made, destroyed (``kdestroy``)
after the backend authenticated and wrote, or expired on a long-running
backend: each raises :class:`AuthenticationError` saying to ``kinit``,
chained from gssapi's exception, never the gssapi exception itself; nothing
is set, and reads (which need no ticket) carry on. Each test has a private
credential cache, so the session's stays valid for the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from acnet_proto.errors import AuthenticationError
from tests.support.clients import ADAPTERS, Client
from tests.support.servers.kdc import KDC, assert_from_gssapi

pytest.importorskip("gssapi")

from acnet_proto.adapters.kerberos import KerberosAuth
from acnet_proto.adapters.sim.dpm import SimServer

pytestmark = pytest.mark.integration

OPERATOR = "operator@FNAL.GOV"
LIFETIME = "5s"  # long enough to make four clients and write once with each, on a loaded machine


@pytest.fixture(scope="module")
def sim(start_sim: Callable[..., SimServer], kdc: KDC) -> SimServer:
    return start_sim(keytab=kdc.keytab)


@pytest.fixture
def clients(sim: SimServer) -> Iterator[Callable[..., Client]]:
    """``open(flavour, auth)``: a client of that flavour on the simulator, closed after."""
    opened: list[Client] = []

    def open_client(flavour: str, auth: KerberosAuth) -> Client:
        client = ADAPTERS[flavour](sim.host, sim.port, auth=auth, role="testing")
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        client.close()


def refused(call: Callable[[], object], *words: str) -> None:
    """``call()`` raises AuthenticationError naming ``words``, chained from gssapi's error."""
    with pytest.raises(AuthenticationError) as caught:
        call()
    assert_from_gssapi(caught.value, *words)


def test_without_a_ticket_there_is_no_kerberos_auth(
    kdc: KDC, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'empty'}")
    refused(KerberosAuth, "no Kerberos ticket", "kinit")


@pytest.mark.parametrize("flavour", ADAPTERS)
def test_a_new_backend_whose_ticket_is_gone_fails_at_once(
    kdc: KDC, clients: Callable[..., Client], flavour: str
) -> None:
    ccache = kdc.kinit("operator")
    auth = KerberosAuth(ccache=ccache)
    kdc.kdestroy(ccache)
    refused(lambda: clients(flavour, auth), f"no Kerberos ticket for {OPERATOR}", "kinit operator")


@pytest.mark.parametrize("flavour", ADAPTERS)
def test_a_ticket_destroyed_after_a_write_fails_the_next_write(
    kdc: KDC, clients: Callable[..., Client], flavour: str
) -> None:
    ccache = kdc.kinit("operator")
    client = clients(flavour, KerberosAuth(ccache=ccache))
    backend = client.backend  # type: ignore[attr-defined]  # both faces keep it
    assert (backend.authenticated, backend.principal) == (True, OPERATOR)
    assert client.write("Z:ACLTST", 11.0).ok  # the connection is now authenticated
    kdc.kdestroy(ccache)
    error = f"no Kerberos ticket for {OPERATOR}", f"kinit {OPERATOR}"
    refused(lambda: client.write("Z:ACLTST", 12.0), *error)
    refused(lambda: backend.principal, *error)
    assert backend.authenticated  # it holds credentials still; they no longer work
    assert client.read("Z:ACLTST.SETTING") == 11.0  # nothing set, and reads need no ticket


def test_an_expired_ticket_fails_writes_on_long_running_backends(
    kdc: KDC, clients: Callable[..., Client]
) -> None:
    ccache = kdc.kinit("operator", lifetime=LIFETIME)
    auth = KerberosAuth(ccache=ccache)
    running = {flavour: clients(flavour, auth) for flavour in ADAPTERS}
    for client in running.values():
        assert client.write("Z:ACLTST", 21.0).ok
    kdc.wait_until_expired(ccache, within=20)
    for flavour, client in running.items():
        refused(lambda c=client: c.write("Z:ACLTST", 22.0), "has expired", f"kinit {OPERATOR}")
        assert client.read("Z:ACLTST.SETTING") == 21.0, flavour
    refused(lambda: clients("threaded", auth), "has expired")  # and a new backend
    refused(lambda: KerberosAuth(ccache=ccache), "has expired", "kinit")


def test_a_backend_without_credentials_says_so() -> None:
    from acnet_proto.adapters.dpm.threaded import DPMBackend

    backend = DPMBackend("localhost", 1)  # no connection until the first operation
    assert (backend.authenticated, backend.principal) == (False, None)
    backend.close()
