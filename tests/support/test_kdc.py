"""The KDC fixture is real: kinit, GSS-API handshakes, MICs and expiry all work."""

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers.kdc import KDC

gssapi = pytest.importorskip("gssapi")

pytestmark = pytest.mark.integration

DPM_SERVICE = "daeset/bd@FNAL.GOV"
DMQ_SERVICE = "daeset/bd/localhost@FNAL.GOV"
FLAGS = [
    gssapi.RequirementFlag.mutual_authentication,
    gssapi.RequirementFlag.integrity,
    gssapi.RequirementFlag.replay_detection,
    gssapi.RequirementFlag.out_of_sequence_detection,
]


def establish(kdc: KDC, ccache: Path, service: str = DPM_SERVICE) -> tuple[Any, Any]:
    """Run a full initiator/acceptor exchange in-process; returns (client, server)."""
    target = gssapi.Name(service, gssapi.NameType.kerberos_principal)
    client = gssapi.SecurityContext(
        name=target,
        creds=gssapi.Credentials(usage="initiate", store={"ccache": f"FILE:{ccache}"}),
        flags=FLAGS,
        usage="initiate",
    )
    server = gssapi.SecurityContext(
        creds=gssapi.Credentials(
            name=target, usage="accept", store={"keytab": f"FILE:{kdc.keytab}"}
        ),
        usage="accept",
    )
    token = None
    for _ in range(5):  # mutual auth takes two legs; bound it so a bug cannot spin
        token = client.step(token)
        if client.complete and not token:
            break
        token = server.step(token)
        if client.complete and server.complete:
            break
    assert client.complete and server.complete
    return client, server


def test_session_environment_points_at_kdc(kdc: KDC) -> None:
    assert os.environ["KRB5_CONFIG"] == str(kdc.krb5_conf)
    assert os.environ["KRB5CCNAME"] == f"FILE:{kdc.ccache}"
    # Default credentials come from the session ccache the fixture filled.
    assert str(gssapi.Credentials(usage="initiate").name) == "operator@FNAL.GOV"


@pytest.mark.parametrize(("limit", "transport"), [("1", "stream"), ("65535", "dgram")])
def test_kinit_over_tcp_and_udp(kdc: KDC, tmp_path: Path, limit: str, transport: str) -> None:
    conf = tmp_path / "krb5.conf"
    conf.write_text(
        kdc.krb5_conf.read_text().replace(
            "udp_preference_limit = 1", f"udp_preference_limit = {limit}"
        )
    )
    res = subprocess.run(
        ["kinit", "-c", f"FILE:{tmp_path / 'cc'}", "operator"],
        input=kdc.passwords["operator"] + "\n",
        env={**kdc.env, "KRB5_CONFIG": str(conf), "KRB5_TRACE": "/dev/stderr"},
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    # libkrb5's trace names the transport that carried the reply.
    assert "Received answer (" in res.stderr
    assert f"from {transport} 127.0.0.1:{kdc.port}" in res.stderr


def test_kinit_private_ccache(kdc: KDC) -> None:
    ccache = kdc.kinit("operator")
    assert ccache != kdc.ccache
    res = kdc.run("klist", "-c", f"FILE:{ccache}")
    assert res.returncode == 0
    assert "operator@FNAL.GOV" in res.stdout
    assert "krbtgt/FNAL.GOV@FNAL.GOV" in res.stdout


def test_kinit_wrong_password_fails(kdc: KDC, tmp_path: Path) -> None:
    res = kdc.run("kinit", "-c", f"FILE:{tmp_path / 'cc'}", "operator", input="wrong\n")
    assert res.returncode != 0


@pytest.mark.parametrize("service", [DPM_SERVICE, DMQ_SERVICE])
def test_handshake_mutual_auth_and_flags(kdc: KDC, service: str) -> None:
    client, server = establish(kdc, kdc.kinit("operator"), service)
    for flag in FLAGS:
        assert flag in client.actual_flags, flag
        assert flag in server.actual_flags, flag
    assert str(server.initiator_name) == "operator@FNAL.GOV"
    assert str(client.target_name) == service


def test_mic_verifies_and_tampering_fails(kdc: KDC) -> None:
    client, server = establish(kdc, kdc.kinit("operator"))
    message = b"M:OUTTMP=72.5"
    mic = client.get_signature(message)
    server.verify_signature(message, mic)
    with pytest.raises(gssapi.exceptions.GSSError):
        server.verify_signature(b"M:OUTTMP=99.9", client.get_signature(message))


def test_expired_ticket_fails_to_initiate(kdc: KDC) -> None:
    ccache = kdc.expired_ccache("operator")
    with pytest.raises(gssapi.exceptions.GSSError):
        establish(kdc, ccache)


def test_outsider_can_authenticate(kdc: KDC) -> None:
    _, server = establish(kdc, kdc.kinit("outsider"))
    assert str(server.initiator_name) == "outsider@FNAL.GOV"
