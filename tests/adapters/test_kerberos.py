"""The settings flow with real Kerberos: KerberosAuth against KerberosAcceptor and a real KDC.

Both engines run in memory (client and server DPMConnection); the tickets,
contexts and MICs are real, from the session's MIT KDC.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from acnet_proto.engine._state import Role
from acnet_proto.engine.client import ClientConnection
from acnet_proto.engine.connection import DPMConnection
from acnet_proto.engine.events import NEED_DATA
from acnet_proto.engine.framing import frame
from acnet_proto.errors import AuthenticationError
from acnet_proto.pc import dpm
from acnet_proto.plans.settings import AuthFlow
from acnet_proto.sim import SettingsPolicy
from acnet_proto.sim.policy import DPM_DBPRIV, DPM_PRIV
from acnet_proto.sim.settings import ServerSettings
from tests.support.servers.kdc import KDC, assert_from_gssapi

pytest.importorskip("gssapi")
from gssapi.raw.misc import GSSError

from acnet_proto.adapters.kerberos import KerberosAcceptor, KerberosAuth, credential_error

pytestmark = pytest.mark.integration

SERVICE = "daeset/bd"


class Server:
    """A server engine answering settings requests through ServerSettings."""

    def __init__(self, kdc: KDC, policy: SettingsPolicy | None = None) -> None:
        self.conn = DPMConnection(Role.SERVER)
        self.settings = ServerSettings(
            SERVICE,
            lambda: KerberosAcceptor(f"{SERVICE}@FNAL.GOV", kdc.keytab),
            policy or SettingsPolicy.default(),
        )
        self.seen: list[object] = []

    def answer(self, data: bytes) -> bytes:
        self.conn.receive_data(data)
        out = b""
        while (event := self.conn.next_event()) is not NEED_DATA:
            self.seen.append(event)
            if isinstance(event, dpm.AuthenticateRequest):
                out += self.conn.send(*self.settings.on_authenticate(event))
            elif isinstance(event, dpm.EnableSettingsRequest):
                out += self.conn.send(*self.settings.on_enable(event))
            elif event.__class__.__name__ == "Handshake":
                out += self.conn.send(dpm.OpenListReply(list_id=9))
        return out


def authenticate(server: Server, auth: KerberosAuth) -> AuthFlow:
    client = ClientConnection()
    client.receive(server.answer(client.start()))
    flow = AuthFlow(auth.context)
    data = client.begin(flow)
    for _ in range(6):  # bounded: a bug must fail, not spin
        client.receive(server.answer(data))
        data = client.data_to_send()
        if flow.done or not data:
            break
    return flow


def test_full_flow_enables_settings_for_the_ticket_holder(kdc: KDC) -> None:
    server = Server(kdc)
    flow = authenticate(server, KerberosAuth())
    assert flow.done
    assert server.settings.enabled and server.settings.principal == "operator@FNAL.GOV"
    assert flow.context is not None and flow.context.complete


def test_named_principal_from_a_private_cache(kdc: KDC) -> None:
    ccache = kdc.kinit("outsider")
    auth = KerberosAuth(ccache=ccache)
    assert auth.principal == "outsider@FNAL.GOV" and "outsider" in repr(auth)
    server = Server(kdc)
    assert authenticate(server, auth).done
    assert server.settings.principal == "outsider@FNAL.GOV"


def test_no_ticket_says_to_run_kinit(kdc: KDC, tmp_path: Path) -> None:
    with pytest.raises(AuthenticationError, match="kinit"):
        KerberosAuth(ccache=tmp_path / "empty-cache")


def test_expired_ticket_is_refused_at_construction(kdc: KDC) -> None:
    with pytest.raises(AuthenticationError) as caught:
        KerberosAuth(ccache=kdc.expired_ccache("operator"))
    assert_from_gssapi(caught.value, "has expired", "kinit")


# ------------------------------------------------------- every gssapi failure, typed


# GSS major codes: what libkrb5 answers for each kind of credential failure
EXPIRED, NO_CRED, DEFECTIVE, BAD_NAME, FAILURE = 0xB0000, 0x70000, 0xA0000, 0x20000, 0xD0000


@pytest.mark.parametrize(
    ("major", "words"),
    [
        (EXPIRED, ("ticket for operator@FNAL.GOV has expired", "kinit operator@FNAL.GOV")),
        (NO_CRED, ("no Kerberos ticket for operator@FNAL.GOV", "kinit operator@FNAL.GOV")),
        (DEFECTIVE, ("ticket for operator@FNAL.GOV is gone", "destroyed", "kinit operator")),
        (BAD_NAME, ("'daeset/bd@FNAL.GOV' is not a valid Kerberos principal",)),
        (FAILURE, ("Kerberos refused a context for daeset/bd@FNAL.GOV", "kinit operator")),
    ],
)
def test_each_gssapi_failure_says_what_happened_and_what_to_do(
    major: int, words: tuple[str, ...]
) -> None:
    error = credential_error(GSSError(major, 0), "operator@FNAL.GOV", "daeset/bd@FNAL.GOV")
    assert isinstance(error, AuthenticationError)
    assert all(w in str(error) for w in words), str(error)
    assert "Kerberos: " in str(error)  # libkrb5's own reason, quoted


def test_an_unknown_principal_without_a_name_says_plain_kinit() -> None:
    assert "run `kinit` to get one" in str(credential_error(GSSError(NO_CRED, 0)))


def test_a_destroyed_ticket_fails_principal_and_context_typed(kdc: KDC) -> None:
    ccache = kdc.kinit("operator")
    auth = KerberosAuth(ccache=ccache)
    assert auth.principal == "operator@FNAL.GOV"
    kdc.kdestroy(ccache)
    for call in (lambda: auth.principal, lambda: auth.context(f"{SERVICE}@FNAL.GOV"), auth.check):
        with pytest.raises(AuthenticationError) as caught:
            call()
        assert_from_gssapi(caught.value, "no Kerberos ticket for operator@FNAL.GOV", "kinit")
    assert repr(auth) == "KerberosAuth(principal='operator@FNAL.GOV')"  # a repr never raises


def test_a_context_started_before_the_cache_went_fails_its_step_typed(kdc: KDC) -> None:
    ccache = kdc.kinit("operator")
    context = KerberosAuth(ccache=ccache).context(f"{SERVICE}@FNAL.GOV")
    ccache.unlink()  # the file gone from under gssapi's credentials handle
    with pytest.raises(AuthenticationError) as caught:
        context.step(None)
    assert_from_gssapi(caught.value, "operator@FNAL.GOV is gone", "kinit operator@FNAL.GOV")


def test_a_service_the_kdc_does_not_know_is_named(kdc: KDC) -> None:
    context = KerberosAuth().context("nosuch/service@FNAL.GOV")
    with pytest.raises(AuthenticationError) as caught:
        context.step(None)
    assert_from_gssapi(caught.value, "does not know nosuch/service@FNAL.GOV", "krb5.conf")


def test_a_principal_missing_from_the_cache_is_named(kdc: KDC) -> None:
    with pytest.raises(AuthenticationError) as caught:
        KerberosAuth(name="outsider@FNAL.GOV")  # the session cache holds operator only
    assert_from_gssapi(caught.value, "no Kerberos ticket for outsider@FNAL.GOV", "kinit outsider")


def test_a_malformed_principal_name_is_named(kdc: KDC) -> None:
    with pytest.raises(AuthenticationError) as caught:
        KerberosAuth(name="a@@b@")
    assert_from_gssapi(caught.value, "'a@@b@' is not a valid Kerberos principal")


def test_tampered_mic_is_refused(kdc: KDC) -> None:
    server = Server(kdc)
    client = ClientConnection()
    client.receive(server.answer(client.start()))
    flow = AuthFlow(KerberosAuth().context)
    data = client.begin(flow)
    with pytest.raises(AuthenticationError, match="DPM_PRIV"):
        for _ in range(6):
            request = dpm.decode_request(data[4:])
            if isinstance(request, dpm.EnableSettingsRequest):
                data = frame(dpm.encode(request.replace(message=b"forged")))
            client.receive(server.answer(data))
            data = client.data_to_send()
    assert not server.settings.enabled
    assert "MIC" in (server.settings.refusal or "")


def test_replayed_authenticate_token_is_refused(kdc: KDC) -> None:
    server = Server(kdc)
    client = ClientConnection()
    client.receive(server.answer(client.start()))
    flow = AuthFlow(KerberosAuth().context)
    client.receive(server.answer(client.begin(flow)))  # the service name comes back
    token_frame = client.data_to_send()
    token = dpm.decode_request(token_frame[4:]).token
    client.receive(server.answer(token_frame))  # accepted once
    # an eavesdropper replays the same token to a fresh connection
    other = Server(kdc)
    other.settings.on_authenticate(dpm.AuthenticateRequest(list_id=9, token=b""))
    refused = other.settings.on_authenticate(dpm.AuthenticateRequest(list_id=9, token=token))
    assert isinstance(refused[0], dpm.StatusReply) and refused[0].status == DPM_PRIV.status
    assert "refused" in (other.settings.refusal or "")
    assert not other.settings.enabled


POLICY = """
default_roles = ["testing"]

[roles.testing]
allow = ["Z:*"]

[roles.operations]
allow = ["*"]
deny = ["G:*"]

[principals."operator@FNAL.GOV"]
roles = ["operations"]
console_class = 0x10
"""


@pytest.mark.parametrize(
    ("principal", "role", "device", "mask", "verdict"),
    [
        ("outsider@FNAL.GOV", "testing", "Z:ACLTST", 0, None),
        ("outsider@FNAL.GOV", "testing", "M:OUTTMP", 0, DPM_PRIV),
        ("outsider@FNAL.GOV", "operations", "M:OUTTMP", 0, DPM_PRIV),  # role not held
        ("operator@FNAL.GOV", "operations", "M:OUTTMP", 0, None),
        ("operator@FNAL.GOV", "operations", "G:AMANDA", 0x01, DPM_DBPRIV),  # denied, class fails
        ("operator@FNAL.GOV", "operations", "G:AMANDA", 0x10, None),  # class matches
        ("operator@FNAL.GOV", None, "M:OUTTMP", 0, DPM_PRIV),  # no role claimed
    ],
)
def test_policy_decisions(
    principal: str, role: str | None, device: str, mask: int, verdict: object
) -> None:
    assert SettingsPolicy.from_toml(POLICY).authorize(principal, role, device, mask) == verdict


def test_authorize_refuses_refs_not_on_the_list_and_unauthenticated(kdc: KDC) -> None:
    server = Server(kdc)
    entries = {0: "#ROLE:testing", 1: "Z:ACLTST.SETTING@N", 2: "M:OUTTMP.SETTING@N"}
    assert set(server.settings.authorize(entries, [1], lambda d: 0).values()) == {DPM_PRIV}
    assert authenticate(server, KerberosAuth()).done
    verdicts = server.settings.authorize(entries, [1, 2, 7], lambda d: 0)
    assert verdicts == {1: None, 2: DPM_PRIV, 7: DPM_PRIV}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("default_roles = ['ghost']", "undefined role"),
        ("[roles.x]\nallow = 'Z:*'", "list of strings"),
        ("roles = 3", "must be a table"),
        ("[principals.a]\nconsole_class = -1", "console_class"),
        ("not toml [", "not valid TOML"),
    ],
)
def test_bad_policy_files_name_the_problem(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        SettingsPolicy.from_toml(text)
