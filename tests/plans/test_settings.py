"""The pure settings flow: auth steps, setting structs, write batches, JWTAuth."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from acnet_proto.api.auth import JWTAuth
from acnet_proto.drf import DRFError
from acnet_proto.engine._state import Role
from acnet_proto.engine.client import ClientConnection
from acnet_proto.engine.connection import DPMConnection
from acnet_proto.engine.events import NEED_DATA
from acnet_proto.engine.transcript import load, messages_of
from acnet_proto.errors import AuthenticationError, LocalProtocolError
from acnet_proto.pc import dpm
from acnet_proto.plans.settings import AuthFlow, WriteBatch, service_principal, setting_for
from acnet_proto.status import Status
from tests.support.vectors import SHARED

WRITE = load(SHARED / "transcripts" / "write-kerberos.jsonl")
OK = 0
DPM_PRIV = Status.from_name("DPM_PRIV").status
NO_SUCH = Status.from_name("DPM_NO_SUCH_DEVICE").status


class RecordedContext:
    """A GSS context that plays the transcript's (placeholder) tokens and MIC."""

    def __init__(self, principal: str) -> None:
        messages = [m for _, ms in messages_of(WRITE) for m in ms]
        requests = [m for m in messages if isinstance(m, dpm.AuthenticateRequest) and m.token]
        self.first_token = requests[0].token
        self.mic = next(m.mic for m in messages if isinstance(m, dpm.EnableSettingsRequest))
        self.principal = principal
        self.complete = False
        self.initiator = "operator@FNAL.GOV"

    def step(self, token: bytes | None) -> bytes | None:
        if token is None:
            return self.first_token
        self.complete = True
        return None

    def get_mic(self, message: bytes) -> bytes:
        return self.mic


def _server_lines() -> list[bytes]:
    return [line.data for line in WRITE if line.direction == "s2c"]


def _client_lines() -> list[bytes]:
    return [line.data for line in WRITE if line.direction == "c2s"]


def test_write_transcript_is_reproduced_byte_for_byte() -> None:
    """AuthFlow then WriteBatch send exactly what the recorded client sent."""
    server, client_lines = iter(_server_lines()), _client_lines()
    contexts: list[RecordedContext] = []

    def make_context(principal: str) -> RecordedContext:
        contexts.append(RecordedContext(principal))
        return contexts[-1]

    client = ClientConnection()
    sent = [client.start()]
    client.receive(next(server))
    auth = AuthFlow(make_context)
    sent.append(client.begin(auth))
    while not auth.done:
        client.receive(next(server))
        if out := client.data_to_send():
            sent.append(out)
    assert contexts[0].principal == "daeset/bd/dpm01.example@FNAL.GOV"
    client.end()
    batch = WriteBatch([("Z:ACLTST", 45.0)], role="testing", user_name="operator@FNAL.GOV")
    sent.append(client.begin(batch))
    while not batch.done:
        client.receive(next(server))
        if out := client.data_to_send():
            sent.append(out)
    assert sent == client_lines
    (result,) = batch.write_results()
    assert result.drf == "Z:ACLTST" and result.ok and result.message is None


@pytest.mark.parametrize(
    ("announced", "principal"),
    [
        ("daeset/bd@dpm01.example", "daeset/bd/dpm01.example@FNAL.GOV"),
        ("daeset/bd", "daeset/bd@FNAL.GOV"),
        ("daeset\\/bd@host", "daeset/bd/host@FNAL.GOV"),
    ],
)
def test_service_principal_mapping(announced: str, principal: str) -> None:
    assert service_principal(announced) == principal


@pytest.mark.parametrize("announced", [None, "", "   "])
def test_service_principal_refuses_nothing(announced: object) -> None:
    with pytest.raises(AuthenticationError, match="service name"):
        service_principal(announced)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "kind", "data"),
    [
        (45.0, "scaled", [45.0]),
        (3, "scaled", [3.0]),
        (True, "scaled", [1.0]),
        ([1, 2.5], "scaled", [1.0, 2.5]),
        ((1.0,), "scaled", [1.0]),
        (np.array([1.0, 2.0]), "scaled", [1.0, 2.0]),
        ("hello", "text", ["hello"]),
        (["a", "b"], "text", ["a", "b"]),
        (b"\x34\x43\x00\x00", "raw", b"\x34\x43\x00\x00"),
        (bytearray(b"\x01"), "raw", b"\x01"),
    ],
)
def test_setting_for_value_kinds(value: object, kind: str, data: object) -> None:
    got_kind, struct = setting_for("Z:ACLTST", 7, value)
    assert got_kind == kind and struct.ref_id == 7
    assert list(struct.data) == list(data) if kind != "raw" else struct.data == data


@pytest.mark.parametrize(
    ("value", "error", "words"),
    [
        (None, TypeError, "NoneType"),
        (object(), TypeError, "expected a number"),
        ({"minimum": 1}, TypeError, "dict"),
        ([], ValueError, "empty"),
        ([1, "a"], TypeError, "str"),
        (float("nan"), ValueError, "finite"),
        (float("inf"), ValueError, "finite"),
        (np.zeros((2, 2)), TypeError, "2-D"),
    ],
)
def test_setting_for_bad_values_name_the_device(value: object, error: type, words: str) -> None:
    with pytest.raises(error, match=words) as info:
        setting_for("Z:ACLTST", 1, value)
    assert "Z:ACLTST" in str(info.value)


@pytest.mark.parametrize(
    "settings",
    ["Z:ACLTST", {"Z:ACLTST": 1.0}, 5, [("Z:ACLTST",)], ["Z:ACLTST"]],
)
def test_write_batch_rejects_malformed_settings(settings: object) -> None:
    with pytest.raises(TypeError, match="drf, value"):
        WriteBatch(settings, role="testing", user_name="u")  # type: ignore[arg-type]


def test_write_batch_rejects_empty_and_bad_drf_before_sending() -> None:
    with pytest.raises(ValueError, match="empty"):
        WriteBatch([], role="testing", user_name="u")
    with pytest.raises(DRFError):
        WriteBatch([("Z:ACLTST.BOGUS", 1.0)], role="testing", user_name="u")
    with pytest.raises(DRFError, match="read-only"):
        WriteBatch([("Z~ACLTST", 1.0)], role="testing", user_name="u")


def _enabled_pair() -> tuple[DPMConnection, ClientConnection]:
    """A server engine and a client whose list has settings enabled."""
    server = DPMConnection(Role.SERVER)
    client = ClientConnection()
    server.receive_data(client.start())
    assert server.next_event() is not NEED_DATA
    client.receive(server.send(dpm.OpenListReply(list_id=5)))
    auth = AuthFlow(RecordedContext)
    server.receive_data(client.begin(auth))
    server.next_event()
    client.receive(server.send(dpm.AuthenticateReply(service_name="daeset/bd")))
    server.receive_data(client.data_to_send())
    server.next_event()
    client.receive(server.send(dpm.AuthenticateReply(token=b"ok")))
    server.receive_data(client.data_to_send())
    server.next_event()
    client.receive(server.send(dpm.StatusReply(ref_id=0, timestamp=0, cycle=0, status=0)))
    assert auth.done
    client.end()
    return server, client


def _drain(server: DPMConnection) -> list[object]:
    out = []
    while (event := server.next_event()) is not NEED_DATA:
        out.append(event)
    return out


def test_write_many_partial_failure_keeps_input_order() -> None:
    server, client = _enabled_pair()
    batch = WriteBatch(
        [("Z:ACLTST", 45.0), ("Z:NOTFND", 1.0), ("Z:ACLTS1[0:3]", [1.0, 2.0, 3.0])],
        role="testing",
        user_name="operator@FNAL.GOV",
    )
    server.receive_data(client.begin(batch))
    added = [e for e in _drain(server) if isinstance(e, dpm.AddToListRequest)]
    assert [a.drf_request for a in added] == [
        "#ROLE:testing",
        "Z:ACLTST.SETTING@N",
        "Z:NOTFND.SETTING@N",
        "Z:ACLTS1.SETTING[0:3]@N",
    ]
    replies = [
        dpm.AddToListReply(list_id=5, ref_id=ref, status=NO_SUCH if ref == 2 else OK)
        for ref in (0, 1, 2, 3)
    ]
    client.receive(server.send(*replies, dpm.StartListReply(list_id=5, status=0)))
    server.receive_data(client.data_to_send())
    (apply,) = _drain(server)
    # the failed entry is not applied
    assert [s.ref_id for s in apply.scaled_array] == [1, 3]
    assert batch.applied and not batch.done
    statuses = [
        dpm.SettingStatus(ref_id=1, status=OK),
        dpm.SettingStatus(ref_id=3, status=DPM_PRIV),
    ]
    client.receive(server.send(dpm.ApplySettingsReply(status=statuses)))
    results = batch.write_results()
    assert [r.drf for r in results] == ["Z:ACLTST", "Z:NOTFND", "Z:ACLTS1[0:3]"]
    assert [r.ok for r in results] == [True, False, False]
    assert "DPM_NO_SUCH_DEVICE" in results[1].message
    assert (results[2].facility_code, results[2].error_code) == (17, -17)


def test_reply_that_omits_a_setting_does_not_claim_success() -> None:
    server, client = _enabled_pair()
    batch = WriteBatch([("Z:ACLTST", 1.0), ("M:OUTTMP", 2.0)], role=None, user_name="u")
    server.receive_data(client.begin(batch))
    _drain(server)
    acks = [dpm.AddToListReply(list_id=5, ref_id=r, status=0) for r in (1, 2)]
    client.receive(server.send(*acks, dpm.StartListReply(list_id=5, status=0)))
    server.receive_data(client.data_to_send())
    _drain(server)
    client.receive(
        server.send(dpm.ApplySettingsReply(status=[dpm.SettingStatus(ref_id=1, status=0)]))
    )
    first, second = batch.write_results()
    assert first.ok and not second.ok and "gave no status" in second.message


def test_role_refused_is_an_authentication_error() -> None:
    server, client = _enabled_pair()
    batch = WriteBatch([("Z:ACLTST", 1.0)], role="nobody", user_name="u")
    server.receive_data(client.begin(batch))
    _drain(server)
    with pytest.raises(AuthenticationError, match="role 'nobody'"):
        client.receive(server.send(dpm.AddToListReply(list_id=5, ref_id=0, status=DPM_PRIV)))


def test_enable_refused_is_an_authentication_error() -> None:
    server = DPMConnection(Role.SERVER)
    client = ClientConnection()
    server.receive_data(client.start())
    server.next_event()
    client.receive(server.send(dpm.OpenListReply(list_id=5)))
    server.receive_data(client.begin(AuthFlow(RecordedContext)))
    server.next_event()
    client.receive(server.send(dpm.AuthenticateReply(service_name="daeset/bd")))
    server.receive_data(client.data_to_send())
    server.next_event()
    client.receive(server.send(dpm.AuthenticateReply(token=b"ok")))
    server.receive_data(client.data_to_send())
    server.next_event()
    with pytest.raises(AuthenticationError, match="DPM_PRIV"):
        client.receive(
            server.send(dpm.StatusReply(ref_id=0, timestamp=0, cycle=0, status=DPM_PRIV))
        )


def test_apply_settings_cannot_be_sent_before_enabling() -> None:
    conn, server = DPMConnection(Role.CLIENT), DPMConnection(Role.SERVER)
    server.receive_data(conn.initiate())
    server.next_event()
    conn.receive_data(server.send(dpm.OpenListReply(list_id=1)))
    conn.next_event()
    with pytest.raises(LocalProtocolError, match="authenticate first"):
        conn.send(
            dpm.ApplySettingsRequest(
                user_name="u", list_id=1, scaled_array=[dpm.ScaledSetting(ref_id=1, data=[1.0])]
            )
        )


def _jwt(claims: dict) -> str:
    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256'})}.{part(claims)}.c2lnbmF0dXJl"


def test_jwt_auth_principal_and_redaction() -> None:
    token = _jwt({"sub": "operator@FNAL.GOV", "realm_access": {"roles": ["testing"]}})
    auth = JWTAuth(token)
    assert auth.principal == "operator@FNAL.GOV"
    assert auth.token == token
    for text in (repr(auth), str(auth)):
        assert token not in text and token.split(".")[2] not in text and "redacted" in text


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.!!!.c", 42, None])
def test_jwt_auth_bad_tokens_never_echo_the_token(token: object) -> None:
    with pytest.raises(ValueError) as info:
        JWTAuth(token)  # type: ignore[arg-type]
    if isinstance(token, str) and len(token) > 2:
        assert token not in str(info.value)


def test_jwt_from_env_prefers_acnet_over_pacsys(monkeypatch: pytest.MonkeyPatch) -> None:
    ours, theirs = _jwt({"sub": "ours"}), _jwt({"sub": "theirs"})
    monkeypatch.delenv("ACNET_JWT_TOKEN", raising=False)
    monkeypatch.setenv("PACSYS_JWT_TOKEN", theirs)
    assert JWTAuth.from_env().principal == "theirs"
    monkeypatch.setenv("ACNET_JWT_TOKEN", ours)
    assert JWTAuth.from_env().principal == "ours"
    monkeypatch.delenv("ACNET_JWT_TOKEN")
    monkeypatch.delenv("PACSYS_JWT_TOKEN")
    assert JWTAuth.from_env() is None  # as the seeds say: None when unset
